"""Runs a :class:`chhaya.channel.ChannelConnection` over any trio stream.

The driver owns the stream. Any protocol failure closes the stream without
sending anything, so the peer learns only that the stream ended; the reason
is raised locally for logs and metrics.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

import trio

from chhaya import ChhayaError, TransportError
from chhaya.channel import (
    MAX_FRAME_BODY,
    ChannelConfig,
    ChannelConnection,
    ConnectionClosed,
    DataReceived,
    HandshakeComplete,
    Resolver,
    Role,
    StreamEnded,
    SynReplayCache,
)
from chhaya.crypto import Rng
from chhaya.identity import PrivateIdentity

from ..clock import system_rng, wall_ms

__all__ = ["SecureChannel", "accept_channel", "dial_channel"]

_READ_SIZE = MAX_FRAME_BODY + 4
_TRANSPORT_ERRORS = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)


class SecureChannel:
    """An established channel: ``send`` and ``receive`` whole messages."""

    def __init__(
        self,
        stream: trio.abc.Stream,
        conn: ChannelConnection,
        clock: Callable[[], int] = wall_ms,
    ) -> None:
        self._stream = stream
        self._conn = conn
        self._clock = clock
        self._send_lock = trio.Lock()
        self.handshake: HandshakeComplete | None = None

    @property
    def peer_identity(self) -> bytes:
        assert self.handshake is not None
        return self.handshake.peer_identity

    @property
    def peer_info(self) -> object:
        assert self.handshake is not None
        return self.handshake.peer_info

    async def _flush(self) -> None:
        data = self._conn.data_to_send()
        if data:
            try:
                await self._stream.send_all(data)
            except _TRANSPORT_ERRORS as exc:
                raise TransportError(f"send failed: {exc}") from None

    async def _fill(self) -> None:
        try:
            data = await self._stream.receive_some(_READ_SIZE)
        except _TRANSPORT_ERRORS as exc:
            raise TransportError(f"receive failed: {exc}") from None
        self._conn.receive_data(bytes(data), self._clock())

    async def _abort(self) -> None:
        with trio.CancelScope(shield=True):
            await trio.aclose_forcefully(self._stream)

    async def _handshake_loop(self) -> HandshakeComplete:
        while True:
            event = self._conn.next_event()
            await self._flush()  # a Syn produces no event but does produce a SynAck
            if isinstance(event, HandshakeComplete):
                return event
            if event is None:
                await self._fill()

    async def run_handshake(self) -> HandshakeComplete:
        conn = self._conn
        try:
            conn.start(self._clock())
            await self._flush()
            deadline = conn.get_timer()
            assert deadline is not None
            try:
                with trio.fail_after(max(0.0, (deadline - self._clock()) / 1000)):
                    self.handshake = await self._handshake_loop()
            except trio.TooSlowError:
                conn.handle_timer(max(self._clock(), deadline))  # raises VerificationError
                raise TransportError("handshake timed out") from None
            return self.handshake
        except StreamEnded:
            await self._abort()
            raise TransportError(
                "peer closed the connection during the handshake (identity refused?)"
            ) from None
        except ChhayaError:
            await self._abort()
            raise

    async def send(self, data: bytes) -> None:
        async with self._send_lock:
            try:
                self._conn.send_data(data)
                await self._flush()
            except ChhayaError:
                await self._abort()
                raise

    async def receive(self) -> bytes | None:
        """The next message, or None once the peer has closed cleanly."""
        try:
            while True:
                event = self._conn.next_event()
                if event is None:
                    await self._fill()
                elif isinstance(event, DataReceived):
                    return event.data
                elif isinstance(event, ConnectionClosed):
                    return None
        except ChhayaError:
            await self._abort()
            raise

    async def aclose(self) -> None:
        """Send an authenticated close if possible, then close the stream."""
        async with self._send_lock:
            try:
                self._conn.close()
                with trio.move_on_after(1):
                    await self._flush()
            except ChhayaError:
                pass
            finally:
                await self._abort()

    async def __aenter__(self) -> SecureChannel:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


async def dial_channel(
    stream: trio.abc.Stream,
    identity: PrivateIdentity,
    expected_peer: bytes,
    config: ChannelConfig | None = None,
    *,
    resolver: Resolver | None = None,
    rng: Rng = system_rng,
    clock: Callable[[], int] = wall_ms,
) -> SecureChannel:
    """Run the dialer's handshake over ``stream``; return the open channel."""
    conn = ChannelConnection(
        Role.DIALER,
        identity,
        config or ChannelConfig(),
        rng,
        expected_peer=expected_peer,
        resolver=resolver,
    )
    channel = SecureChannel(stream, conn, clock)
    await channel.run_handshake()
    return channel


async def accept_channel(
    stream: trio.abc.Stream,
    identity: PrivateIdentity,
    resolver: Resolver,
    replay_cache: SynReplayCache,
    config: ChannelConfig | None = None,
    *,
    rng: Rng = system_rng,
    clock: Callable[[], int] = wall_ms,
) -> SecureChannel:
    """Run the listener's handshake; ``replay_cache`` is shared per listener."""
    conn = ChannelConnection(
        Role.LISTENER,
        identity,
        config or ChannelConfig(),
        rng,
        resolver=resolver,
        replay_cache=replay_cache,
    )
    channel = SecureChannel(stream, conn, clock)
    await channel.run_handshake()
    return channel
