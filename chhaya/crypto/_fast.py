"""The fast provider: pyca/cryptography for ML-KEM and X25519, pynacl for Ed25519.

cryptography offers no deterministic ML-KEM encapsulation, so the fast
provider's ``encapsulate`` draws its 32-byte message from OpenSSL's CSPRNG and
ignores ``rng``. Everything else is a pure function of its inputs.
"""

from __future__ import annotations

import nacl.bindings
import nacl.exceptions
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519

from ..safety import CryptoError
from ._api import (
    ED25519_PUBLIC_KEY_SIZE,
    ED25519_SEED_SIZE,
    ED25519_SIGNATURE_SIZE,
    MLKEM1024_CIPHERTEXT_SIZE,
    MLKEM1024_PUBLIC_KEY_SIZE,
    MLKEM1024_SEED_SIZE,
    X25519_KEY_SIZE,
    Dh,
    DhKeyPair,
    Kem,
    KemKeyPair,
    Rng,
    Signatures,
    SigningKey,
)

__all__ = ["FastDh", "FastKem", "FastSignatures"]


class _FastKemKeyPair(KemKeyPair):
    __slots__ = ("_key", "_public", "_seed")

    def __init__(self, seed: bytes) -> None:
        if len(seed) != MLKEM1024_SEED_SIZE:
            raise CryptoError()
        self._seed = bytes(seed)
        self._key = mlkem.MLKEM1024PrivateKey.from_seed_bytes(self._seed)
        self._public = self._key.public_key().public_bytes_raw()

    @property
    def seed(self) -> bytes:
        return self._seed

    @property
    def public_key(self) -> bytes:
        return self._public

    def decapsulate(self, ciphertext: bytes) -> bytes:
        if len(ciphertext) != MLKEM1024_CIPHERTEXT_SIZE:
            raise CryptoError()
        try:
            return self._key.decapsulate(ciphertext)
        except (ValueError, UnsupportedAlgorithm):
            raise CryptoError() from None


class FastKem(Kem):
    name = "ml-kem-1024/cryptography"

    def from_seed(self, seed: bytes) -> KemKeyPair:
        return _FastKemKeyPair(seed)

    def encapsulate(self, public_key: bytes, rng: Rng) -> tuple[bytes, bytes]:
        if len(public_key) != MLKEM1024_PUBLIC_KEY_SIZE:
            raise CryptoError()
        try:
            pk = mlkem.MLKEM1024PublicKey.from_public_bytes(public_key)
            shared, ciphertext = pk.encapsulate()
        except (ValueError, UnsupportedAlgorithm):
            raise CryptoError() from None
        return shared, ciphertext


class _FastSigningKey(SigningKey):
    __slots__ = ("_public", "_seed", "_sk")

    def __init__(self, seed: bytes) -> None:
        if len(seed) != ED25519_SEED_SIZE:
            raise CryptoError()
        self._seed = bytes(seed)
        self._public, self._sk = nacl.bindings.crypto_sign_seed_keypair(self._seed)

    @property
    def seed(self) -> bytes:
        return self._seed

    @property
    def public_key(self) -> bytes:
        return bytes(self._public)

    def sign(self, message: bytes) -> bytes:
        signed = nacl.bindings.crypto_sign(message, self._sk)
        return bytes(signed[:ED25519_SIGNATURE_SIZE])


class FastSignatures(Signatures):
    name = "ed25519/libsodium"

    def from_seed(self, seed: bytes) -> SigningKey:
        return _FastSigningKey(seed)

    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> None:
        if len(public_key) != ED25519_PUBLIC_KEY_SIZE or len(signature) != ED25519_SIGNATURE_SIZE:
            raise CryptoError()
        try:
            nacl.bindings.crypto_sign_open(signature + message, public_key)
        except (nacl.exceptions.BadSignatureError, ValueError, TypeError):
            raise CryptoError() from None


class _FastDhKeyPair(DhKeyPair):
    __slots__ = ("_key", "_private", "_public")

    def __init__(self, private: bytes) -> None:
        if len(private) != X25519_KEY_SIZE:
            raise CryptoError()
        self._private = bytes(private)
        self._key = x25519.X25519PrivateKey.from_private_bytes(self._private)
        self._public = self._key.public_key().public_bytes_raw()

    @property
    def private_bytes(self) -> bytes:
        return self._private

    @property
    def public_key(self) -> bytes:
        return self._public

    def exchange(self, peer_public: bytes) -> bytes:
        if len(peer_public) != X25519_KEY_SIZE:
            raise CryptoError()
        try:
            peer = x25519.X25519PublicKey.from_public_bytes(peer_public)
            # cryptography raises ValueError on an all-zero (low-order) result.
            return self._key.exchange(peer)
        except ValueError:
            raise CryptoError() from None


class FastDh(Dh):
    name = "x25519/cryptography"

    def from_private(self, private: bytes) -> DhKeyPair:
        return _FastDhKeyPair(private)
