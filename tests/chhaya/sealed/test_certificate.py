"""Sender certificates: encoding, signature, expiry and the verification cache."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chhaya.crypto import FAST, sha256
from chhaya.safety import DecodeError, LocalProtocolError, VerificationError
from chhaya.sealed import (
    CERTIFICATE_SIGNATURE_CONTEXT,
    MAX_CERTIFICATE_SIZE,
    MAX_DEVICE_ID_LEN,
    MAX_HANDLE_LEN,
    MIN_CERTIFICATE_SIZE,
    CertificateCache,
    SenderCertificate,
    issue_certificate,
)

from ._helpers import EXPIRES, NOW, alice, alice_cert, bob

SETTINGS = settings(max_examples=200, deadline=None)

HANDLES = st.text(max_size=MAX_HANDLE_LEN).filter(lambda h: len(h.encode()) <= MAX_HANDLE_LEN)
DEVICE_IDS = st.binary(max_size=MAX_DEVICE_ID_LEN)
U64 = st.integers(min_value=0, max_value=(1 << 64) - 1)


def exact(n: int) -> st.SearchStrategy[bytes]:
    return st.binary(min_size=n, max_size=n)


CERTIFICATES = st.builds(
    SenderCertificate,
    handle=HANDLES,
    identity_key=exact(32),
    agreement_key=exact(32),
    device_id=DEVICE_IDS,
    expires_ms=U64,
    signature=exact(64),
)


def test_issue_and_verify() -> None:
    cert = alice_cert()
    assert cert.identity_key == alice().public.signing_key
    assert cert.agreement_key == alice().public.agreement_key
    assert cert.handle == "alice"
    assert cert.device_id == b"device-1"
    assert cert.expires_ms == EXPIRES
    cert.verify(NOW)
    cert.verify(EXPIRES - 1)
    # The signature covers the context string and the unsigned encoding.
    FAST.sig.verify(
        cert.identity_key, CERTIFICATE_SIGNATURE_CONTEXT + cert.unsigned_bytes(), cert.signature
    )


def test_layout() -> None:
    cert = issue_certificate(alice(), "h\u00e9", b"\x01\x02\x03", 0x0102030405060708)
    enc = cert.encode()
    pub = alice().public
    assert enc == (
        b"\x00\x03h\xc3\xa9"
        + pub.signing_key
        + pub.agreement_key
        + b"\x00\x03\x01\x02\x03"
        + bytes.fromhex("0102030405060708")
        + cert.signature
    )
    assert len(enc) == MIN_CERTIFICATE_SIZE + 3 + 3
    assert SenderCertificate.decode_untrusted(enc) == cert


def test_size_bounds() -> None:
    small = issue_certificate(alice(), "", b"", 1)
    big = issue_certificate(alice(), "\u00e9" * 32, b"d" * MAX_DEVICE_ID_LEN, 2**64 - 1)
    assert len(small.encode()) == MIN_CERTIFICATE_SIZE == 140
    assert len(big.encode()) == MAX_CERTIFICATE_SIZE == 268
    for cert in (small, big):
        assert SenderCertificate.decode_untrusted(cert.encode()) == cert
        cert.verify_signature()


def test_expired() -> None:
    cert = alice_cert()
    for now in (EXPIRES, EXPIRES + 1, 2**64):
        with pytest.raises(VerificationError) as exc:
            cert.verify(now)
        assert exc.value.check == "certificate-expired"


def test_forged_signature() -> None:
    # Alice's fields, signed by Bob's identity key.
    genuine = alice_cert()
    forged = replace(genuine, signature=bob().sign(genuine.signed_message()))
    with pytest.raises(VerificationError) as exc:
        forged.verify(NOW)
    assert exc.value.check == "certificate-signature"


@pytest.mark.parametrize(
    "change",
    [
        {"handle": "mallory"},
        {"device_id": b"device-2"},
        {"expires_ms": EXPIRES + 1},
        {"agreement_key": bytes(32)},
        {"identity_key": bytes(32)},
        {"signature": bytes(64)},
    ],
)
def test_any_changed_field_breaks_the_signature(change: dict[str, object]) -> None:
    changed = replace(alice_cert(), **change)  # type: ignore[arg-type]
    with pytest.raises(VerificationError) as exc:
        changed.verify(NOW)
    assert exc.value.check == "certificate-signature"


def test_signature_checked_before_expiry() -> None:
    forged = replace(alice_cert(), handle="mallory")
    with pytest.raises(VerificationError) as exc:
        forged.verify(EXPIRES + 1)
    assert exc.value.check == "certificate-signature"


@pytest.mark.parametrize(
    ("handle", "device_id", "expires_ms"),
    [
        ("a" * (MAX_HANDLE_LEN + 1), b"", 1),
        ("\u00e9" * 33, b"", 1),
        ("\ud800", b"", 1),
        ("a", b"d" * (MAX_DEVICE_ID_LEN + 1), 1),
        ("a", b"", -1),
        ("a", b"", 2**64),
    ],
)
def test_issue_rejects_bad_fields(handle: str, device_id: bytes, expires_ms: int) -> None:
    with pytest.raises(LocalProtocolError):
        issue_certificate(alice(), handle, device_id, expires_ms)


def test_encode_rejects_bad_fields() -> None:
    cert = alice_cert()
    for bad in (
        replace(cert, signature=b"x"),
        replace(cert, identity_key=b"x"),
        replace(cert, handle="a" * 65),
        replace(cert, expires_ms=-1),
        replace(cert, expires_ms=2**64),
    ):
        with pytest.raises(ValueError):  # noqa: PT011
            bad.encode()


@pytest.mark.parametrize(
    "mutate",
    [
        lambda b: b[:-1],
        lambda b: b + b"\x00",
        lambda b: b"",
        lambda b: b"\x00\x41" + b[2:],  # handle length beyond the bound
        lambda b: b"\x00\x02\xc3\x28" + b[7:],  # invalid UTF-8 (same length)
    ],
)
def test_decode_rejects(mutate: Callable[[bytes], bytes]) -> None:
    data = issue_certificate(alice(), "abc", b"", EXPIRES).encode()
    with pytest.raises(DecodeError):
        SenderCertificate.decode_untrusted(mutate(data))


def test_decode_rejects_long_device_id() -> None:
    data = (
        b"\x00\x00"
        + bytes(64)
        + (MAX_DEVICE_ID_LEN + 1).to_bytes(2, "big")
        + bytes(MAX_DEVICE_ID_LEN + 1 + 8 + 64)
    )
    with pytest.raises(DecodeError):
        SenderCertificate.decode_untrusted(data)


# ------------------------------------------------------------------ cache


def test_cache_skips_the_signature_of_a_known_certificate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cache = CertificateCache()
    cert = alice_cert()
    cache.verify(cert, NOW)
    assert cert in cache
    assert (cache.hits, cache.misses, len(cache)) == (0, 1, 1)

    def fail(*args: object) -> None:
        raise AssertionError("signature verified again")

    monkeypatch.setattr(FAST.sig, "verify", fail)
    cache.verify(cert, NOW)
    cache.verify(cert, NOW + 1)
    assert (cache.hits, cache.misses) == (2, 1)


def test_cache_still_checks_expiry() -> None:
    cache = CertificateCache()
    cert = alice_cert()
    cache.verify(cert, NOW)
    with pytest.raises(VerificationError) as exc:
        cache.verify(cert, EXPIRES)
    assert exc.value.check == "certificate-expired"


def test_cache_stores_only_successes() -> None:
    cache = CertificateCache()
    forged = replace(alice_cert(), handle="mallory")
    for _ in range(2):
        with pytest.raises(VerificationError) as exc:
            cache.verify(forged, NOW)
        assert exc.value.check == "certificate-signature"
    assert len(cache) == 0
    assert forged not in cache
    assert (cache.hits, cache.misses) == (0, 2)
    # An expired certificate with a good signature is cached (the signature
    # is a fact about the bytes) but still refused.
    expired = alice_cert(NOW)
    with pytest.raises(VerificationError):
        cache.verify(expired, NOW)
    assert expired in cache


def test_cache_is_bounded_lru() -> None:
    cache = CertificateCache(max_entries=3)
    certs = [issue_certificate(alice(), f"h{i}", b"", EXPIRES) for i in range(5)]
    for cert in certs[:3]:
        cache.verify(cert, NOW)
    cache.verify(certs[0], NOW)  # now most recently used
    cache.verify(certs[3], NOW)  # evicts certs[1]
    assert len(cache) == 3
    assert certs[0] in cache
    assert certs[1] not in cache
    assert certs[2] in cache
    assert certs[3] in cache
    cache.verify(certs[4], NOW)
    assert len(cache) == 3
    assert certs[2] not in cache
    assert "not a certificate" not in cache
    cache.clear()
    assert len(cache) == 0
    assert cache.max_entries == 3


def test_cache_key_is_the_encoding_hash() -> None:
    cache = CertificateCache()
    cert = alice_cert()
    cache.verify(cert, NOW)
    assert sha256(cert.encode()) in cache._entries


@pytest.mark.parametrize("n", [0, -1])
def test_cache_needs_room(n: int) -> None:
    with pytest.raises(LocalProtocolError):
        CertificateCache(max_entries=n)


# ------------------------------------------------------------- properties


@SETTINGS
@given(CERTIFICATES)
def test_round_trip(cert: SenderCertificate) -> None:
    encoded = cert.encode()
    assert MIN_CERTIFICATE_SIZE <= len(encoded) <= MAX_CERTIFICATE_SIZE
    assert SenderCertificate.decode_untrusted(encoded) == cert


@SETTINGS
@given(HANDLES, DEVICE_IDS, U64)
def test_issued_round_trip_verifies(handle: str, device_id: bytes, expires_ms: int) -> None:
    cert = issue_certificate(alice(), handle, device_id, expires_ms)
    decoded = SenderCertificate.decode_untrusted(cert.encode())
    assert decoded == cert
    decoded.verify_signature()


@SETTINGS
@given(st.binary(max_size=400))
def test_arbitrary_bytes_raise_only_decode_error(data: bytes) -> None:
    try:
        cert = SenderCertificate.decode_untrusted(data)
    except DecodeError:
        return
    assert cert.encode() == data


@SETTINGS
@given(CERTIFICATES, st.integers(min_value=0, max_value=MAX_CERTIFICATE_SIZE), st.binary())
def test_mangled_encodings_raise_only_decode_error(
    cert: SenderCertificate, cut: int, tail: bytes
) -> None:
    data = cert.encode()[:cut] + tail
    try:
        decoded = SenderCertificate.decode_untrusted(data)
    except DecodeError:
        return
    assert decoded.encode() == data
