"""The SQLite node store: durable across reopening, one transaction per batch."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest

from chhaya import StorageError
from node.vkd_sqlite_store import SCHEMA_VERSION, SqliteNodeStore
from vkd.tree import EMPTY_REF, SparseMerkleTree, verify_membership

from ._helpers import h32, random_leaves, ref_root


def test_reopened_store_keeps_every_epoch(tmp_path: Path) -> None:
    path = tmp_path / "tree.db"
    rng = random.Random(1)
    batches = [random_leaves(rng, n) for n in (10, 0, 25)]
    with SqliteNodeStore(path) as store:
        tree = SparseMerkleTree(store)
        for batch in batches:
            tree.insert_batch(batch)
        roots = [tree.root_at(e) for e in range(3)]
    with SqliteNodeStore(path) as store:
        tree = SparseMerkleTree(store)
        assert tree.epoch == 2
        assert [tree.root_at(e) for e in range(3)] == roots
        assert roots[2] == ref_root({**batches[0], **batches[2]})
        index = next(iter(batches[0]))
        verify_membership(roots[0], tree.prove_membership(index, 0))
        (mode,) = store._db.execute("PRAGMA journal_mode").fetchone()
        assert mode == "wal"
        (version,) = store._db.execute("PRAGMA user_version").fetchone()
        assert version == SCHEMA_VERSION


def test_failed_batch_leaves_nothing_behind(tmp_path: Path) -> None:
    with SqliteNodeStore(tmp_path / "tree.db") as store:
        store.write_batch({}, EMPTY_REF, 0)
        nodes = {bytes(4) + h32("n"): b"\x00" * 65}
        with pytest.raises(StorageError, match="does not follow"):
            store.write_batch(nodes, bytes(4) + h32("root"), 5)
        assert store.node_count() == 0
        assert store.latest_epoch() == 0
        assert store.get_node(bytes(4) + h32("n")) is None


def test_unknown_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tree.db"
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version=99")
    db.commit()
    db.close()
    with pytest.raises(StorageError, match="schema version 99"):
        SqliteNodeStore(path)


def test_corrupt_node_is_a_storage_error(tmp_path: Path) -> None:
    with SqliteNodeStore(tmp_path / "tree.db") as store:
        ref = bytes(4) + h32("n")
        store.write_batch({ref: b"\x00" * 10}, ref, 0)
        with pytest.raises(StorageError, match="corrupt"):
            store.get_node(ref)


def test_unopenable_database_is_a_storage_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError):
        SqliteNodeStore(tmp_path / "missing-dir" / "tree.db")
    not_a_db = tmp_path / "junk.db"
    not_a_db.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StorageError):
        SqliteNodeStore(not_a_db)
