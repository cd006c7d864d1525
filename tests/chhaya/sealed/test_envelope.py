"""Sealed envelopes: sizes, cover traffic, tampering, certificates, the cache."""

from __future__ import annotations

from dataclasses import replace

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from chhaya.crypto import FAST, hkdf
from chhaya.safety import CryptoError, DecodeError, LocalProtocolError, VerificationError
from chhaya.sealed import (
    ENVELOPE_OVERHEAD,
    ENVELOPE_VERSION,
    KIND_COVER,
    KIND_MESSAGE,
    MAX_CERTIFICATE_SIZE,
    MAX_DEVICE_ID_LEN,
    MAX_SEALED_CONTENT,
    PADDING_BUCKETS,
    CertificateCache,
    OpenedEnvelope,
    SenderCertificate,
    bucket_for,
    issue_certificate,
    open_envelope_untrusted,
    pad,
    seal,
    seal_cover,
)
from chhaya.sealed._envelope import _seal_plaintext
from chhaya.wire import Writer

from ._helpers import EXPIRES, NOW, alice, alice_cert, bob, carol, det_rng, filler

#: Bytes of a MESSAGE plaintext besides certificate and content:
#: kind, two length prefixes and the padding marker.
FRAMING = 1 + 2 + 4 + 1


def bob_key() -> bytes:
    return bob().public.agreement_key


def capacity(bucket: int, cert: SenderCertificate) -> int:
    """The longest content that still seals into ``bucket`` with ``cert``."""
    return min(bucket - ENVELOPE_OVERHEAD - FRAMING - len(cert.encode()), MAX_SEALED_CONTENT)


def max_cert() -> SenderCertificate:
    return issue_certificate(alice(), "\u00e9" * 32, b"d" * MAX_DEVICE_ID_LEN, EXPIRES)


def open_bob(data: bytes, now: int = NOW) -> OpenedEnvelope | None:
    return open_envelope_untrusted(bob(), data, now)


def inner_message(cert: bytes, content: bytes) -> bytes:
    return Writer().u8(KIND_MESSAGE).var16(cert, 0xFFFF).var32(content, 2**32 - 1).getvalue()


def seal_raw(plaintext: bytes, seed: bytes = b"raw") -> bytes:
    """An envelope to Bob around an arbitrary plaintext (a bucket minus the overhead)."""
    return _seal_plaintext(bob_key(), plaintext, det_rng(seed))


def seal_padded(inner: bytes, bucket: int = 1024) -> bytes:
    return seal_raw(pad(inner, bucket - ENVELOPE_OVERHEAD))


# ------------------------------------------------------------ round trip


def test_constants() -> None:
    assert ENVELOPE_VERSION == 1
    assert (KIND_MESSAGE, KIND_COVER) == (1, 2)
    assert ENVELOPE_OVERHEAD == 49
    assert MAX_CERTIFICATE_SIZE == 268
    assert MAX_SEALED_CONTENT == 65536 - 49 - FRAMING - MAX_CERTIFICATE_SIZE == 65211


def _sizes() -> list[int]:
    cert = alice_cert()
    sizes = {0, 1, MAX_SEALED_CONTENT - 1, MAX_SEALED_CONTENT}
    for bucket in PADDING_BUCKETS:
        edge = capacity(bucket, cert)
        sizes |= {edge - 1, edge, edge + 1}
    return sorted(s for s in sizes if 0 <= s <= MAX_SEALED_CONTENT)


@pytest.mark.parametrize("size", _sizes())
def test_round_trip_sizes(size: int) -> None:
    cert = alice_cert()
    content = filler(b"content", size)
    env = seal(bob_key(), cert, content, det_rng(b"seal/%d" % size))
    assert len(env) in PADDING_BUCKETS
    assert len(env) == bucket_for(ENVELOPE_OVERHEAD + FRAMING + len(cert.encode()) + size)
    assert env[0] == ENVELOPE_VERSION
    assert open_bob(env) == OpenedEnvelope(cert, content)


