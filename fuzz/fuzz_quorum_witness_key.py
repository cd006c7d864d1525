"""Fuzz ``quorum.decode_witness_key_untrusted``: only DecodeError; a decoded
key is in range and ``encode_witness_key`` gives back exactly the input.

The checksum stops most mutations early, so some seeds carry a correct
checksum over a bad body (key 0, key = r, an unknown mode) to reach the
checks behind it.

Run: ``python fuzz/fuzz_quorum_witness_key.py [corpus_dir] [-max_total_time=60]``
"""

from __future__ import annotations

import functools
import hashlib
import sys

import atheris

with atheris.instrument_imports(include=["quorum"]):
    import _vkd_seeds

    from chhaya import DecodeError
    from quorum import decode_witness_key_untrusted, encode_witness_key
    from quorum.bls import CURVE_ORDER


def _with_checksum(body: bytes) -> bytes:
    return body + hashlib.sha256(body).digest()[:16]


@functools.cache
def _seed_list() -> tuple[bytes, ...]:
    valid = encode_witness_key(_vkd_seeds.quorum().secret_keys[0])
    magic = b"CHHYBLS1"
    return (
        valid,
        encode_witness_key(1),
        encode_witness_key(CURVE_ORDER - 1),
        _with_checksum(magic + b"\x00" + bytes(32)),
        _with_checksum(magic + b"\x00" + CURVE_ORDER.to_bytes(32, "big")),
        _with_checksum(magic + b"\x01" + valid[9:41]),
        valid[:-1],
        valid + b"\x00",
        magic,
        b"",
    )


def seeds() -> list[bytes]:
    return list(_seed_list())


def TestOneInput(data: bytes) -> None:
    try:
        secret_key = decode_witness_key_untrusted(data)
    except DecodeError:
        return
    assert 0 < secret_key < CURVE_ORDER
    assert encode_witness_key(secret_key) == data


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
