"""Fuzz ``Syn.decode_untrusted``: only DecodeError, and a decoding re-encodes
to exactly the input (fixed-size type: one encoding per value).

Run: ``python fuzz/fuzz_syn.py [corpus_dir] [-max_total_time=60]``
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["chhaya"]):
    import _seeds

    from chhaya import DecodeError
    from chhaya.channel import SYN_SIZE, Syn


def seeds() -> list[bytes]:
    return _seeds.syn_seeds()


def TestOneInput(data: bytes) -> None:
    try:
        syn = Syn.decode_untrusted(data)
    except DecodeError:
        return
    assert len(data) == SYN_SIZE
    assert syn.encode() == data
    assert syn.unsigned_bytes() == data[: SYN_SIZE - len(syn.signature)]


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
