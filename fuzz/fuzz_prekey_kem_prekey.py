"""Fuzz ``SignedKemPrekey.decode_untrusted``: only DecodeError, and a decoding
re-encodes to exactly the input (fixed-size type: one encoding per value).

Run: ``python fuzz/fuzz_prekey_kem_prekey.py [corpus_dir] [-max_total_time=60]``
"""

from __future__ import annotations

import functools
import sys

import atheris

with atheris.instrument_imports(include=["chhaya"]):
    import _seeds

    from chhaya import DecodeError
    from chhaya.prekeys import SIGNED_KEM_PREKEY_SIZE, InMemoryPrekeyStore, SignedKemPrekey


@functools.cache
def _seed_list() -> tuple[bytes, ...]:
    rng = _seeds.DeterministicRng(b"seed/prekey-kem")
    store = InMemoryPrekeyStore(_seeds.identity(b"prekey-owner"))
    valid = store.rotate_last_resort_kem_prekey(rng, _seeds.NOW_MS).encode()
    one_time = store.generate_kem_prekeys(1, rng, _seeds.NOW_MS)[0].encode()
    bad_flag = valid[:4] + b"\x02" + valid[5:]
    return (valid, one_time, bad_flag, valid[:-1], valid + b"\x00", b"")


def seeds() -> list[bytes]:
    return list(_seed_list())


def TestOneInput(data: bytes) -> None:
    try:
        prekey = SignedKemPrekey.decode_untrusted(data)
    except DecodeError:
        return
    assert len(data) == SIGNED_KEM_PREKEY_SIZE
    assert prekey.encode() == data


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
