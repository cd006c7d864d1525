"""The VRF interface both arithmetic paths implement.

ECVRF-EDWARDS25519-SHA512-TAI (RFC 9381, suite 0x03). The directory places
each handle version at the VRF output of ``handle || version`` under its
VRF key, so a lookup proof reveals the position of one handle and nothing
about any other.

Keys and proofs cross this interface as bytes only. The two paths, libsodium
(:class:`~vkd.vrf.FastVrf`) and pure Python (:class:`~vkd.vrf.ReferenceVrf`),
must agree byte for byte on every input, valid or not.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

__all__ = [
    "VRF_OUTPUT_SIZE",
    "VRF_PROOF_SIZE",
    "VRF_PUBLIC_KEY_SIZE",
    "VRF_SECRET_KEY_SIZE",
    "Vrf",
]

#: An RFC 8032 Ed25519 secret key (the 32-byte seed).
VRF_SECRET_KEY_SIZE = 32
#: ptLen: one compressed edwards25519 point.
VRF_PUBLIC_KEY_SIZE = 32
#: ptLen + cLen + qLen: Gamma (32) || c (16) || s (32).
VRF_PROOF_SIZE = 80
#: hLen of SHA-512: the VRF output beta.
VRF_OUTPUT_SIZE = 64


class Vrf(ABC):
    """ECVRF-EDWARDS25519-SHA512-TAI. Deterministic and synchronous.

    Error policy: :meth:`verify` raises :class:`~chhaya.VerificationError`
    (check ``"vrf"``) for *every* rejected input, malformed encodings
    included, so a caller has one exception to handle at the door to trust.
    :meth:`proof_to_hash` parses without verifying and raises
    :class:`~chhaya.DecodeError` for a malformed proof. A secret key of the
    wrong length raises :class:`~chhaya.CryptoError`.
    """

    name: str

    @abstractmethod
    def public_key(self, secret_key: bytes) -> bytes:
        """The 32-byte public key ``PK_string`` of a 32-byte secret key."""

    @abstractmethod
    def prove(self, secret_key: bytes, alpha: bytes) -> bytes:
        """The 80-byte proof ``pi`` that ``alpha`` maps to its output (RFC 9381 5.1)."""

    @abstractmethod
    def verify(self, public_key: bytes, alpha: bytes, proof: bytes) -> bytes:
        """Return the 64-byte output ``beta`` if ``proof`` is valid (RFC 9381 5.3).

        The public key is validated as in ECVRF_validate_key (RFC 9381
        5.4.5): it must decode, and it must not have small order.
        """

    @abstractmethod
    def proof_to_hash(self, proof: bytes) -> bytes:
        """The 64-byte output ``beta`` of a proof, without verifying it (RFC 9381 5.2).

        Only meaningful for a proof that :meth:`verify` accepted; on its own
        it proves nothing about whose output this is.
        """

    def prove_with_output(self, secret_key: bytes, alpha: bytes) -> tuple[bytes, bytes]:
        """``(proof, proof_to_hash(proof))``; a path may compute both at once."""
        proof = self.prove(secret_key, alpha)
        return proof, self.proof_to_hash(proof)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
