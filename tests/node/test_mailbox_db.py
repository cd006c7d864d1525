"""node.mailbox_db.MailboxStore: quotas, total cap, TTL, order, persistence, 0600,
refusing foreign files."""

from __future__ import annotations

import itertools
import os
import sqlite3
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from chhaya import StorageError
from node.mailbox_db import APPLICATION_ID, SCHEMA_VERSION, MailboxStore, migrate

A = b"\xaa" * 32
B = b"\xbb" * 32
NOW = 1_700_000_000_000
KIB = 1024


def counter_rng() -> Callable[[int], bytes]:
    counter = itertools.count(1)
    return lambda n: next(counter).to_bytes(n, "big")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MailboxStore]:
    with MailboxStore(
        tmp_path / "mailboxes.sqlite",
        rng=counter_rng(),
        ttl_ms=1000,
        max_envelopes_per_mailbox=5,
        max_bytes_per_mailbox=20 * KIB,
        max_total_bytes=40 * KIB,
    ) as s:
        yield s


def env(tag: int, size: int = KIB) -> bytes:
    return bytes([tag]) * size


def test_put_fetch_delete_oldest_first(store: MailboxStore) -> None:
    maybe = [store.put(A, env(i), NOW + i) for i in range(4)]
    ids = [i for i in maybe if i is not None and len(i) == 16]
    assert len(ids) == 4
    assert len(set(ids)) == 4
    assert store.put(B, env(9), NOW) is not None
    got = store.fetch(A, 10, NOW + 5)
    assert [e for _, e in got] == [env(i) for i in range(4)]
    assert [i for i, _ in got] == ids
    assert store.fetch(A, 2, NOW + 5) == got[:2]
    assert store.counts(A) == (4, 4 * KIB)
    assert store.delete(A, [ids[1], ids[1], b"\x00" * 16, b"short"]) == 1
    assert store.delete(B, [ids[0]]) == 0  # an id of another mailbox
    assert [i for i, _ in store.fetch(A, 10, NOW + 5)] == [ids[0], ids[2], ids[3]]
    assert store.counts(A) == (3, 3 * KIB)
    assert store.delete(A, []) == 0
    assert store.fetch(b"\x01" * 32, 10, NOW) == []
    assert store.counts(b"\x01" * 32) == (0, 0)


def test_quota_by_count(store: MailboxStore) -> None:
    for i in range(5):
        assert store.put(A, env(i, 16), NOW) is not None
    assert store.put(A, env(5, 16), NOW) is None
    assert store.put(B, env(5, 16), NOW) is not None  # another mailbox has its own quota
    first = store.fetch(A, 1, NOW)[0][0]
    assert store.delete(A, [first]) == 1
    assert store.put(A, env(6, 16), NOW) is not None


def test_quota_by_bytes(store: MailboxStore) -> None:
    assert store.put(A, env(1, 16 * KIB), NOW) is not None
    assert store.put(A, env(2, 4 * KIB), NOW) is not None  # exactly 20 KiB
    assert store.put(A, env(3, 1), NOW) is None
    assert store.counts(A) == (2, 20 * KIB)


def test_total_cap(store: MailboxStore) -> None:
    assert store.put(A, env(1, 16 * KIB), NOW) is not None
    assert store.put(B, env(2, 16 * KIB), NOW) is not None
    assert store.put(b"\xcc" * 32, env(3, 16 * KIB), NOW + 10) is None
    assert store.put(b"\xcc" * 32, env(3, 8 * KIB), NOW + 10) is not None
    assert store.total_bytes() == 40 * KIB
    # once the others expire, the cap purges them to make room
    assert store.put(b"\xcc" * 32, env(4, 12 * KIB), NOW + 1000) is not None
    assert store.counts(A) == (0, 0)
    assert store.counts(B) == (0, 0)
    assert store.total_bytes() == 20 * KIB


def test_ttl_expiry_and_purge(store: MailboxStore) -> None:
    store.put(A, env(1), NOW)
    store.put(A, env(2), NOW + 500)
    store.put(B, env(3), NOW)
    assert len(store.fetch(A, 10, NOW + 999)) == 2
    assert [e for _, e in store.fetch(A, 10, NOW + 1000)] == [env(2)]
    assert store.counts(A) == (2, 2 * KIB)  # expired ones count until purged
    assert store.purge_expired(NOW + 1000) == 2
    assert store.counts(A) == (1, KIB)
    assert store.counts(B) == (0, 0)
    assert store.purge_expired(NOW + 1000) == 0
    assert store.purge_expired(NOW + 1500) == 1
    assert store.total_bytes() == 0


