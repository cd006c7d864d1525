"""Fuzz ``vkd.AppendOnlyViolation.decode_untrusted``: only DecodeError, and a
decoding re-encodes to exactly the input. ``verify()`` raises only
VerificationError and accepts only the one violation the directory signed
(an honest audit proof is not evidence).

Run: ``python fuzz/fuzz_vkd_append_only_violation.py [corpus_dir] [-max_total_time=60]``
"""

from __future__ import annotations

import functools
import sys

import atheris

with atheris.instrument_imports(include=["quorum", "vkd"]):
    import _vkd_seeds

    from chhaya import DecodeError, VerificationError
    from vkd import AppendOnlyViolation


@functools.cache
def _seed_list() -> tuple[bytes, ...]:
    world = _vkd_seeds.directory_world()
    valid = world.violation.encode()
    honest = AppendOnlyViolation(world.audits[1]).encode()
    return (valid, honest, valid[:-1], valid + b"\x00", valid[4:], b"CVV1CVA1", b"CVV1", b"")


def seeds() -> list[bytes]:
    return list(_seed_list())


def TestOneInput(data: bytes) -> None:
    try:
        evidence = AppendOnlyViolation.decode_untrusted(data)
    except DecodeError:
        return
    assert evidence.encode() == data
    try:
        evidence.verify()
    except VerificationError:
        return
    assert data == _seed_list()[0]


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
