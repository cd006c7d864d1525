"""Cross-provider tests: the fast and the reference provider must agree.

Seeds come from a seeded ``random.Random`` so that a failure can be replayed.
"""

from __future__ import annotations

import os
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chhaya import CryptoError
from chhaya.crypto import (
    ED25519_PUBLIC_KEY_SIZE,
    ED25519_SEED_SIZE,
    ED25519_SIGNATURE_SIZE,
    FAST,
    MLKEM1024_CIPHERTEXT_SIZE,
    MLKEM1024_PUBLIC_KEY_SIZE,
    MLKEM1024_SEED_SIZE,
    MLKEM_SHARED_SECRET_SIZE,
    REFERENCE,
    X25519_KEY_SIZE,
    Aes256Gcm,
    ChaCha20Poly1305Aead,
    CryptoSuite,
    ReferenceKem,
)

SUITES = [FAST, REFERENCE]
SUITE_IDS = [suite.name for suite in SUITES]
PAIRS = [(FAST, REFERENCE), (REFERENCE, FAST)]
PAIR_IDS = ["fast-to-reference", "reference-to-fast"]
ITERATIONS = range(3)

#: Curve25519 group order, for the non-canonical signature test.
ED25519_L = 2**252 + 27742317777372353535851937790883648493
#: Field prime of Curve25519.
P25519 = 2**255 - 19
#: u-coordinates of small order (X25519 output is all zero for them).
LOW_ORDER_U = [
    0,
    1,
    325606250916557431795983626356110631294008115727848805560023387167927233504,
    39382357235489614581723060781553021112529911719440698176882885853963445705823,
    P25519 - 1,
]


def rng_for(iteration: int) -> random.Random:
    return random.Random(0xC4A7A + iteration)


def reference_kem() -> ReferenceKem:
    kem = REFERENCE.kem
    assert isinstance(kem, ReferenceKem)
    return kem


# --- ML-KEM agreement -------------------------------------------------------------


@pytest.mark.parametrize("iteration", ITERATIONS)
def test_mlkem_same_public_key_from_same_seed(iteration: int) -> None:
    seed = rng_for(iteration).randbytes(MLKEM1024_SEED_SIZE)
    fast, ref = FAST.kem.from_seed(seed), REFERENCE.kem.from_seed(seed)
    assert fast.public_key == ref.public_key
    assert len(fast.public_key) == MLKEM1024_PUBLIC_KEY_SIZE
    assert fast.seed == ref.seed == seed


@pytest.mark.parametrize(("encapsulator", "decapsulator"), PAIRS, ids=PAIR_IDS)
@pytest.mark.parametrize("iteration", ITERATIONS)
def test_mlkem_encapsulate_decapsulate_across_providers(
    encapsulator: CryptoSuite, decapsulator: CryptoSuite, iteration: int
) -> None:
    rng = rng_for(iteration)
    seed = rng.randbytes(MLKEM1024_SEED_SIZE)
    receiver = decapsulator.kem.from_seed(seed)
    shared, ciphertext = encapsulator.kem.encapsulate(receiver.public_key, rng.randbytes)
    assert len(shared) == MLKEM_SHARED_SECRET_SIZE
    assert len(ciphertext) == MLKEM1024_CIPHERTEXT_SIZE
    assert receiver.decapsulate(ciphertext) == shared
    assert encapsulator.kem.from_seed(seed).decapsulate(ciphertext) == shared


@pytest.mark.parametrize("iteration", ITERATIONS)
def test_mlkem_providers_agree_on_rejected_ciphertext(iteration: int) -> None:
    rng = rng_for(iteration)
    seed = rng.randbytes(MLKEM1024_SEED_SIZE)
    garbage = rng.randbytes(MLKEM1024_CIPHERTEXT_SIZE)
    fast = FAST.kem.from_seed(seed).decapsulate(garbage)
    assert fast == REFERENCE.kem.from_seed(seed).decapsulate(garbage)


def test_mlkem_reference_encapsulation_is_a_function_of_rng() -> None:
    ek = FAST.kem.from_seed(rng_for(0).randbytes(MLKEM1024_SEED_SIZE)).public_key
    first = REFERENCE.kem.encapsulate(ek, rng_for(1).randbytes)
    again = REFERENCE.kem.encapsulate(ek, rng_for(1).randbytes)
    other = REFERENCE.kem.encapsulate(ek, rng_for(2).randbytes)
    assert first == again
    assert first != other
    m = rng_for(1).randbytes(32)
    assert reference_kem().encapsulate_deterministic(ek, m) == first


