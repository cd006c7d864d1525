"""Fuzz ``quorum.SignedHead.decode_untrusted``: only DecodeError, and a decoding
re-encodes to exactly the input (fixed-size type). ``verify()`` raises only
VerificationError and succeeds only for the heads the directory signed.

Run: ``python fuzz/fuzz_quorum_signed_head.py [corpus_dir] [-max_total_time=60]``
"""

from __future__ import annotations

import functools
import sys

import atheris

with atheris.instrument_imports(include=["quorum"]):
    import _seeds
    import _vkd_seeds

    from chhaya import DecodeError, VerificationError
    from quorum import GENESIS_PREVIOUS, SIGNED_HEAD_SIZE, SignedHead


@functools.cache
def _signed() -> tuple[bytes, ...]:
    rng = _seeds.DeterministicRng(b"seed/quorum-signed-head")
    genesis = _vkd_seeds.head(0, GENESIS_PREVIOUS, rng(32))
    second = _vkd_seeds.head(1, genesis.head.head_hash, rng(32))
    return genesis.encode(), second.encode()


@functools.cache
def _seed_list() -> tuple[bytes, ...]:
    genesis, second = _signed()
    # Another directory's keys under the genesis id, and a copied signature.
    rng = _seeds.DeterministicRng(b"seed/quorum-signed-head/keys")
    swapped = genesis[: SIGNED_HEAD_SIZE - 128] + rng(64) + genesis[-64:]
    spliced = second[:-64] + genesis[-64:]
    return (genesis, second, swapped, spliced, genesis[:-1], genesis + b"\x00", b"CEH1", b"")


def seeds() -> list[bytes]:
    return list(_seed_list())


def TestOneInput(data: bytes) -> None:
    try:
        signed = SignedHead.decode_untrusted(data)
    except DecodeError:
        return
    assert len(data) == SIGNED_HEAD_SIZE
    assert signed.encode() == data
    try:
        signed.verify()
    except VerificationError:
        return
    assert data in _signed()


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
