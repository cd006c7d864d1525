"""Delivery through a circuit relay, with real processes on 127.0.0.1.

Bob holds a slot on a relay node and, with ``--relay-only``, publishes only his
circuit through it in his presence record. Alice finds only that circuit in his presence record, so
her channel (and every message) goes through the relay, which sees only
encrypted, padded envelopes.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from node.demo_network import LocalNetwork

from ._network import network, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNetwork]:
    yield from network(tmp_path_factory.mktemp("relaynet"))


def test_messages_reach_a_node_that_advertises_only_a_relay_circuit(net: LocalNetwork) -> None:
    relay = net.start_user("relay", ["--relay"])
    relay_addr = relay.address
    relay_id = relay.ready["peer_id"]
    bob = net.start_user("bob", ["--relay-via", relay_addr, "--relay-only"])
    net.register(["bob"])

    def bob_advertises_only_the_circuit() -> bool:
        advertised: list[str] = net.call("bob", "status")["advertised"]
        return advertised == [f"{relay_addr}/p2p-circuit"]

    wait_for("bob's reservation on the relay", bob_advertises_only_the_circuit)
    # Alice is a DHT client too (both behind NAT, say): DHT walks only reach
    # servers (the directory, the relay), so neither node ever dials the other,
    # and the circuit in bob's presence record is alice's only way to him.
    net.start_user("alice", ["--relay-only"])
    net.register(["alice"])
    assert bob.ready["peer_id"] not in net.call("alice", "status")["connected"]
    result = net.call("alice", "send", {"handle": "bob", "text": "via the relay", "wait": True})
    assert result["status"] == "delivered"
    inbox = net.call("bob", "inbox")["messages"]
    assert [(m["from"], m["text"]) for m in inbox] == [("alice", "via the relay")]
    connected = net.call("alice", "status")["connected"]
    assert connected[relay_id] == "direct"
    assert connected[bob.ready["peer_id"]] == "relayed"
    # Bob answers over the same relayed channel.
    reply = net.call("bob", "send", {"handle": "alice", "text": "got it", "wait": True})
    assert reply["status"] == "delivered"
