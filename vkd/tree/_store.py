"""Where the tree keeps its nodes: a small interface and an in-memory store.

Nodes are immutable and content-addressed: a node is stored under its own
hash and never changes, so every past epoch's tree stays readable from its
root. A node record is 65 bytes:

    leaf  record = 0x00 || index (32) || value hash (32)
    inner record = 0x01 || left hash (32) || right hash (32)

The empty subtree is never stored; it is recognised by ``EMPTY_HASH``.
A batch of new nodes and the epoch's root are committed together by
:meth:`NodeStore.write_batch`, so a store never holds a root whose nodes are
missing. Epochs are numbered 0, 1, 2, ... without gaps.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from chhaya import StorageError

__all__ = [
    "NODE_RECORD_SIZE",
    "RECORD_INNER",
    "RECORD_LEAF",
    "InMemoryNodeStore",
    "NodeStore",
]

RECORD_LEAF = 0
RECORD_INNER = 1
NODE_RECORD_SIZE = 65


class NodeStore(Protocol):
    """Storage for tree nodes (by hash) and for the root of every epoch."""

    def get_node(self, node_hash: bytes) -> bytes | None:
        """The 65-byte record stored under ``node_hash``, or None."""
        ...

    def write_batch(self, nodes: Mapping[bytes, bytes], root: bytes, epoch: int) -> None:
        """Atomically add ``nodes`` (hash -> record) and record ``root`` for ``epoch``.

        ``epoch`` must be one more than :meth:`latest_epoch` (0 for the first
        batch); otherwise raise StorageError and change nothing. Re-adding a
        node that exists is not an error (records are content-addressed).
        """
        ...

    def get_root(self, epoch: int) -> bytes | None:
        """The root committed for ``epoch``, or None."""
        ...

    def latest_epoch(self) -> int | None:
        """The newest committed epoch, or None for an empty store."""
        ...


class InMemoryNodeStore:
    """A dict of node records keyed by hash, and a list of roots by epoch.

    About 250 bytes of Python heap per node. Past epochs are kept, so memory
    grows with every node a batch replaces as well as with the live tree.
    """

    __slots__ = ("_nodes", "_roots")

    def __init__(self) -> None:
        self._nodes: dict[bytes, bytes] = {}
        self._roots: list[bytes] = []

    def get_node(self, node_hash: bytes) -> bytes | None:
        return self._nodes.get(node_hash)

    def write_batch(self, nodes: Mapping[bytes, bytes], root: bytes, epoch: int) -> None:
        if epoch != len(self._roots):
            raise StorageError(f"epoch {epoch} does not follow epoch {len(self._roots) - 1}")
        self._nodes.update(nodes)
        self._roots.append(root)

    def get_root(self, epoch: int) -> bytes | None:
        if 0 <= epoch < len(self._roots):
            return self._roots[epoch]
        return None

    def latest_epoch(self) -> int | None:
        return len(self._roots) - 1 if self._roots else None

    def __len__(self) -> int:
        """The number of stored nodes (all epochs)."""
        return len(self._nodes)
