"""The pure-Python reference provider for ML-KEM-1024, on kyber-py.

It is slow and exists to cross-check the fast provider: both must derive the
same keys from a seed and decapsulate each other's ciphertexts. Unlike the
fast provider, encapsulation here takes its message from ``rng``.
"""

from __future__ import annotations

from kyber_py.ml_kem import ML_KEM_1024

from ..safety import CryptoError
from ._api import (
    MLKEM1024_CIPHERTEXT_SIZE,
    MLKEM1024_PUBLIC_KEY_SIZE,
    MLKEM1024_SEED_SIZE,
    Kem,
    KemKeyPair,
    Rng,
)

__all__ = ["ReferenceKem"]


class _RefKemKeyPair(KemKeyPair):
    __slots__ = ("_dk", "_ek", "_seed")

    def __init__(self, seed: bytes) -> None:
        if len(seed) != MLKEM1024_SEED_SIZE:
            raise CryptoError()
        self._seed = bytes(seed)
        self._ek, self._dk = ML_KEM_1024.key_derive(self._seed)

    @property
    def seed(self) -> bytes:
        return self._seed

    @property
    def public_key(self) -> bytes:
        return bytes(self._ek)

    def decapsulate(self, ciphertext: bytes) -> bytes:
        if len(ciphertext) != MLKEM1024_CIPHERTEXT_SIZE:
            raise CryptoError()
        try:
            return bytes(ML_KEM_1024.decaps(self._dk, ciphertext))
        except ValueError:
            raise CryptoError() from None


class ReferenceKem(Kem):
    name = "ml-kem-1024/kyber-py"

    def from_seed(self, seed: bytes) -> KemKeyPair:
        return _RefKemKeyPair(seed)

    def encapsulate(self, public_key: bytes, rng: Rng) -> tuple[bytes, bytes]:
        return self.encapsulate_deterministic(public_key, rng(32))

    def encapsulate_deterministic(self, public_key: bytes, m: bytes) -> tuple[bytes, bytes]:
        """FIPS 203 ML-KEM.Encaps_internal: for known-answer tests."""
        if len(public_key) != MLKEM1024_PUBLIC_KEY_SIZE or len(m) != 32:
            raise CryptoError()
        try:
            shared, ciphertext = ML_KEM_1024._encaps_internal(public_key, m)
        except ValueError:
            raise CryptoError() from None
        return bytes(shared), bytes(ciphertext)
