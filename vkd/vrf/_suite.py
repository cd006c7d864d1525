"""ECVRF-EDWARDS25519-SHA512-TAI: the suite's constants and its hash-only steps.

RFC 9381 section 5.5 fixes the suite; the steps here (secret key expansion,
the try-and-increment hash input, nonce and challenge generation, proof
decoding and proof_to_hash) need no curve arithmetic, so both paths share
them and can differ only in how they add and multiply points.

Integers are little-endian throughout (RFC 8032 5.1.2), points are 32-byte
RFC 8032 encodings, and q is the prime order of the base point.
"""

from __future__ import annotations

import hashlib
from typing import NamedTuple

from chhaya import CryptoError, DecodeError

from ._api import VRF_PROOF_SIZE, VRF_SECRET_KEY_SIZE

__all__ = [
    "COFACTOR",
    "C_LEN",
    "FIELD_PRIME",
    "GROUP_ORDER",
    "IDENTITY_ENCODING",
    "PT_LEN",
    "Q_LEN",
    "SUITE_STRING",
    "ProofParts",
    "ProveTranscript",
    "challenge",
    "encode_to_curve_candidate",
    "expand_secret_key",
    "nonce_string",
    "output_from",
    "split_proof_untrusted",
]

SUITE_STRING = b"\x03"
#: p, the field prime of edwards25519.
FIELD_PRIME = 2**255 - 19
#: q (RFC 8032's L), the prime order of the base point B.
GROUP_ORDER = 2**252 + 27742317777372353535851937790883648493
COFACTOR = 8
PT_LEN = 32
C_LEN = 16
Q_LEN = 32
#: point_to_string of the identity element (0, 1).
IDENTITY_ENCODING = (1).to_bytes(PT_LEN, "little")

_ENCODE_TO_CURVE_FRONT = b"\x01"
_CHALLENGE_FRONT = b"\x02"
_PROOF_TO_HASH_FRONT = b"\x03"
_BACK = b"\x00"


class ProofParts(NamedTuple):
    """A proof split into its fields; Gamma is still an unchecked encoding."""

    gamma: bytes
    c: bytes
    s: bytes


class ProveTranscript(NamedTuple):
    """Every value ``prove`` computes, for checking against the RFC's examples."""

    public_key: bytes
    h: bytes
    gamma: bytes
    k_string: bytes
    u: bytes
    v: bytes
    c: bytes
    s: bytes

    def proof(self) -> bytes:
        return self.gamma + self.c + self.s


def expand_secret_key(secret_key: bytes) -> tuple[bytes, bytes]:
    """``(x_string, nonce_key)`` as RFC 8032 5.1.5 derives them from SHA-512(SK).

    ``x_string`` is the clamped first half: the secret scalar x, unreduced,
    as RFC 9381's examples print it. ``nonce_key`` is the second half, which
    keys nonce generation (RFC 9381 5.4.2.2 step 2). A key of the wrong
    length raises CryptoError, as the Ed25519 provider's ``from_seed`` does.
    """
    if len(secret_key) != VRF_SECRET_KEY_SIZE:
        raise CryptoError()
    digest = hashlib.sha512(secret_key).digest()
    x = bytearray(digest[:32])
    x[0] &= 0xF8
    x[31] &= 0x7F
    x[31] |= 0x40
    return bytes(x), digest[32:]


def encode_to_curve_candidate(salt: bytes, alpha: bytes, ctr: int) -> bytes:
    """The 32 bytes try_and_increment (RFC 9381 5.4.1.1) tries to decode at ``ctr``.

    For this suite the salt is the public key, and
    interpret_hash_value_as_a_point reads the first 32 bytes of the hash.
    """
    hash_string = hashlib.sha512(
        SUITE_STRING + _ENCODE_TO_CURVE_FRONT + salt + alpha + ctr.to_bytes(1, "little") + _BACK
    ).digest()
    return hash_string[:PT_LEN]


def nonce_string(nonce_key: bytes, h_string: bytes) -> bytes:
    """k_string of RFC 9381 5.4.2.2 (RFC 8032 style); the nonce is k_string mod q."""
    return hashlib.sha512(nonce_key + h_string).digest()


def challenge(y: bytes, h: bytes, gamma: bytes, u: bytes, v: bytes) -> bytes:
    """The cLen-byte challenge string of RFC 9381 5.4.3 over Y, H, Gamma, U, V."""
    digest = hashlib.sha512(
        SUITE_STRING + _CHALLENGE_FRONT + y + h + gamma + u + v + _BACK
    ).digest()
    return digest[:C_LEN]


def output_from(cofactor_gamma: bytes) -> bytes:
    """beta_string of RFC 9381 5.2 from point_to_string(cofactor * Gamma)."""
    return hashlib.sha512(SUITE_STRING + _PROOF_TO_HASH_FRONT + cofactor_gamma + _BACK).digest()


def split_proof_untrusted(proof: bytes) -> ProofParts:
    """ECVRF_decode_proof (RFC 9381 5.4.4) up to decoding Gamma, which needs arithmetic.

    Rejects a proof of the wrong length and a non-canonical s (s >= q): an
    unreduced s would give a second encoding of the same proof.
    """
    if len(proof) != VRF_PROOF_SIZE:
        raise DecodeError(f"VRF proof: {len(proof)} bytes, expected {VRF_PROOF_SIZE}")
    gamma = proof[:PT_LEN]
    c = proof[PT_LEN : PT_LEN + C_LEN]
    s = proof[PT_LEN + C_LEN :]
    if int.from_bytes(s, "little") >= GROUP_ORDER:
        raise DecodeError("VRF proof: s is not reduced mod q")
    return ProofParts(gamma, c, s)
