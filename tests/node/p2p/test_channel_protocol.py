"""``/chhaya/channel/1.0.0``: the Chhaya channel over real libp2p hosts."""

from __future__ import annotations

import functools
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
from libp2p.abc import IHost
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr
from multiaddr import Multiaddr

from chhaya import TransportError, VerificationError
from chhaya.channel import AllowlistResolver, ChannelConfig
from chhaya.identity import PrivateIdentity
from node.drivers import SecureChannel
from node.p2p import (
    CHANNEL_PROTOCOL,
    ChannelHandler,
    ChannelService,
    Libp2pStream,
    PeerAllowed,
    allow_any_peer,
    open_channel,
)

from .conftest import TEST_TIMEOUT_S, address, hosts, wait_until

ALICE = PrivateIdentity.generate(os.urandom)  # dials
BOB = PrivateIdentity.generate(os.urandom)  # serves
MALLORY = PrivateIdentity.generate(os.urandom)  # not on BOB's allowlist
BOB_KEY = BOB.public.signing_key


async def echo(channel: SecureChannel, peer_id: ID) -> None:
    while (message := await channel.receive()) is not None:
        await channel.send(message)


@asynccontextmanager
async def served(
    *,
    peer_allowed: PeerAllowed = allow_any_peer,
    config: ChannelConfig | None = None,
    handler: ChannelHandler = echo,
) -> AsyncIterator[tuple[IHost, IHost, ChannelService]]:
    """(server host, client host, service): BOB serves echo, allowing only ALICE."""
    async with hosts(2) as (server, client):
        service = ChannelService(
            server,
            BOB,
            AllowlistResolver({ALICE.public.signing_key: "alice"}),
            config,
            handler=handler,
            peer_allowed=peer_allowed,
            linger_s=1.0,
        )
        with service:
            yield server, client, service


async def test_channel_echoes_messages_both_ways() -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        seen: list[tuple[object, ID]] = []

        async def handler(channel: SecureChannel, peer_id: ID) -> None:
            seen.append((channel.peer_info, peer_id))
            await channel.send(b"hello from bob")  # the listener may speak first
            await echo(channel, peer_id)

        async with served(handler=handler) as (server, client, service):
            channel = await open_channel(client, address(server), ALICE, BOB_KEY)
            assert channel.peer_identity == BOB_KEY
            assert await channel.receive() == b"hello from bob"
            for size in (0, 1, 1000, 65535, 65536):
                message = os.urandom(size)
                await channel.send(message)
                assert await channel.receive() == message
            assert seen == [("alice", client.get_id())]
            await channel.aclose()
            await wait_until(lambda: service.active == 0)
            assert (service.accepted, service.rejected) == (1, 0)


async def test_pipelined_messages_and_several_channels_on_one_connection() -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        async with served() as (server, client, service):
            channels = [
                await open_channel(client, address(server), ALICE, BOB_KEY) for _ in range(3)
            ]
            assert len(client.get_network().connections[server.get_id()]) == 1
            messages = [os.urandom(i * 97 % 5000) for i in range(60)]

            async def pump(channel: SecureChannel) -> None:
                async with trio.open_nursery() as nursery:

                    async def send_all() -> None:
                        for m in messages:
                            await channel.send(m)

                    nursery.start_soon(send_all)
                    for m in messages:
                        assert await channel.receive() == m
                await channel.aclose()

            async with trio.open_nursery() as nursery:
                for channel in channels:
                    nursery.start_soon(pump, channel)
            await wait_until(lambda: service.active == 0)
            assert service.accepted == 3


async def test_dial_by_peer_info_and_by_known_peer_id() -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        async with served() as (server, client, _service):
            info = info_from_p2p_addr(Multiaddr(address(server)))
            async with await open_channel(client, info, ALICE, BOB_KEY) as channel:
                await channel.send(b"by info")
                assert await channel.receive() == b"by info"
            async with await open_channel(client, server.get_id(), ALICE, BOB_KEY) as channel:
                await channel.send(b"by id")
                assert await channel.receive() == b"by id"


async def test_identity_not_allowed_is_refused_with_only_a_closed_stream() -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        async with served() as (server, client, service):
            with pytest.raises(TransportError, match="closed the connection"):
                await open_channel(client, address(server), MALLORY, BOB_KEY)
            await wait_until(lambda: service.active == 0)
            assert (service.accepted, service.rejected) == (0, 1)
            # The connection survives and the service keeps serving.
            async with await open_channel(client, address(server), ALICE, BOB_KEY) as channel:
                await channel.send(b"still here")
                assert await channel.receive() == b"still here"


async def test_peer_allowed_false_refuses_and_sees_the_libp2p_peer_id() -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        calls: list[tuple[ID, bytes]] = []

        def nobody(peer_id: ID, identity_key: bytes) -> bool:
            calls.append((peer_id, identity_key))
            return False

        async with served(peer_allowed=nobody) as (server, client, service):
            with pytest.raises(TransportError):
                await open_channel(client, address(server), ALICE, BOB_KEY)
            assert calls == [(client.get_id(), ALICE.public.signing_key)]
            await wait_until(lambda: service.rejected == 1)
            assert service.accepted == 0