@pytest.mark.parametrize("bucket", PADDING_BUCKETS)
def test_capacity_edges_choose_the_bucket(bucket: int) -> None:
    cert = alice_cert()
    edge = capacity(bucket, cert)
    assert len(seal(bob_key(), cert, bytes(edge), det_rng(b"edge"))) == bucket
    if bucket != PADDING_BUCKETS[-1]:
        assert len(seal(bob_key(), cert, bytes(edge + 1), det_rng(b"edge+1"))) > bucket


def test_largest_content_with_largest_certificate_fills_the_last_bucket() -> None:
    cert = max_cert()
    assert len(cert.encode()) == MAX_CERTIFICATE_SIZE
    content = filler(b"max", MAX_SEALED_CONTENT)
    env = seal(bob_key(), cert, content, det_rng(b"max"))
    assert len(env) == PADDING_BUCKETS[-1]
    assert 65536 - ENVELOPE_OVERHEAD - FRAMING - MAX_CERTIFICATE_SIZE == MAX_SEALED_CONTENT
    assert open_bob(env) == OpenedEnvelope(cert, content)


def test_oversized_content() -> None:
    for cert in (alice_cert(), issue_certificate(alice(), "", b"", EXPIRES)):
        with pytest.raises(LocalProtocolError):
            seal(bob_key(), cert, bytes(MAX_SEALED_CONTENT + 1), det_rng(b"big"))


def test_layout_matches_the_spec() -> None:
    """Decrypt with an independent implementation of the documented key schedule."""
    cert = alice_cert()
    rng_seed = b"layout"
    env = seal(bob_key(), cert, b"hello", det_rng(rng_seed))
    eph = FAST.dh.from_private(det_rng(rng_seed)(32))
    assert env[0] == 1
    assert env[1:33] == eph.public_key
    recipient_pub = bob().public.agreement_key
    okm = hkdf(
        eph.exchange(recipient_pub),
        eph.public_key + recipient_pub,
        b"chhaya/ss/v1/envelope",
        44,
    )
    aad = b"\x01" + eph.public_key + recipient_pub
    plaintext = AESGCM(okm[:32]).decrypt(okm[32:], env[33:], aad)
    assert len(plaintext) == len(env) - 49
    inner = inner_message(cert.encode(), b"hello")
    assert plaintext == inner + b"\x80" + bytes(len(plaintext) - len(inner) - 1)


def test_sealing_is_a_function_of_rng() -> None:
    cert = alice_cert()
    first = seal(bob_key(), cert, b"x", det_rng(b"same"))
    assert seal(bob_key(), cert, b"x", det_rng(b"same")) == first
    other = seal(bob_key(), cert, b"x", det_rng(b"other"))
    assert other[1:33] != first[1:33]
    assert open_bob(first) == open_bob(other)


def test_bad_recipient_key() -> None:
    with pytest.raises(LocalProtocolError):
        seal(b"\x09" * 31, alice_cert(), b"", det_rng(b"k"))
    with pytest.raises(LocalProtocolError):
        seal_cover(b"\x09" * 33, 0, det_rng(b"k"))
    # A low-order point gives an all-zero shared secret.
    with pytest.raises(CryptoError):
        seal(bytes(32), alice_cert(), b"", det_rng(b"k"))


def test_invalid_certificate_is_a_local_error() -> None:
    with pytest.raises(LocalProtocolError):
        seal(bob_key(), replace(alice_cert(), signature=b""), b"", det_rng(b"c"))


# ----------------------------------------------------------------- cover


@pytest.mark.parametrize("size_hint", [0, 1, 255, 256, 257, 1024, 4000, 16385, 65536])
def test_cover_sizes_and_open_to_none(size_hint: int) -> None:
    env = seal_cover(bob_key(), size_hint, det_rng(b"cover/%d" % size_hint))
    assert len(env) == bucket_for(size_hint)
    assert env[0] == ENVELOPE_VERSION
    assert open_bob(env) is None
    assert open_envelope_untrusted(bob(), env, NOW, CertificateCache()) is None


