"""Length-prefixed frames for the request/response protocols on libp2p streams.

    frame = length u32 (big-endian) || message

The receiver checks the length against its bound before reading the body,
and reads in bounded chunks, so a peer cannot make it allocate more.
"""

from __future__ import annotations

from typing import Final

import trio

from chhaya import DecodeError

from ._stream import Libp2pStream

__all__ = ["STREAM_ERRORS", "frame", "receive_frame"]

_PREFIX: Final = 4
_CHUNK: Final = 1 << 16
#: What a Libp2pStream raises when the peer or the connection goes away.
STREAM_ERRORS = (trio.BrokenResourceError, trio.ClosedResourceError)


async def _receive_exactly(stream: Libp2pStream, n: int) -> bytes:
    """Read ``n`` bytes; DecodeError if the peer closes early. ``n`` is already bounded."""
    buf = bytearray()
    while len(buf) < n:
        chunk = await stream.receive_some(min(n - len(buf), _CHUNK))
        if not chunk:
            raise DecodeError("stream ended inside a frame")
        buf += chunk
    return bytes(buf)


async def receive_frame(stream: Libp2pStream, max_len: int) -> bytes:
    """One frame; the length is checked before the body is read."""
    n = int.from_bytes(await _receive_exactly(stream, _PREFIX), "big")
    if n > max_len:
        raise DecodeError(f"frame too long ({n} > {max_len})")
    return await _receive_exactly(stream, n)


def frame(message: bytes) -> bytes:
    return len(message).to_bytes(_PREFIX, "big") + message
