"""Fuzz ``open_envelope_untrusted`` from both sides of the AEAD tag.

An input whose length is a padding bucket is opened as an envelope: it may
raise only DecodeError, CryptoError or VerificationError. Mutations almost
never get past the tag, so any other input is taken as the *plaintext* an
authentic sender chose: it is zero-filled to its bucket, encrypted to the
recipient with the module's own key schedule, then opened. That may raise
only DecodeError or VerificationError. Whatever opens must have been the
canonical encoding of what came out, and must seal and open again.

Seeds are built here, not in ``_seeds.py``: a genuine envelope first.

Run: ``python fuzz/fuzz_sealed_envelope.py [corpus_dir] [-max_total_time=60]``
"""

from __future__ import annotations

import sys
from dataclasses import replace

import atheris

with atheris.instrument_imports(include=["chhaya"]):
    import _seeds

    from chhaya import CryptoError, DecodeError, VerificationError
    from chhaya.identity import PrivateIdentity
    from chhaya.sealed import (
        ENVELOPE_OVERHEAD,
        KIND_COVER,
        KIND_MESSAGE,
        MAX_CERTIFICATE_SIZE,
        MAX_PADDED_SIZE,
        MAX_SEALED_CONTENT,
        PADDING_BUCKETS,
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

_YEAR_MS = 365 * 86_400_000
_MAX_PLAINTEXT = MAX_PADDED_SIZE - ENVELOPE_OVERHEAD


def recipient() -> PrivateIdentity:
    return _seeds.identity(b"sealed-recipient")


def _certificate() -> SenderCertificate:
    sender = _seeds.identity(b"sealed-sender")
    return issue_certificate(sender, "a", b"", _seeds.NOW_MS + _YEAR_MS)


def _inner(cert: SenderCertificate, content: bytes) -> bytes:
    return (
        Writer()
        .u8(KIND_MESSAGE)
        .var16(cert.encode(), MAX_CERTIFICATE_SIZE)
        .var32(content, MAX_SEALED_CONTENT)
        .getvalue()
    )


def seeds() -> list[bytes]:
    key = recipient().public.agreement_key
    rng = _seeds.DeterministicRng(b"seed/sealed-envelope")
    cert = _certificate()
    forged = replace(cert, signature=_seeds.identity(b"other").sign(cert.signed_message()))
    valid = seal(key, cert, b"hello", rng)
    assert len(valid) == PADDING_BUCKETS[0]
    return [
        valid,
        seal(key, cert, bytes(range(256)) * 2, rng),
        seal_cover(key, 0, rng),
        seal_cover(key, 1024, rng),
        seal(key, forged, b"forged", rng),
        _inner(cert, b"hello") + b"\x80",
        _inner(forged, b"") + b"\x80",
        bytes((KIND_COVER, 0x80)),
        bytes((KIND_COVER, 0x80, 0x01)),
        bytes((KIND_MESSAGE, 0x00, 0x00)),
        b"\x01" + bytes(PADDING_BUCKETS[0] - 1),
        b"",
    ]


def _check_opened(opened: OpenedEnvelope | None, plaintext: bytes | None) -> None:
    """A successful open: canonical plaintext (if known), and seal/open again."""
    me = recipient()
    rng = _seeds.DeterministicRng(b"fuzz/sealed-envelope/reseal")
    if opened is None:
        assert plaintext is None or plaintext == pad(bytes((KIND_COVER,)), len(plaintext))
        return
    if plaintext is not None:
        assert plaintext == pad(_inner(opened.certificate, opened.content), len(plaintext))
    again = seal(me.public.agreement_key, opened.certificate, opened.content, rng)
    assert open_envelope_untrusted(me, again, _seeds.NOW_MS) == opened


def TestOneInput(data: bytes) -> None:
    me = recipient()
    if len(data) in PADDING_BUCKETS:
        try:
            opened = open_envelope_untrusted(me, data, _seeds.NOW_MS)
        except (DecodeError, CryptoError, VerificationError):
            return
        _check_opened(opened, None)
        return
    body = data[:_MAX_PLAINTEXT]
    plaintext = body + bytes(
        bucket_for(len(body) + ENVELOPE_OVERHEAD) - ENVELOPE_OVERHEAD - len(body)
    )
    rng = _seeds.DeterministicRng(b"fuzz/sealed-envelope")
    envelope = _seal_plaintext(me.public.agreement_key, plaintext, rng)
    try:
        opened = open_envelope_untrusted(me, envelope, _seeds.NOW_MS)
    except (DecodeError, VerificationError):
        return
    _check_opened(opened, plaintext)


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
