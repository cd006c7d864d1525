"""Proofs about the sparse Merkle tree, their encodings and their verifiers.

Layouts (integers big-endian; also in docs/PROTOCOL.md):

    path               = depth u16 (0..256) || empty bitmap (ceil(depth/8))
                         || each non-empty sibling (32), top-down
    MembershipProof    = index (32) || value hash (32) || path
    NonMembershipProof = index (32) || kind u8 (0 = empty, 1 = leaf)
                         || [leaf index (32) || leaf value hash (32)] || path
    AppendOnlyProof    = node count u32 (1..MAX_APPEND_ONLY_NODES)
                         || node kinds, 2 bits each, pre-order, MSB first,
                            unused bits zero (ceil(count/4))
                         || (index (32) || value hash (32)) per LEAF node, in order
                         || hash (32) per HASH node, in order

A path lists the siblings of the nodes on the way from the root down to
where the proof ends: ``siblings[k]`` is the other child of the node at
depth ``k``. Bit ``k`` of the bitmap (MSB first) is set when that sibling is
the empty subtree; only the other siblings are written out. An explicit
sibling equal to ``EMPTY_HASH`` is rejected, so each proof has one encoding.

A path ends where the index's subtree holds a single leaf (membership, or
non-membership by another leaf sharing the index's prefix) or nothing
(non-membership by an empty subtree). In a canonical tree the last sibling on
such a path is never empty (the parent holds at least two leaves), and
verifiers reject a path that ends beside an empty sibling.

An append-only proof is the part of the old tree that the new indices'
paths cross, pre-order. Each node is one of

- ``EMPTY`` (0): the empty subtree;
- ``LEAF`` (1): a subtree holding one existing leaf, which new leaves push down;
- ``INNER`` (2): an opened node with at least one new index below it; its two
  children follow;
- ``HASH`` (3): a subtree that no new index enters, given by its hash.

The verifier rebuilds the old root from these nodes, which shows that the new
indices were absent and what sat where they go, then inserts the batch into
this partial tree and rebuilds the new root. The HASH subtrees are carried
over unchanged, so nothing outside the new paths can have changed.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from chhaya import DecodeError, VerificationError
from chhaya.wire import Reader, Writer

from ._build import Batch, build_subtree, contains, sorted_batch, with_leaf
from ._hash import EMPTY_HASH, HASH_SIZE, INDEX_BITS, INDEX_SIZE, inner_hash, leaf_hash

__all__ = [
    "MAX_APPEND_ONLY_NODES",
    "MAX_APPEND_ONLY_PROOF_SIZE",
    "MAX_DEPTH",
    "MAX_MEMBERSHIP_PROOF_SIZE",
    "MAX_NON_MEMBERSHIP_PROOF_SIZE",
    "NODE_EMPTY",
    "NODE_HASH",
    "NODE_INNER",
    "NODE_LEAF",
    "AppendOnlyProof",
    "MembershipProof",
    "NonMembershipProof",
    "verify_append_only",
    "verify_membership",
    "verify_non_membership",
]

#: The longest path: two indices that differ only in their last bit.
MAX_DEPTH = INDEX_BITS
_MAX_PATH_SIZE = 2 + (MAX_DEPTH + 7) // 8 + MAX_DEPTH * HASH_SIZE
MAX_MEMBERSHIP_PROOF_SIZE = INDEX_SIZE + HASH_SIZE + _MAX_PATH_SIZE
MAX_NON_MEMBERSHIP_PROOF_SIZE = INDEX_SIZE + 1 + INDEX_SIZE + HASH_SIZE + _MAX_PATH_SIZE

NODE_EMPTY = 0
NODE_LEAF = 1
NODE_INNER = 2
NODE_HASH = 3

#: Nodes in one append-only proof: ample for a 100k batch into a tree of 10M.
MAX_APPEND_ONLY_NODES = 1 << 23
MAX_APPEND_ONLY_PROOF_SIZE = (
    4 + (MAX_APPEND_ONLY_NODES + 3) // 4 + (MAX_APPEND_ONLY_NODES + 1) // 2 * 2 * HASH_SIZE
)

_KIND_EMPTY = 0
_KIND_LEAF = 1


# -- paths -------------------------------------------------------------------


def _write_path(w: Writer, siblings: tuple[bytes, ...]) -> None:
    depth = len(siblings)
    if depth > MAX_DEPTH:
        raise ValueError(f"path deeper than {MAX_DEPTH}")
    bitmap = bytearray((depth + 7) // 8)
    present: list[bytes] = []
    for k, sibling in enumerate(siblings):
        if sibling == EMPTY_HASH:
            bitmap[k >> 3] |= 0x80 >> (k & 7)
        else:
            if len(sibling) != HASH_SIZE:
                raise ValueError("a sibling is not 32 bytes")
            present.append(sibling)
    w.u16(depth).raw(bytes(bitmap))
    for sibling in present:
        w.raw(sibling)


def _read_path(r: Reader) -> tuple[bytes, ...]:
    depth = r.u16("path depth")
    if depth > MAX_DEPTH:
        raise DecodeError(f"path depth {depth} > {MAX_DEPTH}")
    bitmap = r.fixed((depth + 7) // 8, "empty-sibling bitmap")
    if depth & 7 and bitmap[-1] & (0xFF >> (depth & 7)):
        raise DecodeError("unused bitmap bits are set")
    siblings: list[bytes] = []
    for k in range(depth):
        if bitmap[k >> 3] & (0x80 >> (k & 7)):
            siblings.append(EMPTY_HASH)
        else:
            sibling = r.fixed(HASH_SIZE, "sibling hash")
            if sibling == EMPTY_HASH:
                raise DecodeError("empty sibling written out")
            siblings.append(sibling)
    return tuple(siblings)


def _path_size(siblings: tuple[bytes, ...]) -> int:
    depth = len(siblings)
    present = sum(1 for s in siblings if s != EMPTY_HASH)
    return 2 + (depth + 7) // 8 + present * HASH_SIZE


def _fold(node: bytes, key: int, siblings: tuple[bytes, ...]) -> bytes:
    """The root above ``node`` (at depth ``len(siblings)``) on ``key``'s path."""
    for k in range(len(siblings) - 1, -1, -1):
        if (key >> (255 - k)) & 1:
            node = inner_hash(siblings[k], node)
        else:
            node = inner_hash(node, siblings[k])
    return node


