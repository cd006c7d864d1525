"""Hashes, HMAC, HKDF (RFC 5869) and the two AEADs.

These have one implementation each: the standard library's hashlib/hmac and
pyca/cryptography's AEADs, both thin wrappers over OpenSSL.
"""

from __future__ import annotations

import hashlib
import hmac as _hmac

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from ..safety import CryptoError

__all__ = [
    "AEAD_KEY_SIZE",
    "AEAD_NONCE_SIZE",
    "AEAD_TAG_SIZE",
    "Aes256Gcm",
    "ChaCha20Poly1305Aead",
    "hkdf",
    "hkdf_expand",
    "hkdf_extract",
    "hmac_sha256",
    "sha256",
    "sha512",
]

AEAD_KEY_SIZE = 32
AEAD_NONCE_SIZE = 12
AEAD_TAG_SIZE = 16
_HASH_LEN = 32


def sha256(*parts: bytes) -> bytes:
    h = hashlib.sha256()
    for p in parts:
        h.update(p)
    return h.digest()


def sha512(*parts: bytes) -> bytes:
    h = hashlib.sha512()
    for p in parts:
        h.update(p)
    return h.digest()


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    return _hmac.digest(key, message, "sha256")


def hkdf_extract(salt: bytes, ikm: bytes) -> bytes:
    return _hmac.digest(salt if salt else bytes(_HASH_LEN), ikm, "sha256")


def hkdf_expand(prk: bytes, info: bytes, length: int) -> bytes:
    if not 0 < length <= 255 * _HASH_LEN:
        raise ValueError("bad HKDF output length")
    out = b""
    block = b""
    counter = 1
    while len(out) < length:
        block = _hmac.digest(prk, block + info + bytes((counter,)), "sha256")
        out += block
        counter += 1
    return out[:length]


def hkdf(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    return hkdf_expand(hkdf_extract(salt, ikm), info, length)


class _Aead:
    """AEAD with fixed 32-byte keys, 12-byte nonces and 16-byte tags."""

    __slots__ = ("_cipher",)
    _impl: type[AESGCM] | type[ChaCha20Poly1305]

    def __init__(self, key: bytes) -> None:
        if len(key) != AEAD_KEY_SIZE:
            raise ValueError("AEAD key must be 32 bytes")
        self._cipher = self._impl(key)

    def encrypt(self, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
        return self._cipher.encrypt(nonce, plaintext, aad)

    def encrypt_into(self, nonce: bytes, plaintext: bytes, aad: bytes, out: memoryview) -> None:
        """Write ciphertext||tag into ``out``, which must be exactly sized."""
        self._cipher.encrypt_into(nonce, plaintext, aad, out)

    def decrypt(self, nonce: bytes, ciphertext: bytes | memoryview, aad: bytes) -> bytes:
        try:
            return self._cipher.decrypt(nonce, ciphertext, aad)
        except (InvalidTag, ValueError, OverflowError):
            raise CryptoError() from None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(<key redacted>)"


class Aes256Gcm(_Aead):
    __slots__ = ()
    _impl = AESGCM


class ChaCha20Poly1305Aead(_Aead):
    __slots__ = ()
    _impl = ChaCha20Poly1305
