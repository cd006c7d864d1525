"""QUIC v1 listen addresses next to TCP: connect, echo, channel, half-close, bad addresses."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import pytest
import trio
from libp2p.abc import IHost, INetStream
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.custom_types import TProtocol
from libp2p.exceptions import BaseLibp2pError
from libp2p.network.config import RetryConfig
from libp2p.network.swarm import Swarm
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.transport.quic.connection import QUICConnection
from libp2p.transport.quic.transport import QUICTransport
from libp2p.transport.tcp.tcp import TCP
from multiaddr import Multiaddr

import node.p2p._host as host_module
from chhaya import TransportError
from chhaya.channel import AllowlistResolver
from chhaya.identity import PrivateIdentity
from node.drivers import SecureChannel
from node.p2p import (
    NOISE_PROTOCOL_ID,
    ChannelService,
    Libp2pStream,
    build_host,
    listen_addrs,
    open_channel,
    running_host,
)

from .conftest import TEST_TIMEOUT_S, wait_until

QUIC_LOOPBACK = "/ip4/127.0.0.1/udp/0/quic-v1"
BOTH = ["/ip4/127.0.0.1/tcp/0", QUIC_LOOPBACK]
RAW = TProtocol("/chhaya-test/raw/1.0.0")

ALICE = PrivateIdentity.generate(os.urandom)
BOB = PrivateIdentity.generate(os.urandom)


@asynccontextmanager
async def quic_hosts(n: int) -> AsyncIterator[list[IHost]]:
    """``n`` running hosts listening on TCP and QUIC on loopback."""
    async with AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(
                running_host(create_new_key_pair(), BOTH, enable_quic=True)
            )
            for _ in range(n)
        ]


def quic_address(host: IHost) -> str:
    (addr,) = [a for a in listen_addrs(host) if "/quic-v1/" in a]
    return addr


def _quic_conn(host: IHost, peer: ID) -> QUICConnection:
    conns = host.get_network().connections.get(peer, [])
    assert len(conns) == 1
    muxed = conns[0].muxed_conn
    assert isinstance(muxed, QUICConnection)
    return muxed


@asynccontextmanager
async def quic_stream_pair() -> AsyncIterator[tuple[Libp2pStream, Libp2pStream]]:
    """(dialer side, listener side) of one libp2p stream over QUIC, both adapted."""
    send, receive = trio.open_memory_channel[INetStream](1)
    done = trio.Event()

    async def handler(stream: INetStream) -> None:
        await send.send(stream)
        await done.wait()  # keep libp2p's handler task alive

    async with quic_hosts(2) as (a, b):
        a.set_stream_handler(RAW, handler)
        await b.connect(info_from_p2p_addr(Multiaddr(quic_address(a))))
        _quic_conn(b, a.get_id())
        dialer = Libp2pStream(await b.new_stream(a.get_id(), [RAW]))
        listener = Libp2pStream(await receive.receive())
        try:
            yield dialer, listener
        finally:
            done.set()
            await dialer.reset()
            await listener.reset()


async def _receive_exactly(stream: Libp2pStream, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = await stream.receive_some(n - len(data))
        assert chunk
        data += chunk
    return data


async def test_hosts_connect_over_quic_and_echo() -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        async with quic_hosts(2) as (a, b):
            addrs = listen_addrs(a)
            assert len(addrs) == 2
            addr = quic_address(a)
            assert addr.startswith("/ip4/127.0.0.1/udp/")
            assert "/udp/0/" not in addr  # the bound port, not the requested one
            assert addr.endswith(f"/quic-v1/p2p/{a.get_id()}")

            async def echo(stream: INetStream) -> None:
                s = Libp2pStream(stream)
                while data := await s.receive_some():
                    await s.send_all(data)
                await s.aclose()

            a.set_stream_handler(RAW, echo)
            await b.connect(info_from_p2p_addr(Multiaddr(addr)))
            # TLS 1.3 inside QUIC authenticated the peer ID on both sides.
            assert _quic_conn(b, a.get_id()).peer_id == a.get_id()
            await wait_until(lambda: a.get_id() in b.get_connected_peers())
            await wait_until(lambda: len(a.get_network().connections.get(b.get_id(), [])) == 1)
            assert _quic_conn(a, b.get_id()).peer_id == b.get_id()

            stream = Libp2pStream(await b.new_stream(a.get_id(), [RAW]))
            for size in (1, 1000, 100_000):
                message = os.urandom(size)
                await stream.send_all(message)
                assert await _receive_exactly(stream, size) == message
            await stream.send_eof()
            assert await stream.receive_some() == b""
            await stream.aclose()


async def test_channel_handshake_and_messages_over_quic() -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        seen: list[tuple[object, ID]] = []

        async def handler(channel: SecureChannel, peer_id: ID) -> None:
            seen.append((channel.peer_info, peer_id))
            await channel.send(b"hello from bob")
            while (message := await channel.receive()) is not None:
                await channel.send(message)

        async with quic_hosts(2) as (server, client):
            service = ChannelService(
                server,
                BOB,
                AllowlistResolver({ALICE.public.signing_key: "alice"}),
                handler=handler,
                linger_s=1.0,
            )
            with service:
                channel = await open_channel(
                    client, quic_address(server), ALICE, BOB.public.signing_key
                )
                _quic_conn(client, server.get_id())  # the channel runs over QUIC
                assert channel.peer_identity == BOB.public.signing_key
                assert await channel.receive() == b"hello from bob"
                for size in (0, 1, 1000, 65535, 65536):
                    message = os.urandom(size)
                    await channel.send(message)
                    assert await channel.receive() == message
                assert seen == [("alice", client.get_id())]
                await channel.aclose()
                await wait_until(lambda: service.active == 0)
                assert (service.accepted, service.rejected) == (1, 0)


async def _drain(stream: Libp2pStream) -> None:
    while await stream.receive_some():
        pass  # pragma: no cover


async def _expect_broken(stream: Libp2pStream) -> None:
    # Data still in flight may arrive first; then the reset surfaces.
    with pytest.raises(trio.BrokenResourceError):
        await _drain(stream)


async def test_quic_peer_reset_is_a_broken_resource() -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        async with quic_stream_pair() as (d, li):
            await d.send_all(b"x")
            assert await li.receive_some() == b"x"
            await d.reset()
            await _expect_broken(li)
            with pytest.raises(trio.ClosedResourceError):
                await d.receive_some()


def test_quic_host_keeps_tcp_noise_only() -> None:
    host = build_host(create_new_key_pair(), BOTH, enable_quic=True)
    swarm = host.get_network()
    assert isinstance(swarm, Swarm)
    assert list(swarm.upgrader.security_multistream.transports) == [NOISE_PROTOCOL_ID]
    transports = swarm.transport_manager.get_transports()
    assert sorted(type(t).__name__ for t in transports) == ["QUICTransport", "TCP"]
    (quic,) = [t for t in transports if isinstance(t, QUICTransport)]
    assert quic.protocols() == ["quic-v1"]  # no draft-29
    # Without enable_quic the host is TCP only, as before.
    plain = build_host(create_new_key_pair())
    plain_swarm = plain.get_network()
    assert isinstance(plain_swarm, Swarm)
    assert [type(t) for t in plain_swarm.transport_manager.get_transports()] == [TCP]


def test_security_check_refuses_unexpected_transports() -> None:
    host = build_host(create_new_key_pair(), BOTH, enable_quic=True)
    swarm = host.get_network()
    assert isinstance(swarm, Swarm)
    with pytest.raises(RuntimeError, match="transports"):
        host_module._check_security(swarm, enable_quic=False)


@pytest.mark.parametrize(
    ("addr", "enable_quic"),
    [
        (QUIC_LOOPBACK, False),  # QUIC is opt-in
        ("/ip4/127.0.0.1/udp/0/quic", True),  # draft-29
        ("/ip4/127.0.0.1/udp/0", True),
        ("/ip4/127.0.0.1/udp/0/quic-v1/webtransport", True),
        ("/dns4/localhost/udp/0/quic-v1", True),
        ("/ip4/127.0.0.1/tcp/0/ws", True),
    ],
)
def test_unsupported_quic_addresses_are_refused(addr: str, enable_quic: bool) -> None:
    with pytest.raises(TransportError):
        build_host(create_new_key_pair(), [addr], enable_quic=enable_quic)


async def test_unbindable_quic_address_is_refused() -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        with pytest.raises(TransportError, match="cannot listen"):
            # Not an address of this machine.
            async with running_host(
                create_new_key_pair(), ["/ip4/192.0.2.1/udp/0/quic-v1"], enable_quic=True
            ):
                pass  # pragma: no cover


async def test_quic_port_in_use_is_refused() -> None:
    with trio.fail_after(TEST_TIMEOUT_S), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        taken = f"/ip4/127.0.0.1/udp/{s.getsockname()[1]}/quic-v1"
        with pytest.raises(TransportError, match="cannot listen"):
            async with running_host(create_new_key_pair(), [*BOTH[:1], taken], enable_quic=True):
                pass  # pragma: no cover


async def test_quic_port_shared_with_another_node_is_refused() -> None:
    # Another node listens there with SO_REUSEPORT; we must not share its port.
    with trio.fail_after(TEST_TIMEOUT_S):
        async with quic_hosts(1) as (a,):
            taken = quic_address(a).split("/p2p/")[0]
            with pytest.raises(TransportError, match="cannot listen"):
                async with running_host(create_new_key_pair(), [taken], enable_quic=True):
                    pass  # pragma: no cover


async def test_quic_listener_failure_is_reported_even_past_the_probe(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # py-libp2p lets a QUIC bind failure escape host.run() in exception groups.
    monkeypatch.setattr(host_module, "_check_port_free", lambda maddr: None)
    with trio.fail_after(TEST_TIMEOUT_S), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        taken = f"/ip4/127.0.0.1/udp/{s.getsockname()[1]}/quic-v1"
        with pytest.raises(TransportError, match="cannot listen"):
            async with running_host(create_new_key_pair(), [*BOTH[:1], taken], enable_quic=True):
                pass  # pragma: no cover


async def test_quic_host_still_dials_tcp_and_tcp_host_cannot_dial_quic() -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        async with (
            quic_hosts(1) as (a,),
            running_host(create_new_key_pair(), BOTH[:1]) as tcp_only,
            running_host(create_new_key_pair(), BOTH[:1]) as other,
        ):
            await a.connect(info_from_p2p_addr(Multiaddr(listen_addrs(tcp_only)[0])))
            (conn,) = a.get_network().connections[tcp_only.get_id()]
            assert conn.muxed_conn.peer_id == tcp_only.get_id()
            assert not isinstance(conn.muxed_conn, QUICConnection)  # Noise + Yamux
            swarm = other.get_network()
            assert isinstance(swarm, Swarm)
            swarm.retry_config = RetryConfig(max_retries=0)
            with pytest.raises(BaseLibp2pError):  # a TCP-only host has no QUIC transport
                await other.connect(info_from_p2p_addr(Multiaddr(quic_address(a))))
            assert other.get_connected_peers() == []


async def test_dialing_quic_with_the_wrong_peer_id_fails() -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        async with quic_hosts(2) as (a, b):
            impostor = ID.from_pubkey(create_new_key_pair().public_key)
            wrong = quic_address(a).replace(str(a.get_id()), str(impostor))
            swarm = b.get_network()
            assert isinstance(swarm, Swarm)
            swarm.retry_config = RetryConfig(max_retries=0)
            with pytest.raises(BaseLibp2pError):  # TLS proves a's peer ID, not the impostor's
                await b.connect(info_from_p2p_addr(Multiaddr(wrong)))
            assert b.get_connected_peers() == []
