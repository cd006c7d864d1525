"""Fuzz ``Header.decode_untrusted`` (the ratchet header): only DecodeError, exact re-encoding.

Run: ``python fuzz/fuzz_ratchet_header.py [corpus_dir] [-max_total_time=60]``
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["chhaya"]):
    import _seeds

    from chhaya import DecodeError
    from chhaya.ratchet import HEADER_SIZE, Header


def seeds() -> list[bytes]:
    rng = _seeds.DeterministicRng(b"seed/ratchet-header")
    valid = Header(dh=rng(32), pn=7, n=3).encode()
    return [
        valid,
        Header(dh=bytes(32), pn=0, n=0).encode(),
        Header(dh=b"\xff" * 32, pn=2**32 - 1, n=2**32 - 1).encode(),
        valid[:-1],
        valid + b"\x00",
        b"",
    ]


def TestOneInput(data: bytes) -> None:
    try:
        header = Header.decode_untrusted(data)
    except DecodeError:
        return
    assert len(data) == HEADER_SIZE
    assert len(header.dh) == 32
    assert 0 <= header.pn < 2**32
    assert 0 <= header.n < 2**32 - 1  # the largest u32 is never a message number
    assert header.encode() == data


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
