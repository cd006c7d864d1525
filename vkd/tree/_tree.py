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
past epoch can still be read and proved against. Stored nodes are found by
reference (written epoch || hash); see ``_store.py``.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping

from chhaya import LocalProtocolError, StorageError

from ._build import Batch, build_subtree, contains, sorted_batch, with_leaf
from ._hash import EMPTY_HASH, EMPTY_REF, INDEX_SIZE, MAX_EPOCH, inner_hash
from ._proofs import (
    NODE_EMPTY,
    NODE_HASH,
    NODE_INNER,
    NODE_LEAF,
    AppendOnlyProof,
    MembershipProof,
    NonMembershipProof,
)
from ._store import INNER_RECORD_SIZE, LEAF_RECORD_SIZE, RECORD_INNER, RECORD_LEAF, NodeStore

__all__ = ["DuplicateIndexError", "SparseMerkleTree"]

_INNER_TAG = bytes([RECORD_INNER])
_RECORD_SIZES = {bytes([RECORD_LEAF]): LEAF_RECORD_SIZE, _INNER_TAG: INNER_RECORD_SIZE}


class DuplicateIndexError(LocalProtocolError):
    """A batch would insert an index that the tree already holds."""

    def __init__(self, index: bytes) -> None:
        self.index = index
        super().__init__(f"index {index.hex()} is already in the tree")


