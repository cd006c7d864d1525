"""The libsodium path and the pure-Python path agree on every input.

Random keys and inputs must give identical keys, proofs and outputs, and
each path must accept the other's proofs. Beyond honest proofs, the paths
must agree where libsodium cannot help: points of small or mixed order,
which RFC 9381 still accepts for Gamma and (mixed order) for the public key.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chhaya import DecodeError, VerificationError
from vkd.vrf import FAST_VRF, REFERENCE_VRF
from vkd.vrf import _fast as fast
from vkd.vrf import _reference as ref
from vkd.vrf import _suite as suite

from ._helpers import (
    NON_CANONICAL,
    NOT_ON_CURVE,
    PATH_IDS,
    PATHS,
    SMALL_ORDER,
    Q,
    VrfPath,
    decode,
    forge_with_torsion,
    secret_key,
)

paths = pytest.mark.parametrize("path", PATHS, ids=PATH_IDS)

ORDER_2 = SMALL_ORDER[1]
ORDER_8 = SMALL_ORDER[4]
IDENTITY = SMALL_ORDER[0]


@settings(max_examples=50)
@given(sk=st.binary(min_size=32, max_size=32), alpha=st.binary(max_size=64))
def test_paths_agree_on_honest_proofs(sk: bytes, alpha: bytes) -> None:
    public_key = FAST_VRF.public_key(sk)
    assert REFERENCE_VRF.public_key(sk) == public_key
    proof = FAST_VRF.prove(sk, alpha)
    assert REFERENCE_VRF.prove(sk, alpha) == proof
    beta = FAST_VRF.verify(public_key, alpha, proof)
    assert REFERENCE_VRF.verify(public_key, alpha, proof) == beta
    assert FAST_VRF.proof_to_hash(proof) == beta
    assert REFERENCE_VRF.proof_to_hash(proof) == beta


def test_torsion_points_are_what_the_list_says() -> None:
    orders = []
    for encoded in SMALL_ORDER:
        point = decode(encoded)
        assert ref.encode_point(point) == encoded
        order = next(n for n in (1, 2, 4, 8) if ref.is_identity(ref.scalar_mult(n, point)))
        orders.append(order)
    assert orders == [1, 2, 4, 4, 8, 8, 8, 8]


@pytest.mark.parametrize(
    ("gamma_torsion", "key_torsion"),
    [(ORDER_8, IDENTITY), (ORDER_2, IDENTITY), (IDENTITY, ORDER_8), (ORDER_8, ORDER_2)],
    ids=["gamma-order-8", "gamma-order-2", "key-order-8", "both"],
)
def test_mixed_order_points_are_accepted_alike(gamma_torsion: bytes, key_torsion: bytes) -> None:
    """RFC 9381 accepts these proofs; libsodium alone would refuse the points."""
    sk = secret_key("torsion")
    alpha = b"mixed order"
    public_key, proof = forge_with_torsion(sk, alpha, gamma_torsion, key_torsion)
    # Gamma's torsion does not reach beta (cofactor * Gamma); the key's
    # changes H (the key salts hash-to-curve), hence beta.
    expected = suite.output_from(ref.encode_point(ref.clear_cofactor(decode(proof[:32]))))
    if key_torsion == IDENTITY:
        assert expected == FAST_VRF.proof_to_hash(FAST_VRF.prove(sk, alpha))
    for path in PATHS:
        assert path.verify(public_key, alpha, proof) == expected
        assert path.proof_to_hash(proof) == expected


@paths
def test_honest_proof_under_a_mixed_order_key_fails(path: VrfPath) -> None:
    sk = secret_key("mixed key")
    alpha = b"alpha"
    proof = FAST_VRF.prove(sk, alpha)
    twisted = ref.encode_point(ref.point_add(decode(FAST_VRF.public_key(sk)), decode(ORDER_8)))
    with pytest.raises(VerificationError):
        path.verify(twisted, alpha, proof)


@paths
@pytest.mark.parametrize("gamma", SMALL_ORDER, ids=range(len(SMALL_ORDER)))
def test_small_order_gamma(path: VrfPath, gamma: bytes) -> None:
    """Gamma of small order decodes (proof_to_hash works) but never verifies here."""
    sk = secret_key("small gamma")
    proof = FAST_VRF.prove(sk, b"a")
    forged = gamma + proof[32:]
    assert path.proof_to_hash(forged) == suite.output_from(IDENTITY)
    with pytest.raises(VerificationError):
        path.verify(FAST_VRF.public_key(sk), b"a", forged)


def _proofs() -> st.SearchStrategy[bytes]:
    """80-byte strings that often get past the length and s checks."""
    reduced_s = st.integers(0, Q - 1).map(lambda s: s.to_bytes(32, "little"))
    return st.one_of(
        st.binary(min_size=80, max_size=80),
        st.tuples(
            st.binary(min_size=32, max_size=32), st.binary(min_size=16, max_size=16), reduced_s
        ).map(b"".join),
        st.tuples(st.sampled_from(SMALL_ORDER), st.binary(min_size=16, max_size=16), reduced_s).map(
            b"".join
        ),
    )


def _outcome(run: Callable[[], bytes]) -> tuple[str, bytes]:
    """What a call did: returned bytes, or which of the two allowed errors it raised."""
    try:
        result = run()
    except VerificationError:
        return ("VerificationError", b"")
    except DecodeError:
        return ("DecodeError", b"")
    return ("ok", result)


@settings(max_examples=60)
@given(proof=_proofs())
def test_proof_to_hash_agrees_on_any_proof(proof: bytes) -> None:
    fast_result = _outcome(lambda: FAST_VRF.proof_to_hash(proof))
    assert fast_result == _outcome(lambda: REFERENCE_VRF.proof_to_hash(proof))
    assert fast_result[0] != "VerificationError"


@settings(max_examples=40)
@given(
    public_key=st.one_of(
        st.binary(min_size=32, max_size=32),
        st.sampled_from(SMALL_ORDER),
        st.just(FAST_VRF.public_key(secret_key("agree"))),
    ),
    alpha=st.binary(max_size=16),
    proof=_proofs(),
)
def test_verify_agrees_on_any_input(public_key: bytes, alpha: bytes, proof: bytes) -> None:
    fast_result = _outcome(lambda: FAST_VRF.verify(public_key, alpha, proof))
    assert fast_result == _outcome(lambda: REFERENCE_VRF.verify(public_key, alpha, proof))
    assert fast_result[0] != "DecodeError"


@settings(max_examples=50)
@given(
    encoded=st.one_of(
        st.binary(min_size=32, max_size=32),
        st.sampled_from(SMALL_ORDER + NON_CANONICAL + NOT_ON_CURVE),
        st.tuples(st.integers(1, Q - 1), st.sampled_from(SMALL_ORDER)).map(
            lambda nt: ref.encode_point(ref.point_add(ref.base_mult(nt[0]), decode(nt[1])))
        ),
    ),
    n=st.one_of(st.integers(0, Q - 1), st.sampled_from([0, 1, 8, Q - 1])),
)
def test_fast_scalar_mult_matches_reference(encoded: bytes, n: int) -> None:
    """The fast path's one multiplication helper is exact on every encoding."""
    expected_point = ref.decode_point(encoded)
    result = fast._mult(n.to_bytes(32, "little"), encoded)
    if expected_point is None:
        assert result is None
    else:
        assert result == ref.encode_point(ref.scalar_mult(n, expected_point))


def test_prove_with_output_matches_proof_to_hash() -> None:
    from vkd.vrf import FAST_VRF, REFERENCE_VRF

    for i in range(5):
        sk = bytes([i + 1]) * 32
        alpha = b"alpha-%d" % i
        for vrf in (FAST_VRF, REFERENCE_VRF):
            proof, beta = vrf.prove_with_output(sk, alpha)
            assert proof == FAST_VRF.prove(sk, alpha)
            assert beta == FAST_VRF.proof_to_hash(proof)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64), st.binary(min_size=32, max_size=32))
def test_fast_encode_to_curve_matches_the_reference(alpha: bytes, salt: bytes) -> None:
    from vkd.vrf import _fast, _reference

    found = _reference.encode_to_curve(salt, alpha)
    expected = None if found is None else _reference.encode_point(found[0])
    assert _fast._encode_to_curve(salt, alpha) == expected
