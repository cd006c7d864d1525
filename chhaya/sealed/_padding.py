"""Size buckets and ISO/IEC 7816-4 padding for sealed envelopes.

Every sealed envelope on the wire is exactly one of :data:`PADDING_BUCKETS`
bytes long, so a relay or mailbox learns only which bucket a message fell in,
never its length. Inside the encryption the plaintext is filled up to the
bucket with ``0x80 || 0x00*`` (ISO/IEC 7816-4), which removes unambiguously
whatever the content ends with.

:func:`unpad_untrusted` is not constant time. It only ever runs on a
plaintext whose AEAD tag has already verified, so its timing cannot serve as
a padding oracle.
"""

from __future__ import annotations

from ..safety import DecodeError, LocalProtocolError

__all__ = ["MAX_PADDED_SIZE", "PADDING_BUCKETS", "bucket_for", "pad", "unpad_untrusted"]

#: Whole-envelope sizes on the wire, smallest first.
# No 256-byte bucket: the smallest real message (certificate plus an empty
# ratchet message) needs 255 bytes before padding, so a 256-byte envelope
# would almost always be cover traffic, and its size alone would say so.
PADDING_BUCKETS: tuple[int, ...] = (1024, 4096, 16384, 65536)
#: The largest bucket: no sealed envelope is longer.
MAX_PADDED_SIZE = PADDING_BUCKETS[-1]

_MARKER = 0x80


def bucket_for(n: int) -> int:
    """The smallest bucket that holds ``n`` bytes.

    Raises LocalProtocolError if ``n`` is negative or above
    :data:`MAX_PADDED_SIZE`.
    """
    if n < 0:
        raise LocalProtocolError("negative size")
    for bucket in PADDING_BUCKETS:
        if n <= bucket:
            return bucket
    raise LocalProtocolError(f"{n} bytes exceed the largest padding bucket ({MAX_PADDED_SIZE})")


def pad(content: bytes, target_len: int) -> bytes:
    """``content || 0x80 || 0x00*``, exactly ``target_len`` bytes.

    The marker always takes one byte, so ``target_len`` must exceed
    ``len(content)``; otherwise LocalProtocolError.
    """
    fill = target_len - len(content) - 1
    if fill < 0:
        raise LocalProtocolError(
            f"{len(content)} bytes plus the padding marker do not fit in {target_len}"
        )
    return bytes(content) + b"\x80" + bytes(fill)


def unpad_untrusted(data: bytes) -> bytes:
    """Remove ``0x80 || 0x00*`` from the end of ``data``.

    Raises DecodeError if there is no ``0x80`` marker, or if any byte after
    the last ``0x80`` is not zero (that is, the last non-zero byte is not the
    marker).
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DecodeError("input is not bytes")
    body = bytes(data).rstrip(b"\x00")
    if not body or body[-1] != _MARKER:
        raise DecodeError("bad padding")
    return body[:-1]
