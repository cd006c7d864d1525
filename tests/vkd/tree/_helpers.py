"""Shared helpers for the tree tests: a naive reference tree, key generators
and store factories."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

from node.vkd_sqlite_store import SqliteNodeStore
from vkd.tree import InMemoryNodeStore, NodeStore

__all__ = [
    "REF_EMPTY",
    "STORE_KINDS",
    "bit",
    "clustered_keys",
    "h32",
    "make_store",
    "random_leaves",
    "ref_inner",
    "ref_leaf",
    "ref_root",
    "with_bit_flipped",
]

STORE_KINDS = ("memory", "sqlite")


def _sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


# The reference spells out the definition independently of vkd.tree.
REF_EMPTY = _sha(b"\x02" + b"chhaya/smt/v1/empty")


def ref_leaf(index: bytes, value_hash: bytes) -> bytes:
    return _sha(b"\x00" + b"chhaya/smt/v1/leaf" + index + value_hash)


def ref_inner(left: bytes, right: bytes) -> bytes:
    return _sha(b"\x01" + b"chhaya/smt/v1/inner" + left + right)


def bit(index: bytes, depth: int) -> int:
    return (index[depth // 8] >> (7 - depth % 8)) & 1


def ref_root(leaves: Mapping[bytes, bytes]) -> bytes:
    """The tree's root straight from its recursive definition."""

    def subtree(depth: int, items: list[tuple[bytes, bytes]]) -> bytes:
        if not items:
            return REF_EMPTY
        if len(items) == 1:
            return ref_leaf(*items[0])
        left = [it for it in items if bit(it[0], depth) == 0]
        right = [it for it in items if bit(it[0], depth) == 1]
        return ref_inner(subtree(depth + 1, left), subtree(depth + 1, right))

    return subtree(0, sorted(leaves.items()))


def h32(label: str | bytes) -> bytes:
    data = label.encode() if isinstance(label, str) else label
    return _sha(b"test/" + data)


def with_bit_flipped(data: bytes, position: int) -> bytes:
    out = bytearray(data)
    out[position // 8] ^= 0x80 >> (position % 8)
    return bytes(out)


def random_leaves(rng: random.Random, n: int) -> dict[bytes, bytes]:
    return {rng.randbytes(32): rng.randbytes(32) for _ in range(n)}


def clustered_keys(rng: random.Random, n: int) -> list[bytes]:
    """Keys that share long prefixes: random bases with single bits flipped
    near the end (down to the very last bit) and in the middle."""
    keys: set[bytes] = set()
    while len(keys) < n:
        base = rng.randbytes(32)
        keys.add(base)
        for position in (255, 254, 250, 200, rng.randrange(256)):
            if len(keys) < n:
                keys.add(with_bit_flipped(base, position))
    return sorted(keys)


@contextmanager
def make_store(kind: str, path: str = ":memory:") -> Iterator[NodeStore]:
    if kind == "memory":
        yield InMemoryNodeStore()
    elif kind == "sqlite":
        store = SqliteNodeStore(path)
        try:
            yield store
        finally:
            store.close()
    else:
        raise ValueError(kind)


StoreFactory = Callable[[], NodeStore]
