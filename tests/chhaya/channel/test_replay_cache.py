"""SynReplayCache: remembers for the window, forgets after, fails closed when full."""

from __future__ import annotations

import pytest

from chhaya.channel import ChannelConfig, SynReplayCache

WINDOW = 1_000
T0 = 1_700_000_000_000


def key(i: int) -> bytes:
    return i.to_bytes(32, "big")


def test_remembers_within_the_window() -> None:
    cache = SynReplayCache(WINDOW)
    assert cache.check_and_remember(key(1), T0, T0)
    assert len(cache) == 1
    assert not cache.check_and_remember(key(1), T0, T0)
    assert not cache.check_and_remember(key(1), T0, T0 + WINDOW - 1)
    assert cache.check_and_remember(key(2), T0, T0 + WINDOW - 1)  # other keys are fine
    assert len(cache) == 2


def test_forgets_after_expiry() -> None:
    cache = SynReplayCache(WINDOW)
    assert cache.check_and_remember(key(1), T0, T0)
    assert cache.check_and_remember(key(1), T0, T0 + WINDOW)
    assert len(cache) == 1


def test_expiry_counts_from_the_later_of_timestamp_and_clock() -> None:
    # A Syn stamped ahead of our clock lives a window past its own timestamp...
    ahead = SynReplayCache(WINDOW)
    assert ahead.check_and_remember(key(1), T0 + 300, T0)
    assert not ahead.check_and_remember(key(1), T0 + 300, T0 + WINDOW + 299)
    assert ahead.check_and_remember(key(1), T0 + 300, T0 + WINDOW + 300)
    # ...and one stamped in the past lives a window past the moment we saw it.
    behind = SynReplayCache(WINDOW)
    assert behind.check_and_remember(key(1), T0 - 300, T0)
    assert not behind.check_and_remember(key(1), T0 - 300, T0 + WINDOW - 1)
    assert behind.check_and_remember(key(1), T0 - 300, T0 + WINDOW)


def test_refuses_when_full_of_live_entries() -> None:
    cache = SynReplayCache(WINDOW, max_entries=3)
    for i in range(3):
        assert cache.check_and_remember(key(i), T0, T0 + i)
    assert not cache.check_and_remember(key(99), T0, T0 + 10)
    assert len(cache) == 3
    # The refused key was not remembered, and old entries were not dropped.
    for i in range(3):
        assert not cache.check_and_remember(key(i), T0, T0 + 20)


def test_accepts_again_once_entries_expire() -> None:
    cache = SynReplayCache(WINDOW, max_entries=3)
    for i in range(3):
        assert cache.check_and_remember(key(i), T0 + i, T0 + i)
    assert not cache.check_and_remember(key(99), T0, T0 + WINDOW - 1)
    # At T0 + WINDOW the first entry has expired: exactly one slot frees up.
    assert cache.check_and_remember(key(99), T0, T0 + WINDOW)
    assert not cache.check_and_remember(key(100), T0, T0 + WINDOW)
    assert len(cache) == 3
    # Much later everything has expired.
    for i in range(3):
        assert cache.check_and_remember(key(200 + i), T0, T0 + 10 * WINDOW)
    assert len(cache) == 3


def test_full_cache_sweeps_expired_entries_behind_a_live_one() -> None:
    """Entries out of expiry order: the front is live, one behind it has expired."""
    cache = SynReplayCache(WINDOW, max_entries=2)
    assert cache.check_and_remember(key(1), T0 + 500, T0)  # expires T0 + 1500
    assert cache.check_and_remember(key(2), T0, T0)  # expires T0 + 1000
    assert cache.check_and_remember(key(3), T0, T0 + WINDOW)
    assert len(cache) == 2
    assert not cache.check_and_remember(key(1), T0, T0 + WINDOW)  # still live


def test_pruning_keeps_the_size_bounded() -> None:
    """One Syn per millisecond for ten windows never fills a one-window cache."""
    cache = SynReplayCache(WINDOW, max_entries=WINDOW)
    for i in range(10 * WINDOW):
        assert cache.check_and_remember(key(i), T0 + i, T0 + i)
        assert len(cache) <= WINDOW


def test_window_matches_the_handshake_bounds() -> None:
    """A Syn is refused as stale before the cache could have forgotten it."""
    cfg = ChannelConfig()
    assert cfg.replay_window_ms == cfg.max_handshake_age_ms + cfg.synchrony_bound_ms
    # The latest moment a Syn stamped ts still passes the freshness check is
    # ts + max_age; whenever it was first seen, it is still remembered then.
    ts = T0
    for seen in (ts - cfg.synchrony_bound_ms, ts, ts + cfg.max_handshake_age_ms):
        cache = SynReplayCache(cfg.replay_window_ms)
        assert cache.check_and_remember(key(1), ts, seen)
        assert not cache.check_and_remember(key(1), ts, ts + cfg.max_handshake_age_ms)


@pytest.mark.parametrize(("window", "size"), [(0, 10), (-1, 10), (10, 0), (10, -5)])
def test_parameters_must_be_positive(window: int, size: int) -> None:
    with pytest.raises(ValueError, match="positive"):
        SynReplayCache(window, size)
