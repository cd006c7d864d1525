"""Fuzz ``OneTimePrekey.decode_untrusted``: only DecodeError, and a decoding
re-encodes to exactly the input (fixed-size type: one encoding per value).

Run: ``python fuzz/fuzz_prekey_one_time_prekey.py [corpus_dir] [-max_total_time=60]``
"""

from __future__ import annotations

import functools
import sys

import atheris

with atheris.instrument_imports(include=["chhaya"]):
    import _seeds

    from chhaya import DecodeError
    from chhaya.prekeys import ONE_TIME_PREKEY_SIZE, InMemoryPrekeyStore, OneTimePrekey


@functools.cache
def _seed_list() -> tuple[bytes, ...]:
    rng = _seeds.DeterministicRng(b"seed/prekey-one-time")
    store = InMemoryPrekeyStore(_seeds.identity(b"prekey-owner"))
    valid = store.generate_one_time_prekeys(1, rng, _seeds.NOW_MS)[0].encode()
    p = (2**255 - 19).to_bytes(32, "little")
    return (valid, bytes(36), valid[:4] + p, valid[:-1], valid + b"\x00", b"")


def seeds() -> list[bytes]:
    return list(_seed_list())


def TestOneInput(data: bytes) -> None:
    try:
        prekey = OneTimePrekey.decode_untrusted(data)
    except DecodeError:
        return
    assert len(data) == ONE_TIME_PREKEY_SIZE
    assert prekey.encode() == data


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
