"""Fuzz ``Ack.decode_untrusted``: only DecodeError, exact re-encoding.

Run: ``python fuzz/fuzz_ack.py [corpus_dir] [-max_total_time=60]``
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["chhaya"]):
    import _seeds

    from chhaya import DecodeError
    from chhaya.channel import ACK_SIZE, Ack


def seeds() -> list[bytes]:
    return _seeds.ack_seeds()


def TestOneInput(data: bytes) -> None:
    try:
        ack = Ack.decode_untrusted(data)
    except DecodeError:
        return
    assert len(data) == ACK_SIZE
    assert ack.encode() == data


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
