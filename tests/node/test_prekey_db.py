"""The SQLite prekey storage: the in-memory storage's behaviour, and what a
file adds (persistence, ids never reused, 0600, refusing foreign files)."""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from chhaya import StorageError, VerificationError
from chhaya.crypto import Rng
from chhaya.prekeys import (
    InitialMessage,
    InMemoryPrekeyStorage,
    KemPrekeyRecord,
    OneTimePrekeyRecord,
    PrekeyBundle,
    PrekeyKind,
    PrekeyStorage,
    PrekeyStore,
    SignedPrekeyRecord,
    accept_initial_message,
    initial_message_digest,
    initiate_session,
)
from node.prekey_db import APPLICATION_ID, SCHEMA_VERSION, SqlitePrekeyStorage, migrate

# The PrekeyStore policy tests, rerun here over SQLite through the
# ``new_storage`` fixture below.
from ..chhaya.prekeys._helpers import NOW, det_rng, identity
from ..chhaya.prekeys.test_store import (  # noqa: F401
    make_store,
    rng,
    test_batch_bounds,
    test_empty_store_has_no_bundle,
    test_full_kem_store_makes_room,
    test_full_store_makes_room_from_handed_out_keys_only,
    test_generated_public_keys_match_bundles,
    test_ids_are_unique_per_kind,
    test_last_resort_rotation_and_grace,
    test_publication_bundle_is_long_lived_part_only,
    test_records_do_not_show_secrets,
    test_retained_prekeys_are_capped,
    test_rotation_due,
    test_rotation_keeps_previous_signed_prekey_for_grace,
    test_stale_handed_out_one_time_prekeys_are_pruned,
    test_take_bundle_hands_each_one_time_prekey_out_once,
)

StorageFactory = Callable[[], PrekeyStorage]


@pytest.fixture
def new_storage(tmp_path: Path) -> Iterator[StorageFactory]:
    """Fresh SQLite storages, each in its own file, closed after the test."""
    opened: list[SqlitePrekeyStorage] = []

    def factory() -> SqlitePrekeyStorage:
        storage = SqlitePrekeyStorage(tmp_path / f"prekeys{len(opened)}.sqlite")
        opened.append(storage)
        return storage

    yield factory
    for storage in opened:
        storage.close()


