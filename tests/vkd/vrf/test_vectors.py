"""Both VRF paths against RFC 9381 Appendix B.3, examples 16 to 18.

Every value comes from ``tests/vectors/vrf/rfc9381.json``. Besides pi and
beta, the RFC prints the intermediate values of ``prove`` (x, the
try-and-increment counter, H, the nonce hash, U = k*B and V = k*H); both
paths are checked against each, so a failure names the step that diverged.
"""

from __future__ import annotations

import pytest

from chhaya import CryptoError
from vkd.vrf import (
    VRF_OUTPUT_SIZE,
    VRF_PROOF_SIZE,
    VRF_PUBLIC_KEY_SIZE,
    ProveTranscript,
)
from vkd.vrf import _reference as ref
from vkd.vrf import _suite as suite

from ._helpers import PATH_IDS, PATHS, Q, Vector, VrfPath, h, load_vectors, vector_id

VECTORS = load_vectors()

paths = pytest.mark.parametrize("path", PATHS, ids=PATH_IDS)
vectors = pytest.mark.parametrize("vector", VECTORS, ids=vector_id)


def test_vector_file() -> None:
    assert [v["name"] for v in VECTORS] == ["example 16", "example 17", "example 18"]
    # One example needs a second try-and-increment round: the loop is exercised.
    assert sorted(v["ctr"] for v in VECTORS) == [0, 0, 1]
    for v in VECTORS:
        assert len(h(v["pk"])) == VRF_PUBLIC_KEY_SIZE
        assert len(h(v["pi"])) == VRF_PROOF_SIZE
        assert len(h(v["beta"])) == VRF_OUTPUT_SIZE


@vectors
def test_secret_scalar(vector: Vector) -> None:
    x_string, _ = suite.expand_secret_key(h(vector["sk"]))
    assert x_string == h(vector["x"])


@vectors
def test_encode_to_curve_counter_and_point(vector: Vector) -> None:
    found = ref.encode_to_curve(h(vector["pk"]), h(vector["alpha"]))
    assert found is not None
    point, ctr = found
    assert ctr == vector["ctr"]
    assert ref.encode_point(point) == h(vector["h"])
    # H is in the prime-order subgroup.
    assert ref.is_identity(ref.scalar_mult(Q, point))


@paths
@vectors
def test_public_key(path: VrfPath, vector: Vector) -> None:
    assert path.public_key(h(vector["sk"])) == h(vector["pk"])


@paths
@vectors
def test_prove_intermediates(path: VrfPath, vector: Vector) -> None:
    transcript = path.prove_transcript(h(vector["sk"]), h(vector["alpha"]))
    assert transcript == ProveTranscript(
        public_key=h(vector["pk"]),
        h=h(vector["h"]),
        gamma=h(vector["pi"])[:32],
        k_string=h(vector["k"]),
        u=h(vector["u"]),
        v=h(vector["v"]),
        c=h(vector["pi"])[32:48],
        s=h(vector["pi"])[48:],
    )


@paths
@vectors
def test_prove(path: VrfPath, vector: Vector) -> None:
    assert path.prove(h(vector["sk"]), h(vector["alpha"])) == h(vector["pi"])


@paths
@vectors
def test_verify(path: VrfPath, vector: Vector) -> None:
    beta = path.verify(h(vector["pk"]), h(vector["alpha"]), h(vector["pi"]))
    assert beta == h(vector["beta"])


@paths
@vectors
def test_proof_to_hash(path: VrfPath, vector: Vector) -> None:
    assert path.proof_to_hash(h(vector["pi"])) == h(vector["beta"])


@paths
@pytest.mark.parametrize("length", [0, 31, 33, 64])
def test_secret_key_length(path: VrfPath, length: int) -> None:
    with pytest.raises(CryptoError):
        path.public_key(bytes(length))
    with pytest.raises(CryptoError):
        path.prove(bytes(length), b"alpha")
