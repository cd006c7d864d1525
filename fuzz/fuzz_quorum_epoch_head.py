"""Fuzz ``quorum.EpochHead.decode_untrusted``: only DecodeError, and a decoding
re-encodes to exactly the input (fixed-size type: one encoding per value).

Run: ``python fuzz/fuzz_quorum_epoch_head.py [corpus_dir] [-max_total_time=60]``
"""

from __future__ import annotations

import functools
import sys

import atheris

with atheris.instrument_imports(include=["quorum"]):
    import _seeds
    import _vkd_seeds

    from chhaya import DecodeError
    from quorum import EPOCH_HEAD_SIZE, GENESIS_PREVIOUS, EpochHead


@functools.cache
def _seed_list() -> tuple[bytes, ...]:
    rng = _seeds.DeterministicRng(b"seed/quorum-epoch-head")
    genesis = _vkd_seeds.head(0, GENESIS_PREVIOUS, rng(32))
    second = _vkd_seeds.head(1, genesis.head.head_hash, rng(32))
    valid = genesis.head.encode()
    top = EpochHead(b"\xff" * 32, 2**64 - 1, b"\xff" * 32, b"\xff" * 32, 2**64 - 1).encode()
    return (valid, second.head.encode(), top, valid[:-1], valid + b"\x00", b"CEH1", b"")


def seeds() -> list[bytes]:
    return list(_seed_list())


def TestOneInput(data: bytes) -> None:
    try:
        head = EpochHead.decode_untrusted(data)
    except DecodeError:
        return
    assert len(data) == EPOCH_HEAD_SIZE
    assert head.encode() == data
    assert len(head.head_hash) == 32


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
