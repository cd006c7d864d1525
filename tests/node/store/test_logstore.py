"""The node logstore: schema, append-only tables, atomic commits, dedup, errors."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest
import trio

from chhaya import StorageError
from node.store import (
    APPLICATION_ID,
    RETRY_INITIAL_MS,
    RETRY_MAX_MS,
    SCHEMA_VERSION,
    LogStore,
    retry_delay_ms,
)

TIMEOUT_S = 10
ALICE = "alice"
BOB = "bob"


def mid(n: int) -> bytes:
    return n.to_bytes(16, "big")


def raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def count(path: Path, table: str) -> int:
    db = raw(path)
    try:
        (n,) = db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()  # noqa: S608
    finally:
        db.close()
    return int(n)


def counts(path: Path) -> dict[str, int]:
    return {t: count(path, t) for t in ("sessions", "messages", "receipts", "outbox")}


async def test_migrates_an_empty_database(tmp_path: Path) -> None:
    path = tmp_path / "node.db"
    with trio.fail_after(TIMEOUT_S):
        store = await LogStore.open(path)
        await store.close()
    db = raw(path)
    try:
        assert db.execute("PRAGMA application_id").fetchone() == (APPLICATION_ID,)
        assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"sessions", "messages", "receipts", "outbox"} <= tables
        triggers = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='trigger'")}
        assert len(triggers) == 6
    finally:
        db.close()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


async def test_open_twice_and_reopen_keep_data(tmp_path: Path) -> None:
    path = tmp_path / "node.db"
    with trio.fail_after(TIMEOUT_S):
        async with await LogStore.open(path) as store:
            assert await store.load_session(ALICE) is None
            assert await store.save_session(ALICE, b"s1", 1) == 1
            await store.commit_outgoing(ALICE, b"s2", mid(1), b"hi", b"env1", 10)
            assert await store.commit_incoming(ALICE, b"s3", mid(2), b"yo", 15, 20)
        async with await LogStore.open(path) as store:
            assert await store.load_session(ALICE) == b"s3"
            assert await store.load_session(BOB) is None
            history = await store.history(ALICE)
            assert [(e.message_id, e.direction, e.body) for e in history] == [
                (mid(1), "out", b"hi"),
                (mid(2), "in", b"yo"),
            ]
            assert history[0].status == "sent"
            assert history[1].status is None
            assert history[1].sent_ms == 15
            assert history[1].created_ms == 20
            pending = await store.pending_outbox(10 + RETRY_INITIAL_MS)
            assert [(e.message_id, e.envelope, e.attempts) for e in pending] == [
                (mid(1), b"env1", 1)
            ]


@pytest.mark.parametrize("table", ["sessions", "messages", "receipts"])
async def test_append_only_tables_refuse_update_and_delete(tmp_path: Path, table: str) -> None:
    path = tmp_path / "node.db"
    with trio.fail_after(TIMEOUT_S):
        async with await LogStore.open(path) as store:
            await store.commit_outgoing(ALICE, b"s1", mid(1), b"hi", b"env", 10)
    before = counts(path)
    db = raw(path)
    try:
        column = {"sessions": "created_ms", "messages": "sent_ms", "receipts": "at_ms"}[table]
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            db.execute(f"UPDATE {table} SET {column} = 99")  # noqa: S608
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            db.execute(f"DELETE FROM {table}")  # noqa: S608
        # The outbox is the one mutable table.
        db.execute("UPDATE outbox SET attempts = 5")
    finally:
        db.close()
    assert counts(path) == before


async def test_duplicate_outgoing_id_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "node.db"
    with trio.fail_after(TIMEOUT_S):
        async with await LogStore.open(path) as store:
            await store.commit_outgoing(ALICE, b"s1", mid(1), b"hi", b"env", 10)
            before = counts(path)
            # The session insert succeeds, the message insert fails: all rolled back.
            with pytest.raises(StorageError, match="cannot commit outgoing message"):
                await store.commit_outgoing(ALICE, b"s2", mid(1), b"again", b"env2", 11)
            assert counts(path) == before
            assert await store.load_session(ALICE) == b"s1"
            # And the store still works.
            await store.commit_outgoing(ALICE, b"s2", mid(2), b"next", b"env2", 12)
            assert await store.load_session(ALICE) == b"s2"


async def test_failure_at_the_last_step_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "node.db"
    with trio.fail_after(TIMEOUT_S):
        async with await LogStore.open(path) as store:
            await store.commit_outgoing(ALICE, b"s1", mid(1), b"hi", b"env", 10)
            before = counts(path)
            side = raw(path)
            try:
                side.execute(
                    "CREATE TRIGGER fail_outbox BEFORE INSERT ON outbox"
                    " BEGIN SELECT RAISE(ABORT, 'simulated failure'); END"
                )
            finally:
                side.close()
            with pytest.raises(StorageError, match="simulated failure"):
                await store.commit_outgoing(ALICE, b"s2", mid(2), b"lost", b"env2", 11)
            assert counts(path) == before
            assert await store.load_session(ALICE) == b"s1"
            assert not await store.has_message(mid(2))


async def test_incoming_duplicates_are_refused_without_writes(tmp_path: Path) -> None:
    path = tmp_path / "node.db"
    with trio.fail_after(TIMEOUT_S):
        async with await LogStore.open(path) as store:
            assert await store.commit_incoming(BOB, b"s1", mid(7), b"hello", 5, 6)
            before = counts(path)
            assert not await store.commit_incoming(BOB, b"s2", mid(7), b"hello", 5, 9)
            assert counts(path) == before
            assert await store.load_session(BOB) == b"s1"
            assert [e.body for e in await store.history(BOB)] == [b"hello"]


async def test_receipts_and_outbox(tmp_path: Path) -> None:
    path = tmp_path / "node.db"
    with trio.fail_after(TIMEOUT_S):
        async with await LogStore.open(path) as store:
            await store.commit_outgoing(ALICE, b"s1", mid(1), b"one", b"e1", 100)
            await store.commit_outgoing(ALICE, b"s2", mid(2), b"two", b"e2", 200)
            await store.commit_incoming(ALICE, b"s3", mid(3), b"three", 250, 300)
            assert await store.next_due_ms() == 100 + RETRY_INITIAL_MS
            assert await store.pending_outbox(100) == []
            due = await store.pending_outbox(10_000)
            assert [e.message_id for e in due] == [mid(1), mid(2)]

            # Retry with backoff.
            assert await store.reschedule(mid(1), 5_000)
            (first, second) = await store.pending_outbox(10_000)
            assert (second.message_id, second.attempts, second.next_attempt_ms) == (
                mid(1),
                2,
                5_000,
            )
            assert first.message_id == mid(2)
            assert await store.commit_resend(ALICE, b"s4", mid(2), b"e2b", 6_000, 9_000)
            assert await store.load_session(ALICE) == b"s4"
            (entry,) = [e for e in await store.pending_outbox(10_000) if e.message_id == mid(2)]
            assert (entry.envelope, entry.attempts) == (b"e2b", 2)

            # Receipts: wrong peer and unknown ids are ignored.
            assert not await store.mark_delivered(mid(1), 7_000, peer=BOB)
            assert not await store.mark_delivered(mid(99), 7_000)
            assert not await store.mark_delivered(mid(3), 7_000)  # incoming
            assert await store.mark_delivered(mid(1), 7_000, peer=ALICE)
            assert not await store.mark_delivered(mid(1), 7_001)  # already recorded
            assert not await store.reschedule(mid(1), 8_000)  # delivered: out of the outbox
            assert not await store.commit_resend(ALICE, b"s5", mid(1), b"x", 8_000, 9_000)
            assert await store.load_session(ALICE) == b"s4"
            assert await store.mark_read(mid(2), 7_500)  # read implies delivered
            assert await store.mark_read(mid(3), 7_600)  # we read an incoming message
            assert await store.pending_outbox(10**9) == []
            assert await store.next_due_ms() is None

            history = await store.history(ALICE)
            assert [(e.message_id, e.status) for e in history] == [
                (mid(1), "delivered"),
                (mid(2), "read"),
                (mid(3), "read"),
            ]
            assert history[0].receipts == (("sent", 100), ("delivered", 7_000))
            assert [e.message_id for e in await store.history(ALICE, limit=2)] == [mid(2), mid(3)]
            assert await store.history(BOB) == []


def test_retry_delay_backs_off_and_caps() -> None:
    delays = [retry_delay_ms(n) for n in range(1, 40)]
    assert delays[0] == RETRY_INITIAL_MS
    assert delays[1] == 2 * RETRY_INITIAL_MS
    assert delays == sorted(delays)
    assert delays[-1] == RETRY_MAX_MS


async def commit_one(store: LogStore, i: int) -> None:
    await store.commit_outgoing(ALICE, b"s%d" % i, mid(i), b"m", b"e", i)


async def test_concurrent_tasks_commit_contiguous_versions(tmp_path: Path) -> None:
    path = tmp_path / "node.db"
    with trio.fail_after(TIMEOUT_S):
        async with await LogStore.open(path) as store, trio.open_nursery() as nursery:
            for i in range(20):
                nursery.start_soon(commit_one, store, i)
    db = raw(path)
    try:
        versions = [v for (v,) in db.execute("SELECT version FROM sessions ORDER BY version")]
    finally:
        db.close()
    assert versions == list(range(1, 21))


async def test_closed_store_raises(tmp_path: Path) -> None:
    with trio.fail_after(TIMEOUT_S):
        store = await LogStore.open(tmp_path / "node.db")
        await store.close()
        await store.close()
        with pytest.raises(StorageError, match="closed"):
            await store.load_session(ALICE)


async def test_bad_arguments_raise_value_error(tmp_path: Path) -> None:
    with trio.fail_after(TIMEOUT_S):
        async with await LogStore.open(tmp_path / "node.db") as store:
            with pytest.raises(ValueError, match="now_ms"):
                await store.commit_outgoing(ALICE, b"s", mid(1), b"m", b"e", 2**63)
            with pytest.raises(ValueError, match="peer"):
                await store.save_session("", b"s", 1)
            with pytest.raises(ValueError, match="message_id"):
                await store.commit_incoming(ALICE, b"s", b"", b"m", 1, 1)


# ----------------------------------------------------------------- bad files


async def open_and_read(path: Path) -> None:
    async with await LogStore.open(path) as store:
        await store.history(ALICE)
        await store.load_session(ALICE)
        await store.pending_outbox(2**62)


async def test_garbage_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "node.db"
    path.write_bytes(os.urandom(8192))
    with trio.fail_after(TIMEOUT_S), pytest.raises(StorageError) as info:
        await LogStore.open(path)
    assert str(info.value) == f"{path} is not a chhaya database or is corrupt"


async def test_corrupt_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "node.db"
    with trio.fail_after(TIMEOUT_S):
        async with await LogStore.open(path) as store:
            await store.commit_outgoing(ALICE, b"s1", mid(1), b"hi", b"env", 10)
    data = bytearray(path.read_bytes())
    data[16:24] = b"\xff" * 8  # page size and format bytes
    path.write_bytes(bytes(data))
    with trio.fail_after(TIMEOUT_S), pytest.raises(StorageError, match="not a chhaya database"):
        await open_and_read(path)


async def test_corrupt_pages_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "node.db"
    with trio.fail_after(TIMEOUT_S):
        async with await LogStore.open(path) as store:
            for i in range(50):
                await store.commit_outgoing(ALICE, bytes(2000), mid(i), b"hi", b"env", i)
    data = bytearray(path.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    data[page:] = b"\xa5" * (len(data) - page)  # every page but the first
    path.write_bytes(bytes(data))
    with trio.fail_after(TIMEOUT_S), pytest.raises(StorageError, match="corrupt"):
        await open_and_read(path)


async def test_foreign_sqlite_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    db = raw(path)
    db.execute("CREATE TABLE t (x)")
    db.close()
    with trio.fail_after(TIMEOUT_S), pytest.raises(StorageError, match="not a chhaya database"):
        await LogStore.open(path)
    assert count(path, "t") == 0  # untouched


async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "node.db"
    with trio.fail_after(TIMEOUT_S):
        await (await LogStore.open(path)).close()
    db = raw(path)
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.close()
    with trio.fail_after(TIMEOUT_S), pytest.raises(StorageError) as info:
        await LogStore.open(path)
    assert "was written by a newer chhaya" in str(info.value)
    assert "\n" not in str(info.value)


async def test_locked_database_fails_within_the_timeout(tmp_path: Path) -> None:
    path = tmp_path / "node.db"
    with trio.fail_after(TIMEOUT_S):
        store = await LogStore.open(path, busy_timeout_s=0.3)
        try:
            await store.commit_outgoing(ALICE, b"s1", mid(1), b"hi", b"env", 10)
            other = raw(path)
            try:
                other.execute("BEGIN EXCLUSIVE")
                other.execute("INSERT INTO sessions VALUES ('x', 1, x'00', 0)")
                start = trio.current_time()
                with pytest.raises(StorageError) as info:
                    await store.commit_outgoing(ALICE, b"s2", mid(2), b"yo", b"env", 11)
                assert str(info.value) == f"{path}: database is locked by another process"
                assert trio.current_time() - start < 3
                other.execute("ROLLBACK")
            finally:
                other.close()
            # Once the lock is gone the store works again, and lost nothing.
            await store.commit_outgoing(ALICE, b"s2", mid(2), b"yo", b"env", 11)
            assert await store.load_session(ALICE) == b"s2"
        finally:
            await store.close()


async def test_open_fails_while_a_new_database_is_locked(tmp_path: Path) -> None:
    path = tmp_path / "node.db"
    other = raw(path)  # a rollback-journal database being created elsewhere
    try:
        other.execute("BEGIN EXCLUSIVE")
        other.execute("CREATE TABLE t (x)")
        with trio.fail_after(TIMEOUT_S), pytest.raises(StorageError, match="locked"):
            await LogStore.open(path, busy_timeout_s=0.3)
    finally:
        other.close()


async def test_missing_directory_is_a_storage_error(tmp_path: Path) -> None:
    with trio.fail_after(TIMEOUT_S), pytest.raises(StorageError, match="cannot open"):
        await LogStore.open(tmp_path / "missing" / "node.db")
