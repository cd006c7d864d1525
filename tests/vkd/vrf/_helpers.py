"""Shared material for the VRF tests: both paths, the RFC vectors, odd points.

The small-order encodings are the eight canonical points of the 8-torsion
subgroup of edwards25519 (as listed by libsodium and curve25519-dalek) plus
the non-canonical spellings RFC 8032 decoding must refuse. The tests check
them against the reference arithmetic rather than trusting the list.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any

from vkd.vrf import FAST_VRF, REFERENCE_VRF, FastVrf, ReferenceVrf
from vkd.vrf import _reference as ref
from vkd.vrf import _suite as suite

VECTORS = Path(__file__).resolve().parents[2] / "vectors" / "vrf"

Vector = dict[str, Any]
VrfPath = FastVrf | ReferenceVrf

PATHS: list[VrfPath] = [FAST_VRF, REFERENCE_VRF]
PATH_IDS = ["fast", "reference"]

P = suite.FIELD_PRIME
Q = suite.GROUP_ORDER

#: The eight points of order dividing 8, canonically encoded.
SMALL_ORDER = [
    bytes.fromhex(h)
    for h in (
        "0100000000000000000000000000000000000000000000000000000000000000",  # identity
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # order 2
        "0000000000000000000000000000000000000000000000000000000000000000",  # order 4
        "0000000000000000000000000000000000000000000000000000000000000080",  # order 4
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",  # order 8
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",  # order 8
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",  # order 8
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",  # order 8
    )
]


def encode_y(y: int, sign: int = 0) -> bytes:
    """32 bytes holding ``y`` (any value below 2^255) and the sign bit, unchecked."""
    return (y | (sign << 255)).to_bytes(32, "little")


#: Encodings RFC 8032 5.1.3 refuses although a lax decoder would take them:
#: y >= p (non-canonical y of a real point) and the sign bit set on x = 0.
NON_CANONICAL = [
    encode_y(P),  # y = 0, of order 4
    encode_y(P + 1),  # y = 1, the identity
    encode_y(P + 3),  # y = 3, a point of large order
    encode_y(P + 3, 1),
    encode_y(1, 1),  # the identity with x = 0 "negative"
    encode_y(P - 1, 1),  # the point of order 2 with x = 0 "negative"
]

#: A y for which (y^2 - 1)/(d y^2 + 1) is not a square: no point at all.
NOT_ON_CURVE = [encode_y(2), encode_y(2, 1), encode_y(7)]


@cache
def load_vectors() -> tuple[Vector, ...]:
    data = json.loads((VECTORS / "rfc9381.json").read_text(encoding="utf-8"))
    assert data["source"].startswith("RFC 9381 Appendix B.3")
    assert len(data["vectors"]) == 3
    return tuple(data["vectors"])


def vector_id(vector: Vector) -> str:
    return str(vector["name"])


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def decode(encoded: bytes) -> ref.Point:
    point = ref.decode_point(encoded)
    assert point is not None
    return point


def secret_key(label: str) -> bytes:
    """A deterministic 32-byte secret key for tests."""
    return hashlib.sha256(b"chhaya/vrf-test/" + label.encode()).digest()


def forge_with_torsion(
    secret: bytes, alpha: bytes, gamma_torsion: bytes, key_torsion: bytes
) -> tuple[bytes, bytes]:
    """``(public_key, proof)``: a proof RFC 9381 accepts, with torsion added.

    The key is x*B + key_torsion and Gamma is x*H + gamma_torsion. The
    verifier's U and V then pick up -c*torsion, which depends on c only
    mod 8: guess it, commit, and retry until the challenge agrees (one try
    in eight). Such proofs are valid per the RFC, and beta is unchanged,
    because proof_to_hash multiplies Gamma by the cofactor first.
    """
    x_string, nonce_key = suite.expand_secret_key(secret)
    x = int.from_bytes(x_string, "little")
    t_y, t_g = decode(key_torsion), decode(gamma_torsion)
    public_key = ref.encode_point(ref.point_add(ref.base_mult(x), t_y))
    found = ref.encode_to_curve(public_key, alpha)
    assert found is not None
    h_point = found[0]
    h_string = ref.encode_point(h_point)
    gamma = ref.encode_point(ref.point_add(ref.scalar_mult(x, h_point), t_g))
    for attempt in range(256):
        k = int.from_bytes(suite.nonce_string(nonce_key, h_string + bytes([attempt])), "little")
        k %= Q
        k_b, k_h = ref.base_mult(k), ref.scalar_mult(k, h_point)
        for guess in range(8):
            u = ref.point_sub(k_b, ref.scalar_mult(guess, t_y))
            v = ref.point_sub(k_h, ref.scalar_mult(guess, t_g))
            c = suite.challenge(
                public_key, h_string, gamma, ref.encode_point(u), ref.encode_point(v)
            )
            if int.from_bytes(c, "little") % 8 == guess:
                s = (k + int.from_bytes(c, "little") * x) % Q
                return public_key, gamma + c + s.to_bytes(32, "little")
    raise AssertionError("no proof found")
