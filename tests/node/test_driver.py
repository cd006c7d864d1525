"""The trio channel driver over real TCP sockets on 127.0.0.1."""

from __future__ import annotations

import os

import pytest
import trio

from chhaya import ChhayaError, TransportError, VerificationError
from chhaya.channel import AllowlistResolver, ChannelConfig, SynReplayCache
from chhaya.identity import PrivateIdentity
from node.drivers import SecureChannel, accept_channel, dial_channel

ALICE = PrivateIdentity.generate(os.urandom)
BOB = PrivateIdentity.generate(os.urandom)


async def _tcp_pair() -> tuple[trio.SocketStream, trio.SocketStream]:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    client = await trio.open_tcp_stream("127.0.0.1", port)
    server = await listeners[0].accept()
    await listeners[0].aclose()
    return client, server


async def _establish(config: ChannelConfig) -> tuple[SecureChannel, SecureChannel]:
    client, server = await _tcp_pair()
    resolver = AllowlistResolver({ALICE.public.signing_key: "alice"})
    cache = SynReplayCache(config.replay_window_ms)
    result: dict[str, SecureChannel] = {}

    async def accept() -> None:
        result["b"] = await accept_channel(server, BOB, resolver, cache, config)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(accept)
        result["a"] = await dial_channel(client, ALICE, BOB.public.signing_key, config)
    return result["a"], result["b"]


async def test_handshake_and_messages_both_ways() -> None:
    a, b = await _establish(ChannelConfig())
    assert b.peer_info == "alice"
    assert a.peer_identity == BOB.public.signing_key
    for size in (0, 1, 1000, 65536):
        msg = os.urandom(size)
        await a.send(msg)
        assert await b.receive() == msg
        await b.send(msg)
        assert await a.receive() == msg
    await a.aclose()
    assert await b.receive() is None
    await b.aclose()


async def test_many_pipelined_messages_with_rekeying() -> None:
    a, b = await _establish(ChannelConfig(rekey_interval=7))
    msgs = [os.urandom(i % 300) for i in range(200)]

    async def sender() -> None:
        for m in msgs:
            await a.send(m)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(sender)
        for m in msgs:
            assert await b.receive() == m
    await a.aclose()
    await b.aclose()


async def test_silent_peer_times_out() -> None:
    client, server = await _tcp_pair()
    config = ChannelConfig(handshake_timeout_ms=300)
    with trio.fail_after(10):
        with pytest.raises(VerificationError) as info:
            await dial_channel(client, ALICE, BOB.public.signing_key, config)
    assert info.value.check == "handshake-timeout"
    await server.aclose()


async def test_refused_dialer_sees_only_a_closed_stream() -> None:
    client, server = await _tcp_pair()
    config = ChannelConfig()
    resolver = AllowlistResolver({})  # nobody allowed
    cache = SynReplayCache(config.replay_window_ms)
    errors: list[ChhayaError] = []

    async def accept() -> None:
        try:
            await accept_channel(server, BOB, resolver, cache, config)
        except ChhayaError as exc:
            errors.append(exc)

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(accept)
            with pytest.raises(TransportError, match="closed the connection"):
                await dial_channel(client, ALICE, BOB.public.signing_key, config)
    assert isinstance(errors[0], VerificationError)
    assert errors[0].check == "identity-not-allowed"


async def test_tampered_record_closes_the_channel() -> None:
    a, b = await _establish(ChannelConfig())
    # Corrupt the next record in flight by writing a forged frame directly.
    raw = a._stream  # the test plays a man in the middle
    await raw.send_all(b"\x00\x00\x00\x15\x10" + bytes(20))
    with pytest.raises(ChhayaError):
        await b.receive()
    await a.aclose()
