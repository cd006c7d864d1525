"""Public-key and signature validation, the rogue-key attack, backend selection.

Bad points are built by hand (see ``_helpers``): on the curve but outside the
prime-order subgroup, off the curve, the identity, and points of order 3.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from pyblst import BlstP1Element, BlstP2Element

from chhaya import DecodeError
from quorum.bls import (
    BACKEND_ENV_VAR,
    BLS_DST_POP,
    CURVE_ORDER,
    BlsBackend,
    BlstBackend,
    PyEccBackend,
    default_backend,
    get_backend,
)

from ._helpers import (
    BACKEND_IDS,
    BACKENDS,
    BLST,
    G1_IDENTITY,
    G1_ORDER_3,
    G2_IDENTITY,
    PY_ECC,
    flip,
    g1_in_subgroup,
    g1_off_curve,
    g1_outside_subgroup,
    g2_in_subgroup,
    g2_outside_subgroup,
    random_secret_keys,
)

backends = pytest.mark.parametrize("backend", BACKENDS, ids=BACKEND_IDS)

SK, OTHER_SK = random_secret_keys("validation", 2)
PK, OTHER_PK = BLST.sk_to_pk(SK), BLST.sk_to_pk(OTHER_SK)
MESSAGE = b"head 42"
SIGNATURE = BLST.sign(SK, MESSAGE)
PROOF = BLST.pop_prove(SK)

G1_OUTSIDE = g1_outside_subgroup()[0]
G2_OUTSIDE = g2_outside_subgroup()[0]

BAD_PUBLIC_KEYS = {
    "identity": G1_IDENTITY,
    "outside-subgroup": G1_OUTSIDE,
    "off-curve": g1_off_curve(),
    "order-3": G1_ORDER_3[0],
    "order-3-neg": G1_ORDER_3[1],
    "no-compression-flag": bytes([PK[0] & 0x7F]) + PK[1:],
    "infinity-flag": bytes([PK[0] | 0x40]) + PK[1:],
    "short": PK[:-1],
    "long": PK + b"\x00",
    "leading-zero": b"\x00" + PK,
    "empty": b"",
    "signature": SIGNATURE,
}
BAD_SIGNATURES = {
    "outside-subgroup": G2_OUTSIDE,
    "no-compression-flag": bytes([SIGNATURE[0] & 0x7F]) + SIGNATURE[1:],
    "short": SIGNATURE[:-1],
    "long": SIGNATURE + b"\x00",
    "leading-zero": b"\x00" + SIGNATURE,
    "public-key": PK,
}


# --- the hand-built points, and what pyblst does with them ----------------------


def test_hand_built_points_are_on_the_curve_but_outside_the_subgroups() -> None:
    _, (x, y) = g1_outside_subgroup()
    assert not g1_in_subgroup(x, y)
    _, (x2, y2) = g2_outside_subgroup()
    assert not g2_in_subgroup(x2, y2)


def test_pyblst_uncompress_checks_the_subgroup() -> None:
    # pyblst runs blst_p1_in_g1 / blst_p2_in_g2 when decompressing; the
    # backend relies on it, so this pins it.
    with pytest.raises(ValueError, match="NOT_IN_GROUP"):
        BlstP1Element.uncompress(G1_OUTSIDE)
    with pytest.raises(ValueError, match="NOT_IN_GROUP"):
        BlstP2Element.uncompress(G2_OUTSIDE)
    with pytest.raises(ValueError, match="NOT_ON_CURVE"):
        BlstP1Element.uncompress(g1_off_curve())


def test_pyblst_uncompress_accepts_the_identity() -> None:
    # ...but not the identity check: the backend adds that for public keys.
    assert BlstP1Element.uncompress(G1_IDENTITY) == BlstP1Element()
    assert BlstP2Element.uncompress(G2_IDENTITY) == BlstP2Element()


# --- public keys -----------------------------------------------------------------


@backends
@pytest.mark.parametrize("name", list(BAD_PUBLIC_KEYS))
def test_bad_public_keys_are_rejected_everywhere(backend: BlsBackend, name: str) -> None:
    bad = BAD_PUBLIC_KEYS[name]
    assert backend.key_validate(bad) is False
    with pytest.raises(DecodeError):
        backend.parse_public_key_untrusted(bad)
    # None of these reach a pairing, so py_ecc stays quick here.
    assert backend.verify(bad, MESSAGE, SIGNATURE) is False
    assert backend.pop_verify(bad, PROOF) is False
    assert backend.fast_aggregate_verify([PK, bad], MESSAGE, SIGNATURE) is False


@backends
def test_good_public_key(backend: BlsBackend) -> None:
    assert backend.key_validate(PK)
    parsed = backend.parse_public_key_untrusted(PK)
    assert parsed.encoded == PK
    assert backend.fast_aggregate_verify_parsed([parsed], MESSAGE, SIGNATURE)


def test_keys_that_cancel_out_do_not_validate_the_identity_signature() -> None:
    # pk + (-pk) is the identity, and e(g1, O) == e(O, H(m)): without the
    # draft's KeyValidate on the aggregate key, anyone holding two such
    # (individually valid) keys could "co-sign" everything.
    negated = (-BlstP1Element.uncompress(PK)).compress()
    for backend in BACKENDS:
        assert backend.key_validate(negated)
        assert backend.fast_aggregate_verify([PK, negated], MESSAGE, G2_IDENTITY) is False
        parsed = [backend.parse_public_key_untrusted(pk) for pk in (PK, negated)]
        assert backend.fast_aggregate_verify_parsed(parsed, MESSAGE, G2_IDENTITY) is False


# --- signatures ------------------------------------------------------------------


@backends
@pytest.mark.parametrize("name", list(BAD_SIGNATURES))
def test_bad_signatures_are_rejected(backend: BlsBackend, name: str) -> None:
    bad = BAD_SIGNATURES[name]
    assert backend.verify(PK, MESSAGE, bad) is False
    assert backend.pop_verify(PK, bad) is False
    assert backend.fast_aggregate_verify([PK], MESSAGE, bad) is False
    parsed = [backend.parse_public_key_untrusted(PK)]
    assert backend.fast_aggregate_verify_parsed(parsed, MESSAGE, bad) is False
    with pytest.raises(DecodeError):
        backend.aggregate([SIGNATURE, bad])


@backends
def test_identity_signature_fails_verification(backend: BlsBackend) -> None:
    # A valid encoding of a subgroup point; only the pairing check rejects it.
    assert backend.aggregate([G2_IDENTITY]) == G2_IDENTITY
    assert backend.verify(PK, MESSAGE, G2_IDENTITY) is False


def test_identity_signature_fails_every_blst_check() -> None:
    assert BLST.pop_verify(PK, G2_IDENTITY) is False
    assert BLST.fast_aggregate_verify([PK, OTHER_PK], MESSAGE, G2_IDENTITY) is False
    # Adding the identity changes nothing.
    assert BLST.aggregate([SIGNATURE, G2_IDENTITY]) == SIGNATURE


def test_blst_rejects_tampered_signatures() -> None:
    for index in range(0, 96, 7):
        for bit in (0, 5):
            tampered = flip(SIGNATURE, index, bit)
            assert BLST.verify(PK, MESSAGE, tampered) is False


@backends
def test_empty_inputs(backend: BlsBackend) -> None:
    assert backend.fast_aggregate_verify([], MESSAGE, SIGNATURE) is False
    assert backend.fast_aggregate_verify_parsed([], MESSAGE, SIGNATURE) is False
    with pytest.raises(DecodeError):
        backend.aggregate([])


@backends
@pytest.mark.parametrize("sk", [0, CURVE_ORDER, CURVE_ORDER + 1, -1, True])
def test_secret_key_out_of_range(backend: BlsBackend, sk: int) -> None:
    with pytest.raises(ValueError, match="secret key"):
        backend.sk_to_pk(sk)
    with pytest.raises(ValueError, match="secret key"):
        backend.sign(sk, MESSAGE)
    with pytest.raises(ValueError, match="secret key"):
        backend.pop_prove(sk)


def test_bytes_like_inputs() -> None:
    assert BLST.verify(bytearray(PK), memoryview(MESSAGE), bytearray(SIGNATURE))  # type: ignore[arg-type]
    assert BLST.aggregate([bytearray(SIGNATURE)]) == SIGNATURE  # type: ignore[list-item]


# --- the rogue-key attack ----------------------------------------------------------


def rogue_key(victim_pk: bytes, x: int) -> bytes:
    """pk_a = g1 * x - pk_victim: the attacker knows the discrete log of
    pk_a + pk_victim (it is x) but not that of pk_a."""
    g1_x = BlstP1Element.uncompress(BLST.sk_to_pk(x))
    encoded: bytes = (g1_x + -BlstP1Element.uncompress(victim_pk)).compress()
    return encoded


@backends
def test_rogue_key_attack_needs_proofs_of_possession(backend: BlsBackend) -> None:
    x = random_secret_keys("attacker", 1)[0]
    attacker_pk = rogue_key(PK, x)
    assert backend.key_validate(attacker_pk)  # a perfectly valid point
    forged = BLST.sign(x, MESSAGE)  # H(m) * x, made without the victim's key
    # FastAggregateVerify alone accepts it as "signed by victim and attacker".
    assert backend.fast_aggregate_verify([PK, attacker_pk], MESSAGE, forged)
    # The attacker cannot prove possession of attacker_pk. The proofs it can make:
    # one for g1 * x (its real key) ...
    assert backend.pop_verify(attacker_pk, BLST.pop_prove(x)) is False
    # ... and the same trick on the PoP hash, which needs the victim's PoP
    # signature over *attacker_pk*, which does not exist.
    if backend is BLST:
        tricks = [
            BlstP2Element.hash_to_group(attacker_pk, BLS_DST_POP).scalar_mul(x).compress(),
            BLST.sign(x, attacker_pk),
            BLST.aggregate([BLST.pop_prove(x), BLST.pop_prove(OTHER_SK)]),
        ]
        for proof in tricks:
            assert BLST.pop_verify(attacker_pk, proof) is False


# --- the cached-key path equals the bytes path ---------------------------------


def test_parsed_path_equals_bytes_path_blst() -> None:
    sks = random_secret_keys("parsed", 5)
    pks = [BLST.sk_to_pk(sk) for sk in sks]
    parsed = [BLST.parse_public_key_untrusted(pk) for pk in pks]
    aggregate = BLST.aggregate([BLST.sign(sk, MESSAGE) for sk in sks])
    cases = [
        (slice(None), MESSAGE, aggregate),
        (slice(None), MESSAGE + b"x", aggregate),
        (slice(0, 4), MESSAGE, aggregate),
        (slice(None), MESSAGE, flip(aggregate, 95)),
        (slice(None), MESSAGE, G2_IDENTITY),
        (slice(0, 1), MESSAGE, BLST.sign(sks[0], MESSAGE)),
        (slice(None), MESSAGE, b""),
    ]
    results = []
    for keys, message, signature in cases:
        by_bytes = BLST.fast_aggregate_verify(pks[keys], message, signature)
        by_parsed = BLST.fast_aggregate_verify_parsed(parsed[keys], message, signature)
        assert by_bytes is by_parsed
        results.append(by_bytes)
    assert results == [True, False, False, False, False, True, False]


def test_parsed_path_equals_bytes_path_py_ecc() -> None:
    pks = [PK, OTHER_PK]
    aggregate = BLST.aggregate([SIGNATURE, BLST.sign(OTHER_SK, MESSAGE)])
    parsed = [PY_ECC.parse_public_key_untrusted(pk) for pk in pks]
    assert PY_ECC.fast_aggregate_verify_parsed(parsed, MESSAGE, aggregate)
    assert not PY_ECC.fast_aggregate_verify_parsed(parsed[:1], MESSAGE, aggregate)
    assert parsed[0].encoded == BLST.parse_public_key_untrusted(PK).encoded


def test_parsed_keys_belong_to_their_backend() -> None:
    blst_keys = [BLST.parse_public_key_untrusted(PK)]
    py_ecc_keys = [PY_ECC.parse_public_key_untrusted(PK)]
    with pytest.raises(ValueError, match="another BLS backend"):
        BLST.fast_aggregate_verify_parsed(py_ecc_keys, MESSAGE, SIGNATURE)
    with pytest.raises(ValueError, match="another BLS backend"):
        PY_ECC.fast_aggregate_verify_parsed(blst_keys, MESSAGE, SIGNATURE)


# --- choosing a backend ------------------------------------------------------------


def test_get_backend() -> None:
    assert isinstance(get_backend("blst"), BlstBackend)
    assert isinstance(get_backend("py_ecc"), PyEccBackend)
    assert get_backend("blst") is get_backend("blst")
    with pytest.raises(ValueError, match="unknown BLS backend 'openssl'"):
        get_backend("openssl")


def test_default_backend_is_blst() -> None:
    assert default_backend({}).name == "blst"
    assert default_backend({BACKEND_ENV_VAR: ""}).name == "blst"
    assert default_backend({BACKEND_ENV_VAR: "blst"}).name == "blst"
    assert default_backend({"OTHER": "py_ecc"}).name == "blst"


def test_environment_forces_the_reference_backend() -> None:
    assert isinstance(default_backend({BACKEND_ENV_VAR: "py_ecc"}), PyEccBackend)


@pytest.mark.parametrize("value", ["PY_ECC", "py-ecc", "fast", " blst"])
def test_unknown_backend_name_is_an_error(value: str) -> None:
    with pytest.raises(ValueError, match=re.escape(f"CHHAYA_BLS_BACKEND={value!r}")):
        default_backend({BACKEND_ENV_VAR: value})


def test_importing_quorum_bls_does_not_load_py_ecc() -> None:
    # py_ecc loads socket and secrets (through eth_utils), which the sans-IO
    # core must not pull in just by being imported.
    code = (
        "import sys, quorum.bls\n"
        "print(sorted(m for m in ('py_ecc', 'socket', 'secrets') if m in sys.modules))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert proc.stdout.strip() == "[]"
