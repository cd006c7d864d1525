"""Hypothesis properties of seal/open: round trip, and what outside bytes may raise."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from chhaya.safety import CryptoError, DecodeError, VerificationError
from chhaya.sealed import (
    ENVELOPE_OVERHEAD,
    MAX_DEVICE_ID_LEN,
    MAX_HANDLE_LEN,
    MAX_PADDED_SIZE,
    MAX_SEALED_CONTENT,
    PADDING_BUCKETS,
    OpenedEnvelope,
    issue_certificate,
    open_envelope_untrusted,
    seal,
    seal_cover,
)
from chhaya.sealed._envelope import _seal_plaintext

from ._helpers import NOW, alice, bob, det_rng, filler

SETTINGS = settings(max_examples=200, deadline=None)

HANDLES = st.text(max_size=MAX_HANDLE_LEN).filter(lambda h: len(h.encode()) <= MAX_HANDLE_LEN)
#: Small contents drawn directly, large ones (up to the maximum) expanded from a seed.
CONTENTS = st.one_of(
    st.binary(max_size=600),
    st.builds(
        filler, st.binary(max_size=8), st.integers(min_value=0, max_value=MAX_SEALED_CONTENT)
    ),
)
SEEDS = st.binary(min_size=1, max_size=16)


def _bucket_sized(args: tuple[int, int, bytes]) -> bytes:
    bucket, version, head = args
    return (bytes([version]) + head + filler(head, bucket))[:bucket]


#: Exactly a bucket long, with a chosen version byte: these get to the AEAD.
BUCKET_SIZED = st.tuples(
    st.sampled_from(PADDING_BUCKETS),
    st.sampled_from([1, 1, 1, 0, 2, 255]),
    st.binary(max_size=64),
).map(_bucket_sized)


@SETTINGS
@given(
    HANDLES,
    st.binary(max_size=MAX_DEVICE_ID_LEN),
    st.integers(min_value=NOW + 1, max_value=(1 << 64) - 1),
    CONTENTS,
    SEEDS,
)
def test_seal_open_round_trip(
    handle: str, device_id: bytes, expires_ms: int, content: bytes, seed: bytes
) -> None:
    cert = issue_certificate(alice(), handle, device_id, expires_ms)
    env = seal(bob().public.agreement_key, cert, content, det_rng(seed))
    assert len(env) in PADDING_BUCKETS
    assert open_envelope_untrusted(bob(), env, NOW) == OpenedEnvelope(cert, content)


@SETTINGS
@given(st.integers(min_value=0, max_value=MAX_PADDED_SIZE), SEEDS)
def test_cover_round_trip(size_hint: int, seed: bytes) -> None:
    env = seal_cover(bob().public.agreement_key, size_hint, det_rng(seed))
    assert len(env) in PADDING_BUCKETS
    assert len(env) >= size_hint
    assert open_envelope_untrusted(bob(), env, NOW) is None


def _open_or_reject(data: bytes) -> None:
    try:
        open_envelope_untrusted(bob(), data, NOW)
    except (DecodeError, CryptoError):
        return
    raise AssertionError("outside bytes opened")


@SETTINGS
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_raise_only_decode_or_crypto_error(data: bytes) -> None:
    _open_or_reject(data)


@SETTINGS
@given(BUCKET_SIZED)
def test_arbitrary_bucket_sized_bytes_raise_only_decode_or_crypto_error(data: bytes) -> None:
    _open_or_reject(data)


@SETTINGS
@given(st.binary(max_size=1024 - ENVELOPE_OVERHEAD), SEEDS)
def test_arbitrary_authentic_plaintexts(inner: bytes, seed: bytes) -> None:
    """Past the tag, a sender's bad plaintext raises only DecodeError/VerificationError."""
    plaintext = inner + bytes(1024 - ENVELOPE_OVERHEAD - len(inner))
    env = _seal_plaintext(bob().public.agreement_key, plaintext, det_rng(seed))
    try:
        open_envelope_untrusted(bob(), env, NOW)
    except (DecodeError, VerificationError):
        return
