"""Where the tree keeps its nodes: a small interface and an in-memory store.

Nodes are immutable. A stored node is found by its *reference*: the epoch in
which it was written (u32, big-endian) followed by its hash. Nothing is ever
overwritten, so every past epoch's tree stays readable from its root, and an
ordered store keeps each batch's nodes together (appends, not scattered
writes). Records:

    ref          = written epoch u32 || node hash (32)                      (36)
    leaf record  = 0x00 || index (32) || value hash (32)                    (65)
    inner record = 0x01 || left ref (36) || right ref (36)                  (73)

The empty subtree is never stored; references to it are ``EMPTY_REF``
(epoch 0). A batch's new nodes and the epoch's root reference are committed
together by :meth:`NodeStore.write_batch`, so a store never holds a root whose
nodes are missing. Epochs are numbered 0, 1, 2, ... without gaps.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from chhaya import StorageError

__all__ = [
    "INNER_RECORD_SIZE",
    "LEAF_RECORD_SIZE",
    "RECORD_INNER",
    "RECORD_LEAF",
    "InMemoryNodeStore",
    "NodeStore",
]

RECORD_LEAF = 0
RECORD_INNER = 1
LEAF_RECORD_SIZE = 65
INNER_RECORD_SIZE = 73


class NodeStore(Protocol):
    """Storage for tree nodes (by reference) and for the root of every epoch."""

    def get_node(self, ref: bytes) -> bytes | None:
        """The record stored under the 36-byte reference ``ref``, or None."""
        ...

    def write_batch(self, nodes: Mapping[bytes, bytes], root: bytes, epoch: int) -> None:
        """Atomically add ``nodes`` (reference -> record) and record the root
        reference ``root`` for ``epoch``.

        ``epoch`` must be one more than :meth:`latest_epoch` (0 for the first
        batch); otherwise raise StorageError and change nothing.
        """
        ...

    def get_root(self, epoch: int) -> bytes | None:
        """The root reference committed for ``epoch``, or None."""
        ...

    def latest_epoch(self) -> int | None:
        """The newest committed epoch, or None for an empty store."""
        ...


class InMemoryNodeStore:
    """A dict of node records keyed by reference, and a list of root references.

    About 200 bytes of Python heap per node. Past epochs are kept, so memory
    grows with every node a batch replaces as well as with the live tree.
    """

    __slots__ = ("_nodes", "_roots")

    def __init__(self) -> None:
        self._nodes: dict[bytes, bytes] = {}
        self._roots: list[bytes] = []

    def get_node(self, ref: bytes) -> bytes | None:
        return self._nodes.get(ref)

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
