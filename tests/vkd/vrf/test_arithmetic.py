"""The reference edwards25519 arithmetic: encoding, decoding and group laws.

Checked against RFC 8032 (the base point, the Ed25519 public keys of
Section 7.1) and, for multiples of the base point, against libsodium.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.bindings import crypto_scalarmult_ed25519_base_noclamp

from vkd.vrf import _reference as ref

from ._helpers import NON_CANONICAL, NOT_ON_CURVE, PATH_IDS, PATHS, SMALL_ORDER, Q, VrfPath, h

ED25519_VECTORS = json.loads(
    (Path(__file__).resolve().parents[2] / "vectors" / "ed25519" / "rfc8032.json").read_text(
        encoding="utf-8"
    )
)["vectors"]

scalars = st.integers(0, Q - 1)


def test_base_point() -> None:
    assert ref.encode_point(ref.BASE) == h("58" + "66" * 31)
    assert ref.is_identity(ref.scalar_mult(Q, ref.BASE))
    assert not ref.is_identity(ref.BASE)
    assert ref.is_identity(ref.base_mult(Q))


@pytest.mark.parametrize("encoded", NON_CANONICAL + NOT_ON_CURVE)
def test_decode_rejects(encoded: bytes) -> None:
    assert ref.decode_point(encoded) is None


@pytest.mark.parametrize("length", [0, 31, 33])
def test_decode_rejects_wrong_length(length: int) -> None:
    assert ref.decode_point(bytes(length)) is None


@settings(max_examples=300)
@given(encoded=st.one_of(st.binary(min_size=32, max_size=32), st.sampled_from(SMALL_ORDER)))
def test_decode_encode_round_trip(encoded: bytes) -> None:
    point = ref.decode_point(encoded)
    if point is not None:
        assert ref.encode_point(point) == encoded


@settings(max_examples=50)
@given(a=scalars, b=scalars)
def test_group_laws(a: int, b: int) -> None:
    p, r = ref.base_mult(a), ref.base_mult(b)
    assert ref.points_equal(ref.point_add(p, r), ref.base_mult(a + b))
    assert ref.points_equal(ref.point_double(p), ref.point_add(p, p))
    assert ref.points_equal(ref.point_sub(p, r), ref.base_mult(a - b))
    assert ref.points_equal(ref.scalar_mult(b, p), ref.base_mult(a * b))
    assert ref.is_identity(ref.point_add(p, ref.point_neg(p)))


@settings(max_examples=50)
@given(n=st.integers(1, Q - 1))
def test_base_mult_matches_libsodium(n: int) -> None:
    expected = crypto_scalarmult_ed25519_base_noclamp(n.to_bytes(32, "little"))
    assert ref.encode_point(ref.base_mult(n)) == expected
    assert ref.encode_point(ref.scalar_mult(n, ref.BASE)) == expected


@pytest.mark.parametrize("path", PATHS, ids=PATH_IDS)
def test_public_keys_are_ed25519_public_keys(path: VrfPath) -> None:
    """RFC 9381 derives the key as RFC 8032 does: the Ed25519 vectors apply."""
    for vector in ED25519_VECTORS:
        assert path.public_key(h(vector["secret_key"])) == h(vector["public_key"])