@given(seed=st.binary(min_size=MLKEM1024_SEED_SIZE, max_size=MLKEM1024_SEED_SIZE))
@settings(max_examples=10, deadline=None)
def test_mlkem_same_public_key_for_any_seed(seed: bytes) -> None:
    assert FAST.kem.from_seed(seed).public_key == REFERENCE.kem.from_seed(seed).public_key


# --- wrong lengths ------------------------------------------------------------------


def off_by(size: int) -> list[int]:
    return [0, 1, size - 1, size + 1]


@pytest.mark.parametrize("suite", SUITES, ids=SUITE_IDS)
@pytest.mark.parametrize("length", off_by(MLKEM1024_SEED_SIZE))
def test_mlkem_rejects_wrong_seed_length(suite: CryptoSuite, length: int) -> None:
    with pytest.raises(CryptoError):
        suite.kem.from_seed(bytes(length))


@pytest.mark.parametrize("suite", SUITES, ids=SUITE_IDS)
@pytest.mark.parametrize("length", off_by(MLKEM1024_PUBLIC_KEY_SIZE))
def test_mlkem_rejects_wrong_public_key_length(suite: CryptoSuite, length: int) -> None:
    with pytest.raises(CryptoError):
        suite.kem.encapsulate(bytes(length), os.urandom)


@pytest.mark.parametrize("length", off_by(MLKEM1024_PUBLIC_KEY_SIZE))
def test_mlkem_deterministic_rejects_wrong_public_key_length(length: int) -> None:
    with pytest.raises(CryptoError):
        reference_kem().encapsulate_deterministic(bytes(length), bytes(32))


@pytest.mark.parametrize("length", [0, 31, 33, 64])
def test_mlkem_deterministic_rejects_wrong_message_length(length: int) -> None:
    ek = FAST.kem.from_seed(bytes(MLKEM1024_SEED_SIZE)).public_key
    with pytest.raises(CryptoError):
        reference_kem().encapsulate_deterministic(ek, bytes(length))


@pytest.mark.parametrize("suite", SUITES, ids=SUITE_IDS)
@pytest.mark.parametrize("length", off_by(MLKEM1024_CIPHERTEXT_SIZE))
def test_mlkem_rejects_wrong_ciphertext_length(suite: CryptoSuite, length: int) -> None:
    key = suite.kem.from_seed(bytes(MLKEM1024_SEED_SIZE))
    with pytest.raises(CryptoError):
        key.decapsulate(bytes(length))


@pytest.mark.parametrize("suite", SUITES, ids=SUITE_IDS)
@pytest.mark.parametrize("length", off_by(ED25519_SEED_SIZE))
def test_ed25519_rejects_wrong_seed_length(suite: CryptoSuite, length: int) -> None:
    with pytest.raises(CryptoError):
        suite.sig.from_seed(bytes(length))


@pytest.mark.parametrize("suite", SUITES, ids=SUITE_IDS)
@pytest.mark.parametrize("length", off_by(ED25519_PUBLIC_KEY_SIZE))
def test_ed25519_rejects_wrong_public_key_length(suite: CryptoSuite, length: int) -> None:
    key = suite.sig.from_seed(rng_for(0).randbytes(ED25519_SEED_SIZE))
    signature = key.sign(b"message")
    public_key = (key.public_key * 2)[:length]
    with pytest.raises(CryptoError):
        suite.sig.verify(public_key, b"message", signature)


@pytest.mark.parametrize("suite", SUITES, ids=SUITE_IDS)
@pytest.mark.parametrize("length", off_by(ED25519_SIGNATURE_SIZE))
def test_ed25519_rejects_wrong_signature_length(suite: CryptoSuite, length: int) -> None:
    key = suite.sig.from_seed(rng_for(0).randbytes(ED25519_SEED_SIZE))
    signature = (key.sign(b"message") * 2)[:length]
    with pytest.raises(CryptoError):
        suite.sig.verify(key.public_key, b"message", signature)


@pytest.mark.parametrize("suite", SUITES, ids=SUITE_IDS)
@pytest.mark.parametrize("length", off_by(X25519_KEY_SIZE))
def test_x25519_rejects_wrong_private_key_length(suite: CryptoSuite, length: int) -> None:
    with pytest.raises(CryptoError):
        suite.dh.from_private(bytes(length))


