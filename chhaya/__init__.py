"""Chhaya protocol core: sans-IO crypto, identities, wire codec and channel.

This package never performs I/O, never reads a clock and never draws
randomness by itself: callers pass ``now`` (milliseconds) and ``rng``.
"""

from .safety import (
    ChhayaError,
    CryptoError,
    DecodeError,
    KeyFileError,
    LocalProtocolError,
    RemoteProtocolError,
    StorageError,
    TransportError,
    VerificationError,
)

__version__ = "0.1.0"

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
    "__version__",
]
