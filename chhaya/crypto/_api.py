"""Synchronous interfaces that every crypto provider implements.

Providers are interchangeable: the fast one (cryptography, pynacl) and the
pure reference one (kyber-py for ML-KEM) must agree byte for byte, which the
cross-provider tests check. Every failure surfaces as :class:`CryptoError`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "ED25519_PUBLIC_KEY_SIZE",
    "ED25519_SEED_SIZE",
    "ED25519_SIGNATURE_SIZE",
    "MLKEM1024_CIPHERTEXT_SIZE",
    "MLKEM1024_PUBLIC_KEY_SIZE",
    "MLKEM1024_SEED_SIZE",
    "MLKEM_SHARED_SECRET_SIZE",
    "X25519_KEY_SIZE",
    "CryptoSuite",
    "Dh",
    "DhKeyPair",
    "Kem",
    "KemKeyPair",
    "Rng",
    "Signatures",
    "SigningKey",
]

#: A source of randomness: ``rng(n)`` returns ``n`` uniformly random bytes.
Rng = Callable[[int], bytes]

MLKEM1024_PUBLIC_KEY_SIZE = 1568
MLKEM1024_CIPHERTEXT_SIZE = 1568
MLKEM1024_SEED_SIZE = 64
MLKEM_SHARED_SECRET_SIZE = 32
ED25519_PUBLIC_KEY_SIZE = 32
ED25519_SEED_SIZE = 32
ED25519_SIGNATURE_SIZE = 64
X25519_KEY_SIZE = 32


class KemKeyPair(ABC):
    """An ML-KEM-1024 key pair, stored as its 64-byte seed (d || z)."""

    __slots__ = ()

    @property
    @abstractmethod
    def seed(self) -> bytes: ...

    @property
    @abstractmethod
    def public_key(self) -> bytes: ...

    @abstractmethod
    def decapsulate(self, ciphertext: bytes) -> bytes:
        """Return the 32-byte shared secret. Wrong-length input: CryptoError."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(<secret redacted>)"


class Kem(ABC):
    """ML-KEM-1024 (FIPS 203)."""

    name: str

    @abstractmethod
    def from_seed(self, seed: bytes) -> KemKeyPair: ...

    def generate(self, rng: Rng) -> KemKeyPair:
        return self.from_seed(rng(MLKEM1024_SEED_SIZE))

    @abstractmethod
    def encapsulate(self, public_key: bytes, rng: Rng) -> tuple[bytes, bytes]:
        """Return ``(shared_secret, ciphertext)`` for ``public_key``.

        A malformed public key raises CryptoError.
        """


class SigningKey(ABC):
    """An Ed25519 signing key, stored as its 32-byte seed."""

    __slots__ = ()

    @property
    @abstractmethod
    def seed(self) -> bytes: ...

    @property
    @abstractmethod
    def public_key(self) -> bytes: ...

    @abstractmethod
    def sign(self, message: bytes) -> bytes: ...

    def __repr__(self) -> str:
        return f"{type(self).__name__}(<secret redacted>)"


class Signatures(ABC):
    """Ed25519 (RFC 8032) with strict verification."""

    name: str

    @abstractmethod
    def from_seed(self, seed: bytes) -> SigningKey: ...

    def generate(self, rng: Rng) -> SigningKey:
        return self.from_seed(rng(ED25519_SEED_SIZE))

    @abstractmethod
    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> None:
        """Return on success, raise CryptoError otherwise."""


class DhKeyPair(ABC):
    """An X25519 key pair."""

    __slots__ = ()

    @property
    @abstractmethod
    def private_bytes(self) -> bytes: ...

    @property
    @abstractmethod
    def public_key(self) -> bytes: ...

    @abstractmethod
    def exchange(self, peer_public: bytes) -> bytes:
        """Return the shared secret; an all-zero result raises CryptoError."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(<secret redacted>)"


class Dh(ABC):
    """X25519 (RFC 7748)."""

    name: str

    @abstractmethod
    def from_private(self, private: bytes) -> DhKeyPair: ...

    def generate(self, rng: Rng) -> DhKeyPair:
        return self.from_private(rng(X25519_KEY_SIZE))


@dataclass(frozen=True, slots=True)
class CryptoSuite:
    """The providers one protocol run uses. There is no negotiation."""

    name: str
    kem: Kem
    sig: Signatures
    dh: Dh
