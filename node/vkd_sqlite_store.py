"""SQLite storage for the key directory's sparse Merkle tree (``vkd.tree.NodeStore``).

    smt_nodes(ref BLOB PRIMARY KEY, record BLOB)    -- WITHOUT ROWID
    smt_roots(epoch INTEGER PRIMARY KEY, root_ref BLOB)

Nodes are immutable and keyed by reference (written epoch u32 || hash), so a
batch only ever adds rows, and adds them at the end of the key order: a batch
of 1,000 into a tree of 1,000,000 dirties a few hundred pages, where keys by
hash alone would scatter it over some 12,000.

Each ``write_batch`` is one transaction (WAL mode, ``synchronous=FULL``): a
crash leaves either the whole epoch or none of it, and an epoch that
``write_batch`` returned from survives power loss, since the directory signs
its head next. The schema version lives in ``PRAGMA user_version``.

The interface is synchronous because the tree is: a node that drives it from
trio should call it from a worker thread, passing ``check_same_thread=False``
and keeping one caller at a time.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

from chhaya import StorageError
from vkd.tree import INNER_RECORD_SIZE, LEAF_RECORD_SIZE, NODE_REF_SIZE

__all__ = ["SCHEMA_VERSION", "SqliteNodeStore"]

SCHEMA_VERSION = 1

_SCHEMA = (
    "CREATE TABLE smt_nodes (ref BLOB PRIMARY KEY, record BLOB NOT NULL) WITHOUT ROWID",
    "CREATE TABLE smt_roots (epoch INTEGER PRIMARY KEY, root_ref BLOB NOT NULL)",
)
_RECORD_SIZES = (LEAF_RECORD_SIZE, INNER_RECORD_SIZE)


class SqliteNodeStore:
    """A :class:`vkd.tree.NodeStore` in one SQLite database file."""

    def __init__(self, path: Path | str, *, check_same_thread: bool = True) -> None:
        self._path = str(path)
        try:
            self._db = sqlite3.connect(
                self._path, isolation_level=None, check_same_thread=check_same_thread
            )
        except sqlite3.Error as exc:
            raise StorageError(f"{path}: cannot open tree database: {exc}") from None
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._migrate()
        except sqlite3.Error as exc:
            self._db.close()
            raise StorageError(f"{path}: cannot open tree database: {exc}") from None
        except StorageError:
            self._db.close()
            raise

    def _migrate(self) -> None:
        (version,) = self._db.execute("PRAGMA user_version").fetchone()
        if version == SCHEMA_VERSION:
            return
        if version != 0:
            raise StorageError(
                f"{self._path}: tree database has schema version {version}, not {SCHEMA_VERSION}"
            )
        self._db.execute("BEGIN IMMEDIATE")
        try:
            for statement in _SCHEMA:
                self._db.execute(statement)
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def get_node(self, ref: bytes) -> bytes | None:
        try:
            row = self._db.execute("SELECT record FROM smt_nodes WHERE ref = ?", (ref,)).fetchone()
        except sqlite3.Error as exc:
            raise StorageError(f"{self._path}: {exc}") from None
        if row is None:
            return None
        record = row[0]
        if not isinstance(record, bytes) or len(record) not in _RECORD_SIZES:
            raise StorageError(f"{self._path}: corrupt tree node")
        return record

    def write_batch(self, nodes: Mapping[bytes, bytes], root: bytes, epoch: int) -> None:
        if len(root) != NODE_REF_SIZE:
            raise ValueError("root reference is not 36 bytes")
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                latest = self._latest()
                expected = 0 if latest is None else latest + 1
                if epoch != expected:
                    raise StorageError(f"epoch {epoch} does not follow epoch {latest}")
                # In key order: with the epoch prefix, this appends to the table.
                self._db.executemany(
                    "INSERT OR IGNORE INTO smt_nodes (ref, record) VALUES (?, ?)",
                    sorted(nodes.items()),
                )
                self._db.execute(
                    "INSERT INTO smt_roots (epoch, root_ref) VALUES (?, ?)", (epoch, root)
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise StorageError(f"{self._path}: cannot commit epoch {epoch}: {exc}") from None

    def get_root(self, epoch: int) -> bytes | None:
        if not 0 <= epoch < 2**63:
            return None
        try:
            row = self._db.execute(
                "SELECT root_ref FROM smt_roots WHERE epoch = ?", (epoch,)
            ).fetchone()
        except sqlite3.Error as exc:
            raise StorageError(f"{self._path}: {exc}") from None
        if row is None:
            return None
        root = row[0]
        if not isinstance(root, bytes) or len(root) != NODE_REF_SIZE:
            raise StorageError(f"{self._path}: corrupt root for epoch {epoch}")
        return root

    def latest_epoch(self) -> int | None:
        try:
            return self._latest()
        except sqlite3.Error as exc:
            raise StorageError(f"{self._path}: {exc}") from None

    def _latest(self) -> int | None:
        (latest,) = self._db.execute("SELECT MAX(epoch) FROM smt_roots").fetchone()
        return None if latest is None else int(latest)

    def node_count(self) -> int:
        """The number of stored nodes (all epochs)."""
        try:
            (count,) = self._db.execute("SELECT COUNT(*) FROM smt_nodes").fetchone()
        except sqlite3.Error as exc:
            raise StorageError(f"{self._path}: {exc}") from None
        return int(count)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> SqliteNodeStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
