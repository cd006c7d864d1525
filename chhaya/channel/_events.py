"""Events a :class:`ChannelConnection` hands to its driver."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..safety import Secret
from ._keyschedule import Exporter

__all__ = ["ConnectionClosed", "DataReceived", "Event", "HandshakeComplete"]


@dataclass(frozen=True, slots=True)
class HandshakeComplete:
    """Both sides are authenticated and hold the same keys.

    ``peer_info`` is what the resolver returned for the peer's identity (for
    example a name from an allowlist, later a verified directory entry).
    """

    peer_identity: bytes
    peer_info: object
    transcript_hash: bytes
    ratchet_root: Secret = field(repr=False)
    exporter: Exporter = field(repr=False)


@dataclass(slots=True)  # not frozen: built once per record, on the hot path
class DataReceived:
    data: bytes


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The peer closed the channel with an authenticated close frame."""


Event = HandshakeComplete | DataReceived | ConnectionClosed
