"""``chhaya chat`` as a real process against running nodes."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from node.demo_network import LocalNetwork

from ._network import network, wait_for
from .conftest import CLI

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNetwork]:
    yield from network(tmp_path_factory.mktemp("chatnet"))


def test_chat_shows_history_sends_and_reports_delivery(net: LocalNetwork) -> None:
    for handle in ("ana", "ben"):
        net.start_user(handle)
    net.register(["ana", "ben"])
    net.call("ben", "send", {"handle": "ana", "text": "earlier, from ben", "wait": True})
    net.call("ana", "send", {"handle": "ben", "text": "earlier, from ana", "wait": True})
    chat = subprocess.run(
        [*CLI, "chat", "--data-dir", str(net.user_dir("ana")), "ben"],
        input="typed in the chat\n\n/quit\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert chat.returncode == 0, chat.stderr
    out = chat.stdout.splitlines()
    assert any("ben: earlier, from ben" in line for line in out)
    assert any("you: earlier, from ana  ✓✓" in line for line in out)
    assert "chatting with ben; Ctrl-D or /quit to leave" in out
    assert "  ✓✓" in out  # the typed line was delivered
    wait_for(
        "ben to hold the typed line",
        lambda: any(m["text"] == "typed in the chat" for m in net.call("ben", "inbox")["messages"]),
    )


def test_chat_with_an_unknown_handle_fails_in_one_line(net: LocalNetwork, tmp_path: Path) -> None:
    net.start_user("cid")
    net.register(["cid"])
    chat = subprocess.run(
        [*CLI, "chat", "--data-dir", str(net.user_dir("cid")), "nobody-here"],
        input="hello\n/quit\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert chat.returncode == 0
    assert "Traceback" not in chat.stderr
    assert "(not sent: not-registered" in chat.stderr or "not in the directory" in chat.stderr
