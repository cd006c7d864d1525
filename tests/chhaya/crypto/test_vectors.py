"""Known-answer tests against published vectors.

Every value checked here comes from ``tests/vectors/<area>/*.json``; each file
names its exact public source (RFC section, or repository, path, commit and
test case). Nothing in those files was produced by the code under test.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from kyber_py.ml_kem import ML_KEM_1024

from chhaya import CryptoError
from chhaya.crypto import (
    FAST,
    REFERENCE,
    Aes256Gcm,
    ChaCha20Poly1305Aead,
    CryptoSuite,
    ReferenceKem,
    hkdf,
    hkdf_expand,
    hkdf_extract,
)

VECTORS = Path(__file__).parents[2] / "vectors"

Vector = dict[str, Any]

SUITES = [FAST, REFERENCE]
SUITE_IDS = [suite.name for suite in SUITES]


@cache
def load(area: str, name: str) -> dict[str, Any]:
    """Load ``tests/vectors/<area>/<name>.json``; every file must cite its source."""
    data = json.loads((VECTORS / area / f"{name}.json").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    assert data["source"], f"{area}/{name}.json has no source"
    assert data["vectors"], f"{area}/{name}.json has no vectors"
    return data


def vectors(area: str, name: str) -> list[Vector]:
    found = load(area, name)["vectors"]
    assert isinstance(found, list)
    return found


def vector_id(vector: Vector) -> str:
    return str(vector["name"])


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def flip(data: bytes, index: int) -> bytes:
    """``data`` with one bit of byte ``index`` inverted."""
    out = bytearray(data)
    out[index] ^= 0x01
    return bytes(out)


def reference_kem() -> ReferenceKem:
    kem = REFERENCE.kem
    assert isinstance(kem, ReferenceKem)
    return kem


# --- ML-KEM-1024 (FIPS 203) ---------------------------------------------------

MLKEM = vectors("mlkem", "mlkem1024")


def mlkem_seed(vector: Vector) -> bytes:
    """The 64-byte d || z seed, from 'seed' or from separate 'd' and 'z'."""
    seed = h(vector["seed"]) if "seed" in vector else h(vector["d"]) + h(vector["z"])
    assert len(seed) == 64
    return seed


def has_seed(vector: Vector) -> bool:
    return "seed" in vector or "d" in vector


MLKEM_SEEDED = [v for v in MLKEM if has_seed(v)]
MLKEM_SEEDED_DK = [v for v in MLKEM_SEEDED if "dk" in v]
MLKEM_SEEDED_CT = [v for v in MLKEM_SEEDED if "c" in v]
MLKEM_ENCAPS = [v for v in MLKEM if "m" in v]
MLKEM_EXPANDED_DK_CT = [v for v in MLKEM if "dk" in v and "c" in v]
MLKEM_REJECTION = [v for v in MLKEM if v.get("implicit_rejection")]
MLKEM_VALID_CT = [v for v in MLKEM_SEEDED_CT if not v.get("implicit_rejection")]
MLKEM_BAD_EK = load("mlkem", "mlkem1024")["invalid_encapsulation_keys"]


def test_mlkem_vector_file_covers_every_operation() -> None:
    assert len(MLKEM_SEEDED_DK) >= 2
    assert len(MLKEM_ENCAPS) >= 2
    assert len(MLKEM_SEEDED_CT) >= 2
    assert MLKEM_REJECTION
    assert MLKEM_VALID_CT
    assert MLKEM_BAD_EK


@pytest.mark.parametrize("suite", SUITES, ids=SUITE_IDS)
@pytest.mark.parametrize("vector", MLKEM_SEEDED, ids=vector_id)
def test_mlkem_keygen_public_key(suite: CryptoSuite, vector: Vector) -> None:
    seed = mlkem_seed(vector)
    key = suite.kem.from_seed(seed)
    assert key.public_key == h(vector["ek"])
    assert key.seed == seed


@pytest.mark.parametrize("vector", MLKEM_SEEDED_DK, ids=vector_id)
def test_mlkem_keygen_expanded_key_kyber_py(vector: Vector) -> None:
    seed = mlkem_seed(vector)
    ek, dk = ML_KEM_1024._keygen_internal(seed[:32], seed[32:])
    assert bytes(ek) == h(vector["ek"])
    assert bytes(dk) == h(vector["dk"])


@pytest.mark.parametrize("suite", SUITES, ids=SUITE_IDS)
@pytest.mark.parametrize("vector", MLKEM_SEEDED_CT, ids=vector_id)
def test_mlkem_decapsulate(suite: CryptoSuite, vector: Vector) -> None:
    key = suite.kem.from_seed(mlkem_seed(vector))
    assert key.decapsulate(h(vector["c"])) == h(vector["K"])


@pytest.mark.parametrize("vector", MLKEM_REJECTION, ids=vector_id)
def test_mlkem_implicit_rejection_key_is_j_of_z_and_c(vector: Vector) -> None:
    """FIPS 203 Algorithm 18: a rejected ciphertext yields K = J(z || c)."""
    z = mlkem_seed(vector)[32:]
    assert hashlib.shake_256(z + h(vector["c"])).digest(32) == h(vector["K"])


@pytest.mark.parametrize("vector", MLKEM_ENCAPS, ids=vector_id)
def test_mlkem_encapsulate_deterministic(vector: Vector) -> None:
    shared, ciphertext = reference_kem().encapsulate_deterministic(h(vector["ek"]), h(vector["m"]))
    assert shared == h(vector["K"])
    assert ciphertext == h(vector["c"])


@pytest.mark.parametrize("vector", MLKEM_EXPANDED_DK_CT, ids=vector_id)
def test_mlkem_decapsulate_expanded_key_kyber_py(vector: Vector) -> None:
    assert bytes(ML_KEM_1024.decaps(h(vector["dk"]), h(vector["c"]))) == h(vector["K"])


@pytest.mark.parametrize("suite", SUITES, ids=SUITE_IDS)
@pytest.mark.parametrize("vector", MLKEM_VALID_CT, ids=vector_id)
@pytest.mark.parametrize("index", [0, 777, 1567])
def test_mlkem_modified_ciphertext_is_implicitly_rejected(
    suite: CryptoSuite, vector: Vector, index: int
) -> None:
    seed = mlkem_seed(vector)
    modified = flip(h(vector["c"]), index)
    shared = suite.kem.from_seed(seed).decapsulate(modified)
    assert shared != h(vector["K"])
    assert shared == hashlib.shake_256(seed[32:] + modified).digest(32)


@pytest.mark.parametrize("encapsulator", SUITES, ids=SUITE_IDS)
@pytest.mark.parametrize("vector", MLKEM_SEEDED, ids=vector_id)
def test_mlkem_encapsulate_to_published_key(encapsulator: CryptoSuite, vector: Vector) -> None:
    shared, ciphertext = encapsulator.kem.encapsulate(h(vector["ek"]), os.urandom)
    seed = mlkem_seed(vector)
    for suite in SUITES:
        assert suite.kem.from_seed(seed).decapsulate(ciphertext) == shared


@pytest.mark.parametrize("suite", SUITES, ids=SUITE_IDS)
@pytest.mark.parametrize("vector", MLKEM_BAD_EK, ids=vector_id)
def test_mlkem_rejects_invalid_encapsulation_key(suite: CryptoSuite, vector: Vector) -> None:
    with pytest.raises(CryptoError):
        suite.kem.encapsulate(h(vector["ek"]), os.urandom)


@pytest.mark.parametrize("vector", MLKEM_BAD_EK, ids=vector_id)
def test_mlkem_deterministic_encapsulation_rejects_invalid_key(vector: Vector) -> None:
    with pytest.raises(CryptoError):
        reference_kem().encapsulate_deterministic(h(vector["ek"]), bytes(32))


# --- Ed25519 (RFC 8032) -------------------------------------------------------

ED25519 = vectors("ed25519", "rfc8032")


@pytest.mark.parametrize("suite", SUITES, ids=SUITE_IDS)
@pytest.mark.parametrize("vector", ED25519, ids=vector_id)
def test_ed25519_public_key_and_signature(suite: CryptoSuite, vector: Vector) -> None:
    key = suite.sig.from_seed(h(vector["secret_key"]))
    assert key.public_key == h(vector["public_key"])
    assert key.sign(h(vector["message"])) == h(vector["signature"])


@pytest.mark.parametrize("suite", SUITES, ids=SUITE_IDS)
@pytest.mark.parametrize("vector", ED25519, ids=vector_id)
def test_ed25519_verify(suite: CryptoSuite, vector: Vector) -> None:
    suite.sig.verify(h(vector["public_key"]), h(vector["message"]), h(vector["signature"]))


@pytest.mark.parametrize("suite", SUITES, ids=SUITE_IDS)
@pytest.mark.parametrize("vector", ED25519, ids=vector_id)
@pytest.mark.parametrize("index", [0, 31, 32, 63])
def test_ed25519_rejects_flipped_signature(suite: CryptoSuite, vector: Vector, index: int) -> None:
    with pytest.raises(CryptoError):
        suite.sig.verify(
            h(vector["public_key"]),
            h(vector["message"]),
            flip(h(vector["signature"]), index),
        )


@pytest.mark.parametrize("vector", ED25519, ids=vector_id)
def test_ed25519_rejects_other_message_and_key(vector: Vector) -> None:
    public_key = h(vector["public_key"])
    message = h(vector["message"])
    signature = h(vector["signature"])
    with pytest.raises(CryptoError):
        FAST.sig.verify(public_key, message + b"\x00", signature)
    other = next(v for v in ED25519 if v["name"] != vector["name"])
    with pytest.raises(CryptoError):
        FAST.sig.verify(h(other["public_key"]), message, signature)


# --- X25519 (RFC 7748) --------------------------------------------------------

X25519 = load("x25519", "rfc7748")


@pytest.mark.parametrize("suite", SUITES, ids=SUITE_IDS)
@pytest.mark.parametrize("vector", X25519["vectors"], ids=vector_id)
def test_x25519_scalar_multiplication(suite: CryptoSuite, vector: Vector) -> None:
    key = suite.dh.from_private(h(vector["scalar"]))
    assert key.exchange(h(vector["u"])) == h(vector["output"])


def test_x25519_iterated() -> None:
    iterated = X25519["iterated"]
    k = u = h(iterated["start"])
    for i in range(1, 1001):
        k, u = FAST.dh.from_private(k).exchange(u), k
        if i == 1:
            assert k == h(iterated["after_1"])
    assert k == h(iterated["after_1000"])


@pytest.mark.parametrize("suite", SUITES, ids=SUITE_IDS)
def test_x25519_diffie_hellman(suite: CryptoSuite) -> None:
    dh = X25519["diffie_hellman"]
    alice = suite.dh.from_private(h(dh["alice_private"]))
    bob = suite.dh.from_private(h(dh["bob_private"]))
    assert alice.public_key == h(dh["alice_public"])
    assert bob.public_key == h(dh["bob_public"])
    assert alice.exchange(bob.public_key) == h(dh["shared"])
    assert bob.exchange(alice.public_key) == h(dh["shared"])


# --- HKDF-SHA256 (RFC 5869) ---------------------------------------------------


@pytest.mark.parametrize("vector", vectors("hkdf", "rfc5869"), ids=vector_id)
def test_hkdf_sha256(vector: Vector) -> None:
    ikm, salt, info = h(vector["ikm"]), h(vector["salt"]), h(vector["info"])
    length = vector["length"]
    prk = hkdf_extract(salt, ikm)
    assert prk == h(vector["prk"])
    assert hkdf_expand(prk, info, length) == h(vector["okm"])
    assert hkdf(ikm, salt, info, length) == h(vector["okm"])


# --- AES-256-GCM and ChaCha20-Poly1305 -----------------------------------------

AEAD = vectors("aead", "aead")


def aead_for(vector: Vector) -> Aes256Gcm | ChaCha20Poly1305Aead:
    algorithm = vector["algorithm"]
    if algorithm == "aes-256-gcm":
        return Aes256Gcm(h(vector["key"]))
    assert algorithm == "chacha20-poly1305"
    return ChaCha20Poly1305Aead(h(vector["key"]))


def test_aead_vectors_cover_both_ciphers() -> None:
    assert {v["algorithm"] for v in AEAD} == {"aes-256-gcm", "chacha20-poly1305"}
    assert any(v["aad"] and v["algorithm"] == "aes-256-gcm" for v in AEAD)


@pytest.mark.parametrize("vector", AEAD, ids=vector_id)
def test_aead_encrypt_and_decrypt(vector: Vector) -> None:
    cipher = aead_for(vector)
    nonce, aad = h(vector["nonce"]), h(vector["aad"])
    sealed = h(vector["ciphertext"]) + h(vector["tag"])
    assert cipher.encrypt(nonce, h(vector["plaintext"]), aad) == sealed
    assert cipher.decrypt(nonce, sealed, aad) == h(vector["plaintext"])


@pytest.mark.parametrize("vector", AEAD, ids=vector_id)
def test_aead_rejects_modification(vector: Vector) -> None:
    cipher = aead_for(vector)
    nonce, aad = h(vector["nonce"]), h(vector["aad"])
    sealed = h(vector["ciphertext"]) + h(vector["tag"])
    forgeries = [
        flip(sealed, len(sealed) - 1),  # last tag byte
        flip(sealed, len(sealed) - 16),  # first tag byte
        sealed[:-1],  # truncated tag
    ]
    if vector["ciphertext"]:
        forgeries.append(flip(sealed, 0))
    for forged in forgeries:
        with pytest.raises(CryptoError):
            cipher.decrypt(nonce, forged, aad)
    with pytest.raises(CryptoError):
        cipher.decrypt(nonce, sealed, aad + b"\x00")
    with pytest.raises(CryptoError):
        cipher.decrypt(flip(nonce, 0), sealed, aad)
