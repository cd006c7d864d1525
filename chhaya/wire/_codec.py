"""Bounded readers and writers for peer bytes.

A :class:`Reader` never reads past its buffer, checks every declared length
against a caller-supplied maximum before it trusts it, and raises only
:class:`DecodeError`. ``finish()`` rejects trailing bytes, so an encoding has
exactly one decoding.
"""

from __future__ import annotations

import struct

from ..safety import DecodeError

__all__ = ["Reader", "Writer"]

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")


class Reader:
    """Cursor over untrusted bytes."""

    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise DecodeError("input is not bytes")
        self._data = bytes(data)
        self._pos = 0

    def remaining(self) -> int:
        return len(self._data) - self._pos

    def fixed(self, n: int, what: str) -> bytes:
        if n < 0:
            raise DecodeError(f"negative length for {what}")
        end = self._pos + n
        if end > len(self._data):
            raise DecodeError(f"truncated {what}")
        out = self._data[self._pos : end]
        self._pos = end
        return out

    def u8(self, what: str) -> int:
        return self.fixed(1, what)[0]

    def u16(self, what: str) -> int:
        return int(_U16.unpack(self.fixed(2, what))[0])

    def u32(self, what: str) -> int:
        return int(_U32.unpack(self.fixed(4, what))[0])

    def u64(self, what: str) -> int:
        return int(_U64.unpack(self.fixed(8, what))[0])

    def var16(self, max_len: int, what: str) -> bytes:
        """A byte string with a 2-byte length prefix, at most ``max_len``."""
        n = self.u16(what)
        if n > max_len:
            raise DecodeError(f"{what} too long ({n} > {max_len})")
        return self.fixed(n, what)

    def var32(self, max_len: int, what: str) -> bytes:
        """A byte string with a 4-byte length prefix, at most ``max_len``."""
        n = self.u32(what)
        if n > max_len:
            raise DecodeError(f"{what} too long ({n} > {max_len})")
        return self.fixed(n, what)

    def utf8(self, max_len: int, what: str) -> str:
        raw = self.var16(max_len, what)
        try:
            return raw.decode("utf-8", errors="strict")
        except UnicodeDecodeError:
            raise DecodeError(f"{what} is not UTF-8") from None

    def expect(self, value: bytes, what: str) -> None:
        if self.fixed(len(value), what) != value:
            raise DecodeError(f"bad {what}")

    def finish(self) -> None:
        if self._pos != len(self._data):
            raise DecodeError(f"{self.remaining()} trailing bytes")


class Writer:
    """Builds an encoding; the mirror of :class:`Reader`."""

    __slots__ = ("_parts",)

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def fixed(self, data: bytes, n: int) -> Writer:
        if len(data) != n:
            raise ValueError(f"expected {n} bytes, got {len(data)}")
        self._parts.append(bytes(data))
        return self

    def raw(self, data: bytes) -> Writer:
        self._parts.append(bytes(data))
        return self

    def _int(self, v: int, bits: int) -> Writer:
        if not 0 <= v < (1 << bits):
            raise ValueError(f"{v} does not fit in u{bits}")
        self._parts.append(v.to_bytes(bits // 8, "big"))
        return self

    def u8(self, v: int) -> Writer:
        return self._int(v, 8)

    def u16(self, v: int) -> Writer:
        return self._int(v, 16)

    def u32(self, v: int) -> Writer:
        return self._int(v, 32)

    def u64(self, v: int) -> Writer:
        return self._int(v, 64)

    def var16(self, data: bytes, max_len: int) -> Writer:
        if len(data) > max_len:
            raise ValueError(f"field longer than {max_len}")
        return self.u16(len(data)).raw(data)

    def var32(self, data: bytes, max_len: int) -> Writer:
        if len(data) > max_len:
            raise ValueError(f"field longer than {max_len}")
        return self.u32(len(data)).raw(data)

    def utf8(self, text: str, max_len: int) -> Writer:
        return self.var16(text.encode("utf-8"), max_len)

    def getvalue(self) -> bytes:
        return b"".join(self._parts)
