"""Fuzz ``unpad_untrusted`` and ``bucket_for``: unpadding raises only
DecodeError, and whatever unpads pads back (``pad``) to exactly the input.

Seeds are built here, not in ``_seeds.py``.

Run: ``python fuzz/fuzz_padding.py [corpus_dir] [-max_total_time=60]``
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["chhaya"]):
    from chhaya import DecodeError
    from chhaya.sealed import MAX_PADDED_SIZE, PADDING_BUCKETS, bucket_for, pad, unpad_untrusted


def seeds() -> list[bytes]:
    return [
        pad(b"hello", 16),
        pad(b"", 1),
        pad(b"\x80\x00", 256),
        pad(bytes(range(256)), 1024),
        b"abc\x80\x00\x01",
        b"abc\x81\x00",
        bytes(8),
        b"",
    ]


def TestOneInput(data: bytes) -> None:
    if len(data) <= MAX_PADDED_SIZE:
        bucket = bucket_for(len(data))
        assert bucket in PADDING_BUCKETS
        assert bucket >= len(data)
    try:
        content = unpad_untrusted(data)
    except DecodeError:
        return
    assert len(content) < len(data)
    assert pad(content, len(data)) == data


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
