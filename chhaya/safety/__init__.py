"""Safety helpers: the exception tree, constant-time compare, secret wrapper."""

from ._ct import ct_equal
from ._errors import (
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
from ._secret import Secret

__all__ = [
    "ChhayaError",
    "CryptoError",
    "DecodeError",
    "KeyFileError",
    "LocalProtocolError",
    "RemoteProtocolError",
    "Secret",
    "StorageError",
    "TransportError",
    "VerificationError",
    "ct_equal",
]
