"""Fuzz ``vkd.tree.AppendOnlyProof.decode_untrusted``: only DecodeError, exact
re-encoding, and verification against a fixed batch raises only
VerificationError (and accepts only the one true proof).

Run: ``python fuzz/fuzz_smt_append_only_proof.py [corpus_dir] [-max_total_time=60]``
"""

from __future__ import annotations

import functools
import hashlib
import sys

import atheris

with atheris.instrument_imports(include=["vkd"]):
    from chhaya import DecodeError, VerificationError
    from vkd.tree import (
        NODE_EMPTY,
        NODE_HASH,
        NODE_INNER,
        AppendOnlyProof,
        InMemoryNodeStore,
        SparseMerkleTree,
        verify_append_only,
    )


def _h(label: bytes) -> bytes:
    return hashlib.sha256(b"seed/smt/" + label).digest()


_BATCH = {_h(b"new%d" % i): _h(b"nv%d" % i) for i in range(4)}


@functools.cache
def _roots_and_proof() -> tuple[bytes, bytes, bytes]:
    tree = SparseMerkleTree(InMemoryNodeStore())
    old_root = tree.insert_batch({_h(b"i%d" % i): _h(b"v%d" % i) for i in range(32)})
    proof = tree.prove_append_only(old_root, _BATCH).encode()
    return old_root, tree.insert_batch(_BATCH), proof


def seeds() -> list[bytes]:
    valid = _roots_and_proof()[2]
    chain = AppendOnlyProof(
        bytes([NODE_INNER, NODE_HASH] * 8 + [NODE_EMPTY]), (), (_h(b"h"),) * 8
    ).encode()
    return [valid, chain, valid[:-1], valid + b"\x00", b"\x00\x00\x00\x01\x00", b""]


def TestOneInput(data: bytes) -> None:
    try:
        proof = AppendOnlyProof.decode_untrusted(data)
    except DecodeError:
        return
    assert proof.encode() == data
    old_root, new_root, valid = _roots_and_proof()
    try:
        verify_append_only(old_root, new_root, _BATCH, proof)
    except VerificationError:
        return
    assert data == valid


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
