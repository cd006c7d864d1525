"""SQLite storage for the key directory's own records (``vkd.DirectoryStore``).

    versions(handle TEXT, version INTEGER, epoch INTEGER, value BLOB, opening BLOB,
             vrf_proof BLOB, leaf_index BLOB, PRIMARY KEY (handle, version))  -- WITHOUT ROWID
    epochs(epoch INTEGER PRIMARY KEY, head BLOB, audit BLOB, certificate BLOB NULL)
    pending(seq INTEGER PRIMARY KEY AUTOINCREMENT, handle TEXT, value BLOB)

The semantics are those of :class:`vkd.InMemoryDirectoryStore`: epochs are
committed in order without gaps, each ``commit_epoch`` is one transaction
that stores the epoch's versions, head and audit proof and clears the pending
updates, and a certificate can only be attached to a stored head. Two
differences, both because several processes may share the file: a
(handle, version) that already exists is refused with StorageError instead
of being overwritten, since a published version must never change; and
``commit_epoch`` clears only the pending updates that this connection's last
``pending()`` returned, so an update another process queued meanwhile waits
for the next epoch instead of vanishing.

WAL mode, ``synchronous=FULL``: an epoch that ``commit_epoch`` returned from
survives power loss. ``PRAGMA application_id`` marks the file as a Chhaya
directory database and ``PRAGMA user_version`` holds the schema version,
which :func:`migrate` brings up to date. Every SQLite failure surfaces as a
one-line :class:`~chhaya.StorageError` (locked, not a directory database,
corrupt), never as a raw ``sqlite3`` exception.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from chhaya import StorageError
from vkd import PendingUpdate, VersionRecord

__all__ = ["APPLICATION_ID", "SCHEMA_VERSION", "SqliteDirectoryStore", "migrate"]

#: ``PRAGMA application_id`` of a directory database: "CHYD".
APPLICATION_ID = 0x43485944
#: The schema version :func:`migrate` produces.
SCHEMA_VERSION = 1

#: ``_MIGRATIONS[v]`` takes the schema from version ``v`` to ``v + 1``.
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE versions ("
        " handle TEXT NOT NULL, version INTEGER NOT NULL, epoch INTEGER NOT NULL,"
        " value BLOB NOT NULL, opening BLOB NOT NULL, vrf_proof BLOB NOT NULL,"
        " leaf_index BLOB NOT NULL, PRIMARY KEY (handle, version)) WITHOUT ROWID",
        "CREATE INDEX versions_by_epoch ON versions (epoch)",
        "CREATE TABLE epochs ("
        " epoch INTEGER PRIMARY KEY, head BLOB NOT NULL, audit BLOB NOT NULL, certificate BLOB)",
        "CREATE TABLE pending ("
        " seq INTEGER PRIMARY KEY AUTOINCREMENT, handle TEXT NOT NULL, value BLOB NOT NULL)",
    ),
)
assert len(_MIGRATIONS) == SCHEMA_VERSION

_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6
_SQLITE_CORRUPT = 11
_SQLITE_NOTADB = 26
_MAX_INT64 = 2**63 - 1


def _error(path: str, exc: sqlite3.Error, action: str) -> StorageError:
    """A one-line StorageError for a failed SQLite call."""
    code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
    if code in (_SQLITE_BUSY, _SQLITE_LOCKED):
        return StorageError(
            f"{path}: directory database is locked (is another chhaya process using it?)"
        )
    if code == _SQLITE_NOTADB:
        return StorageError(f"{path}: not a chhaya directory database")
    if code == _SQLITE_CORRUPT:
        return StorageError(f"{path}: directory database is corrupt")
    return StorageError(f"{path}: {action}: {exc}")


def _in_range(n: int) -> bool:
    return 0 <= n <= _MAX_INT64


def migrate(db: sqlite3.Connection, path: str = "directory database") -> None:
    """Bring an empty or older directory database up to :data:`SCHEMA_VERSION`.

    Refuses a database that belongs to something else or that a newer
    version of Chhaya wrote. All steps run in one transaction.
    """
    (app_id,) = db.execute("PRAGMA application_id").fetchone()
    (version,) = db.execute("PRAGMA user_version").fetchone()
    if app_id == 0 and version == 0:
        (tables,) = db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        if tables:
            raise StorageError(f"{path}: not a chhaya directory database")
    elif app_id != APPLICATION_ID:
        raise StorageError(f"{path}: not a chhaya directory database")
    if version == SCHEMA_VERSION:
        return
    if not 0 <= version < SCHEMA_VERSION:
        raise StorageError(
            f"{path}: directory database has schema version {version}; "
            f"this chhaya knows up to {SCHEMA_VERSION}"
        )
    db.execute("BEGIN IMMEDIATE")
    try:
        (version,) = db.execute("PRAGMA user_version").fetchone()  # re-read under the lock
        for step in _MIGRATIONS[version:]:
            for statement in step:
                db.execute(statement)
        db.execute(f"PRAGMA application_id={APPLICATION_ID}")
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


class SqliteDirectoryStore:
    """A :class:`vkd.DirectoryStore` in one SQLite database file.

    ``timeout_s`` is how long a write waits for another process's lock
    before giving up with "directory database is locked".
    """

    def __init__(
        self,
        path: Path | str,
        *,
        timeout_s: float = 5.0,
        check_same_thread: bool = True,
    ) -> None:
        self._path = str(path)
        self._pending_seen: int | None = None
        try:
            self._db = sqlite3.connect(
                self._path,
                timeout=timeout_s,
                isolation_level=None,
                check_same_thread=check_same_thread,
            )
        except sqlite3.Error as exc:
            raise _error(self._path, exc, "cannot open directory database") from None
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            migrate(self._db, self._path)
        except sqlite3.Error as exc:
            self._db.close()
            raise _error(self._path, exc, "cannot open directory database") from None
        except BaseException:
            self._db.close()
            raise

    # ------------------------------------------------------------- helpers

    def _one(self, sql: str, params: tuple[object, ...] = ()) -> tuple[object, ...] | None:
        try:
            row: tuple[object, ...] | None = self._db.execute(sql, params).fetchone()
        except sqlite3.Error as exc:
            raise _error(self._path, exc, "cannot read directory database") from None
        return row

    def _corrupt(self, what: str) -> StorageError:
        return StorageError(f"{self._path}: corrupt {what} in directory database")

    def _blob(self, value: object, what: str) -> bytes:
        if not isinstance(value, bytes):
            raise self._corrupt(what)
        return value

    def _int(self, value: object, what: str) -> int:
        if not isinstance(value, int) or not _in_range(value):
            raise self._corrupt(what)
        return value

    def _max(self, sql: str, params: tuple[object, ...] = ()) -> int | None:
        row = self._one(sql, params)
        if row is None or row[0] is None:
            return None
        return self._int(row[0], "epoch or version number")

    # ------------------------------------------------------------- versions

    def latest_version(self, handle: str) -> int:
        latest = self._max("SELECT MAX(version) FROM versions WHERE handle = ?", (handle,))
        return 0 if latest is None else latest

    def _record(self, row: tuple[object, ...]) -> VersionRecord:
        handle, version, epoch, value, opening, vrf_proof, index = row
        if not isinstance(handle, str):
            raise self._corrupt("version record")
        return VersionRecord(
            handle,
            self._int(version, "version record"),
            self._int(epoch, "version record"),
            self._blob(value, "version record"),
            self._blob(opening, "version record"),
            self._blob(vrf_proof, "version record"),
            self._blob(index, "version record"),
        )

    def get_version(self, handle: str, version: int) -> VersionRecord | None:
        if not _in_range(version):
            return None
        row = self._one(
            "SELECT handle, version, epoch, value, opening, vrf_proof, leaf_index"
            " FROM versions WHERE handle = ? AND version = ?",
            (handle, version),
        )
        return None if row is None else self._record(row)

    def records_in_epoch(self, epoch: int) -> list[VersionRecord]:
        """The versions published in ``epoch`` (not part of the protocol: for recovery)."""
        if not _in_range(epoch):
            return []
        try:
            rows = self._db.execute(
                "SELECT handle, version, epoch, value, opening, vrf_proof, leaf_index"
                " FROM versions WHERE epoch = ? ORDER BY handle, version",
                (epoch,),
            ).fetchall()
        except sqlite3.Error as exc:
            raise _error(self._path, exc, "cannot read directory database") from None
        return [self._record(row) for row in rows]

    # ------------------------------------------------------------- pending

    def add_pending(self, update: PendingUpdate) -> None:
        try:
            self._db.execute(
                "INSERT INTO pending (handle, value) VALUES (?, ?)", (update.handle, update.value)
            )
        except sqlite3.Error as exc:
            raise _error(self._path, exc, "cannot queue an update") from None

    def pending(self) -> list[PendingUpdate]:
        try:
            rows = self._db.execute(
                "SELECT seq, handle, value FROM pending ORDER BY seq"
            ).fetchall()
        except sqlite3.Error as exc:
            raise _error(self._path, exc, "cannot read directory database") from None
        out = []
        seen = 0
        for seq, handle, value in rows:
            if not isinstance(handle, str):
                raise self._corrupt("pending update")
            seen = max(seen, self._int(seq, "pending update"))
            out.append(PendingUpdate(handle, self._blob(value, "pending update")))
        self._pending_seen = seen
        return out

    # ------------------------------------------------------------- epochs

    def commit_epoch(
        self, epoch: int, records: Sequence[VersionRecord], head: bytes, audit: bytes
    ) -> None:
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._commit_locked(epoch, records, head, audit)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        except sqlite3.IntegrityError as exc:
            raise StorageError(
                f"{self._path}: cannot commit epoch {epoch}: a published version would change"
                f" ({exc})"
            ) from None
        except sqlite3.Error as exc:
            raise _error(self._path, exc, f"cannot commit epoch {epoch}") from None

    def _commit_locked(
        self, epoch: int, records: Sequence[VersionRecord], head: bytes, audit: bytes
    ) -> None:
        latest = self._max("SELECT MAX(epoch) FROM epochs")
        expected = 0 if latest is None else latest + 1
        if epoch != expected:
            raise StorageError(f"epoch {epoch} out of order (expected {expected})")
        self._db.executemany(
            "INSERT INTO versions"
            " (handle, version, epoch, value, opening, vrf_proof, leaf_index)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                (r.handle, r.version, r.epoch, r.value, r.opening, r.vrf_proof, r.index)
                for r in records
            ),
        )
        self._db.execute(
            "INSERT INTO epochs (epoch, head, audit) VALUES (?, ?, ?)", (epoch, head, audit)
        )
        if self._pending_seen is None:
            self._db.execute("DELETE FROM pending")
        else:  # keep what another process queued after we read the queue
            self._db.execute("DELETE FROM pending WHERE seq <= ?", (self._pending_seen,))
        self._pending_seen = None

    def get_head(self, epoch: int) -> bytes | None:
        if not _in_range(epoch):
            return None
        row = self._one("SELECT head FROM epochs WHERE epoch = ?", (epoch,))
        return None if row is None else self._blob(row[0], "epoch head")

    def get_audit(self, epoch: int) -> bytes | None:
        if not _in_range(epoch):
            return None
        row = self._one("SELECT audit FROM epochs WHERE epoch = ?", (epoch,))
        return None if row is None else self._blob(row[0], "audit proof")

    def latest_epoch(self) -> int | None:
        return self._max("SELECT MAX(epoch) FROM epochs")

    def put_certificate(self, epoch: int, certificate: bytes) -> None:
        if not _in_range(epoch):
            raise StorageError(f"no head for epoch {epoch}")
        try:
            cursor = self._db.execute(
                "UPDATE epochs SET certificate = ? WHERE epoch = ?", (certificate, epoch)
            )
        except sqlite3.Error as exc:
            raise _error(self._path, exc, f"cannot certify epoch {epoch}") from None
        if cursor.rowcount != 1:
            raise StorageError(f"no head for epoch {epoch}")

    def get_certificate(self, epoch: int) -> bytes | None:
        if not _in_range(epoch):
            return None
        row = self._one("SELECT certificate FROM epochs WHERE epoch = ?", (epoch,))
        if row is None or row[0] is None:
            return None
        return self._blob(row[0], "certificate")

    def latest_certified_epoch(self) -> int | None:
        return self._max("SELECT MAX(epoch) FROM epochs WHERE certificate IS NOT NULL")

    # ------------------------------------------------------------- lifetime

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> SqliteDirectoryStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