@pytest.mark.parametrize("suite", SUITES, ids=SUITE_IDS)
@pytest.mark.parametrize("length", off_by(X25519_KEY_SIZE))
def test_x25519_rejects_wrong_peer_key_length(suite: CryptoSuite, length: int) -> None:
    key = suite.dh.from_private(rng_for(0).randbytes(X25519_KEY_SIZE))
    peer = suite.dh.from_private(rng_for(1).randbytes(X25519_KEY_SIZE)).public_key
    with pytest.raises(CryptoError):
        key.exchange((peer * 2)[:length])


# --- Ed25519 and X25519 edge cases -------------------------------------------------


@pytest.mark.parametrize("suite", SUITES, ids=SUITE_IDS)
@pytest.mark.parametrize("iteration", ITERATIONS)
def test_ed25519_sign_verify_across_providers(suite: CryptoSuite, iteration: int) -> None:
    seed = rng_for(iteration).randbytes(ED25519_SEED_SIZE)
    message = rng_for(iteration + 100).randbytes(iteration * 37)
    signature = suite.sig.from_seed(seed).sign(message)
    for verifier in SUITES:
        verifier.sig.verify(suite.sig.from_seed(seed).public_key, message, signature)


def test_ed25519_rejects_non_canonical_s() -> None:
    """S + L verifies under lax rules; strict RFC 8032 verification refuses it."""
    key = FAST.sig.from_seed(rng_for(0).randbytes(ED25519_SEED_SIZE))
    signature = key.sign(b"message")
    s = int.from_bytes(signature[32:], "little")
    malleated = signature[:32] + (s + ED25519_L).to_bytes(32, "little")
    with pytest.raises(CryptoError):
        FAST.sig.verify(key.public_key, b"message", malleated)


@pytest.mark.parametrize("suite", SUITES, ids=SUITE_IDS)
@pytest.mark.parametrize("u", LOW_ORDER_U, ids=lambda u: f"u={u % 1000}")
def test_x25519_rejects_low_order_peer(suite: CryptoSuite, u: int) -> None:
    key = suite.dh.from_private(rng_for(0).randbytes(X25519_KEY_SIZE))
    with pytest.raises(CryptoError):
        key.exchange(u.to_bytes(X25519_KEY_SIZE, "little"))


@pytest.mark.parametrize("suite", SUITES, ids=SUITE_IDS)
def test_x25519_rejects_all_zero_peer(suite: CryptoSuite) -> None:
    key = suite.dh.from_private(os.urandom(X25519_KEY_SIZE))
    with pytest.raises(CryptoError):
        key.exchange(bytes(X25519_KEY_SIZE))


@pytest.mark.parametrize("iteration", ITERATIONS)
def test_x25519_exchange_agrees(iteration: int) -> None:
    rng = rng_for(iteration)
    a = FAST.dh.from_private(rng.randbytes(X25519_KEY_SIZE))
    b = REFERENCE.dh.from_private(rng.randbytes(X25519_KEY_SIZE))
    assert a.exchange(b.public_key) == b.exchange(a.public_key)


# --- secrets stay out of reprs -----------------------------------------------------


def assert_hidden(text: str, secret: bytes) -> None:
    assert secret.hex() not in text.lower()
    assert repr(secret) not in text
    assert "redacted" in text


@pytest.mark.parametrize("suite", SUITES, ids=SUITE_IDS)
def test_key_reprs_hide_secrets(suite: CryptoSuite) -> None:
    rng = rng_for(7)
    kem_seed = rng.randbytes(MLKEM1024_SEED_SIZE)
    sig_seed = rng.randbytes(ED25519_SEED_SIZE)
    dh_private = rng.randbytes(X25519_KEY_SIZE)
    kem_key = suite.kem.from_seed(kem_seed)
    sig_key = suite.sig.from_seed(sig_seed)
    dh_key = suite.dh.from_private(dh_private)
    for shown in (repr(kem_key), str(kem_key)):
        assert_hidden(shown, kem_seed)
        assert_hidden(shown, kem_seed[:32])
        assert_hidden(shown, kem_seed[32:])
    for shown in (repr(sig_key), str(sig_key)):
        assert_hidden(shown, sig_seed)
    for shown in (repr(dh_key), str(dh_key)):
        assert_hidden(shown, dh_private)


@pytest.mark.parametrize("cipher_type", [Aes256Gcm, ChaCha20Poly1305Aead])
def test_aead_repr_hides_key(cipher_type: type[Aes256Gcm] | type[ChaCha20Poly1305Aead]) -> None:
    key = rng_for(8).randbytes(32)
    assert_hidden(repr(cipher_type(key)), key)