@pytest.fixture(params=["memory", "sqlite"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[PrekeyStorage]:
    """Both storages, for the storage-level conformance tests."""
    if request.param == "memory":
        yield InMemoryPrekeyStorage()
        return
    with SqlitePrekeyStorage(tmp_path / "prekeys.sqlite") as db:
        yield db


def _signed(prekey_id: int, created: int = NOW) -> SignedPrekeyRecord:
    return SignedPrekeyRecord(prekey_id, bytes([prekey_id % 256]) * 32, b"s" * 64, created)


def _kem(prekey_id: int, *, last_resort: bool = False) -> KemPrekeyRecord:
    return KemPrekeyRecord(prekey_id, bytes([prekey_id % 256]) * 64, last_resort, b"k" * 64, NOW)


def _opk(prekey_id: int) -> OneTimePrekeyRecord:
    return OneTimePrekeyRecord(prekey_id, bytes([prekey_id % 256]) * 32, NOW)


def _filled(storage: PrekeyStorage) -> PrekeyStorage:
    storage.put_signed_prekey(_signed(1))
    storage.put_one_time_prekey(_opk(7))
    storage.put_kem_prekey(_kem(3))
    storage.put_kem_prekey(_kem(4, last_resort=True))
    return storage


def _contents(storage: PrekeyStorage) -> tuple[object, ...]:
    return (
        tuple(storage.signed_prekeys()),
        tuple(storage.kem_prekeys()),
        tuple(storage.one_time_prekeys()),
        tuple(storage.initial_message_count(r.prekey_id) for r in storage.signed_prekeys()),
    )


# ------------------------------------------------- storage-level conformance


def test_records_round_trip_and_list_oldest_first(storage: PrekeyStorage) -> None:
    records = [_signed(5), _signed(2), dataclasses.replace(_signed(9), retired_ms=NOW + 1)]
    for record in records:
        storage.put_signed_prekey(record)
    assert storage.signed_prekeys() == sorted(records, key=lambda r: r.prekey_id)
    assert storage.get_signed_prekey(9) == records[2]
    kem = dataclasses.replace(_kem(1), handed_out_ms=NOW + 2)
    last = dataclasses.replace(_kem(2, last_resort=True), retired_ms=NOW + 3)
    storage.put_kem_prekey(last)
    storage.put_kem_prekey(kem)
    assert storage.kem_prekeys() == [kem, last]
    opk = dataclasses.replace(_opk(2**32 - 1), handed_out_ms=NOW)
    storage.put_one_time_prekey(opk)
    assert storage.get_one_time_prekey(2**32 - 1) == opk
    # Put replaces; delete is idempotent; unknown and out-of-range ids are absent.
    storage.put_signed_prekey(dataclasses.replace(records[0], retired_ms=NOW))
    assert storage.get_signed_prekey(5) == dataclasses.replace(records[0], retired_ms=NOW)
    for _ in range(2):
        storage.delete_signed_prekey(5)
        storage.delete_kem_prekey(1)
        storage.delete_one_time_prekey(2**32 - 1)
    assert storage.get_signed_prekey(5) is None
    assert storage.get_kem_prekey(1) is None
    assert storage.one_time_prekeys() == []
    for bad in (-1, 2**32, 2**70):
        assert storage.get_signed_prekey(bad) is None
        assert storage.get_kem_prekey(bad) is None
        assert storage.get_one_time_prekey(bad) is None


def test_allocated_ids_count_up_per_kind(storage: PrekeyStorage) -> None:
    assert [storage.allocate_prekey_id(PrekeyKind.SIGNED) for _ in range(3)] == [1, 2, 3]
    assert storage.allocate_prekey_id(PrekeyKind.KEM) == 1
    assert storage.allocate_prekey_id(PrekeyKind.ONE_TIME) == 1
    assert storage.allocate_prekey_id(PrekeyKind.SIGNED) == 4


def test_commit_consumes_one_time_prekeys_once(storage: PrekeyStorage) -> None:
    _filled(storage)
    kwargs = {"signed_prekey_id": 1, "one_time_prekey_id": 7, "one_time_kem_prekey_id": 3}
    assert storage.commit_initial_message(**kwargs, replay_digest=None)
    assert storage.get_one_time_prekey(7) is None
    assert storage.get_kem_prekey(3) is None
    assert storage.get_signed_prekey(1) is not None
    before = _contents(storage)
    assert not storage.commit_initial_message(**kwargs, replay_digest=None)
    assert _contents(storage) == before


@pytest.mark.parametrize(
    "bad",
    [
        {"signed_prekey_id": 2},
        {"one_time_prekey_id": 8},
        {"one_time_kem_prekey_id": 5},
        {"one_time_kem_prekey_id": 4},  # a last-resort prekey is never consumed
        {"signed_prekey_id": -1},
        {"one_time_prekey_id": 2**32},
        {"replay_digest": b"d" * 32},  # already in the replay set
    ],
)
def test_failed_commit_changes_nothing(storage: PrekeyStorage, bad: dict[str, object]) -> None:
    _filled(storage)
    assert storage.commit_initial_message(
        signed_prekey_id=1,
        one_time_prekey_id=None,
        one_time_kem_prekey_id=None,
        replay_digest=b"d" * 32,
    )
    before = _contents(storage)
    args: dict[str, object] = {
        "signed_prekey_id": 1,
        "one_time_prekey_id": 7,
        "one_time_kem_prekey_id": 3,
        "replay_digest": b"e" * 32,
    }
    args.update(bad)
    assert not storage.commit_initial_message(**args)  # type: ignore[arg-type]
    assert _contents(storage) == before
    assert not storage.has_initial_message(b"e" * 32)


def test_replay_set_is_tied_to_its_signed_prekey(storage: PrekeyStorage) -> None:
    storage.put_signed_prekey(_signed(1))
    storage.put_signed_prekey(_signed(2))
    for spk, digest in ((1, b"a"), (1, b"b"), (2, b"c")):
        assert storage.commit_initial_message(
            signed_prekey_id=spk,
            one_time_prekey_id=None,
            one_time_kem_prekey_id=None,
            replay_digest=digest * 32,
        )
    assert storage.initial_message_count(1) == 2
    assert storage.initial_message_count(2) == 1
    assert storage.initial_message_count(3) == 0
    storage.delete_signed_prekey(1)
    assert not storage.has_initial_message(b"a" * 32)
    assert not storage.has_initial_message(b"b" * 32)
    assert storage.has_initial_message(b"c" * 32)
    assert storage.initial_message_count(1) == 0


# ------------------------------------------------------------------ the file


def _bob_store(storage: PrekeyStorage, rand: Rng, *, one_time: int) -> PrekeyStore:
    store = PrekeyStore(identity("bob"), storage)
    store.rotate_signed_prekey(rand, NOW)
    store.rotate_last_resort_kem_prekey(rand, NOW)
    store.generate_one_time_prekeys(one_time, rand, NOW)
    store.generate_kem_prekeys(one_time, rand, NOW)
    return store


def test_initial_message_accepted_after_reopen(tmp_path: Path) -> None:
    rand = det_rng(b"prekey_db/reopen")
    path = tmp_path / "prekeys.sqlite"
    with SqlitePrekeyStorage(path) as db:
        bundle = _bob_store(db, rand, one_time=2).take_bundle(NOW)
    assert bundle.one_time_prekey is not None
    assert not bundle.kem_prekey.last_resort
    wire = PrekeyBundle.decode_untrusted(bundle.encode())
    alice_session, message = initiate_session(identity("alice"), wire, b"hi bob", rand)
    received = InitialMessage.decode_untrusted(message.encode())

    with SqlitePrekeyStorage(path) as db:
        store = PrekeyStore(identity("bob"), db)
        bob_session, plaintext, initiator = accept_initial_message(
            identity("bob"), store, received, rand
        )
        assert plaintext == b"hi bob"
        assert initiator == identity("alice").public
        assert bob_session.decrypt(alice_session.encrypt(b"more", rand), rand) == b"more"
        assert alice_session.decrypt(bob_session.encrypt(b"reply", rand), rand) == b"reply"
    # The one-time prekeys it used are gone for good: a replay after
    # another reopen finds nothing to use.
    with SqlitePrekeyStorage(path) as db:
        assert db.get_one_time_prekey(bundle.one_time_prekey.prekey_id) is None
        assert db.get_kem_prekey(bundle.kem_prekey.prekey_id) is None
        before = _contents(db)
        with pytest.raises(VerificationError) as info:
            accept_initial_message(
                identity("bob"), PrekeyStore(identity("bob"), db), received, rand
            )
        assert info.value.check == "unknown-prekey"
        assert _contents(db) == before


def test_replay_set_survives_reopen(tmp_path: Path) -> None:
    rand = det_rng(b"prekey_db/replay")
    path = tmp_path / "prekeys.sqlite"
    with SqlitePrekeyStorage(path) as db:
        store = _bob_store(db, rand, one_time=0)
        bundle = store.take_bundle(NOW)
        assert bundle.one_time_prekey is None
        assert bundle.kem_prekey.last_resort
        _, message = initiate_session(identity("alice"), bundle, b"once", rand)
        accept_initial_message(identity("bob"), store, message, rand)
    digest = initial_message_digest(message.ephemeral_key, message.kem_ciphertext)
    with SqlitePrekeyStorage(path) as db:
        assert db.has_initial_message(digest)
        assert db.initial_message_count(bundle.signed_prekey.prekey_id) == 1
        store = PrekeyStore(identity("bob"), db)
        with pytest.raises(VerificationError) as info:
            accept_initial_message(identity("bob"), store, message, rand)
        assert info.value.check == "replayed-initial-message"


def test_commit_race_between_two_connections(tmp_path: Path) -> None:
    path = tmp_path / "prekeys.sqlite"
    with SqlitePrekeyStorage(path) as first, SqlitePrekeyStorage(path) as second:
        _filled(first)
        kwargs: dict[str, int | None] = {
            "signed_prekey_id": 1,
            "one_time_prekey_id": 7,
            "one_time_kem_prekey_id": None,
        }
        assert first.commit_initial_message(**kwargs, replay_digest=None)  # type: ignore[arg-type]
        assert not second.commit_initial_message(**kwargs, replay_digest=None)  # type: ignore[arg-type]


def test_ids_are_never_reused_after_reopen(tmp_path: Path) -> None:
    path = tmp_path / "prekeys.sqlite"
    rand = det_rng(b"prekey_db/ids")
    with SqlitePrekeyStorage(path) as db:
        store = _bob_store(db, rand, one_time=3)
        seen = {kind: set[int]() for kind in PrekeyKind}
        seen[PrekeyKind.SIGNED] |= {r.prekey_id for r in db.signed_prekeys()}
        seen[PrekeyKind.KEM] |= {r.prekey_id for r in db.kem_prekeys()}
        seen[PrekeyKind.ONE_TIME] |= {r.prekey_id for r in db.one_time_prekeys()}
        # Delete the newest of each kind: its id must still not come back.
        for record in db.one_time_prekeys():
            db.delete_one_time_prekey(record.prekey_id)
        for kem in db.kem_prekeys():
            if not kem.last_resort:
                db.delete_kem_prekey(kem.prekey_id)
        store.rotate_signed_prekey(rand, NOW + 1)
        newest = db.signed_prekeys()[-1].prekey_id
        seen[PrekeyKind.SIGNED].add(newest)
        db.delete_signed_prekey(newest)
    for _ in range(2):
        with SqlitePrekeyStorage(path) as db:
            for kind, ids in seen.items():
                fresh = db.allocate_prekey_id(kind)
                assert fresh not in ids
                assert fresh > max(ids)
                ids.add(fresh)


def test_id_space_exhaustion_is_a_storage_error(tmp_path: Path) -> None:
    path = tmp_path / "prekeys.sqlite"
    SqlitePrekeyStorage(path).close()
    with sqlite3.connect(path) as raw:
        raw.execute("UPDATE id_counters SET next_id = ? WHERE kind = 'one-time'", (2**32 - 1,))
    raw.close()
    with SqlitePrekeyStorage(path) as db:
        assert db.allocate_prekey_id(PrekeyKind.ONE_TIME) == 2**32 - 1
        for _ in range(2):
            with pytest.raises(StorageError, match="exhausted"):
                db.allocate_prekey_id(PrekeyKind.ONE_TIME)
        assert db.allocate_prekey_id(PrekeyKind.SIGNED) == 1


def test_files_are_private(tmp_path: Path) -> None:
    path = tmp_path / "prekeys.sqlite"
    old = os.umask(0)  # even with a permissive umask
    try:
        db = SqlitePrekeyStorage(path)
    finally:
        os.umask(old)
    try:
        _filled(db)
        files = [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]
        for f in files:
            assert f.exists(), f
            assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
    finally:
        db.close()


def test_schema_is_marked_and_migration_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "prekeys.sqlite"
    with SqlitePrekeyStorage(path) as db:
        _filled(db)
    raw = sqlite3.connect(path, isolation_level=None)
    try:
        assert raw.execute("PRAGMA application_id").fetchone() == (APPLICATION_ID,)
        assert raw.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        migrate(raw, str(path))
    finally:
        raw.close()
    with SqlitePrekeyStorage(path) as db:
        assert db.get_signed_prekey(1) == _signed(1)


@pytest.mark.parametrize(
    "setup",
    [
        "CREATE TABLE notes (body TEXT)",  # someone else's, unmarked
        "PRAGMA application_id = 1129601358",  # a node logstore ("CHYN")
        f"PRAGMA application_id = {APPLICATION_ID + 1}",
    ],
)
def test_other_sqlite_files_are_refused(tmp_path: Path, setup: str) -> None:
    path = tmp_path / "other.sqlite"
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute(setup)
    raw.close()
    before = path.read_bytes()
    with pytest.raises(StorageError, match="not a chhaya prekey database") as info:
        SqlitePrekeyStorage(path)
    assert "\n" not in str(info.value)
    assert path.read_bytes() == before


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "prekeys.sqlite"
    SqlitePrekeyStorage(path).close()
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    raw.close()
    with pytest.raises(StorageError, match="schema version"):
        SqlitePrekeyStorage(path)


@pytest.mark.parametrize(
    "content", [b"this is not a database at all\n" * 200, b"SQLite format 3\x00" + b"\xff" * 200]
)
def test_garbage_file_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "prekeys.sqlite"
    path.write_bytes(content)
    with pytest.raises(StorageError) as info:
        SqlitePrekeyStorage(path)
    assert "\n" not in str(info.value)
    assert str(path) in str(info.value)
    assert path.read_bytes() == content


def test_unopenable_path_is_a_storage_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError):
        SqlitePrekeyStorage(tmp_path / "missing-dir" / "prekeys.sqlite")


@pytest.mark.parametrize(
    ("table", "column", "value"),
    [
        ("signed_prekeys", "private_key", "text, not a key"),
        ("signed_prekeys", "private_key", b"short"),
        ("signed_prekeys", "created_ms", -5),
        ("signed_prekeys", "retired_ms", "yesterday"),
        ("signed_prekeys", "signature", "not bytes"),
        ("kem_prekeys", "seed", b"x" * 63),
        ("kem_prekeys", "handed_out_ms", 1.5),
        ("one_time_prekeys", "private_key", 12),
        ("one_time_prekeys", "id", 2**32),
    ],
)
def test_corrupt_rows_are_storage_errors(
    tmp_path: Path, table: str, column: str, value: object
) -> None:
    path = tmp_path / "prekeys.sqlite"
    with SqlitePrekeyStorage(path) as db:
        _filled(db)
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute(f"UPDATE {table} SET {column} = ?", (value,))  # noqa: S608
    raw.close()
    with SqlitePrekeyStorage(path) as db:
        with pytest.raises(StorageError, match="corrupt"):
            (db.signed_prekeys, db.kem_prekeys, db.one_time_prekeys)[
                ("signed_prekeys", "kem_prekeys", "one_time_prekeys").index(table)
            ]()
        # A broken row does not break the rest of the file.
        db.put_signed_prekey(_signed(50))
        assert db.allocate_prekey_id(PrekeyKind.SIGNED) == 1


def test_corrupt_kem_flag_and_counter(tmp_path: Path) -> None:
    path = tmp_path / "prekeys.sqlite"
    with SqlitePrekeyStorage(path) as db:
        _filled(db)
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute("PRAGMA ignore_check_constraints = ON")
    raw.execute("UPDATE kem_prekeys SET last_resort = 2 WHERE id = 3")
    raw.execute("UPDATE id_counters SET next_id = 'x' WHERE kind = 'kem'")
    raw.close()
    with SqlitePrekeyStorage(path) as db:
        with pytest.raises(StorageError, match="corrupt KEM prekey"):
            db.get_kem_prekey(3)
        with pytest.raises(StorageError, match="corrupt id counter"):
            db.allocate_prekey_id(PrekeyKind.KEM)
        assert db.get_kem_prekey(4) == _kem(4, last_resort=True)


def test_bad_records_are_refused_on_write(tmp_path: Path) -> None:
    with SqlitePrekeyStorage(tmp_path / "prekeys.sqlite") as db:
        for bad in (
            dataclasses.replace(_signed(1), prekey_id=2**32),
            dataclasses.replace(_signed(1), private_key=b"short"),
            dataclasses.replace(_signed(1), created_ms=-1),
        ):
            with pytest.raises(ValueError, match=r"range|bytes"):
                db.put_signed_prekey(bad)
        with pytest.raises(ValueError, match="seed"):
            db.put_kem_prekey(dataclasses.replace(_kem(1), seed=b""))
        with pytest.raises(ValueError, match="handed_out_ms"):
            db.put_one_time_prekey(dataclasses.replace(_opk(1), handed_out_ms=2**63))
        assert _contents(db) == ((), (), (), ())


def test_locked_database_is_a_storage_error(tmp_path: Path) -> None:
    path = tmp_path / "prekeys.sqlite"
    with SqlitePrekeyStorage(path, timeout_s=0.05) as db:
        other = sqlite3.connect(path, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            with pytest.raises(StorageError, match="locked") as info:
                db.allocate_prekey_id(PrekeyKind.SIGNED)
            assert "\n" not in str(info.value)
            other.execute("ROLLBACK")
        finally:
            other.close()
        assert db.allocate_prekey_id(PrekeyKind.SIGNED) == 1


def test_closed_storage_refuses_calls(tmp_path: Path) -> None:
    db = SqlitePrekeyStorage(tmp_path / "prekeys.sqlite")
    assert db.path == str(tmp_path / "prekeys.sqlite")
    db.close()
    db.close()
    with pytest.raises(StorageError, match="closed"):
        db.signed_prekeys()
    with pytest.raises(StorageError, match="closed"):
        db.allocate_prekey_id(PrekeyKind.KEM)