def _check_path(siblings: tuple[bytes, ...], check: str) -> None:
    if len(siblings) > MAX_DEPTH:
        raise VerificationError(check, "path too deep")
    for sibling in siblings:
        if not isinstance(sibling, bytes) or len(sibling) != HASH_SIZE:
            raise VerificationError(check, "malformed sibling")
    if siblings and siblings[-1] == EMPTY_HASH:
        raise VerificationError(check, "path ends beside an empty subtree")


def _is32(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == 32


# -- membership ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MembershipProof:
    """``index`` holds ``value_hash`` in the tree; ``siblings`` top-down."""

    index: bytes
    value_hash: bytes
    siblings: tuple[bytes, ...]

    @property
    def depth(self) -> int:
        """The depth at which the leaf sits."""
        return len(self.siblings)

    def encode(self) -> bytes:
        w = Writer().fixed(self.index, INDEX_SIZE).fixed(self.value_hash, HASH_SIZE)
        _write_path(w, self.siblings)
        return w.getvalue()

    def encoded_size(self) -> int:
        return INDEX_SIZE + HASH_SIZE + _path_size(self.siblings)

    @classmethod
    def decode_untrusted(cls, data: bytes) -> MembershipProof:
        r = Reader(data)
        if r.remaining() > MAX_MEMBERSHIP_PROOF_SIZE:
            raise DecodeError("membership proof too long")
        index = r.fixed(INDEX_SIZE, "index")
        value_hash = r.fixed(HASH_SIZE, "value hash")
        siblings = _read_path(r)
        r.finish()
        return cls(index, value_hash, siblings)


def verify_membership(root: bytes, proof: MembershipProof) -> None:
    """Raise VerificationError("tree-membership") unless ``root`` holds the leaf."""
    check = "tree-membership"
    if not (_is32(root) and _is32(proof.index) and _is32(proof.value_hash)):
        raise VerificationError(check, "malformed root or proof")
    _check_path(proof.siblings, check)
    key = int.from_bytes(proof.index, "big")
    node = leaf_hash(proof.index, proof.value_hash)
    if _fold(node, key, proof.siblings) != root:
        raise VerificationError(check, "path does not lead to the root")


# -- non-membership ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NonMembershipProof:
    """``index`` is not in the tree: its path ends in the empty subtree
    (``leaf`` is None) or in the single leaf ``leaf = (index, value hash)`` of
    another index with the same prefix. ``siblings`` top-down.
    """

    index: bytes
    leaf: tuple[bytes, bytes] | None
    siblings: tuple[bytes, ...]

    @property
    def depth(self) -> int:
        """The depth at which the path ends."""
        return len(self.siblings)

    def encode(self) -> bytes:
        w = Writer().fixed(self.index, INDEX_SIZE)
        if self.leaf is None:
            w.u8(_KIND_EMPTY)
        else:
            w.u8(_KIND_LEAF).fixed(self.leaf[0], INDEX_SIZE).fixed(self.leaf[1], HASH_SIZE)
        _write_path(w, self.siblings)
        return w.getvalue()

    def encoded_size(self) -> int:
        leaf = 0 if self.leaf is None else INDEX_SIZE + HASH_SIZE
        return INDEX_SIZE + 1 + leaf + _path_size(self.siblings)

    @classmethod
    def decode_untrusted(cls, data: bytes) -> NonMembershipProof:
        r = Reader(data)
        if r.remaining() > MAX_NON_MEMBERSHIP_PROOF_SIZE:
            raise DecodeError("non-membership proof too long")
        index = r.fixed(INDEX_SIZE, "index")
        kind = r.u8("path end kind")
        leaf: tuple[bytes, bytes] | None
        if kind == _KIND_EMPTY:
            leaf = None
        elif kind == _KIND_LEAF:
            leaf = (r.fixed(INDEX_SIZE, "leaf index"), r.fixed(HASH_SIZE, "leaf value hash"))
        else:
            raise DecodeError("bad path end kind")
        siblings = _read_path(r)
        r.finish()
        return cls(index, leaf, siblings)


def verify_non_membership(root: bytes, proof: NonMembershipProof) -> None:
    """Raise VerificationError("tree-non-membership") unless ``root`` lacks the index."""
    check = "tree-non-membership"
    if not (_is32(root) and _is32(proof.index)):
        raise VerificationError(check, "malformed root or proof")
    _check_path(proof.siblings, check)
    key = int.from_bytes(proof.index, "big")
    depth = len(proof.siblings)
    if proof.leaf is None:
        node = EMPTY_HASH
    else:
        other, other_value = proof.leaf
        if not (_is32(other) and _is32(other_value)):
            raise VerificationError(check, "malformed leaf")
        if other == proof.index:
            raise VerificationError(check, "the path ends in the index's own leaf")
        if (int.from_bytes(other, "big") ^ key) >> (INDEX_BITS - depth):
            raise VerificationError(check, "the leaf is not on the index's path")
        node = leaf_hash(other, other_value)
    if _fold(node, key, proof.siblings) != root:
        raise VerificationError(check, "path does not lead to the root")


# -- append-only ---------------------------------------------------------------

# Packing 2-bit node kinds four to a byte, with C-speed bytes operations.
_SHIFTS = (6, 4, 2, 0)
_PACK_TABLES = tuple(bytes((v << s) & 0xFF for v in range(256)) for s in _SHIFTS)
_UNPACK_TABLES = tuple(bytes((v >> s) & 3 for v in range(256)) for s in _SHIFTS)
_VALID_KINDS = bytes(range(4))


def _pack_kinds(kinds: bytes) -> bytes:
    padded = kinds + bytes(-len(kinds) % 4)
    packed = 0
    for lane, table in enumerate(_PACK_TABLES):
        packed |= int.from_bytes(padded[lane::4].translate(table), "big")
    return packed.to_bytes(len(padded) // 4, "big")


def _unpack_kinds(packed: bytes) -> bytes:
    out = bytearray(len(packed) * 4)
    for lane, table in enumerate(_UNPACK_TABLES):
        out[lane::4] = packed.translate(table)
    return bytes(out)


def _shape_error(kinds: bytes) -> str | None:
    """Why ``kinds`` is not one pre-order tree no deeper than 256, or None."""
    if not 1 <= len(kinds) <= MAX_APPEND_ONLY_NODES:
        return "bad node count"
    if kinds.translate(None, _VALID_KINDS):
        return "bad node kind"
    pending = [0]  # depths of the nodes still to come, innermost last
    for kind in kinds:
        if not pending:
            return "nodes after the end of the tree"
        depth = pending.pop()
        if kind == NODE_INNER:
            if depth >= MAX_DEPTH:
                return "opened node below the deepest level"
            pending.append(depth + 1)
            pending.append(depth + 1)
    if pending:
        return "tree ends early"
    return None


@dataclass(frozen=True, slots=True)
class AppendOnlyProof:
    """The old tree along a batch's paths: ``nodes`` holds one kind per node
    (``NODE_*``) in pre-order, ``leaves`` the (index, value hash) of each LEAF
    node and ``hashes`` the hash of each HASH node, both in that order.
    """

    nodes: bytes
    leaves: tuple[tuple[bytes, bytes], ...]
    hashes: tuple[bytes, ...]

    def encode(self) -> bytes:
        error = _shape_error(self.nodes)
        if error is not None:
            raise ValueError(f"append-only proof: {error}")
        if len(self.leaves) != self.nodes.count(NODE_LEAF) or len(self.hashes) != (
            self.nodes.count(NODE_HASH)
        ):
            raise ValueError("append-only proof: node data does not match the node kinds")
        w = Writer().u32(len(self.nodes)).raw(_pack_kinds(self.nodes))
        for index, value_hash in self.leaves:
            w.fixed(index, INDEX_SIZE).fixed(value_hash, HASH_SIZE)
        for h in self.hashes:
            if h == EMPTY_HASH:
                raise ValueError("append-only proof: empty subtree as a HASH node")
            w.fixed(h, HASH_SIZE)
        return w.getvalue()

    def encoded_size(self) -> int:
        return (
            4
            + (len(self.nodes) + 3) // 4
            + len(self.leaves) * (INDEX_SIZE + HASH_SIZE)
            + len(self.hashes) * HASH_SIZE
        )

    @classmethod
    def decode_untrusted(cls, data: bytes) -> AppendOnlyProof:
        r = Reader(data)
        if r.remaining() > MAX_APPEND_ONLY_PROOF_SIZE:
            raise DecodeError("append-only proof too long")
        count = r.u32("node count")
        if not 1 <= count <= MAX_APPEND_ONLY_NODES:
            raise DecodeError(f"node count {count} out of range")
        unpacked = _unpack_kinds(r.fixed((count + 3) // 4, "node kinds"))
        if any(unpacked[count:]):
            raise DecodeError("unused node-kind bits are set")
        nodes = unpacked[:count]
        error = _shape_error(nodes)
        if error is not None:
            raise DecodeError(f"append-only proof: {error}")
        leaf_data = r.fixed(nodes.count(NODE_LEAF) * 64, "leaves")
        hash_data = r.fixed(nodes.count(NODE_HASH) * HASH_SIZE, "hashes")
        r.finish()
        leaves = tuple(
            (leaf_data[i : i + 32], leaf_data[i + 32 : i + 64])
            for i in range(0, len(leaf_data), 64)
        )
        hashes = tuple(hash_data[i : i + 32] for i in range(0, len(hash_data), 32))
        if EMPTY_HASH in hashes:
            raise DecodeError("empty subtree as a HASH node")
        return cls(nodes, leaves, hashes)


class _AppendOnlyFailure(Exception):
    pass


def verify_append_only(
    old_root: bytes,
    new_root: bytes,
    batch: Mapping[bytes, bytes] | Iterable[tuple[bytes, bytes]],
    proof: AppendOnlyProof,
) -> None:
    """Raise VerificationError("append-only") unless ``new_root`` is the tree
    of ``old_root`` with exactly ``batch`` (index -> value hash) added.
    """
    check = "append-only"
    if not (_is32(old_root) and _is32(new_root)):
        raise VerificationError(check, "malformed root")
    try:
        sorted_new = sorted_batch(batch)
    except ValueError as exc:
        raise VerificationError(check, f"bad batch: {exc}") from None
    error = _proof_error(proof)
    if error is not None:
        raise VerificationError(check, f"malformed proof: {error}")
    try:
        old, new = _Replay(sorted_new, proof).run()
    except _AppendOnlyFailure as exc:
        raise VerificationError(check, str(exc)) from None
    if old != old_root:
        raise VerificationError(check, "proof does not match the old root")
    if new != new_root:
        raise VerificationError(check, "new root is not the old tree plus the batch")


def _proof_error(proof: AppendOnlyProof) -> str | None:
    error = _shape_error(proof.nodes)
    if error is not None:
        return error
    if len(proof.leaves) != proof.nodes.count(NODE_LEAF):
        return "leaf count does not match"
    if len(proof.hashes) != proof.nodes.count(NODE_HASH):
        return "hash count does not match"
    for leaf in proof.leaves:
        if len(leaf) != 2 or not (_is32(leaf[0]) and _is32(leaf[1])):
            return "malformed leaf"
    if not all(_is32(h) for h in proof.hashes):
        return "malformed hash"
    return None


class _Replay:
    """Walks a well-shaped proof and the sorted batch together, returning
    (old hash, new hash) of every node."""

    __slots__ = ("_batch", "_hashes", "_kinds", "_leaves")

    def __init__(self, batch: Batch, proof: AppendOnlyProof) -> None:
        self._batch = batch
        self._kinds: Iterator[int] = iter(proof.nodes)
        self._leaves: Iterator[tuple[bytes, bytes]] = iter(proof.leaves)
        self._hashes: Iterator[bytes] = iter(proof.hashes)

    def run(self) -> tuple[bytes, bytes]:
        return self._walk(0, 0, 0, len(self._batch))

    def _walk(self, depth: int, base: int, lo: int, hi: int) -> tuple[bytes, bytes]:
        kind = next(self._kinds)
        batch = self._batch
        if kind == NODE_EMPTY:
            return EMPTY_HASH, build_subtree(depth, base, batch, lo, hi, None)
        if kind == NODE_HASH:
            if lo != hi:
                raise _AppendOnlyFailure("a new index falls in a subtree the proof does not open")
            h = next(self._hashes)
            return h, h
        if lo == hi:
            raise _AppendOnlyFailure("the proof opens a subtree that no new index enters")
        if kind == NODE_LEAF:
            index, value_hash = next(self._leaves)
            key = int.from_bytes(index, "big")
            if (key ^ base) >> (INDEX_BITS - depth):
                raise _AppendOnlyFailure("an existing leaf is off its path")
            if contains(batch, lo, hi, key):
                raise _AppendOnlyFailure("the batch re-inserts an existing index")
            merged = with_leaf(batch, lo, hi, index, value_hash)
            new = build_subtree(depth, base, merged, 0, len(merged), None)
            return leaf_hash(index, value_hash), new
        mid = base + (1 << (255 - depth))
        split = bisect_left(batch.keys, mid, lo, hi)
        old_left, new_left = self._walk(depth + 1, base, lo, split)
        old_right, new_right = self._walk(depth + 1, mid, split, hi)
        return inner_hash(old_left, old_right), inner_hash(new_left, new_right)
