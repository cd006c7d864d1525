"""A wrapper that keeps secret bytes out of reprs, logs and tracebacks."""

from __future__ import annotations

from typing import Final

from ._ct import ct_equal

__all__ = ["Secret"]


class Secret:
    """Secret key material. ``repr`` and ``str`` never show the bytes.

    Equality is constant time. Call :meth:`reveal` only at the point where
    the bytes go into a primitive.
    """

    __slots__ = ("_value",)

    def __init__(self, value: bytes) -> None:
        self._value: Final = bytes(value)

    def reveal(self) -> bytes:
        return self._value

    def __len__(self) -> int:
        return len(self._value)

    def __repr__(self) -> str:
        return f"Secret(<{len(self._value)} bytes redacted>)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return ct_equal(self._value, other._value)

    def __hash__(self) -> int:
        raise TypeError("Secret is not hashable")

    def __reduce__(self) -> str:
        raise TypeError("Secret cannot be pickled")
