"""Domain-separated hashes of the sparse Merkle tree and index bit helpers.

    leaf  = SHA-256(0x00 || "chhaya/smt/v1/leaf"  || index (32) || value hash (32))
    inner = SHA-256(0x01 || "chhaya/smt/v1/inner" || left (32) || right (32))
    EMPTY = SHA-256(0x02 || "chhaya/smt/v1/empty")

The leading byte and the label keep the three kinds apart, so no subtree hash
can pass for a leaf or for the empty subtree without a SHA-256 collision.

Indices are 256-bit strings. Bit 0 is the most significant bit of byte 0;
bit ``d`` chooses the child at depth ``d + 1``: 0 is left, 1 is right. Code
that walks the tree handles an index as an ``int`` (big-endian): the subtree
at depth ``d`` whose indices start with ``prefix`` covers the integer range
``[base, base + 2**(256 - d))`` with ``base = prefix << (256 - d)``.
"""

from __future__ import annotations

import hashlib

__all__ = [
    "EMPTY_HASH",
    "EMPTY_REF",
    "HASH_SIZE",
    "INDEX_BITS",
    "INDEX_SIZE",
    "MAX_EPOCH",
    "NODE_REF_SIZE",
    "inner_hash",
    "leaf_hash",
]

HASH_SIZE = 32
INDEX_SIZE = 32
#: The depth of a full path; a leaf sits at depth 0..256.
INDEX_BITS = 256

_LEAF_PREFIX = b"\x00chhaya/smt/v1/leaf"
_INNER_PREFIX = b"\x01chhaya/smt/v1/inner"
_EMPTY_INPUT = b"\x02chhaya/smt/v1/empty"

EMPTY_HASH = hashlib.sha256(_EMPTY_INPUT).digest()

#: A stored node is found by its reference: the epoch it was written in
#: (u32, big-endian) followed by its hash. The epoch prefix keeps each batch's
#: nodes together in an ordered store such as SQLite.
NODE_REF_SIZE = 4 + HASH_SIZE
MAX_EPOCH = 2**32 - 1
#: The empty subtree is never stored; references to it use epoch 0.
EMPTY_REF = bytes(4) + EMPTY_HASH

_sha256 = hashlib.sha256


def leaf_hash(index: bytes, value_hash: bytes) -> bytes:
    """The hash of a subtree that holds exactly this one leaf."""
    return _sha256(_LEAF_PREFIX + index + value_hash).digest()


def inner_hash(left: bytes, right: bytes) -> bytes:
    """The hash of a subtree with at least two leaves, from its two halves."""
    return _sha256(_INNER_PREFIX + left + right).digest()
