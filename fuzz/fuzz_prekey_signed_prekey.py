"""Fuzz ``SignedPrekey.decode_untrusted``: only DecodeError, and a decoding
re-encodes to exactly the input (fixed-size type: one encoding per value).

Run: ``python fuzz/fuzz_prekey_signed_prekey.py [corpus_dir] [-max_total_time=60]``
"""

from __future__ import annotations

import functools
import sys

import atheris

with atheris.instrument_imports(include=["chhaya"]):
    import _seeds

    from chhaya import DecodeError
    from chhaya.prekeys import SIGNED_PREKEY_SIZE, InMemoryPrekeyStore, SignedPrekey


@functools.cache
def _seed_list() -> tuple[bytes, ...]:
    rng = _seeds.DeterministicRng(b"seed/prekey-signed")
    store = InMemoryPrekeyStore(_seeds.identity(b"prekey-owner"))
    valid = store.rotate_signed_prekey(rng, _seeds.NOW_MS).encode()
    top = SignedPrekey(2**32 - 1, (2**255 - 20).to_bytes(32, "little"), rng(64)).encode()
    non_canonical = valid[:35] + bytes([valid[35] | 0x80]) + valid[36:]
    return (valid, top, non_canonical, valid[:-1], valid + b"\x00", b"")


def seeds() -> list[bytes]:
    return list(_seed_list())


def TestOneInput(data: bytes) -> None:
    try:
        prekey = SignedPrekey.decode_untrusted(data)
    except DecodeError:
        return
    assert len(data) == SIGNED_PREKEY_SIZE
    assert prekey.encode() == data


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
