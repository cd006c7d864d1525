"""The fast BLS backend: blst through pyblst.

pyblst exposes blst's group operations and pairing rather than its
signature API, so the ciphersuite is assembled here: Sign is ``H(m) * sk``
in G2, and Verify checks ``e(g1, sig) == e(pk, H(m))`` with two Miller loops
and one final exponentiation.

Point validation: ``uncompress`` (pyblst 0.3.x) rejects bad lengths, bad flag
bits, coordinates not below p, points off the curve and points outside the
prime-order subgroup (it runs ``blst_p1_in_g1`` / ``blst_p2_in_g2``); the
tests pin that behaviour. It accepts the identity, which public keys reject
here. pyblst raises ValueError for bad encodings and TypeError for anything
that is not exactly ``bytes``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pyblst import BlstP1Element, BlstP2Element, final_verify, miller_loop

from chhaya import DecodeError

from ._api import (
    BLS_DST_POP,
    BLS_DST_SIG,
    BLS_PUBLIC_KEY_SIZE,
    BLS_SIGNATURE_SIZE,
    BlsBackend,
    ParsedPublicKey,
)
from ._common import as_bytes, require_secret_key
from ._keygen import key_gen

__all__ = ["BlstBackend"]

#: The standard generator of G1, compressed.
_G1_GENERATOR = BlstP1Element.uncompress(
    bytes.fromhex(
        "97f1d3a73197d7942695638c4fa9ac0fc3688c4f9774b905a14e3a3f171bac58"
        "6c55e83ff97a1aeffb3af00adb22c6bb"
    )
)
_P1_IDENTITY = BlstP1Element()


def _public_key_point(public_key: bytes) -> Any | None:
    """KeyValidate plus decompression: the point, or None if ``public_key`` is invalid."""
    if len(public_key) != BLS_PUBLIC_KEY_SIZE:
        return None
    try:
        point = BlstP1Element.uncompress(as_bytes(public_key))
    except ValueError:
        return None
    if point == _P1_IDENTITY:
        return None
    return point


def _signature_point(signature: bytes) -> Any | None:
    """The G2 point of ``signature``, or None if it is not a subgroup point's encoding."""
    if len(signature) != BLS_SIGNATURE_SIZE:
        return None
    try:
        return BlstP2Element.uncompress(as_bytes(signature))
    except ValueError:
        return None


def _core_verify(public_key: Any, message: bytes, signature: Any, dst: bytes) -> bool:
    """``e(g1, signature) == e(public_key, H(message))``, for validated points."""
    message_point = BlstP2Element.hash_to_group(as_bytes(message), dst)
    return bool(
        final_verify(miller_loop(_G1_GENERATOR, signature), miller_loop(public_key, message_point))
    )


class BlstBackend(BlsBackend):
    """BLS12-381 minimal-pubkey-size with proofs of possession, on blst."""

    name = "blst"

    def key_gen(self, ikm: bytes, key_info: bytes = b"") -> int:
        return key_gen(ikm, key_info)

    def sk_to_pk(self, sk: int) -> bytes:
        encoded: bytes = _G1_GENERATOR.scalar_mul(require_secret_key(sk)).compress()
        return encoded

    def sign(self, sk: int, message: bytes) -> bytes:
        return self._sign(sk, message, BLS_DST_SIG)

    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        pk = _public_key_point(public_key)
        sig = _signature_point(signature)
        if pk is None or sig is None:
            return False
        return _core_verify(pk, message, sig, BLS_DST_SIG)

    def aggregate(self, signatures: Sequence[bytes]) -> bytes:
        if not signatures:
            raise DecodeError("no signatures to aggregate")
        total = BlstP2Element()
        for signature in signatures:
            point = _signature_point(signature)
            if point is None:
                raise DecodeError("invalid BLS signature")
            total = total + point
        encoded: bytes = total.compress()
        return encoded

    def fast_aggregate_verify(
        self, public_keys: Sequence[bytes], message: bytes, signature: bytes
    ) -> bool:
        points = []
        for public_key in public_keys:
            point = _public_key_point(public_key)
            if point is None:
                return False
            points.append(point)
        return self._fast_aggregate_verify_points(points, message, signature)

    def pop_prove(self, sk: int) -> bytes:
        return self._sign(sk, self.sk_to_pk(sk), BLS_DST_POP)

    def pop_verify(self, public_key: bytes, proof: bytes) -> bool:
        pk = _public_key_point(public_key)
        sig = _signature_point(proof)
        if pk is None or sig is None:
            return False
        return _core_verify(pk, as_bytes(public_key), sig, BLS_DST_POP)

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
        # The hot path of certificate verification: keys were validated when
        # parsed, so what remains is the sum and one pairing check.
        return self._fast_aggregate_verify_points(
            [pk.point for pk in public_keys], message, signature
        )

    @staticmethod
    def _sign(sk: int, message: bytes, dst: bytes) -> bytes:
        point = BlstP2Element.hash_to_group(as_bytes(message), dst)
        encoded: bytes = point.scalar_mul(require_secret_key(sk)).compress()
        return encoded

    @staticmethod
    def _fast_aggregate_verify_points(
        points: Sequence[object], message: bytes, signature: bytes
    ) -> bool:
        if not points:
            return False
        sig = _signature_point(signature)
        if sig is None:
            return False
        total = _P1_IDENTITY
        try:
            for point in points:
                total = total + point
        except TypeError:
            raise ValueError("public keys parsed by another BLS backend") from None
        # The draft's CoreVerify runs KeyValidate on the aggregate key as well:
        # keys that cancel out (pk and -pk) must not make the identity
        # signature valid.
        if total == _P1_IDENTITY:
            return False
        return _core_verify(total, message, sig, BLS_DST_SIG)
