"""Fuzz ``SignedRecord.decode_untrusted`` (``/chhaya/`` DHT values): only
DecodeError escapes, and whatever decodes re-encodes to exactly the input.

Run: ``python fuzz/fuzz_p2p_dht_record.py [corpus_dir] [-max_total_time=60]``
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["node"]):
    from chhaya import DecodeError
    from node.p2p import SIGNED_RECORD_MAGIC, SignedRecord


def seeds() -> list[bytes]:
    record = SignedRecord(b"\x01" * 32, 7, 1_700_000_000_000, b"payload", b"\x02" * 64)
    empty = SignedRecord(b"\x03" * 32, 0, 0, b"", b"\x04" * 64)
    return [record.encode(), empty.encode(), SIGNED_RECORD_MAGIC, b""]


def TestOneInput(data: bytes) -> None:
    try:
        record = SignedRecord.decode_untrusted(data)
    except DecodeError:
        return
    assert record.encode() == data


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
