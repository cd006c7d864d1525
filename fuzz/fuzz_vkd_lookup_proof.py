"""Fuzz ``vkd.LookupProof.decode_untrusted``: only DecodeError, and a decoding
re-encodes to exactly the input. A decoded proof goes through
``verify_vkd_proof`` against the seed directory's trust: that raises only
VerificationError, and only the two live lookups the directory served
(alice, bob) come out as bindings.

Run: ``python fuzz/fuzz_vkd_lookup_proof.py [corpus_dir] [-max_total_time=60]``
"""

from __future__ import annotations

import dataclasses
import functools
import sys

import atheris

with atheris.instrument_imports(include=["quorum", "vkd"]):
    import _vkd_seeds

    from chhaya import DecodeError, VerificationError
    from vkd import MAX_LOOKUP_PROOF_SIZE, LookupProof, VerifiedBinding, verify_vkd_proof


@functools.cache
def _seed_list() -> tuple[bytes, ...]:
    world = _vkd_seeds.directory_world()
    alice, bob, carol, nobody = (p.encode() for p in world.lookups)
    # Valid parts, wrong claims: the last version, an absence for a live handle.
    last = dataclasses.replace(world.lookups[0], version=2**64 - 1).encode()
    absent = dataclasses.replace(world.lookups[3], handle="alice").encode()
    return (alice, bob, carol, nobody, last, absent, alice[:-1], alice + b"\x00", b"CVL1", b"")


def seeds() -> list[bytes]:
    return list(_seed_list())


@functools.cache
def _bindings() -> frozenset[bytes]:
    return frozenset(p.encode() for p in _vkd_seeds.directory_world().lookups[:2])


def TestOneInput(data: bytes) -> None:
    try:
        proof = LookupProof.decode_untrusted(data)
    except DecodeError:
        return
    assert len(data) <= MAX_LOOKUP_PROOF_SIZE
    assert proof.encode() == data
    world = _vkd_seeds.directory_world()
    try:
        result = verify_vkd_proof(proof, world.trust, None, _vkd_seeds.VERIFY_NOW_MS)
    except VerificationError:
        return
    assert isinstance(result, VerifiedBinding)
    assert data in _bindings()


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