@pytest.mark.parametrize("size_hint", [65537, -1])
def test_cover_size_out_of_range(size_hint: int) -> None:
    with pytest.raises(LocalProtocolError):
        seal_cover(bob_key(), size_hint, det_rng(b"cover"))


@pytest.mark.parametrize("bucket", PADDING_BUCKETS)
def test_cover_and_real_look_alike(bucket: int) -> None:
    """Same length, same version byte, same structure: only Bob can tell them apart."""
    cert = issue_certificate(alice(), "", b"", EXPIRES)
    real = seal(bob_key(), cert, bytes(capacity(bucket, cert)), det_rng(b"real"))
    cover = seal_cover(bob_key(), bucket, det_rng(b"cover"))
    assert len(real) == len(cover) == bucket
    assert real[0] == cover[0] == ENVELOPE_VERSION
    # The ephemeral keys are both valid X25519 public keys of fresh key pairs.
    for env in (real, cover):
        FAST.dh.from_private(bytes(32)).exchange(env[1:33])
    assert isinstance(open_bob(real), OpenedEnvelope)
    assert open_bob(cover) is None


def test_cover_for_someone_else_fails_like_a_message() -> None:
    cover = seal_cover(carol().public.agreement_key, 10, det_rng(b"cover"))
    with pytest.raises(CryptoError):
        open_bob(cover)


# -------------------------------------------------------------- tampering


def test_wrong_recipient() -> None:
    env = seal(bob_key(), alice_cert(), b"for bob", det_rng(b"w"))
    with pytest.raises(CryptoError):
        open_envelope_untrusted(carol(), env, NOW)
    with pytest.raises(CryptoError):
        open_envelope_untrusted(alice(), env, NOW)


def test_every_bit_flip_of_a_small_envelope_fails() -> None:
    cert = issue_certificate(alice(), "a", b"", EXPIRES)
    env = seal(bob_key(), cert, b"hi", det_rng(b"flip"))
    assert len(env) == 1024
    assert open_bob(env) is not None
    for offset in range(len(env)):
        for bit in range(8):
            mutated = bytearray(env)
            mutated[offset] ^= 1 << bit
            with pytest.raises((DecodeError, CryptoError)):
                open_bob(bytes(mutated))


@pytest.mark.parametrize("bucket", [1024, 4096])
def test_truncated_or_extended(bucket: int) -> None:
    env = seal_cover(bob_key(), bucket, det_rng(b"t"))
    for data in (
        env[:-1],
        env + b"\x00",
        env[:33],
        env[:1],
        b"",
        env + env,
        env[:-16],
        env + bytes(16),
    ):
        with pytest.raises(DecodeError):
            open_bob(data)


@pytest.mark.parametrize("size", [0, 1, 33, 49, 255, 257, 1023, 65535, 65537])
def test_non_bucket_sizes(size: int) -> None:
    with pytest.raises(DecodeError):
        open_bob(bytes(size))


def test_unknown_version() -> None:
    env = bytearray(seal_cover(bob_key(), 0, det_rng(b"v")))
    for version in (0, 2, 255):
        env[0] = version
        with pytest.raises(DecodeError):
            open_bob(bytes(env))


def test_low_order_ephemeral_key() -> None:
    env = b"\x01" + bytes(32) + bytes(1024 - 33)
    with pytest.raises(CryptoError):
        open_bob(env)


def test_non_bytes_input() -> None:
    with pytest.raises(DecodeError):
        open_bob("x" * 256)  # type: ignore[arg-type]


# --------------------------------------------------- inner plaintext errors

_N = 1024 - ENVELOPE_OVERHEAD


@pytest.mark.parametrize(
    "plaintext",
    [
        bytes(_N),  # no marker at all
        bytes([KIND_COVER]) + bytes(_N - 1),  # cover without marker
        bytes([KIND_COVER, 0x80]) + bytes(_N - 3) + b"\x01",  # non-zero after marker
        bytes([KIND_COVER, 0x81]) + bytes(_N - 2),  # wrong marker
        bytes([KIND_COVER, 0x80]) + b"\x00\x80" + bytes(_N - 4),  # marker, zero, marker
        b"\xff" * _N,
    ],
)
def test_tampered_padding(plaintext: bytes) -> None:
    assert len(plaintext) == _N
    with pytest.raises(DecodeError):
        open_bob(seal_raw(plaintext))


