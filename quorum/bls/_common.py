"""Argument checks that both BLS backends share."""

from __future__ import annotations

from ._api import CURVE_ORDER

__all__ = ["as_bytes", "require_secret_key"]


def require_secret_key(sk: int) -> int:
    """``sk`` itself if it is a valid secret key, an int in [1, r); else ValueError.

    A bad secret key is a local programming error, never peer input.
    """
    if type(sk) is not int or not 0 < sk < CURVE_ORDER:
        raise ValueError("a BLS secret key is an int in [1, r)")
    return sk


def as_bytes(data: bytes) -> bytes:
    """``data`` as exact ``bytes`` (pyblst rejects bytearray and memoryview)."""
    return data if type(data) is bytes else bytes(memoryview(data))
