"""The compressed sparse Merkle tree: batch insertion per epoch and proofs.

How it works
------------
The tree over 256-bit indices is defined by its leaf set alone: a subtree
with no leaf hashes to ``EMPTY_HASH``, a subtree with exactly one leaf hashes
to that leaf's hash (so a leaf sits at the shallowest depth where its index
prefix is unique), and any other subtree is the inner hash of its halves.

Leaves are insert-only: the directory never changes or removes a leaf, which
is what its append-only audits prove. :meth:`SparseMerkleTree.insert_batch`
sorts a batch and walks the current tree once: subtrees no new index enters
are reused by hash, empty subtrees and single leaves that new indices reach
are rebuilt from the sorted keys, and every changed node is hashed once.
The new nodes and the new root are committed to the :class:`NodeStore` in one
``write_batch``, as the next epoch. Old nodes are never overwritten, so every
past epoch can still be read and proved against.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping

from chhaya import LocalProtocolError, StorageError

from ._build import Batch, build_subtree, contains, sorted_batch, with_leaf
from ._hash import EMPTY_HASH, INDEX_SIZE, inner_hash
from ._proofs import (
    NODE_EMPTY,
    NODE_HASH,
    NODE_INNER,
    NODE_LEAF,
    AppendOnlyProof,
    MembershipProof,
    NonMembershipProof,
)
from ._store import NODE_RECORD_SIZE, RECORD_INNER, RECORD_LEAF, NodeStore

__all__ = ["DuplicateIndexError", "SparseMerkleTree"]

_INNER_TAG = bytes([RECORD_INNER])


class DuplicateIndexError(LocalProtocolError):
    """A batch would insert an index that the tree already holds."""

    def __init__(self, index: bytes) -> None:
        self.index = index
        super().__init__(f"index {index.hex()} is already in the tree")


class _Path:
    """Where an index's path ends: siblings top-down and the end node."""

    __slots__ = ("end", "leaf", "siblings")

    def __init__(
        self, siblings: tuple[bytes, ...], end: bytes, leaf: tuple[bytes, bytes] | None
    ) -> None:
        self.siblings = siblings
        self.end = end  # EMPTY_HASH or the hash of a leaf
        self.leaf = leaf  # the (index, value hash) of that leaf


