"""Fuzz ``vkd.DirectoryValue.decode_untrusted``: only DecodeError, and a
decoding re-encodes to exactly the input (a bundle, or the one-byte
tombstone).

Run: ``python fuzz/fuzz_vkd_directory_value.py [corpus_dir] [-max_total_time=60]``
"""

from __future__ import annotations

import functools
import sys

import atheris

with atheris.instrument_imports(include=["chhaya", "quorum", "vkd"]):
    import _vkd_seeds

    from chhaya import DecodeError
    from vkd import DirectoryValue


@functools.cache
def _seed_list() -> tuple[bytes, ...]:
    alice, _, bob = _vkd_seeds.directory_world().bundles
    valid = DirectoryValue(alice).encode()
    tombstone = DirectoryValue(None).encode()
    return (
        valid,
        DirectoryValue(bob).encode(),
        tombstone,
        tombstone + b"\x00",
        b"\x02" + valid[1:],
        valid[:-1],
        b"\x03",
        b"\x01CIB1",
        b"",
    )


def seeds() -> list[bytes]:
    return list(_seed_list())


def TestOneInput(data: bytes) -> None:
    try:
        value = DirectoryValue.decode_untrusted(data)
    except DecodeError:
        return
    assert value.encode() == data
    assert value.is_tombstone == (data == b"\x02")


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
