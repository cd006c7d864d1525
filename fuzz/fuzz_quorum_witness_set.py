"""Fuzz ``quorum.WitnessSet.decode_untrusted``: only DecodeError, and a decoding
re-encodes to exactly the input. A decoded set is also put through
``validate()`` (blst backend), which may only raise VerificationError.

Run: ``python fuzz/fuzz_quorum_witness_set.py [corpus_dir] [-max_total_time=60]``
"""

from __future__ import annotations

import contextlib
import functools
import sys

import atheris

with atheris.instrument_imports(include=["quorum"]):
    import _seeds
    import _vkd_seeds

    from chhaya import DecodeError, VerificationError
    from quorum import MAX_WITNESS_ID_LEN, WitnessMember, WitnessSet
    from quorum.bls import BLS_PUBLIC_KEY_SIZE, BLS_SIGNATURE_SIZE


@functools.cache
def _seed_list() -> tuple[bytes, ...]:
    rng = _seeds.DeterministicRng(b"seed/quorum-witness-set")
    valid = _vkd_seeds.quorum().witness_set.encode()
    five = _vkd_seeds.quorum(b"n", 5, 3).witness_set
    single = WitnessSet(five.members[:1], 1).encode()
    odd = WitnessSet(
        (
            WitnessMember(
                "a" * MAX_WITNESS_ID_LEN, rng(BLS_PUBLIC_KEY_SIZE), rng(BLS_SIGNATURE_SIZE)
            ),
            WitnessMember("Z.9_-", bytes(BLS_PUBLIC_KEY_SIZE), bytes(BLS_SIGNATURE_SIZE)),
        ),
        0xFFFF,
    ).encode()
    empty = WitnessSet((), 0).encode()
    return (valid, five.encode(), single, odd, empty, valid[:-1], valid + b"\x00", b"CWS1", b"")


def seeds() -> list[bytes]:
    return list(_seed_list())


def TestOneInput(data: bytes) -> None:
    try:
        witness_set = WitnessSet.decode_untrusted(data)
    except DecodeError:
        return
    assert witness_set.encode() == data
    with contextlib.suppress(VerificationError):
        witness_set.validate(_vkd_seeds.backend())


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
