"""Fuzz ``vkd.tree.NonMembershipProof.decode_untrusted``: only DecodeError,
exact re-encoding, and verification raises only VerificationError (and never
accepts an index that is in the tree).

Run: ``python fuzz/fuzz_smt_non_membership_proof.py [corpus_dir] [-max_total_time=60]``
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
        NonMembershipProof,
        SparseMerkleTree,
        verify_non_membership,
    )


def _h(label: bytes) -> bytes:
    return hashlib.sha256(b"seed/smt/" + label).digest()


@functools.cache
def _tree() -> SparseMerkleTree:
    tree = SparseMerkleTree(InMemoryNodeStore())
    tree.insert_batch({_h(b"i%d" % i): _h(b"v%d" % i) for i in range(64)})
    return tree


@functools.cache
def _seed_list() -> tuple[bytes, ...]:
    tree = _tree()
    proofs = [tree.prove_non_membership(_h(b"absent%d" % i)) for i in range(40)]
    to_empty = next(p for p in proofs if p.leaf is None).encode()
    to_leaf = next(p for p in proofs if p.leaf is not None).encode()
    near = bytearray(_h(b"i3"))
    near[31] ^= 1
    neighbour = tree.prove_non_membership(bytes(near)).encode()
    return (to_leaf, to_empty, neighbour, to_leaf[:-1], to_empty + b"\x00", b"")


def seeds() -> list[bytes]:
    return list(_seed_list())


def TestOneInput(data: bytes) -> None:
    try:
        proof = NonMembershipProof.decode_untrusted(data)
    except DecodeError:
        return
    assert proof.encode() == data
    try:
        verify_non_membership(_tree().root, proof)
    except VerificationError:
        return
    assert _tree().get(proof.index) is None


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
