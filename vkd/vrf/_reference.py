"""The pure-Python reference path: edwards25519 arithmetic written from RFC 8032.

It exists to cross-check the libsodium path, and the fast path borrows its
point decoding for the parts libsodium refuses (hash-to-curve candidates,
points of small or mixed order). It is slow (milliseconds a proof) and not
constant time: never prove with it under a real directory key.

Points are in extended homogeneous coordinates (X, Y, Z, T) with
x = X/Z, y = Y/Z and x*y = T/Z (RFC 8032 5.1.4).
"""

from __future__ import annotations

from functools import cache

from chhaya import CryptoError, DecodeError, VerificationError
from chhaya.safety import ct_equal

from ._api import VRF_PUBLIC_KEY_SIZE, Vrf
from ._suite import (
    FIELD_PRIME,
    GROUP_ORDER,
    ProveTranscript,
    challenge,
    encode_to_curve_candidate,
    expand_secret_key,
    nonce_string,
    output_from,
    split_proof_untrusted,
)

__all__ = [
    "BASE",
    "IDENTITY",
    "MAX_COUNTER",
    "Point",
    "ReferenceVrf",
    "base_mult",
    "clear_cofactor",
    "decode_point",
    "encode_point",
    "encode_to_curve",
    "is_identity",
    "point_add",
    "point_double",
    "point_neg",
    "point_sub",
    "points_equal",
    "scalar_mult",
    "validate_key",
]

Point = tuple[int, int, int, int]

_P = FIELD_PRIME
#: The curve constant d = -121665/121666 of edwards25519.
_D = -121665 * pow(121666, -1, _P) % _P
_D2 = 2 * _D % _P
#: A square root of -1 mod p.
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)

IDENTITY: Point = (0, 1, 1, 0)
#: ctr is one byte (int_to_string(ctr, 1)), so try_and_increment stops after 255.
MAX_COUNTER = 255


def point_add(p: Point, q: Point) -> Point:
    """Complete addition on the twisted Edwards curve with a = -1 (RFC 8032 5.1.4)."""
    x1, y1, z1, t1 = p
    x2, y2, z2, t2 = q
    a = (y1 - x1) * (y2 - x2) % _P
    b = (y1 + x1) * (y2 + x2) % _P
    c = t1 * _D2 * t2 % _P
    d = 2 * z1 * z2 % _P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def point_double(p: Point) -> Point:
    x1, y1, z1, _ = p
    a = x1 * x1 % _P
    b = y1 * y1 % _P
    c = 2 * z1 * z1 % _P
    h = a + b
    e = h - (x1 + y1) * (x1 + y1)
    g = a - b
    f = c + g
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def point_neg(p: Point) -> Point:
    x, y, z, t = p
    return (-x % _P, y, z, -t % _P)


def point_sub(p: Point, q: Point) -> Point:
    return point_add(p, point_neg(q))


def points_equal(p: Point, q: Point) -> bool:
    x1, y1, z1, _ = p
    x2, y2, z2, _ = q
    return (x1 * z2 - x2 * z1) % _P == 0 and (y1 * z2 - y2 * z1) % _P == 0


def is_identity(p: Point) -> bool:
    return points_equal(p, IDENTITY)


def scalar_mult(n: int, p: Point) -> Point:
    """``n * p`` for any n >= 0, by double-and-add from the top bit."""
    result = IDENTITY
    for i in reversed(range(n.bit_length())):
        result = point_double(result)
        if (n >> i) & 1:
            result = point_add(result, p)
    return result


def clear_cofactor(p: Point) -> Point:
    """``8 * p``: the component of ``p`` in the prime-order subgroup, times 8."""
    return point_double(point_double(point_double(p)))


