"""A libp2p stream seen as a :class:`trio.abc.HalfCloseableStream`.

The channel driver (``node.drivers``) runs over any trio stream; this adapter
lets it run unchanged over a py-libp2p ``INetStream`` (a Yamux stream inside a
Noise connection).

Error mapping, as trio streams expect:

- the peer's end of stream (``StreamEOF``) makes ``receive_some`` return ``b""``;
- a reset, a closed or failed stream or connection raises
  :class:`trio.BrokenResourceError`;
- using the adapter after :meth:`aclose` raises :class:`trio.ClosedResourceError`,
  including in a task that was blocked in it when another task closed it.

Four properties of py-libp2p 0.8.1 shape the code:

- A peer's reset surfaces from ``read()`` as an end of stream; the adapter
  tells the two apart by the Yamux stream's ``reset_received`` flag.
- Cancelling a write part-way can desynchronise the Noise nonces of the whole
  connection (the frame is encrypted before the first checkpoint of the
  socket write), killing every stream to that peer. Writes are therefore
  shielded from cancellation and bounded by ``send_timeout_s`` instead.
- Yamux ``close()`` only half-closes (sends FIN); the stream is freed once the
  peer closes its side too. :meth:`aclose_lingering` waits a bounded time for
  that and resets otherwise, so a peer that never closes cannot pin streams.
- A reset discards data the peer has not read yet, so a graceful close sends
  FIN, never RST.

On QUIC (``enable_quic`` hosts) the stream is py-libp2p's own QUIC stream,
with three more differences: ``close()`` closes both directions (trap 8), so
:meth:`send_eof` uses ``close_write()``; a read after both sides have sent
FIN fails as "closed" (StreamReset) instead of returning EOF, so a QUIC stream
that is not in its reset state counts as ended cleanly; and :meth:`aclose`
already frees a QUIC stream locally, so lingering cannot wait for the peer's
FIN and ends without a reset.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable

import trio
from libp2p.abc import INetStream
from libp2p.exceptions import BaseLibp2pError
from libp2p.peer.id import ID

__all__ = ["DEFAULT_RECEIVE_SIZE", "Libp2pStream"]

#: ``receive_some()`` without a size reads at most this much.
DEFAULT_RECEIVE_SIZE = 65536
#: Default bound on one write (Yamux itself gives up after 5 s without window).
SEND_TIMEOUT_S = 10.0
#: Bound on sending FIN or RST when closing.
CLOSE_TIMEOUT_S = 2.0
#: While lingering, discard at most this much from the peer before resetting.
LINGER_MAX_BYTES = 1 << 20

# Everything py-libp2p raises for a broken stream or connection derives from
# BaseLibp2pError (StreamError, MuxedStreamError, IOException, ...).
_LIBP2P_ERRORS = (BaseLibp2pError, OSError, trio.BrokenResourceError, trio.ClosedResourceError)


class Libp2pStream(trio.abc.HalfCloseableStream):
    """Wraps an open ``INetStream``; the adapter owns it from then on."""

    def __init__(self, stream: INetStream, *, send_timeout_s: float = SEND_TIMEOUT_S) -> None:
        self._stream = stream
        self._send_timeout_s = send_timeout_s
        self._closed = False  # aclose() was called: our side is done
        self._eof_sent = False
        self._peer_eof = False  # the peer half-closed (we read its FIN)
        self._broken = False  # reset or failed: nothing more will pass
        self._reset_done = False
        self._sending = False
        self._receiving = False
        self._pending: set[trio.CancelScope] = set()

    # ------------------------------------------------------------ inspection

    @property
    def raw(self) -> INetStream:
        """The wrapped libp2p stream."""
        return self._stream

    @property
    def remote_peer_id(self) -> ID:
        """The Noise-authenticated peer ID at the other end of the connection."""
        return self._stream.muxed_conn.peer_id

    @property
    def peer_closed(self) -> bool:
        """True once the peer has closed or reset its side."""
        return self._peer_eof or self._broken

    # ------------------------------------------------------------ trio.abc.Stream

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if self._sending:
            raise trio.BusyResourceError("another task is already sending on this stream")
        self._sending = True
        try:
            self._check_can_send()
            payload = bytes(data)
            if not payload:
                await trio.lowlevel.checkpoint()
                return
            await self._shielded_write(payload)
        finally:
            self._sending = False

    async def wait_send_all_might_not_block(self) -> None:
        if self._sending:
            raise trio.BusyResourceError("another task is already sending on this stream")
        self._check_can_send()
        await trio.lowlevel.checkpoint()

    async def send_eof(self) -> None:
        if self._sending:
            raise trio.BusyResourceError("another task is already sending on this stream")
        if self._closed:
            raise trio.ClosedResourceError("stream was closed")
        if self._eof_sent or self._broken:
            await trio.lowlevel.checkpoint()
            return
        self._eof_sent = True
        with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_TIMEOUT_S) as scope:
            try:
                await self._close_write()
            except _LIBP2P_ERRORS:
                self._broken = True
        if scope.cancelled_caught:
            self._broken = True
        await trio.lowlevel.checkpoint_if_cancelled()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if max_bytes is None:
            max_bytes = DEFAULT_RECEIVE_SIZE
        if max_bytes < 1:
            raise ValueError("max_bytes must be >= 1")
        if self._receiving:
            raise trio.BusyResourceError("another task is already receiving on this stream")
        self._receiving = True
        try:
            if self._closed:
                raise trio.ClosedResourceError("stream was closed")
            if self._peer_eof:
                await trio.lowlevel.checkpoint()
                return b""
            if self._broken:
                raise trio.BrokenResourceError("libp2p stream was reset")
            data = b""
            with trio.CancelScope() as scope:
                self._pending.add(scope)
                try:
                    data = await self._stream.read(max_bytes)
                except EOFError:  # StreamEOF and MuxedStreamEOF both derive from it
                    pass
                except _LIBP2P_ERRORS as exc:
                    if not self._quic_ended_cleanly():
                        self._broken = True
                        raise trio.BrokenResourceError(f"libp2p stream failed: {exc!r}") from exc
                finally:
                    self._pending.discard(scope)
            if scope.cancelled_caught:  # only aclose() cancels this scope
                raise trio.ClosedResourceError("stream was closed while receiving")
            if not data:
                if self._peer_reset():
                    self._broken = True
                    raise trio.BrokenResourceError("libp2p stream was reset by the peer")
                self._peer_eof = True
            return data
        finally:
            self._receiving = False

    async def aclose(self) -> None:
        """Close gracefully: FIN, so data already written still arrives.

        Runs to completion (bounded) even when cancelled, as trio requires.
        The stream is freed once the peer closes its side as well; see
        :meth:`aclose_lingering` to bound that wait.
        """
        if self._closed:
            await trio.lowlevel.checkpoint()
            return
        self._closed = True
        for scope in list(self._pending):
            scope.cancel()
        with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_TIMEOUT_S) as timer:
            if self._broken:
                await self._reset_now()
            else:
                try:
                    await self._stream.close()  # FIN, and release swarm bookkeeping
                except _LIBP2P_ERRORS:
                    self._broken = True
                    await self._reset_now()
        if timer.cancelled_caught:
            self._broken = True
            await self.reset()
        await trio.lowlevel.checkpoint_if_cancelled()

    # ------------------------------------------------------------ beyond trio

    async def reset(self) -> None:
        """Abort both directions at once (Yamux RST). Unread data is lost.

        A no-op once both sides have closed cleanly.
        """
        if self._closed and self._peer_eof and not self._broken:
            await trio.lowlevel.checkpoint()
            return
        self._closed = True
        self._broken = True
        for scope in list(self._pending):
            scope.cancel()
        with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_TIMEOUT_S):
            await self._reset_now()
        await trio.lowlevel.checkpoint_if_cancelled()

    async def aclose_lingering(
        self, linger_s: float, *, max_discard: int = LINGER_MAX_BYTES
    ) -> bool:
        """Close, then wait up to ``linger_s`` for the peer to close its side.

        Whatever the peer still sends is discarded (at most ``max_discard``
        bytes). If the peer has not closed in time, or sends too much, the
        stream is reset. Returns True if the peer closed cleanly.
        """
        await self.aclose()
        if self._peer_eof and not self._broken:
            return True
        clean = False
        try:
            if not self._broken:
                clean = await self._drain_until_eof(linger_s, max_discard)
        finally:
            if not clean:
                await self.reset()
        return clean

    async def _drain_until_eof(self, linger_s: float, max_discard: int) -> bool:
        discarded = 0
        with trio.move_on_after(linger_s):
            while discarded <= max_discard:
                try:
                    data = await self._stream.read(DEFAULT_RECEIVE_SIZE)
                except EOFError:
                    data = b""
                except _LIBP2P_ERRORS:
                    if self._quic_ended_cleanly():
                        # close() already closed a QUIC stream's read side and
                        # freed it; resetting now could discard what we sent.
                        self._peer_eof = True
                        return True
                    self._broken = True
                    return False
                if not data:
                    if self._peer_reset():
                        self._broken = True
                        return False
                    self._peer_eof = True
                    return True
                discarded += len(data)
        return False

    # ------------------------------------------------------------ internals

    def _check_can_send(self) -> None:
        if self._closed:
            raise trio.ClosedResourceError("stream was closed")
        if self._eof_sent:
            raise trio.ClosedResourceError("send side was closed with send_eof()")
        if self._broken:
            raise trio.BrokenResourceError("libp2p stream was reset")

    async def _shielded_write(self, payload: bytes) -> None:
        # Shielded: a cancelled write could corrupt the connection's Noise
        # state. Bounded instead, so a stuck peer cannot hold us forever.
        with trio.CancelScope(shield=True):
            with trio.move_on_after(self._send_timeout_s) as timer:
                try:
                    await self._stream.write(payload)
                except _LIBP2P_ERRORS as exc:
                    self._broken = True
                    raise trio.BrokenResourceError(f"libp2p stream failed: {exc!r}") from exc
            if timer.cancelled_caught:
                self._broken = True
                await self._reset_now_bounded()
                raise trio.BrokenResourceError(
                    f"libp2p write did not complete within {self._send_timeout_s:g} s"
                )
        if self._closed:
            raise trio.ClosedResourceError("stream was closed while sending")
        await trio.lowlevel.checkpoint_if_cancelled()

    def _peer_reset(self) -> bool:
        # py-libp2p 0.8.1 drops a Yamux stream's bookkeeping as soon as a RST
        # arrives, so the reader sees MuxedStreamEOF("Stream closed"), exactly
        # like a FIN. The Yamux stream object still records the reset.
        muxed = getattr(self._stream, "muxed_stream", None)
        return getattr(muxed, "reset_received", False) is True

    def _quic_ended_cleanly(self) -> bool:
        # py-libp2p 0.8.1's QUIC stream reports a read on a stream whose both
        # directions have ended cleanly (both FINs, or our close()) as "closed",
        # which NetStream turns into StreamReset. Only a real RESET_STREAM sets
        # its reset state. Yamux streams have no is_reset(): never true there.
        muxed = getattr(self._stream, "muxed_stream", None)
        is_reset = getattr(muxed, "is_reset", None)
        if not callable(is_reset) or getattr(muxed, "_read_closed", False) is not True:
            return False
        return is_reset() is False

    async def _close_write(self) -> None:
        # NetStream.close_write() half-closes on every muxer (on QUIC, close()
        # would close both directions: trap 8); INetStream does not declare it.
        close_write: Callable[[], Awaitable[None]] | None = getattr(
            self._stream, "close_write", None
        )
        if close_write is None:
            await self._stream.close()
        else:
            await close_write()

    async def _reset_now_bounded(self) -> None:
        with trio.move_on_after(CLOSE_TIMEOUT_S):
            await self._reset_now()

    async def _reset_now(self) -> None:
        if self._reset_done:
            return
        self._reset_done = True
        with contextlib.suppress(*_LIBP2P_ERRORS):  # already gone: nothing to release
            await self._stream.reset()
