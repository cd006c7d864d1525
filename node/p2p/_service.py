"""What every protocol served on libp2p streams shares.

A service registers one stream handler, serves at most ``max_streams``
streams at once (more are reset), can be stopped (which cancels what it is
serving), and never lets an exception reach py-libp2p's connection nursery,
where it would take the whole connection down.
"""

from __future__ import annotations

import logging
from typing import Self

import trio
from libp2p.abc import IHost, INetStream
from libp2p.custom_types import TProtocol

from ._stream import Libp2pStream

__all__ = ["StreamService"]

log = logging.getLogger("chhaya.p2p")


class StreamService:
    """Subclasses set ``protocol`` and implement :meth:`_serve`."""

    protocol: TProtocol

    def __init__(self, host: IHost, max_streams: int) -> None:
        self._host = host
        self._limiter = trio.CapacityLimiter(max_streams)
        self._scopes: set[trio.CancelScope] = set()
        self._running = False
        #: Streams refused or failed (full, stopped, malformed, refused).
        self.rejected = 0

    @property
    def active(self) -> int:
        """Streams being served right now."""
        return len(self._scopes)

    def start(self) -> None:
        """Register the protocol handler on the host."""
        self._running = True
        self._host.set_stream_handler(self.protocol, self._handle_stream)

    def stop(self) -> None:
        """Unregister the handler and cancel every stream being served."""
        self._running = False
        self._host.remove_stream_handler(self.protocol)
        for scope in list(self._scopes):
            scope.cancel()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def _serve(self, stream: Libp2pStream) -> None:
        raise NotImplementedError

    async def _handle_stream(self, net_stream: INetStream) -> None:
        stream = Libp2pStream(net_stream)
        try:
            if not self._running or self._limiter.available_tokens == 0:
                self.rejected += 1
                log.info(
                    "refused a %s stream from %s: service full or stopped",
                    self.protocol,
                    stream.remote_peer_id,
                )
                return
            with trio.CancelScope() as scope:
                self._scopes.add(scope)
                try:
                    async with self._limiter:
                        await self._serve(stream)
                finally:
                    self._scopes.discard(scope)
        except Exception:  # never let anything reach libp2p's connection nursery
            log.exception("%s stream handler failed", self.protocol)
        finally:
            await stream.reset()  # no-op once both sides closed cleanly
