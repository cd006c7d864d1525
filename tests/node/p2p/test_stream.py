"""The trio-stream adapter over real libp2p streams between two hosts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
import trio.testing
from libp2p.abc import INetStream
from libp2p.custom_types import TProtocol
from libp2p.peer.peerinfo import info_from_p2p_addr
from multiaddr import Multiaddr

from node.p2p import Libp2pStream

from .conftest import TEST_TIMEOUT_S, address, hosts

RAW = TProtocol("/chhaya-test/raw/1.0.0")


@asynccontextmanager
async def stream_pair() -> AsyncIterator[tuple[Libp2pStream, Libp2pStream]]:
    """(dialer side, listener side) of one libp2p stream, both adapted."""
    send, receive = trio.open_memory_channel[INetStream](1)
    done = trio.Event()

    async def handler(stream: INetStream) -> None:
        await send.send(stream)
        await done.wait()  # keep libp2p's handler task (and its accounting) alive

    async with hosts(2) as (a, b):
        a.set_stream_handler(RAW, handler)
        await b.connect(info_from_p2p_addr(Multiaddr(address(a))))
        dialer = Libp2pStream(await b.new_stream(a.get_id(), [RAW]))
        listener = Libp2pStream(await receive.receive())
        assert dialer.remote_peer_id == a.get_id()
        assert listener.remote_peer_id == b.get_id()
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


async def test_bytes_flow_both_ways_and_respect_max_bytes() -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        async with stream_pair() as (d, li):
            await d.send_all(b"")  # a no-op
            await d.send_all(b"hello")
            assert await li.receive_some(2) == b"he"
            assert await li.receive_some() == b"llo"
            big = bytes(range(256)) * 1024  # 256 KiB: more than one Yamux window
            async with trio.open_nursery() as nursery:
                nursery.start_soon(li.send_all, big)
                assert await _receive_exactly(d, len(big)) == big
            await d.wait_send_all_might_not_block()


async def test_half_close_gives_eof_and_the_other_way_stays_open() -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        async with stream_pair() as (d, li):
            await d.send_all(b"last words")
            await d.send_eof()
            await d.send_eof()  # idempotent
            with pytest.raises(trio.ClosedResourceError):
                await d.send_all(b"more")
            assert await _receive_exactly(li, 10) == b"last words"
            assert await li.receive_some() == b""
            assert await li.receive_some() == b""  # EOF is sticky
            assert li.peer_closed
            await li.send_all(b"reply")
            assert await d.receive_some() == b"reply"


async def test_peer_reset_is_a_broken_resource() -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        async with stream_pair() as (d, li):
            await d.reset()
            with pytest.raises(trio.BrokenResourceError):
                await li.receive_some()
            with pytest.raises(trio.BrokenResourceError):
                await li.send_all(b"x")
            with pytest.raises(trio.ClosedResourceError):
                await d.receive_some()


async def test_aclose_wakes_a_blocked_receiver_and_sends_eof() -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        async with stream_pair() as (d, li):
            errors: list[BaseException] = []

            async def blocked() -> None:
                try:
                    await d.receive_some()
                except trio.ClosedResourceError as exc:
                    errors.append(exc)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(blocked)
                await trio.testing.wait_all_tasks_blocked()
                await d.aclose()
            assert len(errors) == 1
            assert await li.receive_some() == b""  # graceful: FIN, not RST
            await d.aclose()  # idempotent
            with pytest.raises(trio.ClosedResourceError):
                await d.send_all(b"x")


async def test_aclose_completes_even_when_cancelled() -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        async with stream_pair() as (d, li):
            await d.send_all(b"delivered")
            await trio.aclose_forcefully(d)  # what the channel driver does on errors
            assert await _receive_exactly(li, 9) == b"delivered"
            assert await li.receive_some() == b""


async def test_concurrent_receivers_are_refused() -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        async with stream_pair() as (d, _li):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(d.receive_some)
                await trio.testing.wait_all_tasks_blocked()
                with pytest.raises(trio.BusyResourceError):
                    await d.receive_some()
                nursery.cancel_scope.cancel()
            with pytest.raises(ValueError, match="max_bytes"):
                await d.receive_some(0)


async def test_lingering_close_resets_a_peer_that_never_closes() -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        async with stream_pair() as (d, li):
            await li.send_all(b"ignored")
            start = trio.current_time()
            assert not await d.aclose_lingering(0.2)
            assert 0.2 <= trio.current_time() - start < 2
            with pytest.raises(trio.BrokenResourceError):  # FIN, then the reset
                await li.receive_some()


async def test_lingering_close_is_quick_when_the_peer_closes() -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        async with stream_pair() as (d, li):

            async def peer() -> None:
                assert await li.receive_some() == b""
                await li.aclose()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(peer)
                start = trio.current_time()
                assert await d.aclose_lingering(5)
                assert trio.current_time() - start < 1
