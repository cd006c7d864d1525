"""A bounded cache that rejects a Syn seen before, within the time window.

A Syn older than the handshake age bound is refused by the timestamp check,
so the cache only has to remember Syns until they would be refused anyway.
When the cache is full of live entries it refuses new Syns rather than
forgetting one early: failing closed costs availability, never safety.
"""

from __future__ import annotations

from collections import OrderedDict

__all__ = ["SynReplayCache"]


class SynReplayCache:
    def __init__(self, window_ms: int, max_entries: int = 100_000) -> None:
        if window_ms <= 0 or max_entries <= 0:
            raise ValueError("window and size must be positive")
        self._window_ms = window_ms
        self._max_entries = max_entries
        self._expiry: OrderedDict[bytes, int] = OrderedDict()

    def __len__(self) -> int:
        return len(self._expiry)

    def _prune(self, now_ms: int) -> None:
        # Entries go in roughly in expiry order; prune from the front, then
        # sweep everything if the front alone did not free room.
        while self._expiry:
            key, expiry = next(iter(self._expiry.items()))
            if expiry > now_ms:
                break
            del self._expiry[key]
        if len(self._expiry) >= self._max_entries:
            for key in [k for k, e in self._expiry.items() if e <= now_ms]:
                del self._expiry[key]

    def check_and_remember(self, key: bytes, timestamp_ms: int, now_ms: int) -> bool:
        """Remember ``key``; return False if it was seen or the cache is full."""
        self._prune(now_ms)
        if key in self._expiry:
            return False
        if len(self._expiry) >= self._max_entries:
            return False
        self._expiry[key] = max(timestamp_ms, now_ms) + self._window_ms
        return True
