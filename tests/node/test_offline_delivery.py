"""Offline delivery through mailboxes, with real processes on 127.0.0.1.

A message to a node that is down is committed, sealed and left with the
recipient's mailbox peers (the K closest DHT servers to its mailbox id); the
recipient takes it when it starts. Each message must arrive exactly once,
although several mailbox peers hold a copy and the sender's outbox also
retries it once the recipient is back.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from node.demo_network import LocalNetwork

from ._network import history, network, wait_for

pytestmark = pytest.mark.slow

POLL = ["--mailbox-poll", "1"]


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNetwork]:
    yield from network(tmp_path_factory.mktemp("offlinenet"))


def _texts(net: LocalNetwork, handle: str) -> list[str]:
    return [str(m["text"]) for m in net.call(handle, "inbox")["messages"]]


def test_messages_to_offline_nodes_arrive_exactly_once_when_they_start(
    net: LocalNetwork,
) -> None:
    for handle in ("ava", "bea", "cyd", "dax"):  # dax: one more DHT server (mailbox peer)
        net.start_user(handle, POLL)
    net.register(["ava", "bea", "cyd", "dax"])
    first = net.call("ava", "send", {"handle": "bea", "text": "while online", "wait": True})
    assert (first["status"], first["via"]) == ("delivered", "channel")
    assert net.users["bea"].stop() == 0
    assert net.users["cyd"].stop() == 0  # cyd never talked to ava: first contact (PQXDH)

    to_bea = net.call("ava", "send", {"handle": "bea", "text": "while you were away"})
    to_cyd = net.call("ava", "send", {"handle": "cyd", "text": "first contact, offline"})
    assert (to_bea["via"], to_cyd["via"]) == ("mailbox", "mailbox")
    assert to_bea["status"] == to_cyd["status"] == "sent"

    net.start_user("bea", POLL)
    net.start_user("cyd", POLL)
    wait_for("bea's mailbox message", lambda: "while you were away" in _texts(net, "bea"))
    wait_for("cyd's mailbox message", lambda: "first contact, offline" in _texts(net, "cyd"))
    wait_for(
        "ava to see both delivered",
        lambda: all(
            m["status"] == "delivered" for peer in ("bea", "cyd") for m in history(net, "ava", peer)
        ),
    )
    # Give duplicates (the other mailbox copies, the outbox retry) time to arrive:
    # a few more fetch rounds (one a second) and retries.
    time.sleep(3)
    assert _texts(net, "bea") == ["while online", "while you were away"]
    assert _texts(net, "cyd") == ["first contact, offline"]
    # The conversation that began offline continues over a channel, both ways.
    reply = net.call("cyd", "send", {"handle": "ava", "text": "got it", "wait": True})
    assert reply["status"] == "delivered"
    assert _texts(net, "ava") == ["got it"]
