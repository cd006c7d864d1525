"""Constant-time comparison for secrets, MACs and identity keys."""

from __future__ import annotations

import hmac

__all__ = ["ct_equal"]


def ct_equal(a: bytes, b: bytes) -> bool:
    """Compare two byte strings in time independent of where they differ."""
    return hmac.compare_digest(a, b)
