"""The node's clock and randomness, handed to the sans-IO cores."""

from __future__ import annotations

import os
import time

__all__ = ["system_rng", "wall_ms"]


def wall_ms() -> int:
    """Wall-clock time in milliseconds since the Unix epoch."""
    return time.time_ns() // 1_000_000


def system_rng(n: int) -> bytes:
    """The operating system's CSPRNG."""
    return os.urandom(n)
