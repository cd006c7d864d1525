"""Round trips and "arbitrary bytes raise only DecodeError" for the
``/chhaya/vkd/register/1.0.0`` request and response."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chhaya import DecodeError, LocalProtocolError, VerificationError
from chhaya.identity import PrivateIdentity
from chhaya.prekeys import InMemoryPrekeyStore, PrekeyBundle
from node.p2p import MAX_CLOCK_SKEW_MS, Registration
from node.p2p._register_protocol import decode_response_untrusted
from vkd import MAX_DEVICE_ID_LEN, MAX_DEVICES, IdentityBundle

SETTINGS = settings(max_examples=100, deadline=None)
NOW = 1_800_000_000_000
DAY_MS = 86_400_000

handles = st.from_regex(r"[a-z0-9][a-z0-9._-]{0,63}", fullmatch=True)
b32 = st.binary(min_size=32, max_size=32)
u64 = st.integers(min_value=0, max_value=2**64 - 1)
device_lists = st.lists(
    st.binary(min_size=1, max_size=MAX_DEVICE_ID_LEN), min_size=1, max_size=MAX_DEVICES
).map(tuple)


def det_rng(seed: bytes) -> Callable[[int], bytes]:
    counter = itertools.count()

    def rng(n: int) -> bytes:
        out = b""
        while len(out) < n:
            out += hashlib.sha256(seed + next(counter).to_bytes(8, "big")).digest()
        return out[:n]

    return rng


IDENTITY = PrivateIdentity.generate(det_rng(b"register-wire/identity"))
OTHER = PrivateIdentity.generate(det_rng(b"register-wire/other"))


def _prekeys(identity: PrivateIdentity) -> PrekeyBundle:
    rng = det_rng(b"register-wire/prekeys")
    store = InMemoryPrekeyStore(identity)
    store.rotate_signed_prekey(rng, NOW)
    store.rotate_last_resort_kem_prekey(rng, NOW)
    return store.bundle_for_publication()


PREKEYS = _prekeys(IDENTITY)


@st.composite
def bundles(draw: st.DrawFn) -> IdentityBundle:
    prekeys = PREKEYS if draw(st.booleans()) else None
    return IdentityBundle(IDENTITY.public, draw(device_lists), prekeys, draw(u64))


def signed(handle: str = "alice", directory_id: bytes = b"\x07" * 32) -> Registration:
    bundle = IdentityBundle(IDENTITY.public, (b"peer-alice",), PREKEYS, NOW + DAY_MS)
    return Registration.sign(IDENTITY, directory_id, handle, bundle, NOW)


@SETTINGS
@given(handles, bundles(), b32, u64)
def test_registration_round_trip(
    handle: str, bundle: IdentityBundle, directory_id: bytes, now_ms: int
) -> None:
    registration = Registration.sign(IDENTITY, directory_id, handle, bundle, now_ms)
    encoded = registration.encode()
    decoded = Registration.decode_untrusted(encoded)
    assert decoded == registration
    assert decoded.encode() == encoded


@SETTINGS
@given(handles, bundles(), u64, st.binary(min_size=64, max_size=64))
def test_registration_round_trip_any_signature(
    handle: str, bundle: IdentityBundle, requested_ms: int, signature: bytes
) -> None:
    registration = Registration(handle, bundle, requested_ms, signature)
    assert Registration.decode_untrusted(registration.encode()) == registration


def test_verify_accepts_signed_and_rejects_tampering() -> None:
    directory_id = b"\x07" * 32
    registration = Registration.decode_untrusted(signed(directory_id=directory_id).encode())
    registration.verify(directory_id, NOW)
    registration.verify(directory_id, NOW + MAX_CLOCK_SKEW_MS)

    for i in (0, 31, 63):
        sig = bytearray(registration.signature)
        sig[i] ^= 0x01
        flipped = Registration(registration.handle, registration.bundle, NOW, bytes(sig))
        with pytest.raises(VerificationError) as info:
            flipped.verify(directory_id, NOW)
        assert info.value.check == "registration-signature"

    with pytest.raises(VerificationError) as info:
        registration.verify(b"\x08" * 32, NOW)  # signed for another directory
    assert info.value.check == "registration-signature"

    moved = Registration("bob", registration.bundle, NOW, registration.signature)
    with pytest.raises(VerificationError):
        moved.verify(directory_id, NOW)

    with pytest.raises(VerificationError) as info:
        registration.verify(directory_id, NOW + MAX_CLOCK_SKEW_MS + 1)
    assert info.value.check == "registration-time"

    with pytest.raises(VerificationError) as info:
        registration.verify(directory_id, NOW - MAX_CLOCK_SKEW_MS - 1)
    assert info.value.check == "registration-time"


def test_verify_rejects_an_expired_bundle() -> None:
    bundle = IdentityBundle(IDENTITY.public, (b"peer-alice",), None, NOW + 1)
    registration = Registration.sign(IDENTITY, b"\x07" * 32, "alice", bundle, NOW + 2)
    with pytest.raises(VerificationError) as info:
        registration.verify(b"\x07" * 32, NOW + 2)
    assert info.value.check == "bundle-expired"


def test_sign_refuses_another_identitys_bundle() -> None:
    bundle = IdentityBundle(OTHER.public, (b"peer-alice",), None, NOW + DAY_MS)
    with pytest.raises(LocalProtocolError, match="another identity"):
        Registration.sign(IDENTITY, b"\x07" * 32, "alice", bundle, NOW)


@pytest.mark.parametrize(("status", "queued"), [(0, True), (1, False)])
def test_response_round_trip(status: int, queued: bool) -> None:
    assert decode_response_untrusted(b"CRR1" + bytes((status,))) is queued


@SETTINGS
@given(st.integers(min_value=2, max_value=255))
def test_response_unknown_status(status: int) -> None:
    with pytest.raises(DecodeError):
        decode_response_untrusted(b"CRR1" + bytes((status,)))


VALID = signed().encode()


@SETTINGS
@given(st.binary(max_size=600))
def test_arbitrary_bytes_raise_only_decode_error(data: bytes) -> None:
    for raw in (data, b"CRG1" + data, b"CRR1" + data, VALID[:-64] + data, VALID[: len(data)]):
        with contextlib.suppress(DecodeError):
            Registration.decode_untrusted(raw)
        with contextlib.suppress(DecodeError):
            decode_response_untrusted(raw)


@SETTINGS
@given(st.data())
def test_mutated_registration_raises_only_decode_error(data: st.DataObject) -> None:
    raw = bytearray(VALID)
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        i = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
        raw[i] = data.draw(st.integers(min_value=0, max_value=255))
    try:
        decoded = Registration.decode_untrusted(bytes(raw))
    except DecodeError:
        return
    assert decoded.encode() == bytes(raw)


def test_oversized_registration() -> None:
    with pytest.raises(DecodeError):
        Registration.decode_untrusted(VALID + bytes(20_000))
