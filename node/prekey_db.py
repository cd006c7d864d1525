"""SQLite storage for one identity's private prekeys (``chhaya.prekeys.PrekeyStorage``).

The node keeps it at ``DATA_DIR/prekeys.sqlite``. Schema (version 1)::

    id_counters(kind TEXT PRIMARY KEY, next_id INTEGER)            -- WITHOUT ROWID
        the next id to hand out per PrekeyKind ('signed', 'kem', 'one-time');
        only ever incremented, so an id is never handed out twice, not even
        after the key that had it was deleted or the file was reopened
    signed_prekeys(id INTEGER PRIMARY KEY, private_key BLOB, signature BLOB,
                   created_ms INTEGER, retired_ms INTEGER NULL)
    kem_prekeys(id INTEGER PRIMARY KEY, seed BLOB, last_resort INTEGER (0/1),
                signature BLOB, created_ms INTEGER, retired_ms INTEGER NULL,
                handed_out_ms INTEGER NULL)
    one_time_prekeys(id INTEGER PRIMARY KEY, private_key BLOB, created_ms INTEGER,
                     handed_out_ms INTEGER NULL)
    initial_messages(digest BLOB PRIMARY KEY, signed_prekey_id INTEGER)  -- WITHOUT ROWID
        the replay set; indexed by signed_prekey_id, and emptied of a signed
        prekey's entries in the same transaction that deletes that prekey

The semantics are those of :class:`chhaya.prekeys.InMemoryPrekeyStorage`;
:meth:`SqlitePrekeyStorage.commit_initial_message` is one ``BEGIN IMMEDIATE``
transaction, so two copies of an initial message racing (even from two
processes) consume a one-time prekey, or enter the replay set, once.

The file holds private keys: it is created 0600 before SQLite opens it, and
SQLite gives its -wal and -shm files the same mode. ``secure_delete`` is on,
so a deleted (used) one-time prekey is overwritten in the database file
rather than left in a free page; until the next checkpoint its old page may
still sit in the -wal file, which SQLite truncates and deletes on close.

WAL mode, ``synchronous=FULL``: a call that returned survives power loss.
``PRAGMA application_id`` ("CHYP") marks the file as a Chhaya prekey
database and ``PRAGMA user_version`` holds the schema version, which
:func:`migrate` brings up to date. Every SQLite failure, and every stored
row that does not decode, surfaces as a one-line :class:`~chhaya.StorageError`.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from chhaya import StorageError
from chhaya.crypto import ED25519_SIGNATURE_SIZE, MLKEM1024_SEED_SIZE, X25519_KEY_SIZE
from chhaya.prekeys import (
    KemPrekeyRecord,
    OneTimePrekeyRecord,
    PrekeyKind,
    SignedPrekeyRecord,
)

from .sqlite_schema import SqliteSchema, create_private

__all__ = ["APPLICATION_ID", "SCHEMA_VERSION", "SqlitePrekeyStorage", "migrate"]

#: ``PRAGMA application_id`` of a prekey database: "CHYP".
APPLICATION_ID = 0x43485950
#: The schema version :func:`migrate` produces.
SCHEMA_VERSION = 1

_U32_MAX = 2**32 - 1
_MAX_INT64 = 2**63 - 1

#: ``_MIGRATIONS[v]`` takes the schema from version ``v`` to ``v + 1``.
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE id_counters ("
        " kind TEXT PRIMARY KEY NOT NULL,"
        f" next_id INTEGER NOT NULL CHECK (next_id BETWEEN 1 AND {_U32_MAX + 1})"
        ") WITHOUT ROWID",
        "INSERT INTO id_counters (kind, next_id) VALUES ('signed', 1), ('kem', 1), ('one-time', 1)",
        "CREATE TABLE signed_prekeys ("
        " id INTEGER PRIMARY KEY NOT NULL, private_key BLOB NOT NULL,"
        " signature BLOB NOT NULL, created_ms INTEGER NOT NULL, retired_ms INTEGER)",
        "CREATE TABLE kem_prekeys ("
        " id INTEGER PRIMARY KEY NOT NULL, seed BLOB NOT NULL,"
        " last_resort INTEGER NOT NULL CHECK (last_resort IN (0, 1)),"
        " signature BLOB NOT NULL, created_ms INTEGER NOT NULL,"
        " retired_ms INTEGER, handed_out_ms INTEGER)",
        "CREATE TABLE one_time_prekeys ("
        " id INTEGER PRIMARY KEY NOT NULL, private_key BLOB NOT NULL,"
        " created_ms INTEGER NOT NULL, handed_out_ms INTEGER)",
        "CREATE TABLE initial_messages ("
        " digest BLOB PRIMARY KEY NOT NULL, signed_prekey_id INTEGER NOT NULL) WITHOUT ROWID",
        "CREATE INDEX initial_messages_by_signed_prekey ON initial_messages (signed_prekey_id)",
    ),
)
assert len(_MIGRATIONS) == SCHEMA_VERSION

_T = TypeVar("_T")
_SCHEMA = SqliteSchema("prekey", APPLICATION_ID, _MIGRATIONS)


def migrate(db: sqlite3.Connection, path: str = "prekey database") -> None:
    """Bring an empty or older prekey database up to :data:`SCHEMA_VERSION`.

    Refuses a database that belongs to something else or that a newer
    version of Chhaya wrote. All steps run in one transaction.
    """
    _SCHEMA.migrate(db, path)


# ----------------------------------------------------------------- checks


def _is_u32(n: int) -> bool:
    return 0 <= n <= _U32_MAX


def _check_id(prekey_id: int) -> None:
    if not _is_u32(prekey_id):
        raise ValueError(f"prekey id out of range: {prekey_id}")


def _check_ms(name: str, value: int | None) -> None:
    if value is not None and not 0 <= value <= _MAX_INT64:
        raise ValueError(f"{name} out of range: {value}")


def _check_blob(name: str, value: bytes, size: int) -> None:
    if len(value) != size:
        raise ValueError(f"{name} must be {size} bytes, not {len(value)}")


class SqlitePrekeyStorage:
    """A :class:`chhaya.prekeys.PrekeyStorage` in one SQLite database file.

    ``timeout_s`` is how long a write waits for another process's lock
    before giving up with "prekey database is locked". Pass
    ``check_same_thread=False`` to use it from worker threads (one at a time).
    Records with out-of-range ids or times, or keys of the wrong size, are
    refused with ValueError when stored.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        timeout_s: float = 5.0,
        check_same_thread: bool = True,
    ) -> None:
        self._path = str(path)
        self._db: sqlite3.Connection | None = None
        create_private(self._path)
        try:
            db = sqlite3.connect(
                self._path,
                timeout=timeout_s,
                isolation_level=None,
                check_same_thread=check_same_thread,
            )
        except sqlite3.Error as exc:
            raise _SCHEMA.error(self._path, exc, "cannot open the prekey database") from None
        try:
            _SCHEMA.check_owner(db, self._path)  # before anything writes to a foreign file
            (mode,) = db.execute("PRAGMA journal_mode=WAL").fetchone()
            if str(mode).lower() != "wal":
                raise StorageError(f"{self._path}: cannot switch the prekey database to WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA secure_delete=ON")
            migrate(db, self._path)
        except sqlite3.Error as exc:
            db.close()
            raise _SCHEMA.error(self._path, exc, "cannot open the prekey database") from None
        except BaseException:
            db.close()
            raise
        self._db = db

    @property
    def path(self) -> str:
        return self._path

    # ------------------------------------------------------------- plumbing

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise StorageError(f"{self._path}: prekey database is closed")
        return self._db

    def _run(self, action: str, body: Callable[[sqlite3.Connection], _T]) -> _T:
        db = self._conn()
        try:
            return body(db)
        except sqlite3.Error as exc:
            raise _SCHEMA.error(self._path, exc, action) from None

    def _write(self, action: str, body: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run ``body`` in one write transaction: all of it is committed or none."""

        def transaction(db: sqlite3.Connection) -> _T:
            db.execute("BEGIN IMMEDIATE")
            try:
                result = body(db)
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        db.execute("ROLLBACK")
                raise
            return result

        return self._run(action, transaction)

    def _rows(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        def body(db: sqlite3.Connection) -> list[tuple[object, ...]]:
            rows: list[tuple[object, ...]] = db.execute(sql, params).fetchall()
            return rows

        return self._run("cannot read the prekey database", body)

    def _exec(self, action: str, sql: str, params: tuple[object, ...]) -> None:
        self._run(action, lambda db: db.execute(sql, params))

    def _corrupt(self, what: str) -> StorageError:
        return StorageError(f"{self._path}: corrupt {what} in the prekey database")

    def _id(self, value: object, what: str) -> int:
        if type(value) is not int or not _is_u32(value):
            raise self._corrupt(what)
        return value

    def _ms(self, value: object, what: str) -> int:
        if type(value) is not int or not 0 <= value <= _MAX_INT64:
            raise self._corrupt(what)
        return value

    def _opt_ms(self, value: object, what: str) -> int | None:
        return None if value is None else self._ms(value, what)

    def _blob(self, value: object, size: int, what: str) -> bytes:
        if not isinstance(value, bytes) or len(value) != size:
            raise self._corrupt(what)
        return value

    # ------------------------------------------------------------- ids

    def allocate_prekey_id(self, kind: PrekeyKind) -> int:
        def body(db: sqlite3.Connection) -> int:
            row = db.execute(
                "SELECT next_id FROM id_counters WHERE kind = ?", (kind.value,)
            ).fetchone()
            if row is None:
                raise self._corrupt("id counter")
            next_id = row[0]
            if type(next_id) is not int or not 1 <= next_id <= _U32_MAX + 1:
                raise self._corrupt("id counter")
            if next_id > _U32_MAX:
                raise StorageError(f"{self._path}: {kind.value} prekey ids exhausted")
            db.execute(
                "UPDATE id_counters SET next_id = ? WHERE kind = ?", (next_id + 1, kind.value)
            )
            return next_id

        return self._write(f"cannot allocate a {kind.value} prekey id", body)

    # ------------------------------------------------------------- signed

    def _signed(self, row: tuple[object, ...]) -> SignedPrekeyRecord:
        what = "signed prekey"
        prekey_id, private_key, signature, created, retired = row
        return SignedPrekeyRecord(
            self._id(prekey_id, what),
            self._blob(private_key, X25519_KEY_SIZE, what),
            self._blob(signature, ED25519_SIGNATURE_SIZE, what),
            self._ms(created, what),
            self._opt_ms(retired, what),
        )

    def put_signed_prekey(self, record: SignedPrekeyRecord) -> None:
        _check_id(record.prekey_id)
        _check_blob("private key", record.private_key, X25519_KEY_SIZE)
        _check_blob("signature", record.signature, ED25519_SIGNATURE_SIZE)
        _check_ms("created_ms", record.created_ms)
        _check_ms("retired_ms", record.retired_ms)
        self._exec(
            "cannot store a signed prekey",
            "INSERT OR REPLACE INTO signed_prekeys"
            " (id, private_key, signature, created_ms, retired_ms) VALUES (?, ?, ?, ?, ?)",
            (
                record.prekey_id,
                record.private_key,
                record.signature,
                record.created_ms,
                record.retired_ms,
            ),
        )

    def get_signed_prekey(self, prekey_id: int) -> SignedPrekeyRecord | None:
        if not _is_u32(prekey_id):
            return None
        rows = self._rows(
            "SELECT id, private_key, signature, created_ms, retired_ms"
            " FROM signed_prekeys WHERE id = ?",
            (prekey_id,),
        )
        return self._signed(rows[0]) if rows else None

    def signed_prekeys(self) -> list[SignedPrekeyRecord]:
        rows = self._rows(
            "SELECT id, private_key, signature, created_ms, retired_ms"
            " FROM signed_prekeys ORDER BY id"
        )
        return [self._signed(row) for row in rows]

    def delete_signed_prekey(self, prekey_id: int) -> None:
        """Delete it and the replay-set entries tied to it, in one transaction."""
        if not _is_u32(prekey_id):
            return

        def body(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM signed_prekeys WHERE id = ?", (prekey_id,))
            db.execute("DELETE FROM initial_messages WHERE signed_prekey_id = ?", (prekey_id,))

        self._write("cannot delete a signed prekey", body)

    # ------------------------------------------------------------- KEM

    def _kem(self, row: tuple[object, ...]) -> KemPrekeyRecord:
        what = "KEM prekey"
        prekey_id, seed, last_resort, signature, created, retired, handed_out = row
        if last_resort not in (0, 1) or type(last_resort) is not int:
            raise self._corrupt(what)
        return KemPrekeyRecord(
            self._id(prekey_id, what),
            self._blob(seed, MLKEM1024_SEED_SIZE, what),
            last_resort == 1,
            self._blob(signature, ED25519_SIGNATURE_SIZE, what),
            self._ms(created, what),
            self._opt_ms(retired, what),
            self._opt_ms(handed_out, what),
        )

    def put_kem_prekey(self, record: KemPrekeyRecord) -> None:
        _check_id(record.prekey_id)
        _check_blob("seed", record.seed, MLKEM1024_SEED_SIZE)
        _check_blob("signature", record.signature, ED25519_SIGNATURE_SIZE)
        _check_ms("created_ms", record.created_ms)
        _check_ms("retired_ms", record.retired_ms)
        _check_ms("handed_out_ms", record.handed_out_ms)
        self._exec(
            "cannot store a KEM prekey",
            "INSERT OR REPLACE INTO kem_prekeys"
            " (id, seed, last_resort, signature, created_ms, retired_ms, handed_out_ms)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                record.prekey_id,
                record.seed,
                1 if record.last_resort else 0,
                record.signature,
                record.created_ms,
                record.retired_ms,
                record.handed_out_ms,
            ),
        )

    def get_kem_prekey(self, prekey_id: int) -> KemPrekeyRecord | None:
        if not _is_u32(prekey_id):
            return None
        rows = self._rows(
            "SELECT id, seed, last_resort, signature, created_ms, retired_ms, handed_out_ms"
            " FROM kem_prekeys WHERE id = ?",
            (prekey_id,),
        )
        return self._kem(rows[0]) if rows else None

    def kem_prekeys(self) -> list[KemPrekeyRecord]:
        rows = self._rows(
            "SELECT id, seed, last_resort, signature, created_ms, retired_ms, handed_out_ms"
            " FROM kem_prekeys ORDER BY id"
        )
        return [self._kem(row) for row in rows]

    def delete_kem_prekey(self, prekey_id: int) -> None:
        if _is_u32(prekey_id):
            self._exec(
                "cannot delete a KEM prekey", "DELETE FROM kem_prekeys WHERE id = ?", (prekey_id,)
            )

    # ------------------------------------------------------------- one-time

    def _one_time(self, row: tuple[object, ...]) -> OneTimePrekeyRecord:
        what = "one-time prekey"
        prekey_id, private_key, created, handed_out = row
        return OneTimePrekeyRecord(
            self._id(prekey_id, what),
            self._blob(private_key, X25519_KEY_SIZE, what),
            self._ms(created, what),
            self._opt_ms(handed_out, what),
        )

    def put_one_time_prekey(self, record: OneTimePrekeyRecord) -> None:
        _check_id(record.prekey_id)
        _check_blob("private key", record.private_key, X25519_KEY_SIZE)
        _check_ms("created_ms", record.created_ms)
        _check_ms("handed_out_ms", record.handed_out_ms)
        self._exec(
            "cannot store a one-time prekey",
            "INSERT OR REPLACE INTO one_time_prekeys"
            " (id, private_key, created_ms, handed_out_ms) VALUES (?, ?, ?, ?)",
            (record.prekey_id, record.private_key, record.created_ms, record.handed_out_ms),
        )

    def get_one_time_prekey(self, prekey_id: int) -> OneTimePrekeyRecord | None:
        if not _is_u32(prekey_id):
            return None
        rows = self._rows(
            "SELECT id, private_key, created_ms, handed_out_ms FROM one_time_prekeys WHERE id = ?",
            (prekey_id,),
        )
        return self._one_time(rows[0]) if rows else None

    def one_time_prekeys(self) -> list[OneTimePrekeyRecord]:
        rows = self._rows(
            "SELECT id, private_key, created_ms, handed_out_ms FROM one_time_prekeys ORDER BY id"
        )
        return [self._one_time(row) for row in rows]

    def delete_one_time_prekey(self, prekey_id: int) -> None:
        if _is_u32(prekey_id):
            self._exec(
                "cannot delete a one-time prekey",
                "DELETE FROM one_time_prekeys WHERE id = ?",
                (prekey_id,),
            )

    # ------------------------------------------------------------- replay set

    def has_initial_message(self, digest: bytes) -> bool:
        rows = self._rows("SELECT 1 FROM initial_messages WHERE digest = ?", (bytes(digest),))
        return bool(rows)

    def initial_message_count(self, signed_prekey_id: int) -> int:
        if not _is_u32(signed_prekey_id):
            return 0
        rows = self._rows(
            "SELECT COUNT(*) FROM initial_messages WHERE signed_prekey_id = ?",
            (signed_prekey_id,),
        )
        return self._ms(rows[0][0], "replay set")

    def commit_initial_message(
        self,
        *,
        signed_prekey_id: int,
        one_time_prekey_id: int | None,
        one_time_kem_prekey_id: int | None,
        replay_digest: bytes | None,
    ) -> bool:
        """Atomically: if the signed prekey and the named one-time prekeys all
        still exist and ``replay_digest`` is not yet in the replay set, delete
        the one-time prekeys, add the digest (tied to the signed prekey) and
        return True. Otherwise change nothing and return False."""
        ids = (signed_prekey_id, one_time_prekey_id, one_time_kem_prekey_id)
        if not all(i is None or _is_u32(i) for i in ids):
            return False
        digest = None if replay_digest is None else bytes(replay_digest)

        def body(db: sqlite3.Connection) -> bool:
            def exists(sql: str, params: tuple[object, ...]) -> bool:
                return db.execute(sql, params).fetchone() is not None

            if not exists("SELECT 1 FROM signed_prekeys WHERE id = ?", (signed_prekey_id,)):
                return False
            if one_time_prekey_id is not None and not exists(
                "SELECT 1 FROM one_time_prekeys WHERE id = ?", (one_time_prekey_id,)
            ):
                return False
            if one_time_kem_prekey_id is not None and not exists(
                "SELECT 1 FROM kem_prekeys WHERE id = ? AND last_resort = 0",
                (one_time_kem_prekey_id,),
            ):
                return False
            if digest is not None and exists(
                "SELECT 1 FROM initial_messages WHERE digest = ?", (digest,)
            ):
                return False
            if one_time_prekey_id is not None:
                db.execute("DELETE FROM one_time_prekeys WHERE id = ?", (one_time_prekey_id,))
            if one_time_kem_prekey_id is not None:
                db.execute("DELETE FROM kem_prekeys WHERE id = ?", (one_time_kem_prekey_id,))
            if digest is not None:
                db.execute(
                    "INSERT INTO initial_messages (digest, signed_prekey_id) VALUES (?, ?)",
                    (digest, signed_prekey_id),
                )
            return True

        return self._write("cannot commit an initial message", body)

    # ------------------------------------------------------------- lifetime

    def close(self) -> None:
        """Close the connection; later calls raise StorageError. Idempotent."""
        db, self._db = self._db, None
        if db is not None:
            try:
                db.close()
            except sqlite3.Error as exc:
                raise _SCHEMA.error(self._path, exc, "cannot close the prekey database") from None

    def __enter__(self) -> SqlitePrekeyStorage:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
