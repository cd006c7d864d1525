"""Bad proofs, keys and inputs are rejected, and only with the errors promised.

Policy: ``verify`` raises VerificationError (check "vrf") for every invalid
input, malformed encodings included; ``proof_to_hash`` raises DecodeError
for a malformed proof. Nothing else may escape, whatever the bytes.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chhaya import DecodeError, VerificationError
from vkd.vrf import FAST_VRF, VRF_PROOF_SIZE

from ._helpers import (
    NON_CANONICAL,
    NOT_ON_CURVE,
    PATH_IDS,
    PATHS,
    SMALL_ORDER,
    Q,
    VrfPath,
    h,
    load_vectors,
    secret_key,
)

paths = pytest.mark.parametrize("path", PATHS, ids=PATH_IDS)

SK = secret_key("tamper")
ALPHA = b"alice@example.org\x00\x00\x00\x01"
PK = FAST_VRF.public_key(SK)
PROOF = FAST_VRF.prove(SK, ALPHA)
BETA = FAST_VRF.verify(PK, ALPHA, PROOF)


def _rejected(path: VrfPath, public_key: bytes, alpha: bytes, proof: bytes) -> None:
    with pytest.raises(VerificationError) as caught:
        path.verify(public_key, alpha, proof)
    assert caught.value.check == "vrf"


@paths
def test_every_bit_flip_is_rejected(path: VrfPath) -> None:
    for bit in range(VRF_PROOF_SIZE * 8):
        tampered = bytearray(PROOF)
        tampered[bit // 8] ^= 1 << (bit % 8)
        _rejected(path, PK, ALPHA, bytes(tampered))


def test_every_bit_flip_of_the_rfc_proofs_is_rejected() -> None:
    """The fast path only: three times the flips above would cost the reference ~5 s."""
    for vector in load_vectors():
        proof = h(vector["pi"])
        for bit in range(VRF_PROOF_SIZE * 8):
            tampered = bytearray(proof)
            tampered[bit // 8] ^= 1 << (bit % 8)
            _rejected(FAST_VRF, h(vector["pk"]), h(vector["alpha"]), bytes(tampered))


@paths
def test_wrong_public_key(path: VrfPath) -> None:
    other = FAST_VRF.public_key(secret_key("someone else"))
    _rejected(path, other, ALPHA, PROOF)


@paths
def test_wrong_alpha(path: VrfPath) -> None:
    _rejected(path, PK, ALPHA + b"\x00", PROOF)
    _rejected(path, PK, ALPHA[:-1] + b"\x02", PROOF)
    _rejected(path, PK, b"", PROOF)


@paths
def test_proof_for_another_alpha(path: VrfPath) -> None:
    _rejected(path, PK, ALPHA, FAST_VRF.prove(SK, b"bob@example.org"))


@paths
@pytest.mark.parametrize("public_key", SMALL_ORDER, ids=range(len(SMALL_ORDER)))
def test_small_order_public_key(path: VrfPath, public_key: bytes) -> None:
    _rejected(path, public_key, ALPHA, PROOF)


@paths
@pytest.mark.parametrize(
    "public_key", NON_CANONICAL + NOT_ON_CURVE, ids=range(len(NON_CANONICAL + NOT_ON_CURVE))
)
def test_invalid_public_key(path: VrfPath, public_key: bytes) -> None:
    _rejected(path, public_key, ALPHA, PROOF)


@paths
@pytest.mark.parametrize("length", [0, 31, 33, 64])
def test_public_key_length(path: VrfPath, length: int) -> None:
    _rejected(path, (PK * 3)[:length], ALPHA, PROOF)


@paths
@pytest.mark.parametrize(
    "gamma", NON_CANONICAL + NOT_ON_CURVE, ids=range(len(NON_CANONICAL + NOT_ON_CURVE))
)
def test_invalid_gamma(path: VrfPath, gamma: bytes) -> None:
    proof = gamma + PROOF[32:]
    _rejected(path, PK, ALPHA, proof)
    with pytest.raises(DecodeError):
        path.proof_to_hash(proof)


@paths
def test_non_canonical_s(path: VrfPath) -> None:
    s = int.from_bytes(PROOF[48:], "little")
    for bad in (s + Q, Q, 2**256 - 1):
        proof = PROOF[:48] + bad.to_bytes(32, "little")
        _rejected(path, PK, ALPHA, proof)
        with pytest.raises(DecodeError):
            path.proof_to_hash(proof)


@paths
@pytest.mark.parametrize("length", [0, 1, 79, 81, 160])
def test_proof_length(path: VrfPath, length: int) -> None:
    proof = (PROOF * 3)[:length]
    _rejected(path, PK, ALPHA, proof)
    with pytest.raises(DecodeError):
        path.proof_to_hash(proof)


@paths
def test_honest_proof_still_verifies(path: VrfPath) -> None:
    assert path.verify(PK, ALPHA, PROOF) == BETA
    assert path.proof_to_hash(PROOF) == BETA


@settings(max_examples=200)
@given(
    public_key=st.one_of(st.binary(max_size=40), st.just(PK)),
    alpha=st.binary(max_size=40),
    proof=st.binary(max_size=100),
)
def test_arbitrary_bytes_only_raise_verification_error(
    public_key: bytes, alpha: bytes, proof: bytes
) -> None:
    try:
        beta = FAST_VRF.verify(public_key, alpha, proof)
    except VerificationError as exc:
        check = exc.check
    else:
        check = "passed"
        assert beta == FAST_VRF.proof_to_hash(proof)
    assert check in {"vrf", "passed"}


@settings(max_examples=200)
@given(proof=st.binary(max_size=100))
def test_arbitrary_bytes_to_proof_to_hash_only_raise_decode_error(proof: bytes) -> None:
    try:
        beta = FAST_VRF.proof_to_hash(proof)
    except DecodeError:
        return
    assert len(proof) == VRF_PROOF_SIZE
    assert len(beta) == 64
