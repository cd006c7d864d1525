"""Shared material for the BLS tests: backends, vectors and hand-built bad points.

The points outside the prime-order subgroups are built from the curve
equations here, with py_ecc's field arithmetic only for the square root in
Fp2, and compressed by hand (flag bits and all), so that neither backend's
own encoder is trusted to produce them.
"""

from __future__ import annotations

import json
import random
from functools import cache
from pathlib import Path
from typing import Any

from py_ecc.bls.point_compression import modular_squareroot_in_FQ2
from py_ecc.fields import optimized_bls12_381_FQ as FQ
from py_ecc.fields import optimized_bls12_381_FQ2 as FQ2
from py_ecc.optimized_bls12_381.optimized_curve import (
    b,
    b2,
    curve_order,
    field_modulus,
    is_inf,
    is_on_curve,
    multiply,
)

from quorum.bls import BlsBackend, get_backend

VECTORS = Path(__file__).resolve().parents[2] / "vectors" / "bls"

BLST = get_backend("blst")
PY_ECC = get_backend("py_ecc")
BACKENDS = [BLST, PY_ECC]
BACKEND_IDS = [backend.name for backend in BACKENDS]

P = field_modulus
C_FLAG = 0x80  # compressed form
B_FLAG = 0x40  # the point at infinity
A_FLAG = 0x20  # the larger of the two y

G1_IDENTITY = bytes([C_FLAG | B_FLAG]) + bytes(47)
G2_IDENTITY = bytes([C_FLAG | B_FLAG]) + bytes(95)

Vector = dict[str, Any]


@cache
def eth2() -> dict[str, Any]:
    data = json.loads((VECTORS / "eth2.json").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    assert data["source"]
    return data


def vectors(section: str) -> list[Vector]:
    found = eth2()[section]
    assert isinstance(found, list)
    assert found
    return found


def vector_id(vector: Vector) -> str:
    return str(vector["name"])


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def rng_for(label: str) -> random.Random:
    return random.Random(f"quorum/bls/{label}")


def random_secret_keys(label: str, count: int, backend: BlsBackend = BLST) -> list[int]:
    """Secret keys from KeyGen on seeded random IKM (replayable)."""
    rng = rng_for(label)
    return [backend.key_gen(rng.randbytes(32)) for _ in range(count)]


def flip(data: bytes, index: int, bit: int = 0) -> bytes:
    out = bytearray(data)
    out[index] ^= 1 << bit
    return bytes(out)


# --- points outside the prime-order subgroups ---------------------------------


def _fp_sqrt(value: int) -> int | None:
    """A square root mod p (p = 3 mod 4), or None for a non-residue."""
    root = pow(value, (P + 1) // 4, P)
    return root if root * root % P == value % P else None


def compress_g1_by_hand(x: int, y: int) -> bytes:
    flags = C_FLAG | (A_FLAG if y > (P - 1) // 2 else 0)
    out = bytearray(x.to_bytes(48, "big"))
    out[0] |= flags
    return bytes(out)


def compress_g2_by_hand(x: tuple[int, int], y: tuple[int, int]) -> bytes:
    """x = x_re + x_im * u; the encoding is x_im || x_re, flags on the first byte."""
    (x_re, x_im), (y_re, y_im) = x, y
    sign_source = y_im if y_im else y_re
    flags = C_FLAG | (A_FLAG if sign_source > (P - 1) // 2 else 0)
    out = bytearray(x_im.to_bytes(48, "big") + x_re.to_bytes(48, "big"))
    out[0] |= flags
    return bytes(out)


@cache
def g1_outside_subgroup() -> tuple[bytes, tuple[int, int]]:
    """The first point (x, y) with x >= 1 on y^2 = x^3 + 4 (all such points are
    outside G1 but for a 1 / cofactor fraction), compressed, and its coordinates."""
    x = 1
    while (y := _fp_sqrt(x**3 + 4)) is None:
        x += 1
    return compress_g1_by_hand(x, y), (x, y)


@cache
def g1_off_curve() -> bytes:
    """A compressed x for which x^3 + 4 is not a square: no point at all."""
    x = 1
    while _fp_sqrt(x**3 + 4) is not None:
        x += 1
    return compress_g1_by_hand(x, 0)


@cache
def g2_outside_subgroup() -> tuple[bytes, tuple[tuple[int, int], tuple[int, int]]]:
    """The first point with x = n + u (n >= 1) on y^2 = x^3 + 4(1 + u), compressed."""
    n = 1
    while True:
        x = FQ2([n, 1])
        y = modular_squareroot_in_FQ2(x**3 + b2)
        if y is not None:
            break
        n += 1
    coords = ((n, 1), (int(y.coeffs[0]), int(y.coeffs[1])))
    return compress_g2_by_hand(*coords), coords


def g1_in_subgroup(x: int, y: int) -> bool:
    point = (FQ(x), FQ(y), FQ(1))
    assert is_on_curve(point, b)
    return bool(is_inf(multiply(point, curve_order)))


def g2_in_subgroup(x: tuple[int, int], y: tuple[int, int]) -> bool:
    point = (FQ2(list(x)), FQ2(list(y)), FQ2.one())
    assert is_on_curve(point, b2)
    return bool(is_inf(multiply(point, curve_order)))


#: (0, 2) and (0, -2) have order 3 on y^2 = x^3 + 4. With x = 0 and no
#: infinity flag, no decoder may read them as the identity either.
G1_ORDER_3 = [compress_g1_by_hand(0, 2), compress_g1_by_hand(0, P - 2)]