def test_expired_envelopes_free_their_quota_on_put(store: MailboxStore) -> None:
    for i in range(5):
        store.put(A, env(i, 16), NOW)
    assert store.put(A, env(9, 16), NOW + 999) is None
    assert store.put(A, env(9, 16), NOW + 1000) is not None
    assert store.counts(A) == (1, 16)


def test_persistence_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "mailboxes.sqlite"
    with MailboxStore(path) as db:
        ids = [db.put(A, env(i), NOW) for i in range(3)]
        db.delete(A, [ids[0]])  # type: ignore[list-item]
    with MailboxStore(path) as db:
        assert [i for i, _ in db.fetch(A, 10, NOW)] == ids[1:]
        assert db.counts(A) == (2, 2 * KIB)
        assert db.total_bytes() == 2 * KIB
        assert db.put(A, env(7), NOW) is not None


def test_files_are_private(tmp_path: Path) -> None:
    path = tmp_path / "mailboxes.sqlite"
    old = os.umask(0)
    try:
        db = MailboxStore(path)
    finally:
        os.umask(old)
    try:
        db.put(A, env(1), NOW)
        for f in [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]:
            assert f.exists(), f
            assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
    finally:
        db.close()


def test_schema_is_marked_and_migration_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "mailboxes.sqlite"
    MailboxStore(path).close()
    raw = sqlite3.connect(path, isolation_level=None)
    try:
        assert raw.execute("PRAGMA application_id").fetchone() == (APPLICATION_ID,)
        assert raw.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        migrate(raw, str(path))
    finally:
        raw.close()


@pytest.mark.parametrize(
    "setup",
    [
        "CREATE TABLE notes (body TEXT)",
        "PRAGMA application_id = 1129601360",  # a prekey database ("CHYP")
        f"PRAGMA application_id = {APPLICATION_ID + 1}",
    ],
)
def test_other_sqlite_files_are_refused(tmp_path: Path, setup: str) -> None:
    path = tmp_path / "other.sqlite"
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute(setup)
    raw.close()
    before = path.read_bytes()
    with pytest.raises(StorageError, match="not a chhaya mailbox database") as info:
        MailboxStore(path)
    assert "\n" not in str(info.value)
    assert path.read_bytes() == before


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "mailboxes.sqlite"
    MailboxStore(path).close()
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    raw.close()
    with pytest.raises(StorageError, match="schema version"):
        MailboxStore(path)


@pytest.mark.parametrize(
    "content", [b"this is not a database at all\n" * 200, b"SQLite format 3\x00" + b"\xff" * 200]
)
def test_garbage_file_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "mailboxes.sqlite"
    path.write_bytes(content)
    with pytest.raises(StorageError) as info:
        MailboxStore(path)
    assert "\n" not in str(info.value)
    assert path.read_bytes() == content


def test_bad_arguments_and_closed_store(tmp_path: Path) -> None:
    db = MailboxStore(tmp_path / "m.sqlite")
    with pytest.raises(ValueError, match="mailbox id"):
        db.put(b"short", env(1), NOW)
    with pytest.raises(ValueError, match="empty"):
        db.put(A, b"", NOW)
    with pytest.raises(ValueError, match="time"):
        db.fetch(A, 1, -1)
    assert db.fetch(A, 0, NOW) == []
    db.close()
    db.close()
    with pytest.raises(StorageError, match="closed"):
        db.put(A, env(1), NOW)


def test_duplicate_random_id_is_a_storage_error(tmp_path: Path) -> None:
    with MailboxStore(tmp_path / "m.sqlite", rng=lambda n: b"\x07" * n) as db:
        assert db.put(A, env(1), NOW) == b"\x07" * 16
        with pytest.raises(StorageError) as info:
            db.put(A, env(2), NOW)
        assert "\n" not in str(info.value)
        assert db.counts(A) == (1, KIB)  # the failed put changed nothing
