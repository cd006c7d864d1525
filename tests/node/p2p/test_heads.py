"""Certified heads over gossipsub (``/chhaya/vkd/heads/1``) between real hosts."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager

import pytest
import trio
from libp2p.abc import IHost
from libp2p.peer.peerinfo import info_from_p2p_addr
from multiaddr import Multiaddr

from chhaya import DecodeError, VerificationError
from node.p2p import (
    CERTIFIED_HEAD_MAGIC,
    HEADS_TOPIC,
    MAX_CERTIFIED_HEAD_SIZE,
    CertifiedHead,
    HeadGossip,
)
from quorum import HeadTracker, QuorumCertificate, SignedHead
from tests.vkd.conftest import World, make_world

from .conftest import TEST_TIMEOUT_S, address, hosts, wait_until

#: Bound on one head crossing a few hops once the mesh is formed.
DELIVERY_S = 5.0


def tracker_for(world: World) -> HeadTracker:
    return HeadTracker(
        world.trust.verifier, world.directory.directory_key, world.directory.vrf_public_key
    )


def certified(world: World) -> tuple[SignedHead, QuorumCertificate]:
    signed = world.publish_and_certify()
    return signed, world.directory.certificate(signed.head.epoch)


async def connect(a: IHost, b: IHost) -> None:
    await a.connect(info_from_p2p_addr(Multiaddr(address(b))))


@asynccontextmanager
async def network(
    world: World, n: int, edges: Sequence[tuple[int, int]]
) -> AsyncIterator[list[HeadGossip]]:
    """``n`` hosts running HeadGossip, connected along ``edges``, meshes formed."""
    async with hosts(n) as hs, AsyncExitStack() as stack:
        gossips = [await stack.enter_async_context(HeadGossip(h, tracker_for(world))) for h in hs]
        for i, j in edges:
            await connect(hs[i], hs[j])
        neighbours = {i: {hs[j].get_id() for a, j in edges if a == i} for i in range(n)}
        for i, j in edges:
            neighbours[j].add(hs[i].get_id())
        await wait_until(lambda: all(g.mesh_peers >= neighbours[i] for i, g in enumerate(gossips)))
        yield gossips


# -- encoding -------------------------------------------------------------------


def test_certified_head_round_trip() -> None:
    world = make_world()
    signed, cert = certified(world)
    data = CertifiedHead(signed, cert).encode()
    assert data.startswith(CERTIFIED_HEAD_MAGIC)
    assert len(data) <= MAX_CERTIFIED_HEAD_SIZE
    assert CertifiedHead.decode_untrusted(data) == CertifiedHead(signed, cert)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: b"",
        lambda d: b"CHD2" + d[4:],
        lambda d: d[:-1],
        lambda d: d + b"\x00",
        lambda d: d[:4] + d[5:],
        lambda d: d + b"\x00" * MAX_CERTIFIED_HEAD_SIZE,
        lambda d: bytes(len(d)),
    ],
)
def test_certified_head_decode_rejects_garbage(mutate: object) -> None:
    world = make_world()
    data = CertifiedHead(*certified(world)).encode()
    assert callable(mutate)
    with pytest.raises(DecodeError):
        CertifiedHead.decode_untrusted(mutate(data))


# -- gossip ---------------------------------------------------------------------


async def test_head_reaches_every_node_of_a_line() -> None:
    world = make_world()
    with trio.fail_after(TEST_TIMEOUT_S):
        async with network(world, 4, [(0, 1), (1, 2), (2, 3)]) as gossips:
            signed, cert = certified(world)
            await gossips[0].publish(signed, cert)
            with trio.fail_after(DELIVERY_S):
                for gossip in gossips:
                    got = await gossip.wait_for_epoch(signed.head.epoch, DELIVERY_S)
                    assert got == signed
            assert all(g.latest == signed for g in gossips)
            assert all(not g.rejected for g in gossips)
            assert [g.accepted for g in gossips] == [0, 1, 1, 1]


async def test_bad_heads_are_refused_and_not_forwarded() -> None:
    world = make_world()
    with trio.fail_after(TEST_TIMEOUT_S):
        async with network(world, 3, [(0, 1), (1, 2)]) as (a, b, c):
            signed, cert = certified(world)
            older_cert = world.directory.certificate(signed.head.epoch - 1)
            bad_sig = bytes([signed.signature[0] ^ 1]) + signed.signature[1:]
            forged = dataclasses.replace(signed, signature=bad_sig)

            # Our own tracker refuses to publish them.
            with pytest.raises(VerificationError):
                await a.publish(signed, older_cert)
            with pytest.raises(VerificationError):
                await a.publish(forged, cert)

            # Injected below HeadGossip, they reach b, which drops them.
            for bad in (
                CertifiedHead(signed, older_cert).encode(),
                CertifiedHead(forged, cert).encode(),
                b"CHD1 garbage",
            ):
                await a.pubsub.publish(HEADS_TOPIC, bad)
            await a.publish(signed, cert)
            await c.wait_for_epoch(signed.head.epoch, DELIVERY_S)
            await wait_until(lambda: b.rejected.total() == 3)

            assert b.latest == signed
            assert c.latest == signed
            assert b.rejected == {"certificate-signature": 1, "head-signature": 1, "decode": 1}
            assert not c.rejected  # b did not forward what it refused


async def test_rollback_is_refused() -> None:
    world = make_world()
    first = certified(world)
    second = certified(world)
    with trio.fail_after(TEST_TIMEOUT_S):
        async with network(world, 3, [(0, 1), (1, 2)]) as (a, b, c):
            await a.publish(*second)
            await c.wait_for_epoch(second[0].head.epoch, DELIVERY_S)
            with pytest.raises(VerificationError):
                await a.publish(*first)
            await a.pubsub.publish(HEADS_TOPIC, CertifiedHead(*first).encode())
            await wait_until(lambda: b.rejected["rollback"] == 1)
            # a repeat of the latest is accepted by no one anew and not forwarded
            await a.pubsub.publish(HEADS_TOPIC, CertifiedHead(*second).encode())
            await wait_until(lambda: b.rejected["stale"] == 1)
            assert b.latest == second[0]
            assert c.latest == second[0]
            assert not c.rejected


async def test_equivocation_is_exposed() -> None:
    world = make_world()
    twin = make_world()
    world.clock()  # shift the head time: same epoch, same directory, another head
    mine, theirs = certified(world), certified(twin)
    assert mine[0].head.epoch == theirs[0].head.epoch
    assert mine[0].head.head_hash != theirs[0].head.head_hash
    with trio.fail_after(TEST_TIMEOUT_S):
        async with network(world, 2, [(0, 1)]) as (a, b):
            await a.publish(*mine)
            await b.wait_for_epoch(mine[0].head.epoch, DELIVERY_S)
            await a.pubsub.publish(HEADS_TOPIC, CertifiedHead(*theirs).encode())
            await wait_until(lambda: b.evidence is not None)
            assert b.evidence is not None
            assert b.evidence.epoch == mine[0].head.epoch
            assert b.rejected["directory-equivocated"] == 1


async def test_wait_for_epoch_times_out() -> None:
    world = make_world()
    with trio.fail_after(TEST_TIMEOUT_S):
        async with hosts(1) as (host,), HeadGossip(host, tracker_for(world)) as gossip:
            assert gossip.latest is None
            with pytest.raises(TimeoutError):
                await gossip.wait_for_epoch(1, 0.05)
