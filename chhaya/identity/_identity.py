"""User identities: an Ed25519 signing key, an X25519 agreement key and an
ML-KEM-1024 key pair. The directory binds all three to a handle; the channel
authenticates with the Ed25519 key alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..crypto import (
    ED25519_PUBLIC_KEY_SIZE,
    ED25519_SEED_SIZE,
    FAST,
    MLKEM1024_PUBLIC_KEY_SIZE,
    MLKEM1024_SEED_SIZE,
    X25519_KEY_SIZE,
    CryptoSuite,
    DhKeyPair,
    KemKeyPair,
    Rng,
    SigningKey,
)
from ..safety import CryptoError, DecodeError
from ..wire import Reader, Writer

__all__ = ["PUBLIC_IDENTITY_SIZE", "SECRET_IDENTITY_SIZE", "PrivateIdentity", "PublicIdentity"]

_PUBLIC_TAG = b"CPI1"
PUBLIC_IDENTITY_SIZE = 4 + ED25519_PUBLIC_KEY_SIZE + X25519_KEY_SIZE + MLKEM1024_PUBLIC_KEY_SIZE
SECRET_IDENTITY_SIZE = ED25519_SEED_SIZE + X25519_KEY_SIZE + MLKEM1024_SEED_SIZE


@dataclass(frozen=True, slots=True)
class PublicIdentity:
    """The public half of a user identity."""

    signing_key: bytes
    agreement_key: bytes
    kem_key: bytes

    def encode(self) -> bytes:
        return (
            Writer()
            .raw(_PUBLIC_TAG)
            .fixed(self.signing_key, ED25519_PUBLIC_KEY_SIZE)
            .fixed(self.agreement_key, X25519_KEY_SIZE)
            .fixed(self.kem_key, MLKEM1024_PUBLIC_KEY_SIZE)
            .getvalue()
        )

    @classmethod
    def decode_untrusted(cls, data: bytes) -> PublicIdentity:
        r = Reader(data)
        r.expect(_PUBLIC_TAG, "public identity tag")
        out = cls(
            signing_key=r.fixed(ED25519_PUBLIC_KEY_SIZE, "signing key"),
            agreement_key=r.fixed(X25519_KEY_SIZE, "agreement key"),
            kem_key=r.fixed(MLKEM1024_PUBLIC_KEY_SIZE, "KEM key"),
        )
        r.finish()
        return out


class PrivateIdentity:
    """A user's private keys. Never printed, never logged."""

    __slots__ = ("_dh", "_kem", "_public", "_sig", "suite")

    def __init__(
        self, sig: SigningKey, dh: DhKeyPair, kem: KemKeyPair, suite: CryptoSuite = FAST
    ) -> None:
        self._sig = sig
        self._dh = dh
        self._kem = kem
        self.suite = suite
        self._public = PublicIdentity(sig.public_key, dh.public_key, kem.public_key)

    @classmethod
    def generate(cls, rng: Rng, suite: CryptoSuite = FAST) -> PrivateIdentity:
        return cls(suite.sig.generate(rng), suite.dh.generate(rng), suite.kem.generate(rng), suite)

    @classmethod
    def from_secret_bytes(cls, data: bytes, suite: CryptoSuite = FAST) -> PrivateIdentity:
        """Rebuild from :meth:`secret_bytes`. Wrong length: DecodeError."""
        r = Reader(data)
        sig_seed = r.fixed(ED25519_SEED_SIZE, "signing seed")
        dh_priv = r.fixed(X25519_KEY_SIZE, "agreement key")
        kem_seed = r.fixed(MLKEM1024_SEED_SIZE, "KEM seed")
        r.finish()
        try:
            return cls(
                suite.sig.from_seed(sig_seed),
                suite.dh.from_private(dh_priv),
                suite.kem.from_seed(kem_seed),
                suite,
            )
        except CryptoError:
            raise DecodeError("invalid secret key material") from None

    def secret_bytes(self) -> bytes:
        """The 128 secret bytes: Ed25519 seed, X25519 key, ML-KEM seed."""
        return self._sig.seed + self._dh.private_bytes + self._kem.seed

    @property
    def public(self) -> PublicIdentity:
        return self._public

    @property
    def signing_key(self) -> SigningKey:
        return self._sig

    @property
    def agreement(self) -> DhKeyPair:
        return self._dh

    @property
    def kem(self) -> KemKeyPair:
        return self._kem

    def sign(self, message: bytes) -> bytes:
        return self._sig.sign(message)

    def __repr__(self) -> str:
        key = self._public.signing_key.hex()[:16]
        return f"PrivateIdentity(signing_key={key}…, <secrets redacted>)"
