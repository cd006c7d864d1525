"""Fuzz ``Payload.decode_untrusted`` (what a ratchet message carries): only
DecodeError escapes, and whatever decodes re-encodes to exactly the input.

Run: ``python fuzz/fuzz_session_payload.py [corpus_dir] [-max_total_time=60]``
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["chhaya"]):
    from chhaya import DecodeError
    from chhaya.session import Payload, PayloadKind, ReceiptStatus


def seeds() -> list[bytes]:
    mid = bytes(range(16))
    return [
        Payload(PayloadKind.TEXT, mid, 1_800_000_000_000, text=b"hello").encode(),
        Payload(PayloadKind.TEXT, mid, 0, text=b"").encode(),
        Payload(
            PayloadKind.RECEIPT,
            mid,
            7,
            receipt_status=ReceiptStatus.READ,
            receipt_ids=(mid, bytes(16)),
        ).encode(),
        b"\x01\x03" + bytes(24),
        b"",
    ]


def TestOneInput(data: bytes) -> None:
    try:
        payload = Payload.decode_untrusted(data)
    except DecodeError:
        return
    assert payload.encode() == data


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
