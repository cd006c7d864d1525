"""Fuzz ``vkd.tree.MembershipProof.decode_untrusted``: only DecodeError, exact
re-encoding, and verification raises only VerificationError.

Run: ``python fuzz/fuzz_smt_membership_proof.py [corpus_dir] [-max_total_time=60]``
"""

from __future__ import annotations

import functools
import hashlib
import sys

import atheris

with atheris.instrument_imports(include=["vkd"]):
    from chhaya import DecodeError, VerificationError
    from vkd.tree import (
        InMemoryNodeStore,
        MembershipProof,
        SparseMerkleTree,
        verify_membership,
    )


def _h(label: bytes) -> bytes:
    return hashlib.sha256(b"seed/smt/" + label).digest()


@functools.cache
def _tree() -> SparseMerkleTree:
    tree = SparseMerkleTree(InMemoryNodeStore())
    leaves = {_h(b"i%d" % i): _h(b"v%d" % i) for i in range(64)}
    twin = bytearray(_h(b"i0"))
    twin[31] ^= 1  # differs from i0 only in the last bit: a 256-deep path
    leaves[bytes(twin)] = _h(b"twin")
    tree.insert_batch(leaves)
    return tree


@functools.cache
def _seed_list() -> tuple[bytes, ...]:
    tree = _tree()
    valid = tree.prove_membership(_h(b"i1")).encode()
    deepest = tree.prove_membership(_h(b"i0")).encode()
    single = MembershipProof(_h(b"i"), _h(b"v"), ()).encode()
    return (valid, deepest, single, valid[:-1], valid + b"\x00", b"")


def seeds() -> list[bytes]:
    return list(_seed_list())


def TestOneInput(data: bytes) -> None:
    try:
        proof = MembershipProof.decode_untrusted(data)
    except DecodeError:
        return
    assert proof.encode() == data
    try:
        verify_membership(_tree().root, proof)
    except VerificationError:
        return
    assert _tree().get(proof.index) == proof.value_hash


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
