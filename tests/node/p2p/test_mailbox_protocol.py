"""``/chhaya/mailbox/1.0.0`` over real hosts on 127.0.0.1: deposit, authenticated
fetch, acknowledged deletion, quotas, TTL, bad input, and mailbox placement."""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
import trio
from libp2p.abc import IHost
from libp2p.kad_dht.utils import sort_peer_ids_by_distance
from libp2p.peer.peerinfo import PeerInfo, info_from_p2p_addr
from multiaddr import Multiaddr

from chhaya import LocalProtocolError, TransportError
from chhaya.identity import PrivateIdentity
from node.mailbox_db import MailboxStore
from node.p2p import (
    MAILBOX_PROTOCOL,
    AckResult,
    ChhayaDht,
    FetchAck,
    FetchChallenge,
    FetchList,
    FetchProof,
    FetchRequest,
    Libp2pStream,
    MailboxService,
    ack_signing_message,
    closest_mailbox_peers,
    deposit,
    fetch,
    fetch_signing_message,
    mailbox_id_for,
)
from node.p2p._framing import frame, receive_frame
from node.p2p._mailbox_protocol import _may_serve_mailboxes

from .conftest import TEST_TIMEOUT_S, address, hosts, wait_until

NOW = 1_700_000_000_000
ALICE = PrivateIdentity.generate(os.urandom)
MALLORY = PrivateIdentity.generate(os.urandom)
ALICE_BOX = mailbox_id_for(ALICE.public.signing_key)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> int:
        return self.now


