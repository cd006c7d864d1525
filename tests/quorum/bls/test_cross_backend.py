"""Cross-backend tests: what one BLS backend makes, the other accepts.

Keys come from KeyGen on seeded random IKM, so a failure can be replayed.
py_ecc needs a good fraction of a second per pairing, so each test does only
a few py_ecc operations.
"""

from __future__ import annotations

import pytest
from py_ecc.bls.ciphersuites import G2ProofOfPossession

from quorum.bls import CURVE_ORDER, BlsBackend, key_gen

from ._helpers import BLST, PY_ECC, random_secret_keys, rng_for

PAIRS = [(BLST, PY_ECC), (PY_ECC, BLST)]
PAIR_IDS = ["blst-to-py_ecc", "py_ecc-to-blst"]

SECRET_KEYS = random_secret_keys("cross", 3)
MESSAGES = [b"", b"epoch 7 head", rng_for("cross-message").randbytes(300)]


def test_key_gen_matches_py_ecc() -> None:
    rng = rng_for("keygen")
    cases = [(bytes(32), b""), (b"\xff" * 32, b"witness"), (rng.randbytes(64), rng.randbytes(9))]
    cases += [(rng.randbytes(32 + i), b"") for i in range(5)]
    for ikm, key_info in cases:
        sk = key_gen(ikm, key_info)
        assert 0 < sk < CURVE_ORDER
        assert sk == G2ProofOfPossession.KeyGen(ikm, key_info)
        assert BLST.key_gen(ikm, key_info) == PY_ECC.key_gen(ikm, key_info) == sk


def test_key_gen_depends_on_key_info() -> None:
    ikm = rng_for("keygen-info").randbytes(32)
    assert key_gen(ikm) != key_gen(ikm, b"\x00")


@pytest.mark.parametrize("short", [0, 1, 31])
def test_key_gen_needs_32_bytes_of_ikm(short: int) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        key_gen(bytes(short))


def test_public_keys_agree() -> None:
    for sk in [*SECRET_KEYS, 1, CURVE_ORDER - 1]:
        assert BLST.sk_to_pk(sk) == PY_ECC.sk_to_pk(sk)


@pytest.mark.parametrize(("signer", "verifier"), PAIRS, ids=PAIR_IDS)
def test_signatures_verify_in_the_other_backend(signer: BlsBackend, verifier: BlsBackend) -> None:
    for sk, message in zip(SECRET_KEYS, MESSAGES, strict=True):
        pk = signer.sk_to_pk(sk)
        signature = signer.sign(sk, message)
        assert verifier.verify(pk, message, signature)
        assert not BLST.verify(pk, message + b"!", signature)


def test_signatures_are_identical() -> None:
    # BLS signatures are deterministic: equal bytes, not just mutual acceptance.
    sk, message = SECRET_KEYS[0], MESSAGES[1]
    assert BLST.sign(sk, message) == PY_ECC.sign(sk, message)


@pytest.mark.parametrize(("maker", "verifier"), PAIRS, ids=PAIR_IDS)
def test_aggregates_verify_in_the_other_backend(maker: BlsBackend, verifier: BlsBackend) -> None:
    message = MESSAGES[1]
    public_keys = [BLST.sk_to_pk(sk) for sk in SECRET_KEYS]
    # Partial signatures come from blst (fast); the aggregation is the maker's.
    aggregate = maker.aggregate([BLST.sign(sk, message) for sk in SECRET_KEYS])
    assert verifier.fast_aggregate_verify(public_keys, message, aggregate)
    parsed = [verifier.parse_public_key_untrusted(pk) for pk in public_keys]
    assert verifier.fast_aggregate_verify_parsed(parsed, message, aggregate)
    assert not BLST.fast_aggregate_verify(public_keys[:2], message, aggregate)


def test_aggregates_are_identical() -> None:
    signatures = [BLST.sign(sk, MESSAGES[0]) for sk in SECRET_KEYS]
    assert BLST.aggregate(signatures) == PY_ECC.aggregate(signatures)


@pytest.mark.parametrize(("prover", "verifier"), PAIRS, ids=PAIR_IDS)
def test_proofs_of_possession_verify_in_the_other_backend(
    prover: BlsBackend, verifier: BlsBackend
) -> None:
    sk = SECRET_KEYS[1]
    pk = prover.sk_to_pk(sk)
    proof = prover.pop_prove(sk)
    assert verifier.pop_verify(pk, proof)
    assert proof == (PY_ECC if prover is BLST else BLST).pop_prove(sk)
    # A proof of possession is no signature over the key bytes, and back.
    assert not BLST.verify(pk, pk, proof)
    assert not BLST.pop_verify(pk, BLST.sign(sk, pk))
