"""Chhaya nodes on a LAN of network namespaces (one bridge, one namespace per host).

- mDNS alone (no bootstrap, no directory) makes three hosts find and connect
  to each other;
- with a quorum and a directory on an "infra" host, users on three hosts
  register and message every other one, each message delivered exactly once;
- on a lossy link, messages still arrive exactly once;
- a host no one can dial, holding a relay reservation, is reached through the
  relay only.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from node.daemon import call, socket_path
from node.demo_network import LocalNetwork, _parallel
from node.procs import ProcessGroup

from ..node._network import wait_for
from ._netns import Lan, lan, start_infra, start_user, tcp_connects

pytestmark = [pytest.mark.netns, pytest.mark.slow]

#: Fixed listening port of the host that nothing can dial.
HIDDEN_PORT = 4001


def _status(data_dir: Path) -> dict[str, Any]:
    return call(socket_path(data_dir), "status", {}, 10.0)


def test_three_hosts_find_each_other_by_mdns_alone_and_chat_from_pinned_cards(
    tmp_path: Path,
) -> None:
    names = ["m1", "m2", "m3"]
    with lan(names) as net, ProcessGroup(log_dir=tmp_path).running() as group:
        nodes = {}
        first_ready = 0.0
        for name in names:
            host = net[name]
            args = ["run", "--data-dir", str(tmp_path / name), "--listen", host.listen(),
                    "--mdns", "--json"]  # fmt: skip
            nodes[name] = group.start(name, args, prefix=host.prefix)
            first_ready = first_ready or time.monotonic()
            # `ip netns exec` execs: the PID we stop is the node's own.
            cmdline = Path(f"/proc/{nodes[name].pid}/cmdline").read_bytes().split(b"\0")
            assert b"node.cli" in cmdline
            assert b"netns" not in cmdline
        last_ready = time.monotonic()
        peer_ids = {name: node.ready["peer_id"] for name, node in nodes.items()}
        for node in nodes.values():
            assert node.address.startswith(f"/ip4/{net[node.name].ip}/tcp/")

        def all_connected() -> bool:
            for name in names:
                connected = _status(tmp_path / name)["connected"]
                others = [peer_ids[n] for n in names if n != name]
                if any(connected.get(p) != "direct" for p in others):
                    return False
            return True

        wait_for("every host connected to the other two by mDNS", all_connected, 30.0)
        now = time.monotonic()
        print(f"mDNS discovery: all 3 hosts connected {now - last_ready:.2f} s after the last "
              f"was ready ({now - first_ready:.2f} s after the first)")  # fmt: skip

        # No directory on this LAN: m1 and m2 pin each other's contact cards,
        # fingerprints compared, and chat.
        def node_call(name: str, op: str, args: dict[str, Any]) -> Any:
            return call(socket_path(tmp_path / name), op, args, 60.0)

        card1 = node_call("m1", "name", {"name": "uma"})
        card2 = node_call("m2", "name", {"name": "vic"})
        node_call(
            "m1",
            "contacts.add",
            {"handle": "vic", "card": card2, "fingerprint": card2["fingerprint"]},
        )
        fingerprint1 = card1["fingerprint"]
        node_call(
            "m2", "contacts.add", {"handle": "uma", "card": card1, "fingerprint": fingerprint1}
        )
        sent = node_call("m1", "send", {"handle": "vic", "text": "lan only", "wait": True})
        assert sent["status"] == "delivered"
        inbox = node_call("m2", "inbox", {})["messages"]
        assert [(m["from"], m["text"]) for m in inbox] == [("uma", "lan only")]
        assert group.stop_all() == [0, 0, 0]  # SIGTERM by PID reached each node


@pytest.fixture(scope="module")
def lan_net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Lan, LocalNetwork]]:
    hosts = ["infra", "a", "b", "c", "lossy", "relay", "hidden", "sender", "natted", "sender2",
             "off1", "off2", "off3"]  # fmt: skip
    root = tmp_path_factory.mktemp("netns")
    with lan(hosts) as net:
        chhaya = LocalNetwork(root)
        with chhaya.group.running():
            start_infra(chhaya, net["infra"])
            yield net, chhaya


def _send(net: LocalNetwork, sender: str, to: str, text: str) -> dict[str, Any]:
    return net.call(sender, "send", {"handle": to, "text": text, "wait": True, "timeout_s": 30}, 90)


def _assert_each_once(net: LocalNetwork, handle: str, expected: list[tuple[str, str]]) -> None:
    inbox = [(m["from"], m["text"]) for m in net.call(handle, "inbox")["messages"]]
    for item in expected:
        assert inbox.count(item) == 1, f"{handle}'s inbox has {item} {inbox.count(item)} times"


def test_users_on_three_hosts_register_and_message_every_other(
    lan_net: tuple[Lan, LocalNetwork],
) -> None:
    net, chhaya = lan_net
    handles = ["a", "b", "c"]
    for handle in handles:
        node = start_user(chhaya, handle, net[handle])
        assert node.address.startswith(f"/ip4/{net[handle].ip}/tcp/")
    chhaya.register(handles)
    pairs = [(x, y) for x in handles for y in handles if x != y]
    results = _parallel(
        [functools.partial(_send, chhaya, x, y, f"{x} to {y} over the LAN") for x, y in pairs]
    )
    assert [r["status"] for r in results] == ["delivered"] * len(pairs)
    for handle in handles:
        expected = [(x, f"{x} to {handle} over the LAN") for x in handles if x != handle]
        _assert_each_once(chhaya, handle, expected)


def test_messages_cross_a_lossy_link_exactly_once(lan_net: tuple[Lan, LocalNetwork]) -> None:
    net, chhaya = lan_net
    if "a" not in chhaya.users:  # run alone: a peer to talk to
        start_user(chhaya, "a", net["a"])
        chhaya.register(["a"])
    start_user(chhaya, "lossy", net["lossy"])
    chhaya.register(["lossy"])
    applied = net.impair("lossy", 5, 20)
    print(f"impairment: {applied}")
    try:
        texts = [f"through loss {i}" for i in range(5)]
        results = _parallel(
            [functools.partial(_send, chhaya, "a", "lossy", t) for t in texts]
            + [functools.partial(_send, chhaya, "lossy", "a", t) for t in texts]
        )
        assert [r["status"] for r in results] == ["delivered"] * len(results)
        _assert_each_once(chhaya, "lossy", [("a", t) for t in texts])
        _assert_each_once(chhaya, "a", [("lossy", t) for t in texts])
        print(f"packets dropped on lossy's link: {net.dropped('lossy')}")
    finally:
        net.clear_impairment("lossy")


def test_an_undialable_host_is_reached_through_its_relay_only(
    lan_net: tuple[Lan, LocalNetwork],
) -> None:
    net, chhaya = lan_net
    relay = start_user(chhaya, "relay", net["relay"], ["--relay"])
    relay_addr, relay_id = relay.address, relay.ready["peer_id"]
    print(net.block_inbound("hidden", HIDDEN_PORT))
    hidden = start_user(
        chhaya, "hidden", net["hidden"], ["--relay-via", relay_addr, "--relay-only"],
        port=HIDDEN_PORT,
    )  # fmt: skip
    hidden_id = hidden.ready["peer_id"]
    chhaya.register(["hidden"])

    def hidden_advertises_only_the_circuit() -> bool:
        advertised: list[str] = chhaya.call("hidden", "status")["advertised"]
        return advertised == [f"{relay_addr}/p2p-circuit"]

    wait_for("hidden's reservation on the relay", hidden_advertises_only_the_circuit)
    # Not a DHT server, so the hidden node never dials the sender itself.
    start_user(chhaya, "sender", net["sender"], ["--relay-only"])
    chhaya.register(["sender"])
    assert not tcp_connects(net["sender"], net["hidden"], HIDDEN_PORT)
    assert tcp_connects(net["sender"], net["relay"], int(relay_addr.split("/")[4]))

    result = _send(chhaya, "sender", "hidden", "via the relay")
    assert result["status"] == "delivered"
    _assert_each_once(chhaya, "hidden", [("sender", "via the relay")])
    connected = chhaya.call("sender", "status")["connected"]
    assert connected[relay_id] == "direct"
    assert connected[hidden_id] == "relayed"
    reply = _send(chhaya, "hidden", "sender", "got it")
    assert reply["status"] == "delivered"
    assert chhaya.call("sender", "status")["connected"][hidden_id] == "relayed"


def test_autonat_finds_a_node_undialable_and_it_takes_a_relay_slot_by_itself(
    lan_net: tuple[Lan, LocalNetwork],
) -> None:
    net, chhaya = lan_net
    relay = start_user(chhaya, "relay2", net["relay"], ["--relay"])
    relay_addr = relay.address
    print(net.block_inbound("natted", HIDDEN_PORT))
    # No --relay-via: AutoNAT must find out that nobody can dial this node.
    natted = start_user(
        chhaya, "natted", net["natted"], ["--bootstrap", relay_addr, "--relay-only"],
        port=HIDDEN_PORT,
    )  # fmt: skip
    chhaya.register(["natted"])

    def natted_advertises_a_circuit() -> bool:
        advertised: list[str] = chhaya.call("natted", "status")["advertised"]
        return advertised == [f"{relay_addr}/p2p-circuit"]

    wait_for("AutoNAT to say private and a reservation", natted_advertises_a_circuit, 60)
    start_user(chhaya, "sender2", net["sender2"], ["--relay-only"])
    chhaya.register(["sender2"])
    result = _send(chhaya, "sender2", "natted", "found you through the relay")
    assert result["status"] == "delivered"
    _assert_each_once(chhaya, "natted", [("sender2", "found you through the relay")])
    connected = chhaya.call("sender2", "status")["connected"]
    assert connected[natted.ready["peer_id"]] == "relayed"


def test_a_message_to_an_offline_host_is_delivered_from_its_mailbox_when_it_comes_up(
    lan_net: tuple[Lan, LocalNetwork],
) -> None:
    net, chhaya = lan_net
    poll = ["--mailbox-poll", "1"]
    start_user(chhaya, "ola", net["off1"], poll)
    start_user(chhaya, "pim", net["off2"], poll)
    start_user(chhaya, "mbx", net["off3"], poll)  # one more DHT server: a mailbox peer
    chhaya.register(["ola", "pim", "mbx"])
    assert _send(chhaya, "pim", "ola", "while you are here")["status"] == "delivered"
    assert chhaya.users["ola"].stop() == 0  # the host's node goes down

    away = chhaya.call("pim", "send", {"handle": "ola", "text": "while you were away"}, 90)
    assert away["via"] == "mailbox"
    start_user(chhaya, "ola", net["off1"], poll)  # back up, same data directory

    def ola_has_it() -> bool:
        texts = [m["text"] for m in chhaya.call("ola", "inbox")["messages"]]
        return "while you were away" in texts

    wait_for("ola to take the message from her mailbox", ola_has_it, 60)
    time.sleep(3)  # further mailbox rounds and pim's outbox retry must add no copy
    _assert_each_once(
        chhaya, "ola", [("pim", "while you are here"), ("pim", "while you were away")]
    )