async def test_dialer_checks_the_peer_id_binding_before_dialing() -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        async with served() as (server, client, service):
            with pytest.raises(VerificationError) as info:
                await open_channel(
                    client, address(server), ALICE, BOB_KEY, peer_allowed=lambda p, k: False
                )
            assert info.value.check == "peer-not-allowed"
            assert client.get_connected_peers() == []
            assert service.rejected == 0


async def test_dialing_the_wrong_identity_is_refused() -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        async with served() as (server, client, service):
            # The Syn names the listener identity it expects; BOB refuses it.
            with pytest.raises(TransportError):
                await open_channel(client, address(server), ALICE, MALLORY.public.signing_key)
            await wait_until(lambda: service.active == 0)
            assert service.rejected == 1


async def _raw_stream(client: IHost, server: IHost) -> Libp2pStream:
    await client.connect(info_from_p2p_addr(Multiaddr(address(server))))
    return Libp2pStream(await client.new_stream(server.get_id(), [CHANNEL_PROTOCOL]))


async def _read_to_end(stream: Libp2pStream) -> bytes:
    data = b""
    try:
        while chunk := await stream.receive_some():
            data += chunk
    except trio.BrokenResourceError:
        pass
    return data


def _rejected(service: ChannelService, n: int) -> bool:
    return service.rejected == n


GARBAGE = [
    os.urandom(2000),
    b"\xff\xff\xff\xff" + os.urandom(100),  # an absurd frame length
    b"\x00\x00\x00\x05\x01abcd",  # a short, well-framed but malformed Syn
    b"\x00\x00",  # a truncated header, then EOF
]


async def test_garbage_is_dropped_and_the_service_keeps_serving() -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        async with served() as (server, client, service):
            for n, garbage in enumerate(GARBAGE, start=1):
                stream = await _raw_stream(client, server)
                await stream.send_all(garbage)
                await stream.send_eof()
                assert await _read_to_end(stream) == b""  # nothing but a closed stream
                await stream.aclose()
                await wait_until(functools.partial(_rejected, service, n))
            async with await open_channel(client, address(server), ALICE, BOB_KEY) as channel:
                await channel.send(b"after the garbage")
                assert await channel.receive() == b"after the garbage"
            assert service.accepted == 1


async def test_garbage_flood_without_eof_is_reset() -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        async with served() as (server, client, service):
            stream = await _raw_stream(client, server)
            sent = 0

            async def flood() -> None:
                nonlocal sent
                while sent < 8 << 20:  # never closing our side
                    await stream.send_all(os.urandom(16384))
                    sent += 16384

            with pytest.raises(trio.BrokenResourceError):
                await flood()
            assert sent < 4 << 20  # BOB discards at most 1 MiB, then resets
            await wait_until(lambda: service.active == 0)
            assert service.rejected == 1


async def test_silent_dialer_times_out() -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        config = ChannelConfig(handshake_timeout_ms=300)
        async with served(config=config) as (server, client, service):
            stream = await _raw_stream(client, server)
            assert await _read_to_end(stream) == b""
            await wait_until(lambda: service.rejected == 1)
            await stream.aclose()


async def test_stop_ends_open_channels_and_refuses_new_ones() -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        async with served() as (server, client, service):
            channel = await open_channel(client, address(server), ALICE, BOB_KEY)
            await channel.send(b"ping")
            assert await channel.receive() == b"ping"
            service.stop()
            assert await channel.receive() is None  # BOB closed with an authenticated close
            await channel.aclose()
            with pytest.raises(TransportError):
                await open_channel(client, address(server), ALICE, BOB_KEY)
            service.start()  # (the context manager stops it again)


async def test_invalid_peer_addresses() -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        async with hosts(1) as (client,):
            for bad in ("/ip4/127.0.0.1/tcp/1", "nonsense"):
                with pytest.raises(TransportError, match="invalid peer address"):
                    await open_channel(client, bad, ALICE, BOB_KEY)
            with pytest.raises(TransportError, match="itself"):
                await open_channel(client, address(client), ALICE, BOB_KEY)


async def test_a_failing_handler_does_not_take_the_connection_down() -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        calls = 0

        async def flaky(channel: SecureChannel, peer_id: ID) -> None:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise RuntimeError("application bug")
            await echo(channel, peer_id)

        async with served(handler=flaky) as (server, client, service):
            first = await open_channel(client, address(server), ALICE, BOB_KEY)
            assert await first.receive() is None  # closed, with an authenticated close
            await first.aclose()
            async with await open_channel(client, address(server), ALICE, BOB_KEY) as second:
                await second.send(b"second")
                assert await second.receive() == b"second"
            assert client.get_connected_peers() == [server.get_id()]
            assert service.accepted == 2


async def test_unreachable_peer_is_a_transport_error() -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        async with hosts(2) as (client, gone):
            dead = address(gone)
        async with hosts(1) as (client,):
            with pytest.raises(TransportError, match="cannot open a channel"):
                await open_channel(client, dead, ALICE, BOB_KEY)
