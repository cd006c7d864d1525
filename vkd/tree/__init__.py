"""Compressed sparse Merkle tree over 256-bit indices, with membership,
non-membership and append-only proofs. Sans-IO: nodes live behind the
:class:`NodeStore` interface (in memory here, SQLite in ``node/``).
"""

from ._hash import EMPTY_HASH, HASH_SIZE, INDEX_BITS, INDEX_SIZE, inner_hash, leaf_hash
from ._proofs import (
    MAX_APPEND_ONLY_NODES,
    MAX_APPEND_ONLY_PROOF_SIZE,
    MAX_DEPTH,
    MAX_MEMBERSHIP_PROOF_SIZE,
    MAX_NON_MEMBERSHIP_PROOF_SIZE,
    NODE_EMPTY,
    NODE_HASH,
    NODE_INNER,
    NODE_LEAF,
    AppendOnlyProof,
    MembershipProof,
    NonMembershipProof,
    verify_append_only,
    verify_membership,
    verify_non_membership,
)
from ._store import NODE_RECORD_SIZE, RECORD_INNER, RECORD_LEAF, InMemoryNodeStore, NodeStore
from ._tree import DuplicateIndexError, SparseMerkleTree

__all__ = [
    "EMPTY_HASH",
    "HASH_SIZE",
    "INDEX_BITS",
    "INDEX_SIZE",
    "MAX_APPEND_ONLY_NODES",
    "MAX_APPEND_ONLY_PROOF_SIZE",
    "MAX_DEPTH",
    "MAX_MEMBERSHIP_PROOF_SIZE",
    "MAX_NON_MEMBERSHIP_PROOF_SIZE",
    "NODE_EMPTY",
    "NODE_HASH",
    "NODE_INNER",
    "NODE_LEAF",
    "NODE_RECORD_SIZE",
    "RECORD_INNER",
    "RECORD_LEAF",
    "AppendOnlyProof",
    "DuplicateIndexError",
    "InMemoryNodeStore",
    "MembershipProof",
    "NodeStore",
    "NonMembershipProof",
    "SparseMerkleTree",
    "inner_hash",
    "leaf_hash",
    "verify_append_only",
    "verify_membership",
    "verify_non_membership",
]
