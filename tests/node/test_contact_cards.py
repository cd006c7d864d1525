"""Chat without a directory: contacts pinned from cards whose fingerprints were compared.

Real processes on 127.0.0.1; the second node bootstraps from the first (on a
LAN, `--mdns` finds it instead: tests/netns).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chhaya import TransportError
from node.daemon import call, socket_path
from node.procs import LOOPBACK_LISTEN, ProcessGroup

from ._network import wait_for
from .conftest import assert_one_line_error, run_cli

pytestmark = pytest.mark.slow


@pytest.fixture
def group(tmp_path: Path) -> Iterator[ProcessGroup]:
    with ProcessGroup(log_dir=tmp_path).running() as g:
        yield g


def _call(tmp_path: Path, name: str, op: str, args: dict[str, Any] | None = None) -> Any:
    return call(socket_path(tmp_path / name), op, args or {}, 60)


def test_two_nodes_chat_after_pinning_each_others_cards(
    group: ProcessGroup, tmp_path: Path
) -> None:
    a = group.start("a", ["run", "--data-dir", str(tmp_path / "a"), "--listen",
                          LOOPBACK_LISTEN, "--json"])  # fmt: skip
    group.start("b", ["run", "--data-dir", str(tmp_path / "b"), "--listen", LOOPBACK_LISTEN,
                      "--bootstrap", a.address, "--json"])  # fmt: skip
    card_a = _call(tmp_path, "a", "name", {"name": "ana"})
    # The CLI prints the same card, and pins one from a file.
    r = run_cli("contacts", "card", "--data-dir", str(tmp_path / "b"), "--name", "ben")
    assert r.rc == 0, r
    card_b = json.loads(r.out)
    (tmp_path / "ben.card").write_text(r.out)
    assert card_b["name"] == "ben"

    wrong = card_a["fingerprint"]  # ana's, not ben's
    r = run_cli("contacts", "add", "--data-dir", str(tmp_path / "a"), "ben",
                "--card", str(tmp_path / "ben.card"), "--fingerprint", wrong)  # fmt: skip
    assert_one_line_error(r, "fingerprint")
    right = card_b["fingerprint"]
    r = run_cli("contacts", "add", "--data-dir", str(tmp_path / "a"), "ben",
                "--card", str(tmp_path / "ben.card"), "--fingerprint", right)  # fmt: skip
    assert r.rc == 0, r
    assert "ben  (verified)" in r.out

    # Ben has not pinned ana yet: her channel is refused, nothing is delivered.
    with pytest.raises(TransportError, match="not sent to ben"):
        _call(tmp_path, "a", "send", {"handle": "ben", "text": "too early"})
    _call(tmp_path, "b", "contacts.add",
          {"handle": "ana", "card": card_a, "fingerprint": card_a["fingerprint"]})  # fmt: skip

    sent = _call(tmp_path, "a", "send", {"handle": "ben", "text": "hi ben", "wait": True})
    assert sent["status"] == "delivered"
    inbox = _call(tmp_path, "b", "inbox")["messages"]
    assert [(m["from"], m["text"]) for m in inbox] == [("ana", "hi ben")]
    reply = _call(tmp_path, "b", "send", {"handle": "ana", "text": "hi ana", "wait": True})
    assert reply["status"] == "delivered"
    wait_for("ana's inbox", lambda: len(_call(tmp_path, "a", "inbox")["messages"]) == 1)


def test_a_bad_card_is_one_clear_error(group: ProcessGroup, tmp_path: Path) -> None:
    group.start("a", ["run", "--data-dir", str(tmp_path / "a"), "--listen",
                      LOOPBACK_LISTEN, "--json"])  # fmt: skip
    (tmp_path / "bad.card").write_text(json.dumps({"format": "chhaya-contact-card-v1"}))
    r = run_cli("contacts", "add", "--data-dir", str(tmp_path / "a"), "x",
                "--card", str(tmp_path / "bad.card"), "--fingerprint", "1")  # fmt: skip
    assert_one_line_error(r, "unusable contact card")
    r = run_cli("contacts", "add", "--data-dir", str(tmp_path / "a"), "x",
                "--card", str(tmp_path / "bad.card"))  # fmt: skip
    assert r.rc == 2
    assert "--fingerprint" in r.err
