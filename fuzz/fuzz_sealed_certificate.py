"""Fuzz ``SenderCertificate.decode_untrusted``: only DecodeError; a decoding
re-encodes to exactly the input, and verifying it raises only
VerificationError.

Seeds are built here, not in ``_seeds.py``: a genuine certificate first.

Run: ``python fuzz/fuzz_sealed_certificate.py [corpus_dir] [-max_total_time=60]``
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["chhaya"]):
    import _seeds

    from chhaya import DecodeError, VerificationError
    from chhaya.sealed import (
        MAX_CERTIFICATE_SIZE,
        MAX_DEVICE_ID_LEN,
        MIN_CERTIFICATE_SIZE,
        SenderCertificate,
        issue_certificate,
    )

_YEAR_MS = 365 * 86_400_000


def seeds() -> list[bytes]:
    sender = _seeds.identity(b"sealed-sender")
    valid = issue_certificate(sender, "alice", b"device-1", _seeds.NOW_MS + _YEAR_MS).encode()
    largest = issue_certificate(sender, "\u00e9" * 32, b"d" * MAX_DEVICE_ID_LEN, 2**64 - 1).encode()
    expired = issue_certificate(sender, "", b"", _seeds.NOW_MS).encode()
    rng = _seeds.DeterministicRng(b"seed/sealed-certificate")
    random_fields = SenderCertificate(
        handle="h\u00e9llo",
        identity_key=rng(32),
        agreement_key=rng(32),
        device_id=rng(20),
        expires_ms=0,
        signature=rng(64),
    ).encode()
    return [valid, largest, expired, random_fields, valid[:-1], valid + b"\x00", b"\x00", b""]


def TestOneInput(data: bytes) -> None:
    try:
        cert = SenderCertificate.decode_untrusted(data)
    except DecodeError:
        return
    assert MIN_CERTIFICATE_SIZE <= len(data) <= MAX_CERTIFICATE_SIZE
    assert cert.encode() == data
    failed = ""
    try:
        cert.verify(_seeds.NOW_MS)
    except VerificationError as exc:
        failed = exc.check
    assert failed in ("", "certificate-signature", "certificate-expired")


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