def test_hand_built_envelope_with_valid_padding_opens() -> None:
    """The control for the padding tests: the same path with good padding works."""
    cert = alice_cert()
    env = seal_padded(inner_message(cert.encode(), b"ok"))
    assert open_bob(env) == OpenedEnvelope(cert, b"ok")
    assert open_bob(seal_padded(bytes([KIND_COVER]))) is None


@pytest.mark.parametrize(
    "inner",
    [
        b"",  # no kind
        b"\x00",
        b"\x03",
        b"\xff",
        bytes([KIND_COVER, 0]),  # cover with trailing bytes
        bytes([KIND_MESSAGE]),  # message without certificate
        bytes([KIND_MESSAGE]) + b"\x00\x00\x00\x00\x00\x00",  # empty certificate
        bytes([KIND_MESSAGE]) + (MAX_CERTIFICATE_SIZE + 1).to_bytes(2, "big"),
    ],
)
def test_bad_inner_encoding(inner: bytes) -> None:
    with pytest.raises(DecodeError):
        open_bob(seal_padded(inner))


def test_bad_inner_message_fields() -> None:
    cert = alice_cert().encode()
    good = inner_message(cert, b"abc")
    for inner in (
        good + b"\x00",  # trailing byte before the padding
        good[:-1],  # content shorter than its length
        inner_message(cert[:-1], b"abc"),  # truncated certificate
        inner_message(cert + b"\x00", b"abc"),  # certificate with trailing byte
        Writer()
        .u8(KIND_MESSAGE)
        .var16(cert, 0xFFFF)
        .u32(MAX_SEALED_CONTENT + 1)
        .getvalue(),  # declared content over the bound
    ):
        with pytest.raises(DecodeError):
            open_bob(seal_padded(inner, 1024))


def test_plaintext_that_does_not_fill_a_bucket_is_refused_locally() -> None:
    with pytest.raises(LocalProtocolError):
        seal_raw(bytes(_N - 1))


# ----------------------------------------------------------- certificates


def test_expired_certificate() -> None:
    env = seal(bob_key(), alice_cert(), b"late", det_rng(b"e"))
    assert open_bob(env, EXPIRES - 1) is not None
    for cache in (None, CertificateCache()):
        with pytest.raises(VerificationError) as exc:
            open_envelope_untrusted(bob(), env, EXPIRES, cache)
        assert exc.value.check == "certificate-expired"


def test_forged_certificate_signature() -> None:
    genuine = alice_cert()
    forged = replace(genuine, signature=carol().sign(genuine.signed_message()))
    env = seal(bob_key(), forged, b"trust me", det_rng(b"f"))
    for cache in (None, CertificateCache()):
        with pytest.raises(VerificationError) as exc:
            open_envelope_untrusted(bob(), env, NOW, cache)
        assert exc.value.check == "certificate-signature"


def test_open_with_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    cache = CertificateCache()
    cert = alice_cert()
    first = seal(bob_key(), cert, b"1", det_rng(b"c1"))
    second = seal(bob_key(), cert, b"2", det_rng(b"c2"))
    assert open_envelope_untrusted(bob(), first, NOW, cache) == OpenedEnvelope(cert, b"1")
    assert (cache.hits, cache.misses) == (0, 1)

    def fail(*args: object) -> None:
        raise AssertionError("signature verified again")

    monkeypatch.setattr(FAST.sig, "verify", fail)
    assert open_envelope_untrusted(bob(), second, NOW, cache) == OpenedEnvelope(cert, b"2")
    assert (cache.hits, cache.misses) == (1, 1)
    with pytest.raises(VerificationError):
        open_envelope_untrusted(bob(), second, EXPIRES, cache)
