"""Hypothesis tests: arbitrary bytes never crash a BLS backend.

Checks return False and parsers raise only DecodeError, for any input: random
bytes, and valid encodings with a bit flipped, cut short or extended (the
inputs most likely to get deep into a decoder). py_ecc runs fewer examples.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chhaya import DecodeError
from quorum.bls import BLS_PUBLIC_KEY_SIZE, BLS_SIGNATURE_SIZE, BlsBackend

from ._helpers import (
    BLST,
    G1_IDENTITY,
    G1_ORDER_3,
    G2_IDENTITY,
    PY_ECC,
    g1_outside_subgroup,
    g2_outside_subgroup,
    random_secret_keys,
)

SK = random_secret_keys("properties", 1)[0]
PK = BLST.sk_to_pk(SK)
MESSAGE = b"certificate digest"
SIGNATURE = BLST.sign(SK, MESSAGE)
PROOF = BLST.pop_prove(SK)

PUBLIC_KEY_SEEDS = [PK, G1_IDENTITY, g1_outside_subgroup()[0], *G1_ORDER_3]
SIGNATURE_SEEDS = [SIGNATURE, PROOF, G2_IDENTITY, g2_outside_subgroup()[0]]


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    data = bytearray(draw(st.sampled_from(seeds)))
    kind = draw(st.sampled_from(["flip", "overwrite", "truncate", "extend"]))
    if kind == "flip":
        data[draw(st.integers(0, len(data) - 1))] ^= 1 << draw(st.integers(0, 7))
    elif kind == "overwrite":
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    elif kind == "truncate":
        del data[draw(st.integers(0, len(data) - 1)) :]
    else:
        data += draw(st.binary(min_size=1, max_size=8))
    return bytes(data)


def inputs(size: int, seeds: list[bytes]) -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=2 * size),
        st.binary(min_size=size, max_size=size),
        # The compression flag set, infinity flag clear: past the cheapest checks.
        st.binary(min_size=size - 1, max_size=size - 1).map(lambda b: bytes([0x80 | 0x1F]) + b),
        mutated(seeds),
    )


PUBLIC_KEYS = inputs(BLS_PUBLIC_KEY_SIZE, PUBLIC_KEY_SEEDS)
SIGNATURES = inputs(BLS_SIGNATURE_SIZE, SIGNATURE_SEEDS)

blst_examples = settings(max_examples=300)
py_ecc_examples = settings(max_examples=25)


def parses_or_decode_error(backend: BlsBackend, data: bytes) -> None:
    try:
        parsed = backend.parse_public_key_untrusted(data)
    except DecodeError:
        assert backend.key_validate(data) is False
        return
    assert parsed.encoded == data
    assert backend.key_validate(data) is True


def aggregates_or_decode_error(backend: BlsBackend, data: bytes) -> None:
    try:
        aggregate = backend.aggregate([data])
    except DecodeError:
        return
    assert aggregate == data  # a valid signature's encoding is canonical


def checks_are_false_for_public_key(backend: BlsBackend, data: bytes) -> None:
    # Valid keys other than PK turn up (mutations), but none verifies PK's signature.
    assert backend.verify(data, MESSAGE, SIGNATURE) is (data == PK)
    assert backend.pop_verify(data, PROOF) is (data == PK)


def checks_are_false_for_signature(backend: BlsBackend, data: bytes) -> None:
    assert backend.verify(PK, MESSAGE, data) is (data == SIGNATURE)
    assert backend.pop_verify(PK, data) is (data == PROOF)
    assert backend.fast_aggregate_verify([PK], MESSAGE, data) is (data == SIGNATURE)


def test_round_trip_seeds() -> None:
    for backend in (BLST, PY_ECC):
        assert backend.parse_public_key_untrusted(PK).encoded == PK
        assert backend.aggregate([SIGNATURE]) == SIGNATURE


@blst_examples
@given(ikm=st.binary(min_size=32, max_size=64))
def test_public_key_round_trip_blst(ikm: bytes) -> None:
    pk = BLST.sk_to_pk(BLST.key_gen(ikm))
    parsed = BLST.parse_public_key_untrusted(pk)
    assert parsed.encoded == pk
    assert parsed.point.compress() == pk  # type: ignore[attr-defined]


@py_ecc_examples
@given(ikm=st.binary(min_size=32, max_size=64))
def test_public_key_round_trip_py_ecc(ikm: bytes) -> None:
    pk = PY_ECC.sk_to_pk(PY_ECC.key_gen(ikm))
    assert PY_ECC.parse_public_key_untrusted(pk).encoded == pk


@blst_examples
@given(data=PUBLIC_KEYS)
def test_arbitrary_public_key_bytes_blst(data: bytes) -> None:
    parses_or_decode_error(BLST, data)
    checks_are_false_for_public_key(BLST, data)


@blst_examples
@given(data=SIGNATURES)
def test_arbitrary_signature_bytes_blst(data: bytes) -> None:
    aggregates_or_decode_error(BLST, data)
    checks_are_false_for_signature(BLST, data)


@py_ecc_examples
@given(data=PUBLIC_KEYS)
def test_arbitrary_public_key_bytes_py_ecc(data: bytes) -> None:
    parses_or_decode_error(PY_ECC, data)
    if not PY_ECC.key_validate(data):  # a valid key would cost two pairings
        assert PY_ECC.verify(data, MESSAGE, SIGNATURE) is False
        assert PY_ECC.pop_verify(data, PROOF) is False


@py_ecc_examples
@given(data=SIGNATURES)
def test_arbitrary_signature_bytes_py_ecc(data: bytes) -> None:
    try:
        PY_ECC.aggregate([data])
    except DecodeError:
        # Rejected before any pairing: cheap to check the verifiers too.
        assert PY_ECC.verify(PK, MESSAGE, data) is False
        assert PY_ECC.pop_verify(PK, data) is False
        assert PY_ECC.fast_aggregate_verify([PK], MESSAGE, data) is False


@pytest.mark.parametrize(
    "call",
    [
        lambda b, d: b.key_validate(d),
        lambda b, d: b.verify(d, MESSAGE, SIGNATURE),
        lambda b, d: b.verify(PK, MESSAGE, d),
        lambda b, d: b.pop_verify(d, PROOF),
        lambda b, d: b.fast_aggregate_verify([d], MESSAGE, SIGNATURE),
    ],
)
@pytest.mark.parametrize("backend", [BLST, PY_ECC], ids=["blst", "py_ecc"])
def test_checks_return_a_bool_for_empty_input(
    backend: BlsBackend, call: Callable[[BlsBackend, bytes], object]
) -> None:
    assert call(backend, b"") is False