def envelope(i: int, size: int = 1024) -> bytes:
    return i.to_bytes(4, "big") * (size // 4)


@dataclass
class Net:
    client: IHost
    server: IHost
    service: MailboxService
    store: MailboxStore
    clock: Clock


@asynccontextmanager
async def mailbox_net(tmp_path: Path, **store_options: Any) -> AsyncIterator[Net]:
    clock = Clock()
    async with hosts(2) as (client, server):
        with MailboxStore(
            tmp_path / "mailboxes.sqlite", check_same_thread=False, **store_options
        ) as store:
            service = MailboxService(server, store, clock, message_timeout_s=2.0, linger_s=0.5)
            with service:
                await client.connect(_info(server))
                yield Net(client, server, service, store, clock)


def _info(host: IHost) -> PeerInfo:
    return info_from_p2p_addr(Multiaddr(address(host)))


class Collector:
    """A handle_batch that keeps what it is given and acks all (or none) of it."""

    def __init__(self, ack: bool = True) -> None:
        self.ack = ack
        self.batches: list[list[tuple[bytes, bytes]]] = []

    async def __call__(self, batch: list[tuple[bytes, bytes]]) -> Sequence[bytes]:
        self.batches.append(batch)
        return [i for i, _ in batch] if self.ack else []

    @property
    def envelopes(self) -> list[bytes]:
        return [e for batch in self.batches for _, e in batch]


async def open_stream(net: Net) -> Libp2pStream:
    return Libp2pStream(await net.client.new_stream(net.server.get_id(), [MAILBOX_PROTOCOL]))


async def assert_reset(stream: Libp2pStream) -> None:
    """The server resets: the stream ends without another message."""
    with suppress(trio.BrokenResourceError):
        assert await stream.receive_some() == b""
    await stream.reset()


async def start_fetch(
    net: Net, key_owner: PrivateIdentity, max_count: int = 10
) -> tuple[Libp2pStream, bytes]:
    stream = await open_stream(net)
    request = FetchRequest(key_owner.public.signing_key, max_count)
    await stream.send_all(frame(request.encode()))
    challenge = FetchChallenge.decode_untrusted(await receive_frame(stream, 1 << 10))
    return stream, challenge.nonce


# -- deposit, fetch, ack -------------------------------------------------------------


async def test_deposit_then_fetch_by_the_recipient_and_ack_deletes(tmp_path: Path) -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        async with mailbox_net(tmp_path) as net:
            sent = [envelope(1), envelope(2, 4096), envelope(3, 65536)]
            for e in sent:
                assert await deposit(net.client, address(net.server), ALICE_BOX, e)
            assert net.store.counts(ALICE_BOX) == (3, 1024 + 4096 + 65536)
            got = Collector()
            assert await fetch(net.client, net.server.get_id(), ALICE, got) == 3
            assert got.envelopes == sent  # oldest first
            assert net.store.counts(ALICE_BOX) == (0, 0)
            assert net.service.deleted == 3
            again = Collector()
            assert await fetch(net.client, net.server.get_id(), ALICE, again) == 0
            assert again.batches == []


async def test_another_identity_gets_nothing(tmp_path: Path) -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        async with mailbox_net(tmp_path) as net:
            assert await deposit(net.client, net.server.get_id(), ALICE_BOX, envelope(1))
            got = Collector()
            assert await fetch(net.client, net.server.get_id(), MALLORY, got) == 0
            assert got.batches == []
            assert net.store.counts(ALICE_BOX) == (1, 1024)


@pytest.mark.parametrize("forgery", ["other-key", "other-server", "other-nonce", "other-max"])
async def test_a_forged_or_replayed_fetch_signature_is_reset(tmp_path: Path, forgery: str) -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        async with mailbox_net(tmp_path) as net:
            assert await deposit(net.client, net.server.get_id(), ALICE_BOX, envelope(1))
            server_id = net.server.get_id().to_bytes()
            stream, nonce = await start_fetch(net, ALICE)
            signer, server, signed_nonce, max_count = ALICE, server_id, nonce, 10
            if forgery == "other-key":
                signer = MALLORY
            elif forgery == "other-server":
                server = net.client.get_id().to_bytes()
            elif forgery == "other-nonce":  # a signature captured on an earlier stream
                signed_nonce = os.urandom(32)
            else:
                max_count = 11
            signature = signer.sign(fetch_signing_message(server, signed_nonce, max_count))
            await stream.send_all(frame(FetchProof(signature).encode()))
            await assert_reset(stream)
            await wait_until(lambda: net.service.rejected == 1)
            assert net.service.handed_over == 0
            assert net.store.counts(ALICE_BOX) == (1, 1024)


async def test_a_bad_ack_signature_deletes_nothing(tmp_path: Path) -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        async with mailbox_net(tmp_path) as net:
            assert await deposit(net.client, net.server.get_id(), ALICE_BOX, envelope(1))
            server_id = net.server.get_id().to_bytes()
            stream, nonce = await start_fetch(net, ALICE)
            signature = ALICE.sign(fetch_signing_message(server_id, nonce, 10))
            await stream.send_all(frame(FetchProof(signature).encode()))
            listed = FetchList.decode_untrusted(await receive_frame(stream, 1 << 20))
            ids = tuple(i for i, _ in listed.entries)
            assert len(ids) == 1
            bad = MALLORY.sign(ack_signing_message(server_id, nonce, ids))
            await stream.send_all(frame(FetchAck(ids, bad).encode()))
            await assert_reset(stream)
            await wait_until(lambda: net.service.rejected == 1)
            assert net.store.counts(ALICE_BOX) == (1, 1024)
            assert net.service.deleted == 0

            # an ack signed for another stream's nonce deletes nothing either
            stream, nonce2 = await start_fetch(net, ALICE)
            signature = ALICE.sign(fetch_signing_message(server_id, nonce2, 10))
            await stream.send_all(frame(FetchProof(signature).encode()))
            await receive_frame(stream, 1 << 20)
            replayed = ALICE.sign(ack_signing_message(server_id, nonce, ids))
            await stream.send_all(frame(FetchAck(ids, replayed).encode()))
            await assert_reset(stream)
            await wait_until(lambda: net.service.rejected == 2)
            assert net.store.counts(ALICE_BOX) == (1, 1024)

            # a valid ack naming an id of another mailbox deletes nothing there
            other = net.store.put(b"\x01" * 32, envelope(9), NOW)
            assert other is not None
            stream, nonce3 = await start_fetch(net, ALICE)
            signature = ALICE.sign(fetch_signing_message(server_id, nonce3, 10))
            await stream.send_all(frame(FetchProof(signature).encode()))
            await receive_frame(stream, 1 << 20)
            both = (*ids, other)
            good = ALICE.sign(ack_signing_message(server_id, nonce3, both))
            await stream.send_all(frame(FetchAck(both, good).encode()))
            await stream.send_eof()
            result = AckResult.decode_untrusted(await receive_frame(stream, 16))
            assert result.deleted == 1
            assert net.store.counts(ALICE_BOX) == (0, 0)
            assert net.store.counts(b"\x01" * 32) == (1, 1024)


async def test_an_unacked_fetch_leaves_envelopes_for_the_next(tmp_path: Path) -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        async with mailbox_net(tmp_path) as net:
            for i in range(3):
                assert await deposit(net.client, net.server.get_id(), ALICE_BOX, envelope(i))
            lazy = Collector(ack=False)
            assert await fetch(net.client, net.server.get_id(), ALICE, lazy) == 0
            assert len(lazy.batches) == 1  # it stops instead of looping on the same batch
            assert net.store.counts(ALICE_BOX)[0] == 3

            async def ack_first(batch: list[tuple[bytes, bytes]]) -> Sequence[bytes]:
                return [batch[0][0]]

            assert await fetch(net.client, net.server.get_id(), ALICE, ack_first) == 1
            got = Collector()
            assert await fetch(net.client, net.server.get_id(), ALICE, got) == 2
            assert got.envelopes == [envelope(1), envelope(2)]


async def test_acking_an_id_not_handed_over_is_a_local_error(tmp_path: Path) -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        async with mailbox_net(tmp_path) as net:
            assert await deposit(net.client, net.server.get_id(), ALICE_BOX, envelope(1))

            async def bogus(batch: list[tuple[bytes, bytes]]) -> Sequence[bytes]:
                return [b"\x00" * 16]

            with pytest.raises(LocalProtocolError):
                await fetch(net.client, net.server.get_id(), ALICE, bogus)
            assert net.store.counts(ALICE_BOX) == (1, 1024)


# -- quotas and TTL over the wire ----------------------------------------------------


async def test_quota_and_ttl_are_enforced_over_the_wire(tmp_path: Path) -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        async with mailbox_net(
            tmp_path, ttl_ms=60_000, max_envelopes_per_mailbox=2, max_bytes_per_mailbox=8192
        ) as net:
            peer = net.server.get_id()
            assert await deposit(net.client, peer, ALICE_BOX, envelope(1))
            assert await deposit(net.client, peer, ALICE_BOX, envelope(2))
            assert not await deposit(net.client, peer, ALICE_BOX, envelope(3))  # count
            other = mailbox_id_for(MALLORY.public.signing_key)
            assert not await deposit(net.client, peer, other, envelope(4, 16384))  # bytes
            assert await deposit(net.client, peer, other, envelope(4, 4096))
            assert (net.service.stored, net.service.refused) == (3, 2)

            net.clock.now += 60_000  # Alice's two expire
            got = Collector()
            assert await fetch(net.client, peer, ALICE, got) == 0
            assert got.batches == []
            assert await deposit(net.client, peer, ALICE_BOX, envelope(5))
            assert await fetch(net.client, peer, ALICE, got) == 1
            assert got.envelopes == [envelope(5)]


async def test_an_envelope_of_no_bucket_size_is_not_sent() -> None:
    unused_host = cast(IHost, object())  # refused before any network use
    with pytest.raises(LocalProtocolError):
        await deposit(unused_host, "/ip4/127.0.0.1/tcp/1", ALICE_BOX, b"x" * 1000)


# -- bad input -----------------------------------------------------------------------


async def test_garbage_and_oversized_frames_reset_and_the_service_keeps_serving(
    tmp_path: Path,
) -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        async with mailbox_net(tmp_path) as net:
            good = frame(b"CMD1" + ALICE_BOX + (1024).to_bytes(4, "big") + envelope(1))
            garbage = [
                frame(b"nonsense"),
                good[:-1],  # truncated, then EOF
                frame(b"CMD1" + ALICE_BOX + (1000).to_bytes(4, "big") + b"x" * 1000),  # no bucket
                frame(good[4:] + b"!"),  # trailing byte
                frame(b"CMF1" + ALICE.public.signing_key + b"\x00\x00"),  # max 0
                frame(b"CMF1" + ALICE.public.signing_key + b"\x01\x01"),  # max 257
                b"\xff\xff\xff\xff",  # oversized length, refused unread
                b"\x00\x00",  # truncated length prefix
            ]
            for data in garbage:
                stream = await open_stream(net)
                await stream.send_all(data)
                await stream.send_eof()
                await assert_reset(stream)
            await wait_until(lambda: net.service.rejected == len(garbage))
            assert net.store.counts(ALICE_BOX) == (0, 0)

            # garbage instead of the proof, and instead of the ack
            stream, _ = await start_fetch(net, ALICE)
            await stream.send_all(frame(b"CMS1" + b"\x00" * 63))
            await assert_reset(stream)
            await wait_until(lambda: net.service.rejected == len(garbage) + 1)

            assert await deposit(net.client, net.server.get_id(), ALICE_BOX, envelope(1))
            got = Collector()
            assert await fetch(net.client, net.server.get_id(), ALICE, got) == 1


async def test_a_late_proof_is_reset(tmp_path: Path) -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        async with mailbox_net(tmp_path) as net:
            stream, _ = await start_fetch(net, ALICE)
            with trio.fail_after(5):
                await assert_reset(stream)  # the service waits 2 s
            assert net.service.rejected == 1


async def test_an_unreachable_mailbox_peer_is_a_transport_error(tmp_path: Path) -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        async with hosts(2) as (client, server):  # no service on the server
            with pytest.raises(TransportError):
                await deposit(client, address(server), ALICE_BOX, envelope(1), timeout_s=5)
            with pytest.raises(TransportError):
                await fetch(client, address(server), ALICE, Collector(), timeout_s=5)


# -- many envelopes ------------------------------------------------------------------


async def test_a_thousand_envelopes_are_fetched_in_batches(tmp_path: Path) -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        async with mailbox_net(tmp_path) as net:
            sent = [envelope(i) for i in range(1000)]
            for e in sent:
                assert net.store.put(ALICE_BOX, e, NOW) is not None
            for i in range(5):  # and a few over the wire
                assert await deposit(net.client, net.server.get_id(), ALICE_BOX, envelope(5000 + i))
            got = Collector()
            assert await fetch(net.client, net.server.get_id(), ALICE, got, max=100) == 1005
            assert got.envelopes == sent + [envelope(5000 + i) for i in range(5)]
            assert [len(b) for b in got.batches] == [100] * 10 + [5]
            assert net.store.counts(ALICE_BOX) == (0, 0)


async def test_big_envelopes_are_split_by_batch_bytes(tmp_path: Path) -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        async with mailbox_net(tmp_path) as net:
            for i in range(20):
                assert net.store.put(ALICE_BOX, envelope(i, 65536), NOW) is not None
            got = Collector()
            assert await fetch(net.client, net.server.get_id(), ALICE, got) == 20
            assert [len(b) for b in got.batches] == [15, 5]  # 1 MiB of entries per list


# -- placement -----------------------------------------------------------------------


async def test_closest_mailbox_peers_are_dht_servers_sorted_by_distance() -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        async with hosts(6) as hs, AsyncExitStack() as stack:
            servers, plain = hs[:5], hs[5]
            nodes = [
                await stack.enter_async_context(
                    ChhayaDht(h, bootstrap=[address(servers[0])] if i else [])
                )
                for i, h in enumerate(servers)
            ]
            for a, b in itertools.permutations(nodes, 2):
                await a.kad.routing_table.add_peer(b.kad.host.get_id())
            await wait_until(lambda: len(nodes[1].routing_peers) == 4)
            # a connected peer that is no DHT server is never a mailbox peer
            await plain.connect(_info(servers[1]))
            store = servers[1].get_peerstore()

            def identified() -> bool:
                with suppress(Exception):
                    return bool(store.get_protocols(plain.get_id()))
                return False

            await wait_until(identified)
            assert not _may_serve_mailboxes(nodes[1], plain.get_id())

            key = ALICE.public.signing_key
            me = servers[1].get_id()
            others = [h.get_id() for h in servers if h.get_id() != me]
            by_distance = sort_peer_ids_by_distance(mailbox_id_for(key), others)
            assert await closest_mailbox_peers(nodes[1], key, k=3, timeout_s=5) == by_distance[:3]
            assert await closest_mailbox_peers(nodes[1], key, k=10, timeout_s=5) == by_distance
            assert await closest_mailbox_peers(nodes[1], key, k=0) == []
