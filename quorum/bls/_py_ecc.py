"""The pure-Python reference BLS backend: py_ecc's G2ProofOfPossession.

It is slow (a pairing check takes a good fraction of a second) and exists to
cross-check the blst backend. The ciphersuite operations are py_ecc's own;
this module adds what py_ecc leaves out or does differently:

- lengths are checked before decoding (py_ecc reads a public key as an
  integer, so a leading zero byte would otherwise go unnoticed);
- ``aggregate`` checks that every signature is in the G2 subgroup, as the
  blst backend does (py_ecc's Aggregate only decompresses);
- parsed public keys are py_ecc points, validated once (decompression plus
  a subgroup check by multiplication by r) and summed without re-validation.

Importing py_ecc loads ``socket`` and ``secrets`` through eth_utils, so
:mod:`quorum.bls` imports this module only on demand.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from eth_typing import BLSPubkey, BLSSignature
from eth_utils.exceptions import ValidationError
from py_ecc.bls.ciphersuites import G2ProofOfPossession
from py_ecc.bls.g2_primitives import (
    G1_to_pubkey,
    pubkey_to_G1,
    signature_to_G2,
    subgroup_check,
)
from py_ecc.bls.typing import G1Uncompressed
from py_ecc.optimized_bls12_381.optimized_curve import Z1, add, is_inf

from chhaya import DecodeError

from ._api import BLS_PUBLIC_KEY_SIZE, BLS_SIGNATURE_SIZE, BlsBackend, ParsedPublicKey
from ._common import as_bytes, require_secret_key
from ._keygen import key_gen

__all__ = ["PyEccBackend"]

#: What py_ecc raises for malformed input.
_PY_ECC_ERRORS = (ValidationError, ValueError, AssertionError)

_Suite = G2ProofOfPossession


def _public_key_point(public_key: bytes) -> G1Uncompressed | None:
    """KeyValidate plus decompression: the point, or None if ``public_key`` is invalid."""
    if len(public_key) != BLS_PUBLIC_KEY_SIZE:
        return None
    try:
        point = pubkey_to_G1(BLSPubkey(as_bytes(public_key)))
    except _PY_ECC_ERRORS:
        return None
    if is_inf(point) or not subgroup_check(point):
        return None
    return point


def _signature_is_valid(signature: bytes) -> bool:
    """True if ``signature`` encodes a point of the G2 subgroup (the identity included)."""
    if len(signature) != BLS_SIGNATURE_SIZE:
        return False
    try:
        point = signature_to_G2(BLSSignature(as_bytes(signature)))
    except _PY_ECC_ERRORS:
        return False
    return bool(subgroup_check(point))


class PyEccBackend(BlsBackend):
    """BLS12-381 minimal-pubkey-size with proofs of possession, on py_ecc."""

    name = "py_ecc"

    def key_gen(self, ikm: bytes, key_info: bytes = b"") -> int:
        return key_gen(ikm, key_info)

    def sk_to_pk(self, sk: int) -> bytes:
        return bytes(_Suite.SkToPk(require_secret_key(sk)))

    def sign(self, sk: int, message: bytes) -> bytes:
        return bytes(_Suite.Sign(require_secret_key(sk), as_bytes(message)))

    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        if len(public_key) != BLS_PUBLIC_KEY_SIZE or len(signature) != BLS_SIGNATURE_SIZE:
            return False
        try:
            return _Suite.Verify(
                BLSPubkey(as_bytes(public_key)),
                as_bytes(message),
                BLSSignature(as_bytes(signature)),
            )
        except _PY_ECC_ERRORS:
            return False

    def aggregate(self, signatures: Sequence[bytes]) -> bytes:
        if not signatures:
            raise DecodeError("no signatures to aggregate")
        encoded = [BLSSignature(as_bytes(s)) for s in signatures]
        if not all(_signature_is_valid(s) for s in encoded):
            raise DecodeError("invalid BLS signature")
        return bytes(_Suite.Aggregate(encoded))

    def fast_aggregate_verify(
        self, public_keys: Sequence[bytes], message: bytes, signature: bytes
    ) -> bool:
        if not public_keys or len(signature) != BLS_SIGNATURE_SIZE:
            return False
        if any(len(pk) != BLS_PUBLIC_KEY_SIZE for pk in public_keys):
            return False
        try:
            return bool(
                _Suite.FastAggregateVerify(
                    [BLSPubkey(as_bytes(pk)) for pk in public_keys],
                    as_bytes(message),
                    BLSSignature(as_bytes(signature)),
                )
            )
        except _PY_ECC_ERRORS:
            return False

    def pop_prove(self, sk: int) -> bytes:
        return bytes(_Suite.PopProve(require_secret_key(sk)))

    def pop_verify(self, public_key: bytes, proof: bytes) -> bool:
        if len(public_key) != BLS_PUBLIC_KEY_SIZE or len(proof) != BLS_SIGNATURE_SIZE:
            return False
        try:
            return _Suite.PopVerify(BLSPubkey(as_bytes(public_key)), BLSSignature(as_bytes(proof)))
        except _PY_ECC_ERRORS:
            return False

    def key_validate(self, public_key: bytes) -> bool:
        return _public_key_point(public_key) is not None

    def parse_public_key_untrusted(self, public_key: bytes) -> ParsedPublicKey:
        point = _public_key_point(public_key)
        if point is None:
            raise DecodeError("invalid BLS public key")
        return ParsedPublicKey(as_bytes(public_key), point)

    def fast_aggregate_verify_parsed(
        self, public_keys: Sequence[ParsedPublicKey], message: bytes, signature: bytes
    ) -> bool:
        if not public_keys:
            return False
        total = Z1
        try:
            for pk in public_keys:
                total = add(total, cast(G1Uncompressed, pk.point))
        except (TypeError, AttributeError, IndexError):
            raise ValueError("public keys parsed by another BLS backend") from None
        if is_inf(total):
            # Keys that cancel out; py_ecc's Verify would reject the identity key too.
            return False
        return self.verify(bytes(G1_to_pubkey(total)), message, signature)
