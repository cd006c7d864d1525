"""Prekey wire types: round trips, bounds, and decoders that raise only DecodeError.

Any exception other than DecodeError (IndexError, struct.error, ValueError...)
escapes the ``except`` clauses below and fails the test.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chhaya import DecodeError, VerificationError
from chhaya.crypto import FAST
from chhaya.identity import PUBLIC_IDENTITY_SIZE
from chhaya.prekeys import (
    INITIAL_MESSAGE_TAG,
    KEM_PREKEY_LABEL,
    MAX_INITIAL_MESSAGE_SIZE,
    MAX_INITIAL_RATCHET_MESSAGE,
    MAX_PREKEY_BUNDLE_SIZE,
    ONE_TIME_PREKEY_SIZE,
    PREKEY_BUNDLE_TAG,
    SIGNED_KEM_PREKEY_SIZE,
    SIGNED_PREKEY_LABEL,
    SIGNED_PREKEY_SIZE,
    InitialMessage,
    OneTimePrekey,
    PrekeyBundle,
    SignedKemPrekey,
    SignedPrekey,
    is_canonical_x25519,
)
from chhaya.ratchet import ENCRYPTED_HEADER_SIZE, MAX_RATCHET_CIPHERTEXT, RatchetMessage

from ._helpers import (
    NOW,
    bundles,
    det_rng,
    identity,
    initial_messages,
    make_store,
    mutations,
    one_time_prekeys,
    signed_kem_prekeys,
    signed_prekeys,
)

SETTINGS = settings(max_examples=150, deadline=None)
FEW = settings(max_examples=50, deadline=None)

P = 2**255 - 19

WireType = SignedPrekey | SignedKemPrekey | OneTimePrekey | PrekeyBundle | InitialMessage
DECODERS: dict[str, Callable[[bytes], WireType]] = {
    "signed_prekey": SignedPrekey.decode_untrusted,
    "kem_prekey": SignedKemPrekey.decode_untrusted,
    "one_time_prekey": OneTimePrekey.decode_untrusted,
    "bundle": PrekeyBundle.decode_untrusted,
    "initial_message": InitialMessage.decode_untrusted,
}
STRATEGIES: dict[str, st.SearchStrategy[Any]] = {
    "signed_prekey": signed_prekeys,
    "kem_prekey": signed_kem_prekeys,
    "one_time_prekey": one_time_prekeys,
    "bundle": bundles,
    "initial_message": initial_messages,
}
KINDS = sorted(DECODERS)
ENCODINGS = st.sampled_from(KINDS).flatmap(lambda k: STRATEGIES[k].map(lambda v: v.encode()))


def decode_or_reject(kind: str, data: bytes) -> None:
    """Decode; success must re-encode to the input, failure must be DecodeError."""
    try:
        decoded = DECODERS[kind](data)
    except DecodeError:
        return
    assert decoded.encode() == data


def genuine_bundle() -> PrekeyBundle:
    return make_store(identity("bob"), kem_one_time=1).take_bundle(NOW)


# ------------------------------------------------------------- round trips


@SETTINGS
@given(signed_prekeys)
def test_signed_prekey_round_trip(value: SignedPrekey) -> None:
    encoded = value.encode()
    assert len(encoded) == SIGNED_PREKEY_SIZE == 100
    assert SignedPrekey.decode_untrusted(encoded) == value


@SETTINGS
@given(signed_kem_prekeys)
def test_kem_prekey_round_trip(value: SignedKemPrekey) -> None:
    encoded = value.encode()
    assert len(encoded) == SIGNED_KEM_PREKEY_SIZE == 1637
    assert SignedKemPrekey.decode_untrusted(encoded) == value


@SETTINGS
@given(one_time_prekeys)
def test_one_time_prekey_round_trip(value: OneTimePrekey) -> None:
    encoded = value.encode()
    assert len(encoded) == ONE_TIME_PREKEY_SIZE == 36
    assert OneTimePrekey.decode_untrusted(encoded) == value


@SETTINGS
@given(bundles)
def test_bundle_round_trip(value: PrekeyBundle) -> None:
    encoded = value.encode()
    assert encoded.startswith(PREKEY_BUNDLE_TAG)
    short = MAX_PREKEY_BUNDLE_SIZE - ONE_TIME_PREKEY_SIZE
    assert len(encoded) == (short if value.one_time_prekey is None else MAX_PREKEY_BUNDLE_SIZE)
    assert PrekeyBundle.decode_untrusted(encoded) == value


@SETTINGS
@given(initial_messages)
def test_initial_message_round_trip(value: InitialMessage) -> None:
    encoded = value.encode()
    assert encoded.startswith(INITIAL_MESSAGE_TAG)
    assert len(encoded) <= MAX_INITIAL_MESSAGE_SIZE
    assert InitialMessage.decode_untrusted(encoded) == value


# ---------------------------------------------------- arbitrary bytes


@SETTINGS
@given(st.sampled_from(KINDS), st.binary(max_size=4000))
def test_arbitrary_bytes_raise_only_decode_error(kind: str, data: bytes) -> None:
    decode_or_reject(kind, data)


@SETTINGS
@given(st.sampled_from(KINDS), mutations(ENCODINGS))
def test_mutated_encodings_raise_only_decode_error(kind: str, data: bytes) -> None:
    """Valid encodings of every type, damaged, fed to every decoder."""
    decode_or_reject(kind, data)


@SETTINGS
@given(st.sampled_from(["bundle", "initial_message"]), st.binary(max_size=4000))
def test_right_tag_then_arbitrary_bytes(kind: str, data: bytes) -> None:
    tag = PREKEY_BUNDLE_TAG if kind == "bundle" else INITIAL_MESSAGE_TAG
    decode_or_reject(kind, tag + data)


def test_non_bytes_input_is_a_decode_error() -> None:
    for decode in DECODERS.values():
        with pytest.raises(DecodeError):
            decode("not bytes")  # type: ignore[arg-type]


# ------------------------------------------------------ specific rejections


@pytest.mark.parametrize(
    "key",
    [
        (P).to_bytes(32, "little"),
        (P + 2).to_bytes(32, "little"),
        (2**256 - 1).to_bytes(32, "little"),
        bytes(31) + b"\x80",
        (9 + 2**255).to_bytes(32, "little"),
    ],
)
def test_non_canonical_x25519_keys_are_rejected(key: bytes) -> None:
    assert not is_canonical_x25519(key)
    good = OneTimePrekey(7, bytes(32))
    with pytest.raises(DecodeError):
        OneTimePrekey.decode_untrusted(good.encode()[:4] + key)
    spk = SignedPrekey(7, bytes(32), bytes(64)).encode()
    with pytest.raises(DecodeError):
        SignedPrekey.decode_untrusted(spk[:4] + key + spk[36:])
    with pytest.raises(ValueError, match="canonical"):
        dataclasses.replace(good, public_key=key).encode()


def test_canonical_boundary() -> None:
    assert is_canonical_x25519((P - 1).to_bytes(32, "little"))
    assert is_canonical_x25519(bytes(32))
    assert not is_canonical_x25519(bytes(31))


def test_non_canonical_ephemeral_key_is_rejected() -> None:
    msg = _message()
    encoded = bytearray(msg.encode())
    offset = 4 + PUBLIC_IDENTITY_SIZE + 31
    encoded[offset] |= 0x80
    with pytest.raises(DecodeError, match="non-canonical ephemeral key"):
        InitialMessage.decode_untrusted(bytes(encoded))


def _message(ratchet: bytes | None = None, opk: int | None = 3) -> InitialMessage:
    rng = det_rng(b"wire/message")
    ratchet = ratchet or RatchetMessage(False, rng(40), rng(20)).encode()
    return InitialMessage(
        initiator_identity=identity("alice").public,
        ephemeral_key=bytes(32),
        signed_prekey_id=1,
        one_time_prekey_id=opk,
        kem_prekey_id=2,
        kem_ciphertext=rng(1568),
        ratchet_message=ratchet,
    )


def test_initial_message_ratchet_bound() -> None:
    assert MAX_INITIAL_RATCHET_MESSAGE == 2 + ENCRYPTED_HEADER_SIZE + MAX_RATCHET_CIPHERTEXT
    largest = RatchetMessage(True, bytes(ENCRYPTED_HEADER_SIZE), bytes(MAX_RATCHET_CIPHERTEXT))
    msg = _message(largest.encode())
    encoded = msg.encode()
    assert len(encoded) == MAX_INITIAL_MESSAGE_SIZE
    assert InitialMessage.decode_untrusted(encoded) == msg
    # One byte more: refused by the length bound before anything is read.
    head = encoded[: -(MAX_INITIAL_RATCHET_MESSAGE + 4)]
    too_long = head + (MAX_INITIAL_RATCHET_MESSAGE + 1).to_bytes(4, "big")
    with pytest.raises(DecodeError, match="too long"):
        InitialMessage.decode_untrusted(too_long + bytes(MAX_INITIAL_RATCHET_MESSAGE + 1))
    with pytest.raises(ValueError, match="longer"):
        dataclasses.replace(msg, ratchet_message=bytes(MAX_INITIAL_RATCHET_MESSAGE + 1)).encode()


@pytest.mark.parametrize(
    "ratchet",
    [
        b"",
        b"\x01",
        b"\x02\x00" + bytes(40 + 16),
        b"\x01\x02" + bytes(40 + 16),
        b"\x01\x00" + bytes(50),
    ],
)
def test_malformed_ratchet_message_is_a_decode_error(ratchet: bytes) -> None:
    good = _message().encode()
    head = good[: -(len(_message().ratchet_message) + 4)]
    with pytest.raises(DecodeError):
        InitialMessage.decode_untrusted(head + len(ratchet).to_bytes(4, "big") + ratchet)


@pytest.mark.parametrize("flag", [2, 0x80, 0xFF])
def test_bad_flags_are_rejected(flag: int) -> None:
    kem = SignedKemPrekey(1, bytes(1568), True, bytes(64)).encode()
    with pytest.raises(DecodeError, match="last-resort flag"):
        SignedKemPrekey.decode_untrusted(kem[:4] + bytes([flag]) + kem[5:])
    bundle = genuine_bundle().encode()
    flag_at = len(bundle) - ONE_TIME_PREKEY_SIZE - 1
    with pytest.raises(DecodeError, match="one-time prekey flag"):
        PrekeyBundle.decode_untrusted(bundle[:flag_at] + bytes([flag]) + bundle[flag_at + 1 :])
    msg = _message().encode()
    flag_at = 4 + PUBLIC_IDENTITY_SIZE + 32 + 4
    assert msg[flag_at] == 1
    with pytest.raises(DecodeError, match="one-time prekey flag"):
        InitialMessage.decode_untrusted(msg[:flag_at] + bytes([flag]) + msg[flag_at + 1 :])


@pytest.mark.parametrize("kind", KINDS)
def test_trailing_and_missing_bytes_are_rejected(kind: str) -> None:
    samples: dict[str, bytes] = {
        "signed_prekey": SignedPrekey(1, bytes(32), bytes(64)).encode(),
        "kem_prekey": SignedKemPrekey(1, bytes(1568), False, bytes(64)).encode(),
        "one_time_prekey": OneTimePrekey(1, bytes(32)).encode(),
        "bundle": genuine_bundle().encode(),
        "initial_message": _message().encode(),
    }
    data = samples[kind]
    DECODERS[kind](data)
    with pytest.raises(DecodeError, match="trailing"):
        DECODERS[kind](data + b"\x00")
    with pytest.raises(DecodeError):
        DECODERS[kind](data[:-1])


def test_optional_fields_absent() -> None:
    msg = _message(opk=None)
    assert InitialMessage.decode_untrusted(msg.encode()).one_time_prekey_id is None
    assert len(msg.encode()) == len(_message().encode()) - 4
    bundle = dataclasses.replace(genuine_bundle(), one_time_prekey=None)
    assert PrekeyBundle.decode_untrusted(bundle.encode()) == bundle


def test_out_of_range_ids_cannot_be_encoded() -> None:
    with pytest.raises(ValueError, match="id"):
        OneTimePrekey(2**32, bytes(32)).encode()
    with pytest.raises(ValueError, match="id"):
        dataclasses.replace(_message(), kem_prekey_id=-1).encode()


# --------------------------------------------------------- bundle signatures


def test_genuine_bundle_verifies() -> None:
    bundle = PrekeyBundle.decode_untrusted(genuine_bundle().encode())
    bundle.verify()
    assert bundle.one_time_prekey is not None
    assert not bundle.kem_prekey.last_resort


def test_signed_bytes_layout() -> None:
    spk = SignedPrekey(0x01020304, bytes(range(32)), bytes(64))
    assert spk.signed_bytes() == SIGNED_PREKEY_LABEL + b"\x01\x02\x03\x04" + bytes(range(32))
    kem = SignedKemPrekey(5, bytes(1568), True, bytes(64))
    assert kem.signed_bytes() == KEM_PREKEY_LABEL + b"\x00\x00\x00\x05\x01" + bytes(1568)


def _flip(data: bytes, i: int = 0) -> bytes:
    return data[:i] + bytes([data[i] ^ 1]) + data[i + 1 :]


def _tampered_bundles() -> dict[str, PrekeyBundle]:
    b = genuine_bundle()
    spk, kem = b.signed_prekey, b.kem_prekey
    r = dataclasses.replace
    return {
        "spk id": r(b, signed_prekey=r(spk, prekey_id=spk.prekey_id + 1)),
        "spk key": r(b, signed_prekey=r(spk, public_key=_flip(spk.public_key))),
        "spk signature": r(b, signed_prekey=r(spk, signature=_flip(spk.signature, 5))),
        "kem id": r(b, kem_prekey=r(kem, prekey_id=kem.prekey_id + 1)),
        "kem key": r(b, kem_prekey=r(kem, public_key=_flip(kem.public_key, 1000))),
        "kem last-resort flag": r(b, kem_prekey=r(kem, last_resort=not kem.last_resort)),
        "kem signature": r(b, kem_prekey=r(kem, signature=_flip(kem.signature, 63))),
        "another identity": r(b, identity=identity("mallory").public),
        # A signed-prekey signature never passes as a KEM-prekey one (labels differ).
        "spk signature on kem": r(b, kem_prekey=r(kem, signature=spk.signature)),
        "zero signature": r(b, signed_prekey=r(spk, signature=bytes(64))),
    }


@pytest.mark.parametrize("case", sorted(_tampered_bundles()))
def test_bad_bundle_signature_is_rejected(case: str) -> None:
    bundle = _tampered_bundles()[case]
    with pytest.raises(VerificationError) as info:
        bundle.verify(FAST.sig)
    assert info.value.check == "prekey-signature"
    # Also after a trip over the wire.
    with pytest.raises(VerificationError):
        PrekeyBundle.decode_untrusted(bundle.encode()).verify()


@FEW
@given(bundles)
def test_random_bundles_do_not_verify(bundle: PrekeyBundle) -> None:
    with pytest.raises(VerificationError):
        bundle.verify()
