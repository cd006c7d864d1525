"""Building canonical subtrees from sorted leaves; shared by the tree and the
append-only verifier, so both hash exactly the same way.

A batch is held as three parallel lists sorted by index: the index as an
``int`` (for range splits with :func:`bisect.bisect_left`), the index bytes
and the value hash.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping
from itertools import pairwise

from ._hash import EMPTY_HASH, EMPTY_REF, HASH_SIZE, INDEX_SIZE, inner_hash, leaf_hash

__all__ = ["Batch", "build_subtree", "contains", "sorted_batch", "with_leaf"]

_LEAF_TAG = b"\x00"
_INNER_TAG = b"\x01"


class Batch:
    """A batch of new leaves, sorted by index; indices are unique."""

    __slots__ = ("indices", "keys", "values")

    def __init__(self, keys: list[int], indices: list[bytes], values: list[bytes]) -> None:
        self.keys = keys
        self.indices = indices
        self.values = values

    def __len__(self) -> int:
        return len(self.keys)


def sorted_batch(batch: Mapping[bytes, bytes] | Iterable[tuple[bytes, bytes]]) -> Batch:
    """Sort and check a batch of (index, value hash) pairs.

    Raises ValueError for a field that is not 32 bytes or a repeated index.
    """
    pairs = list(batch.items() if isinstance(batch, Mapping) else batch)
    for index, value_hash in pairs:
        if not isinstance(index, bytes) or len(index) != INDEX_SIZE:
            raise ValueError("an index is not 32 bytes")
        if not isinstance(value_hash, bytes) or len(value_hash) != HASH_SIZE:
            raise ValueError("a value hash is not 32 bytes")
    pairs.sort()
    indices = [p[0] for p in pairs]
    for a, b in pairwise(indices):
        if a == b:
            raise ValueError(f"index {a.hex()} appears twice in the batch")
    keys = [int.from_bytes(i, "big") for i in indices]
    return Batch(keys, indices, [p[1] for p in pairs])


def build_subtree(
    depth: int,
    base: int,
    batch: Batch,
    lo: int,
    hi: int,
    out: dict[bytes, bytes] | None,
    written: bytes = b"",
    keep: bytes | None = None,
) -> bytes:
    """Hash of the canonical subtree at (``depth``, ``base``) holding exactly
    ``batch[lo:hi]``.

    When ``out`` is given, the new node records go into it, keyed by node
    reference ``written || hash`` (``written`` is the 4-byte epoch); the leaf
    whose reference is ``keep`` already exists and is referenced, not written.
    """
    n = hi - lo
    if n == 0:
        return EMPTY_HASH
    if n == 1:
        index = batch.indices[lo]
        value_hash = batch.values[lo]
        h = leaf_hash(index, value_hash)
        if out is not None and (keep is None or keep[4:] != h):
            out[written + h] = _LEAF_TAG + index + value_hash
        return h
    mid = base + (1 << (255 - depth))
    m = bisect_left(batch.keys, mid, lo, hi)
    left = build_subtree(depth + 1, base, batch, lo, m, out, written, keep)
    right = build_subtree(depth + 1, mid, batch, m, hi, out, written, keep)
    h = inner_hash(left, right)
    if out is not None:
        out[written + h] = _INNER_TAG + _ref(left, written, keep) + _ref(right, written, keep)
    return h


def _ref(h: bytes, written: bytes, keep: bytes | None) -> bytes:
    if h == EMPTY_HASH:
        return EMPTY_REF
    if keep is not None and keep[4:] == h:
        return keep
    return written + h


def with_leaf(batch: Batch, lo: int, hi: int, index: bytes, value_hash: bytes) -> Batch:
    """``batch[lo:hi]`` plus one more leaf (whose index is not in the batch)."""
    key = int.from_bytes(index, "big")
    at = bisect_left(batch.keys, key, lo, hi) - lo
    keys = batch.keys[lo:hi]
    indices = batch.indices[lo:hi]
    values = batch.values[lo:hi]
    keys.insert(at, key)
    indices.insert(at, index)
    values.insert(at, value_hash)
    return Batch(keys, indices, values)


def contains(batch: Batch, lo: int, hi: int, key: int) -> bool:
    """Whether ``key`` is one of ``batch.keys[lo:hi]``."""
    at = bisect_left(batch.keys, key, lo, hi)
    return at < hi and batch.keys[at] == key
