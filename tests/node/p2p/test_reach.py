"""Reach (bootstrap, relay v2, AutoNAT, mDNS) between real hosts on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
from libp2p.abc import IHost, INetStream
from libp2p.custom_types import TProtocol
from libp2p.peer.peerinfo import PeerInfo
from multiaddr import Multiaddr

from chhaya import TransportError
from node.p2p import Reach, ReachConfig, RelayLimits, run_reach

from .conftest import TEST_TIMEOUT_S, address, hosts, wait_until

ECHO = TProtocol("/chhaya-test/echo/1.0.0")
#: Fast loops for tests; nothing else differs from the defaults.
FAST = {"bootstrap_check_s": 0.05, "backoff_min_s": 0.2, "backoff_max_s": 0.5}
QUIET = ReachConfig(autonat=False, **FAST)  # type: ignore[arg-type]


@asynccontextmanager
async def reach(host: IHost, config: ReachConfig = QUIET) -> AsyncIterator[Reach]:
    async with trio.open_nursery() as nursery:
        r: Reach = await nursery.start(run_reach, host, config)
        yield r
        nursery.cancel_scope.cancel()


def connected(host: IHost, other: IHost) -> bool:
    return bool(host.get_network().connections.get(other.get_id()))


def direct(host: IHost) -> PeerInfo:
    """The host's first address as PeerInfo."""
    return PeerInfo(host.get_id(), [Multiaddr(address(host).rsplit("/p2p/", 1)[0])])


async def echo(stream: INetStream) -> None:
    data = await stream.read(100)
    await stream.write(data)
    await stream.close()


# -- configuration -----------------------------------------------------------------


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="max_reservations"):
        RelayLimits(max_reservations=0)
    with pytest.raises(ValueError, match="negative"):
        RelayLimits(circuit_data_bytes=-1)
    with pytest.raises(ValueError, match="autonat_confirmations"):
        ReachConfig(autonat_confirmations=0)
    with pytest.raises(ValueError, match="backoff"):
        ReachConfig(backoff_min_s=2, backoff_max_s=1)
    limits = RelayLimits(max_reservations=3, max_circuits=2).to_libp2p()
    assert (limits.max_reservations, limits.max_circuit_conns) == (3, 2)


async def test_bad_bootstrap_address_fails_before_start() -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        async with hosts(1) as (h,):
            with pytest.raises(TransportError):
                await run_reach(h, ReachConfig(bootstrap=("/ip4/127.0.0.1/tcp/1",)))


# -- bootstrap ---------------------------------------------------------------------


async def test_bootstrap_connects_and_reconnects() -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        async with hosts(2) as (seed, node):
            config = ReachConfig(bootstrap=(address(seed),), autonat=False, **FAST)  # type: ignore[arg-type]
            seed.set_stream_handler(ECHO, echo)
            async with reach(node, config):
                await wait_until(lambda: connected(node, seed) and connected(seed, node))
                for closer, other in ((seed, node), (node, seed)):  # closed from either end
                    before = node.get_network().connections[seed.get_id()][0]
                    await closer.disconnect(other.get_id())
                    await wait_until(
                        lambda b=before: (
                            connected(seed, node)  # type: ignore[misc]
                            and node.get_network().connections.get(seed.get_id(), [b])[0] is not b
                        )
                    )
                    stream = await node.new_stream(seed.get_id(), [ECHO])
                    await stream.write(b"back")
                    assert await stream.read(100) == b"back"


async def test_unreachable_bootstrap_peer_does_not_crash() -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        async with hosts(2) as (seed, node):
            gone = f"/ip4/127.0.0.1/tcp/1/p2p/{seed.get_id()}"
            config = ReachConfig(bootstrap=(gone,), autonat=False, **FAST)  # type: ignore[arg-type]
            async with reach(node, config):
                await trio.sleep(0.5)  # several failed dials with backoff, no crash
                assert not connected(node, seed)


# -- circuit relay v2 ------------------------------------------------------------------


async def test_relay_reserve_dial_and_stream() -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        async with hosts(3) as (relay, dialer, target):
            target.set_stream_handler(ECHO, echo)
            hop = ReachConfig(relay_hop=True, autonat=False)
            async with reach(relay, hop), reach(dialer) as rd, reach(target) as rt:
                circuit = await rt.reserve(address(relay))
                assert circuit == f"{address(relay)}/p2p-circuit/p2p/{target.get_id()}"
                assert target.get_id() not in dialer.get_network().connections
                await rd.dial_via_relay(address(relay), target.get_id())
                # The dialer never learnt the target's direct address: this is the circuit.
                assert not any(
                    "/tcp/" in str(a)
                    for a in dialer.get_peerstore().addrs(target.get_id())
                    if "/p2p-circuit" not in str(a)
                )
                stream = await dialer.new_stream(target.get_id(), [ECHO])
                await stream.write(b"through the relay")
                assert await stream.read(100) == b"through the relay"
                await stream.close()


