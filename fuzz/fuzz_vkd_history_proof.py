"""Fuzz ``vkd.HistoryProof.decode_untrusted``: only DecodeError, and a decoding
re-encodes to exactly the input. A decoded proof goes through
``verify_vkd_proof`` against the seed directory's trust: that raises only
VerificationError, and only the histories the directory served verify.

Run: ``python fuzz/fuzz_vkd_history_proof.py [corpus_dir] [-max_total_time=60]``
"""

from __future__ import annotations

import dataclasses
import functools
import sys

import atheris

with atheris.instrument_imports(include=["quorum", "vkd"]):
    import _vkd_seeds

    from chhaya import DecodeError, VerificationError
    from vkd import HistoryProof, VerifiedHistory, verify_vkd_proof


@functools.cache
def _seed_list() -> tuple[bytes, ...]:
    histories = _vkd_seeds.directory_world().histories
    alice = histories[0]
    encoded = tuple(h.encode() for h in histories)
    # Valid parts, wrong claims: versions swapped, one dropped, another handle's.
    swapped = dataclasses.replace(alice, versions=alice.versions[::-1]).encode()
    dropped = dataclasses.replace(alice, versions=alice.versions[1:]).encode()
    renamed = dataclasses.replace(histories[1], handle="alice").encode()
    first = encoded[0]
    return (*encoded, swapped, dropped, renamed, first[:-1], first + b"\x00", b"CVH1", b"")


def seeds() -> list[bytes]:
    return list(_seed_list())


@functools.cache
def _valid() -> frozenset[bytes]:
    return frozenset(h.encode() for h in _vkd_seeds.directory_world().histories)


def TestOneInput(data: bytes) -> None:
    try:
        proof = HistoryProof.decode_untrusted(data)
    except DecodeError:
        return
    assert proof.encode() == data
    world = _vkd_seeds.directory_world()
    try:
        result = verify_vkd_proof(proof, world.trust, None, _vkd_seeds.VERIFY_NOW_MS)
    except VerificationError:
        return
    assert isinstance(result, VerifiedHistory)
    assert data in _valid()


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
