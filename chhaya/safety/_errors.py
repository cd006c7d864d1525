"""The one exception tree of Chhaya.

Every error the protocol raises derives from :class:`ChhayaError`. Remote
faults (bad bytes, a misbehaving peer) and local faults (an API misused) are
kept apart so that drivers can penalise peers only for what peers did.
"""

from __future__ import annotations

__all__ = [
    "ChhayaError",
    "CryptoError",
    "DecodeError",
    "KeyFileError",
    "LocalProtocolError",
    "RemoteProtocolError",
    "StorageError",
    "TransportError",
    "VerificationError",
]


class ChhayaError(Exception):
    """Root of every error raised by Chhaya."""


class LocalProtocolError(ChhayaError):
    """This side used the protocol wrongly (wrong state, closed channel...)."""


class RemoteProtocolError(ChhayaError):
    """The peer broke the protocol. The channel is unusable afterwards."""


class DecodeError(RemoteProtocolError):
    """Bytes from outside did not parse: bad length, bad tag, trailing data."""


class CryptoError(ChhayaError):
    """A cryptographic check failed. Deliberately carries no detail."""

    def __init__(self) -> None:
        super().__init__("cryptographic check failed")


class VerificationError(ChhayaError):
    """A signature, identity, proof or freshness check did not pass.

    ``check`` names the check that failed, for local logs and metrics only:
    nothing about it is ever sent back to the peer.
    """

    def __init__(self, check: str, detail: str = "") -> None:
        self.check = check
        super().__init__(f"{check}: {detail}" if detail else check)


class StorageError(ChhayaError):
    """Local storage is unreadable, corrupt, locked or unsafe."""


class KeyFileError(StorageError):
    """A key file is missing, corrupt, too widely readable or wrongly sealed."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class TransportError(ChhayaError):
    """The underlying transport failed (connection refused, reset, timeout)."""
