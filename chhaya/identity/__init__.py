"""Identities, key-file encodings and human-comparable fingerprints."""

from ._fingerprint import FINGERPRINT_GROUPS, fingerprint, format_fingerprint
from ._identity import (
    PUBLIC_IDENTITY_SIZE,
    SECRET_IDENTITY_SIZE,
    PrivateIdentity,
    PublicIdentity,
)
from ._keyfile import (
    MAX_KEY_FILE_SIZE,
    MAX_NAME_LENGTH,
    MAX_PUB_FILE_SIZE,
    PassphraseRequired,
    WrongPassphrase,
    decode_key_file_untrusted,
    decode_pub_file_untrusted,
    encode_key_file,
    encode_pub_file,
    key_file_is_sealed_untrusted,
    valid_name,
)

__all__ = [
    "FINGERPRINT_GROUPS",
    "MAX_KEY_FILE_SIZE",
    "MAX_NAME_LENGTH",
    "MAX_PUB_FILE_SIZE",
    "PUBLIC_IDENTITY_SIZE",
    "SECRET_IDENTITY_SIZE",
    "PassphraseRequired",
    "PrivateIdentity",
    "PublicIdentity",
    "WrongPassphrase",
    "decode_key_file_untrusted",
    "decode_pub_file_untrusted",
    "encode_key_file",
    "encode_pub_file",
    "fingerprint",
    "format_fingerprint",
    "key_file_is_sealed_untrusted",
    "valid_name",
]