class SparseMerkleTree:
    """A compressed sparse Merkle tree whose nodes and roots live in ``store``."""

    __slots__ = ("_store",)

    def __init__(self, store: NodeStore) -> None:
        self._store = store

    @property
    def store(self) -> NodeStore:
        return self._store

    @property
    def epoch(self) -> int | None:
        """The newest committed epoch, or None before the first batch."""
        return self._store.latest_epoch()

    @property
    def root(self) -> bytes:
        """The newest root (``EMPTY_HASH`` before the first batch)."""
        epoch = self._store.latest_epoch()
        return EMPTY_HASH if epoch is None else self.root_at(epoch)

    def root_at(self, epoch: int) -> bytes:
        """The root committed for ``epoch``."""
        root = self._store.get_root(epoch)
        if root is None:
            raise LocalProtocolError(f"no epoch {epoch}")
        return root

    def _root_for(self, epoch: int | None) -> bytes:
        return self.root if epoch is None else self.root_at(epoch)

    # -- insertion --------------------------------------------------------------

    def insert_batch(self, updates: Mapping[bytes, bytes] | Iterable[tuple[bytes, bytes]]) -> bytes:
        """Add the leaves ``index -> value hash`` as the next epoch; return its root.

        Raises ValueError for a malformed or repeated index and
        DuplicateIndexError if an index is already in the tree; either way
        nothing is committed. An empty batch commits the same root again.
        """
        batch = sorted_batch(updates)
        epoch = self._store.latest_epoch()
        old_root = EMPTY_HASH if epoch is None else self.root_at(epoch)
        nodes: dict[bytes, bytes] = {}
        new_root = old_root
        if len(batch):
            new_root = self._insert(old_root, 0, 0, batch, 0, len(batch), nodes)
        self._store.write_batch(nodes, new_root, 0 if epoch is None else epoch + 1)
        return new_root

    def _insert(
        self,
        node: bytes,
        depth: int,
        base: int,
        batch: Batch,
        lo: int,
        hi: int,
        out: dict[bytes, bytes],
    ) -> bytes:
        if node == EMPTY_HASH:
            return build_subtree(depth, base, batch, lo, hi, out)
        record = self._record(node)
        if record[0] == RECORD_LEAF:
            index = record[1:33]
            if contains(batch, lo, hi, int.from_bytes(index, "big")):
                raise DuplicateIndexError(index)
            merged = with_leaf(batch, lo, hi, index, record[33:65])
            return build_subtree(depth, base, merged, 0, len(merged), out)
        left = record[1:33]
        right = record[33:65]
        mid = base + (1 << (255 - depth))
        split = bisect_left(batch.keys, mid, lo, hi)
        if split > lo:
            left = self._insert(left, depth + 1, base, batch, lo, split, out)
        if hi > split:
            right = self._insert(right, depth + 1, mid, batch, split, hi, out)
        h = inner_hash(left, right)
        out[h] = _INNER_TAG + left + right
        return h

    def _record(self, node: bytes) -> bytes:
        record = self._store.get_node(node)
        if record is None or len(record) != NODE_RECORD_SIZE:
            raise StorageError(f"tree node {node.hex()} is missing or corrupt")
        if record[0] not in (RECORD_LEAF, RECORD_INNER):
            raise StorageError(f"tree node {node.hex()} has an unknown kind")
        return record

    # -- lookups and proofs --------------------------------------------------------

    def _path(self, root: bytes, index: bytes) -> _Path:
        if not isinstance(index, bytes) or len(index) != INDEX_SIZE:
            raise ValueError("index is not 32 bytes")
        key = int.from_bytes(index, "big")
        siblings: list[bytes] = []
        node = root
        depth = 0
        while node != EMPTY_HASH:
            record = self._record(node)
            if record[0] == RECORD_LEAF:
                return _Path(tuple(siblings), node, (record[1:33], record[33:65]))
            if (key >> (255 - depth)) & 1:
                siblings.append(record[1:33])
                node = record[33:65]
            else:
                siblings.append(record[33:65])
                node = record[1:33]
            depth += 1
        return _Path(tuple(siblings), EMPTY_HASH, None)

    def get(self, index: bytes, epoch: int | None = None) -> bytes | None:
        """The value hash at ``index`` (in ``epoch``, default the newest), or None."""
        path = self._path(self._root_for(epoch), index)
        if path.leaf is not None and path.leaf[0] == index:
            return path.leaf[1]
        return None

    def prove(self, index: bytes, epoch: int | None = None) -> MembershipProof | NonMembershipProof:
        """A membership proof if ``index`` is in the tree, else a non-membership one."""
        path = self._path(self._root_for(epoch), index)
        if path.leaf is not None and path.leaf[0] == index:
            return MembershipProof(index, path.leaf[1], path.siblings)
        return NonMembershipProof(index, path.leaf, path.siblings)

    def prove_membership(self, index: bytes, epoch: int | None = None) -> MembershipProof:
        """Raises LocalProtocolError if ``index`` is not in the tree."""
        proof = self.prove(index, epoch)
        if not isinstance(proof, MembershipProof):
            raise LocalProtocolError(f"index {index.hex()} is not in the tree")
        return proof

    def prove_non_membership(self, index: bytes, epoch: int | None = None) -> NonMembershipProof:
        """Raises LocalProtocolError if ``index`` is in the tree."""
        proof = self.prove(index, epoch)
        if not isinstance(proof, NonMembershipProof):
            raise LocalProtocolError(f"index {index.hex()} is in the tree")
        return proof

    def prove_append_only(
        self,
        old_root: bytes,
        batch: Mapping[bytes, bytes] | Iterable[tuple[bytes, bytes]],
    ) -> AppendOnlyProof:
        """Proof that inserting ``batch`` into the tree ``old_root`` (a root this
        store holds) gives the root ``insert_batch(batch)`` returned.

        Raises DuplicateIndexError if a batch index is already under ``old_root``.
        """
        sorted_new = sorted_batch(batch)
        kinds = bytearray()
        leaves: list[tuple[bytes, bytes]] = []
        hashes: list[bytes] = []
        self._prove_append(old_root, 0, 0, sorted_new, 0, len(sorted_new), kinds, leaves, hashes)
        return AppendOnlyProof(bytes(kinds), tuple(leaves), tuple(hashes))

    def _prove_append(
        self,
        node: bytes,
        depth: int,
        base: int,
        batch: Batch,
        lo: int,
        hi: int,
        kinds: bytearray,
        leaves: list[tuple[bytes, bytes]],
        hashes: list[bytes],
    ) -> None:
        if node == EMPTY_HASH:
            kinds.append(NODE_EMPTY)
            return
        if lo == hi:
            kinds.append(NODE_HASH)
            hashes.append(node)
            return
        record = self._record(node)
        if record[0] == RECORD_LEAF:
            index = record[1:33]
            if contains(batch, lo, hi, int.from_bytes(index, "big")):
                raise DuplicateIndexError(index)
            kinds.append(NODE_LEAF)
            leaves.append((index, record[33:65]))
            return
        kinds.append(NODE_INNER)
        mid = base + (1 << (255 - depth))
        split = bisect_left(batch.keys, mid, lo, hi)
        self._prove_append(record[1:33], depth + 1, base, batch, lo, split, kinds, leaves, hashes)
        self._prove_append(record[33:65], depth + 1, mid, batch, split, hi, kinds, leaves, hashes)
