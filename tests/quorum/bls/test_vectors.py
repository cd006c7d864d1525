"""Both BLS backends against the Ethereum consensus test vectors.

Every value comes from ``tests/vectors/bls/eth2.json``, which names its
sources (ethereum/consensus-spec-tests and ethereum/bls12-381-tests, with
commits): the same ciphersuite, ``BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_``.
"""

from __future__ import annotations

import pytest

from chhaya import DecodeError
from quorum.bls import BlsBackend

from ._helpers import BACKEND_IDS, BACKENDS, G1_IDENTITY, Vector, h, vector_id, vectors

SIGN = vectors("sign")
VERIFY = vectors("verify")
AGGREGATE = vectors("aggregate")
FAST_AGGREGATE_VERIFY = vectors("fast_aggregate_verify")
DESERIALIZATION_G1 = vectors("deserialization_G1")
DESERIALIZATION_G2 = vectors("deserialization_G2")

backends = pytest.mark.parametrize("backend", BACKENDS, ids=BACKEND_IDS)


def test_vector_file_covers_every_case() -> None:
    assert any(v["output"] is None for v in SIGN)
    assert {v["output"] for v in VERIFY} == {True, False}
    assert any(v["pubkey"] == G1_IDENTITY.hex() for v in VERIFY)
    assert {v["output"] for v in FAST_AGGREGATE_VERIFY} == {True, False}
    assert any(G1_IDENTITY.hex() in v["pubkeys"] for v in FAST_AGGREGATE_VERIFY)
    names = {v["name"] for v in DESERIALIZATION_G1} & {v["name"] for v in DESERIALIZATION_G2}
    assert {"deserialization_fails_not_in_curve", "deserialization_fails_too_few_bytes"} <= names
    assert any("not_in_G1" in v["name"] for v in DESERIALIZATION_G1)
    assert any("not_in_G2" in v["name"] for v in DESERIALIZATION_G2)


@backends
@pytest.mark.parametrize("vector", SIGN, ids=vector_id)
def test_sign(backend: BlsBackend, vector: Vector) -> None:
    sk = int(vector["privkey"], 16)
    message = h(vector["message"])
    if vector["output"] is None:
        with pytest.raises(ValueError, match="secret key"):
            backend.sign(sk, message)
        return
    signature = backend.sign(sk, message)
    assert signature == h(vector["output"])
    # Only the right public key verifies a known-good signature: this checks SkToPk.
    assert backend.verify(backend.sk_to_pk(sk), message, signature)


@backends
@pytest.mark.parametrize("vector", VERIFY, ids=vector_id)
def test_verify(backend: BlsBackend, vector: Vector) -> None:
    result = backend.verify(h(vector["pubkey"]), h(vector["message"]), h(vector["signature"]))
    assert result is vector["output"]


@backends
@pytest.mark.parametrize("vector", AGGREGATE, ids=vector_id)
def test_aggregate(backend: BlsBackend, vector: Vector) -> None:
    assert backend.aggregate([h(s) for s in vector["input"]]) == h(vector["output"])


@backends
@pytest.mark.parametrize("vector", FAST_AGGREGATE_VERIFY, ids=vector_id)
def test_fast_aggregate_verify(backend: BlsBackend, vector: Vector) -> None:
    public_keys = [h(pk) for pk in vector["pubkeys"]]
    message, signature = h(vector["message"]), h(vector["signature"])
    assert backend.fast_aggregate_verify(public_keys, message, signature) is vector["output"]


@backends
@pytest.mark.parametrize("vector", FAST_AGGREGATE_VERIFY, ids=vector_id)
def test_fast_aggregate_verify_parsed(backend: BlsBackend, vector: Vector) -> None:
    public_keys = [h(pk) for pk in vector["pubkeys"]]
    if G1_IDENTITY in public_keys:
        # The identity key never gets as far as a certificate's key cache.
        with pytest.raises(DecodeError):
            backend.parse_public_key_untrusted(G1_IDENTITY)
        return
    parsed = [backend.parse_public_key_untrusted(pk) for pk in public_keys]
    result = backend.fast_aggregate_verify_parsed(
        parsed, h(vector["message"]), h(vector["signature"])
    )
    assert result is vector["output"]


@backends
@pytest.mark.parametrize("vector", DESERIALIZATION_G1, ids=vector_id)
def test_deserialization_g1(backend: BlsBackend, vector: Vector) -> None:
    encoding = h(vector["encoding"])
    # Upstream accepts the identity as a point; KeyValidate rejects it as a key.
    valid_key = vector["output"] and encoding != G1_IDENTITY
    assert backend.key_validate(encoding) is valid_key
    if valid_key:
        assert backend.parse_public_key_untrusted(encoding).encoded == encoding
    else:
        with pytest.raises(DecodeError):
            backend.parse_public_key_untrusted(encoding)


@backends
@pytest.mark.parametrize("vector", DESERIALIZATION_G2, ids=vector_id)
def test_deserialization_g2(backend: BlsBackend, vector: Vector) -> None:
    encoding = h(vector["encoding"])
    if vector["output"]:
        assert backend.aggregate([encoding]) == encoding
    else:
        with pytest.raises(DecodeError):
            backend.aggregate([encoding])
        public_key = h(VERIFY[0]["pubkey"])
        assert backend.verify(public_key, h(VERIFY[0]["message"]), encoding) is False