async def test_no_relay_without_hop() -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        async with (
            hosts(3) as (plain, dialer, target),
            reach(plain),
            reach(dialer) as rd,
            reach(target) as rt,
        ):
            with pytest.raises(TransportError):
                await rt.reserve(address(plain))
            with pytest.raises(TransportError):
                await rd.dial_via_relay(address(plain), target.get_id())


async def test_dial_without_reservation_is_refused() -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        async with hosts(3) as (relay, dialer, target):
            hop = ReachConfig(relay_hop=True, autonat=False)
            async with reach(relay, hop), reach(dialer) as rd, reach(target):
                with pytest.raises(TransportError):
                    await rd.dial_via_relay(address(relay), target.get_id())


async def test_relay_max_reservations() -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        async with hosts(3) as (relay, first, second):
            hop = ReachConfig(
                relay_hop=True, autonat=False, relay_limits=RelayLimits(max_reservations=1)
            )
            async with reach(relay, hop), reach(first) as r1, reach(second) as r2:
                await r1.reserve(address(relay))
                with pytest.raises(TransportError):
                    await r2.reserve(address(relay))
                await r1.reserve(address(relay))  # a refresh is not a second reservation


async def test_relay_max_circuits() -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        async with hosts(4) as (relay, d1, d2, target):
            target.set_stream_handler(ECHO, echo)
            hop = ReachConfig(
                relay_hop=True, autonat=False, relay_limits=RelayLimits(max_circuits=1)
            )
            async with reach(relay, hop), reach(d1) as r1, reach(d2) as r2, reach(target) as rt:
                await rt.reserve(address(relay))
                await r1.dial_via_relay(address(relay), target.get_id())
                with pytest.raises(TransportError):
                    await r2.dial_via_relay(address(relay), target.get_id())


# -- AutoNAT -------------------------------------------------------------------------


async def test_autonat_public_on_loopback() -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        async with hosts(2) as (server, client):
            config = ReachConfig(
                bootstrap=(address(server),),
                autonat_confirmations=1,
                autonat_retry_s=0.2,
                **FAST,  # type: ignore[arg-type]
            )
            async with reach(server, ReachConfig()), reach(client, config) as rc:
                assert rc.reachability == "unknown"
                await wait_until(lambda: rc.reachability == "public")


async def test_autonat_private_when_dial_back_fails() -> None:
    """The server dials back on a fresh connection, not on the one the request came in on."""
    with trio.fail_after(TEST_TIMEOUT_S):
        async with (
            hosts(2) as (server, client),
            reach(server, ReachConfig()),
            reach(client, ReachConfig(autonat_confirmations=1, autonat_retry_s=3600)) as rc,
        ):
            await client.connect(direct(server))
            # py-libp2p's own server would answer OK on the existing connection.
            closed = "/ip4/127.0.0.1/tcp/1"
            assert await rc.check_reachability([server.get_id()], [closed]) == "private"
            # A requester's address on another IP is refused: no verdict either way.
            assert (
                await rc.check_reachability([server.get_id()], ["/ip4/10.9.9.9/tcp/1"]) == "private"
            )


# -- mDNS ------------------------------------------------------------------------------


async def test_mdns_discovered_peer_gets_connected() -> None:
    """Feeds the listener's callback from a thread, as zeroconf does."""
    with trio.fail_after(TEST_TIMEOUT_S):
        async with hosts(2) as (lan_peer, node):
            # mdns=True starts zeroconf too; the feed below stands in for its thread.
            config = ReachConfig(mdns=True, autonat=False, **FAST)  # type: ignore[arg-type]
            async with reach(node, config) as rn:
                await trio.to_thread.run_sync(rn._on_mdns_peer, direct(lan_peer))
                await trio.to_thread.run_sync(rn._on_mdns_peer, PeerInfo(node.get_id(), []))
                await wait_until(lambda: connected(node, lan_peer))
                assert rn.discovered == frozenset({lan_peer.get_id()})


@pytest.mark.slow
async def test_mdns_real_multicast_on_loopback() -> None:
    """Zeroconf bound to 127.0.0.1 (the listen address): the nodes find and connect."""
    with trio.fail_after(TEST_TIMEOUT_S):
        async with hosts(2) as (a, b):
            config = ReachConfig(mdns=True, autonat=False, **FAST)  # type: ignore[arg-type]
            async with reach(a, config) as ra, reach(b, config) as rb:
                await wait_until(
                    lambda: b.get_id() in ra.discovered and a.get_id() in rb.discovered
                )
                await wait_until(lambda: connected(a, b))
