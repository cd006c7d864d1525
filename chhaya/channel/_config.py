"""Channel configuration and the identity resolver interface."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ..crypto import FAST, CryptoSuite
from ._constants import (
    HANDSHAKE_TIMEOUT_MS,
    MAX_FRAMES,
    MAX_HANDSHAKE_AGE_MS,
    REKEY_INTERVAL,
    SYNCHRONY_BOUND_MS,
)
from ._keyschedule import namespace_digest

__all__ = ["AllowlistResolver", "ChannelConfig", "Resolver"]

#: Maps a peer's Ed25519 identity key to what we know of it, or None to refuse.
Resolver = Callable[[bytes], object | None]


@dataclass(frozen=True, slots=True)
class ChannelConfig:
    """Parameters both ends must share. There is no negotiation."""

    namespace: bytes = b"chhaya/default"
    suite: CryptoSuite = FAST
    synchrony_bound_ms: int = SYNCHRONY_BOUND_MS
    max_handshake_age_ms: int = MAX_HANDSHAKE_AGE_MS
    handshake_timeout_ms: int = HANDSHAKE_TIMEOUT_MS
    rekey_interval: int = REKEY_INTERVAL
    max_frames: int = MAX_FRAMES
    namespace_digest: bytes = field(init=False, repr=False)

    def __post_init__(self) -> None:
        for name in (
            "synchrony_bound_ms",
            "max_handshake_age_ms",
            "handshake_timeout_ms",
            "rekey_interval",
            "max_frames",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"ChannelConfig.{name} must be positive")
        object.__setattr__(self, "namespace_digest", namespace_digest(self.namespace))

    @property
    def replay_window_ms(self) -> int:
        return self.max_handshake_age_ms + self.synchrony_bound_ms


class AllowlistResolver:
    """Accepts exactly the listed identity keys; returns the name given for each."""

    def __init__(self, allowed: Mapping[bytes, str]) -> None:
        self._allowed = dict(allowed)

    def __call__(self, identity: bytes) -> object | None:
        return self._allowed.get(identity)
