"""Fuzz ``decode_pub_file_untrusted``: only DecodeError; a decoded file
re-encodes (``encode_pub_file``) to a file that decodes to the same value.

The text form is not canonical (surrounding whitespace is stripped), so the
round trip is checked on values, not bytes.

Run: ``python fuzz/fuzz_pub_file.py [corpus_dir] [-max_total_time=60]``
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["chhaya"]):
    import _seeds

    from chhaya import DecodeError
    from chhaya.identity import (
        MAX_PUB_FILE_SIZE,
        decode_pub_file_untrusted,
        encode_pub_file,
        valid_name,
    )


def seeds() -> list[bytes]:
    return _seeds.pub_file_seeds()


def TestOneInput(data: bytes) -> None:
    try:
        name, identity = decode_pub_file_untrusted(data)
    except DecodeError:
        return
    assert len(data) <= MAX_PUB_FILE_SIZE
    assert valid_name(name)
    canonical = encode_pub_file(name, identity).encode("ascii")
    assert decode_pub_file_untrusted(canonical) == (name, identity)


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
