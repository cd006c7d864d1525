"""Helpers every benchmark shares: GC-free timing, medians, versions."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from importlib import metadata

__all__ = ["median", "rounded", "timed", "version"]


def timed(fn: Callable[[int], object], n: int) -> float:
    """Seconds taken by ``fn(n)``, with the cyclic GC off (as timeit does)."""
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        fn(n)
        return time.perf_counter() - start
    finally:
        if was_enabled:
            gc.enable()


def median(values: list[float]) -> float:
    return statistics.median(values)


def rounded(values: list[float], digits: int = 4) -> list[float]:
    return [round(v, digits) for v in values]


def version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None