class _Path:
    """Where an index's path ends: siblings top-down, and the (index, value
    hash) of the leaf there, or None for the empty subtree."""

    __slots__ = ("leaf", "siblings")

    def __init__(self, siblings: tuple[bytes, ...], leaf: tuple[bytes, bytes] | None) -> None:
        self.siblings = siblings
        self.leaf = leaf


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
        return self._root_ref(None)[4:]

    def root_at(self, epoch: int) -> bytes:
        """The root committed for ``epoch``."""
        return self._root_ref(epoch)[4:]

    def _root_ref(self, epoch: int | None) -> bytes:
        if epoch is None:
            epoch = self._store.latest_epoch()
            if epoch is None:
                return EMPTY_REF
        ref = self._store.get_root(epoch)
        if ref is None:
            raise LocalProtocolError(f"no epoch {epoch}")
        return ref

    # -- insertion --------------------------------------------------------------

    def insert_batch(self, updates: Mapping[bytes, bytes] | Iterable[tuple[bytes, bytes]]) -> bytes:
        """Add the leaves ``index -> value hash`` as the next epoch; return its root.

        Raises ValueError for a malformed or repeated index and
        DuplicateIndexError if an index is already in the tree; either way
        nothing is committed. An empty batch commits the same root again.
        """
        batch = sorted_batch(updates)
        latest = self._store.latest_epoch()
        epoch = 0 if latest is None else latest + 1
        if epoch > MAX_EPOCH:
            raise LocalProtocolError("the tree has used up its epoch numbers")
        root = self._root_ref(latest)
        nodes: dict[bytes, bytes] = {}
        if len(batch):
            written = epoch.to_bytes(4, "big")
            root = self._insert(root, 0, 0, batch, 0, len(batch), nodes, written)
        self._store.write_batch(nodes, root, epoch)
        return root[4:]

    def _insert(
        self,
        ref: bytes,
        depth: int,
        base: int,
        batch: Batch,
        lo: int,
        hi: int,
        out: dict[bytes, bytes],
        written: bytes,
    ) -> bytes:
        """Insert ``batch[lo:hi]`` (not empty) below ``ref``; the new node's reference."""
        if ref[4:] == EMPTY_HASH:
            return written + build_subtree(depth, base, batch, lo, hi, out, written)
        record = self._record(ref)
        if record[0] == RECORD_LEAF:
            index = record[1:33]
            if contains(batch, lo, hi, int.from_bytes(index, "big")):
                raise DuplicateIndexError(index)
            merged = with_leaf(batch, lo, hi, index, record[33:65])
            return written + build_subtree(
                depth, base, merged, 0, len(merged), out, written, keep=ref
            )
        left = record[1:37]
        right = record[37:73]
        mid = base + (1 << (255 - depth))
        split = bisect_left(batch.keys, mid, lo, hi)
        if split > lo:
            left = self._insert(left, depth + 1, base, batch, lo, split, out, written)
        if hi > split:
            right = self._insert(right, depth + 1, mid, batch, split, hi, out, written)
        new = written + inner_hash(left[4:], right[4:])
        out[new] = _INNER_TAG + left + right
        return new

    def _record(self, ref: bytes) -> bytes:
        record = self._store.get_node(ref)
        if record is None:
            raise StorageError(f"tree node {ref.hex()} is missing")
        if len(record) != _RECORD_SIZES.get(record[:1]):
            raise StorageError(f"tree node {ref.hex()} is corrupt")
        return record

    # -- lookups and proofs --------------------------------------------------------

    def _path(self, epoch: int | None, index: bytes) -> _Path:
        if not isinstance(index, bytes) or len(index) != INDEX_SIZE:
            raise ValueError("index is not 32 bytes")
        key = int.from_bytes(index, "big")
        siblings: list[bytes] = []
        ref = self._root_ref(epoch)
        depth = 0
        while ref[4:] != EMPTY_HASH:
            record = self._record(ref)
            if record[0] == RECORD_LEAF:
                return _Path(tuple(siblings), (record[1:33], record[33:65]))
            if (key >> (255 - depth)) & 1:
                siblings.append(record[5:37])
                ref = record[37:73]
            else:
                siblings.append(record[41:73])
                ref = record[1:37]
            depth += 1
        return _Path(tuple(siblings), None)

    def get(self, index: bytes, epoch: int | None = None) -> bytes | None:
        """The value hash at ``index`` (in ``epoch``, default the newest), or None."""
        leaf = self._path(epoch, index).leaf
        if leaf is not None and leaf[0] == index:
            return leaf[1]
        return None

    def prove(self, index: bytes, epoch: int | None = None) -> MembershipProof | NonMembershipProof:
        """A membership proof if ``index`` is in the tree of ``epoch`` (default
        the newest), else a non-membership one."""
        path = self._path(epoch, index)
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
        """Proof that inserting ``batch`` into the tree whose root is
        ``old_root`` (the root of some committed epoch, or ``EMPTY_HASH``)
        gives the root that ``insert_batch(batch)`` returns.

        Only the batch's indices matter. Raises DuplicateIndexError if one is
        already in the old tree, LocalProtocolError if no epoch has that root.
        """
        sorted_new = sorted_batch(batch)
        root = self._find_root(old_root)
        kinds = bytearray()
        leaves: list[tuple[bytes, bytes]] = []
        hashes: list[bytes] = []
        self._prove_append(root, 0, 0, sorted_new, 0, len(sorted_new), kinds, leaves, hashes)
        return AppendOnlyProof(bytes(kinds), tuple(leaves), tuple(hashes))

    def _find_root(self, root: bytes) -> bytes:
        """The reference of ``root``, searching epochs from the newest."""
        if root == EMPTY_HASH:
            return EMPTY_REF
        epoch = self._store.latest_epoch()
        while epoch is not None and epoch >= 0:
            ref = self._store.get_root(epoch)
            if ref is not None and ref[4:] == root:
                return ref
            epoch -= 1
        raise LocalProtocolError(f"{root.hex()} is not the root of any epoch")

    def _prove_append(
        self,
        ref: bytes,
        depth: int,
        base: int,
        batch: Batch,
        lo: int,
        hi: int,
        kinds: bytearray,
        leaves: list[tuple[bytes, bytes]],
        hashes: list[bytes],
    ) -> None:
        node = ref[4:]
        if node == EMPTY_HASH:
            kinds.append(NODE_EMPTY)
            return
        if lo == hi:
            kinds.append(NODE_HASH)
            hashes.append(node)
            return
        record = self._record(ref)
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
        self._prove_append(record[1:37], depth + 1, base, batch, lo, split, kinds, leaves, hashes)
        self._prove_append(record[37:73], depth + 1, mid, batch, split, hi, kinds, leaves, hashes)