def encode_point(p: Point) -> bytes:
    """point_to_string: y with the sign (low bit) of x in bit 255 (RFC 8032 5.1.2)."""
    x, y, z, _ = p
    z_inv = pow(z, -1, _P)
    x = x * z_inv % _P
    y = y * z_inv % _P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def decode_point(encoded: bytes) -> Point | None:
    """string_to_point (RFC 8032 5.1.3), or None for anything that is not a point.

    Strict, as RFC 9381 requires: a y that is not reduced mod p, and the
    sign bit set on x = 0, are rejected, so every point has exactly one
    accepted encoding and ``encode_point(decode_point(s)) == s``.
    """
    if len(encoded) != 32:
        return None
    value = int.from_bytes(encoded, "little")
    sign = value >> 255
    y = value & ((1 << 255) - 1)
    if y >= _P:
        return None
    u = (y * y - 1) % _P
    v = (_D * y * y + 1) % _P
    # x = (u/v)^((p+3)/8), computed without an inversion.
    v3 = v * v * v % _P
    x = u * v3 * pow(u * v3 * v3 * v % _P, (_P - 5) // 8, _P) % _P
    vx2 = v * x * x % _P
    if vx2 == u:
        pass
    elif vx2 == (-u) % _P:
        x = x * _SQRT_M1 % _P
    else:
        return None
    if x == 0 and sign == 1:
        return None
    if x & 1 != sign:
        x = _P - x
    return (x, y, 1, x * y % _P)


def _base_point() -> Point:
    base = decode_point((4 * pow(5, -1, _P) % _P).to_bytes(32, "little"))
    assert base is not None
    return base


#: The base point B: y = 4/5, x even.
BASE: Point = _base_point()


@cache
def _base_powers() -> tuple[Point, ...]:
    """(2^i)*B for i < 253, so that multiples of B cost additions only."""
    powers = [BASE]
    for _ in range(252):
        powers.append(point_double(powers[-1]))
    return tuple(powers)


def base_mult(n: int) -> Point:
    """``n * B`` for any n >= 0."""
    n %= GROUP_ORDER
    result = IDENTITY
    for i, power in enumerate(_base_powers()):
        if (n >> i) & 1:
            result = point_add(result, power)
    return result


def validate_key(public_key: bytes) -> Point | None:
    """ECVRF_validate_key (RFC 9381 5.4.5): None unless the key decodes and 8*Y != O."""
    y = decode_point(public_key)
    if y is None or is_identity(clear_cofactor(y)):
        return None
    return y


def encode_to_curve(salt: bytes, alpha: bytes) -> tuple[Point, int] | None:
    """ECVRF_encode_to_curve_try_and_increment (RFC 9381 5.4.1.1): ``(H, ctr)``.

    H is cofactor times the first candidate that decodes, skipping any that
    lands on the identity. None if all 256 counters fail (probability about
    2^-256). Its running time depends on alpha, as the RFC warns for TAI.
    """
    for ctr in range(MAX_COUNTER + 1):
        candidate = decode_point(encode_to_curve_candidate(salt, alpha, ctr))
        if candidate is None:
            continue
        h = clear_cofactor(candidate)
        if not is_identity(h):
            return h, ctr
    return None


class ReferenceVrf(Vrf):
    """ECVRF-EDWARDS25519-SHA512-TAI in pure Python, step by step as RFC 9381 writes it."""

    name = "ecvrf-edwards25519-sha512-tai/python"

    def public_key(self, secret_key: bytes) -> bytes:
        x_string, _ = expand_secret_key(secret_key)
        return encode_point(base_mult(int.from_bytes(x_string, "little")))

    def prove(self, secret_key: bytes, alpha: bytes) -> bytes:
        return self.prove_transcript(secret_key, alpha).proof()

    def prove_transcript(self, secret_key: bytes, alpha: bytes) -> ProveTranscript:
        """ECVRF_prove (RFC 9381 5.1) with every intermediate value."""
        x_string, nonce_key = expand_secret_key(secret_key)
        x = int.from_bytes(x_string, "little")
        public_key = encode_point(base_mult(x))
        found = encode_to_curve(public_key, alpha)
        if found is None:
            raise CryptoError()
        h_point = found[0]
        h = encode_point(h_point)
        gamma = encode_point(scalar_mult(x, h_point))
        k_string = nonce_string(nonce_key, h)
        k = int.from_bytes(k_string, "little") % GROUP_ORDER
        u = encode_point(base_mult(k))
        v = encode_point(scalar_mult(k, h_point))
        c = challenge(public_key, h, gamma, u, v)
        s = (k + int.from_bytes(c, "little") * x) % GROUP_ORDER
        return ProveTranscript(public_key, h, gamma, k_string, u, v, c, s.to_bytes(32, "little"))

    def verify(self, public_key: bytes, alpha: bytes, proof: bytes) -> bytes:
        if len(public_key) != VRF_PUBLIC_KEY_SIZE:
            raise VerificationError("vrf", "public key has the wrong length")
        y = decode_point(public_key)
        if y is None:
            raise VerificationError("vrf", "public key is not a curve point")
        if is_identity(clear_cofactor(y)):
            raise VerificationError("vrf", "public key has small order")
        try:
            parts = split_proof_untrusted(proof)
        except DecodeError as exc:
            raise VerificationError("vrf", str(exc)) from None
        gamma = decode_point(parts.gamma)
        if gamma is None:
            raise VerificationError("vrf", "VRF proof: Gamma is not a curve point")
        found = encode_to_curve(public_key, alpha)
        if found is None:
            raise VerificationError("vrf", "encode_to_curve found no point")
        h = found[0]
        c = int.from_bytes(parts.c, "little")
        s = int.from_bytes(parts.s, "little")
        u = point_sub(base_mult(s), scalar_mult(c, y))
        v = point_sub(scalar_mult(s, h), scalar_mult(c, gamma))
        # Decoding is strict, so the received encodings of Y and Gamma are
        # exactly point_to_string(Y) and point_to_string(Gamma).
        expected = challenge(
            public_key, encode_point(h), parts.gamma, encode_point(u), encode_point(v)
        )
        if not ct_equal(expected, parts.c):
            raise VerificationError("vrf", "challenge does not match")
        return output_from(encode_point(clear_cofactor(gamma)))

    def proof_to_hash(self, proof: bytes) -> bytes:
        parts = split_proof_untrusted(proof)
        gamma = decode_point(parts.gamma)
        if gamma is None:
            raise DecodeError("VRF proof: Gamma is not a curve point")
        return output_from(encode_point(clear_cofactor(gamma)))
