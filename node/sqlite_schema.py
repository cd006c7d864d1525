"""What the node's small SQLite stores share: ownership marks, migrations, errors.

A store's file is marked with ``PRAGMA application_id`` (whose database it
is) and ``PRAGMA user_version`` (its schema version). :class:`SqliteSchema`
refuses a file that belongs to something else or to a newer Chhaya before
anything writes to it, runs the missing migration steps in one transaction,
and turns every ``sqlite3`` failure into a one-line
:class:`~chhaya.StorageError` naming the store.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from chhaya import StorageError

__all__ = ["SqliteSchema", "create_private"]

_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6
_SQLITE_CORRUPT = 11
_SQLITE_FULL = 13
_SQLITE_CANTOPEN = 14
_SQLITE_NOTADB = 26


@dataclass(frozen=True, slots=True)
class SqliteSchema:
    """One kind of store: its name ("mailbox"), mark and migration steps.

    ``migrations[v]`` lists the statements that take the schema from
    version ``v`` to ``v + 1``.
    """

    name: str
    application_id: int
    migrations: Sequence[Sequence[str]]

    @property
    def version(self) -> int:
        return len(self.migrations)

    def not_ours(self, path: str) -> StorageError:
        return StorageError(f"{path}: not a chhaya {self.name} database")

    def error(self, path: str, exc: sqlite3.Error, action: str) -> StorageError:
        """A one-line StorageError for a failed SQLite call."""
        code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
        if code in (_SQLITE_BUSY, _SQLITE_LOCKED):
            return StorageError(
                f"{path}: {self.name} database is locked (is another chhaya process using it?)"
            )
        if code == _SQLITE_NOTADB:
            return self.not_ours(path)
        if code == _SQLITE_CORRUPT:
            return StorageError(f"{path}: {self.name} database is corrupt")
        if code == _SQLITE_FULL:
            return StorageError(f"{path}: {action}: disk full")
        if code == _SQLITE_CANTOPEN:
            return StorageError(f"{path}: cannot open the {self.name} database file")
        detail = " ".join(str(exc).split())
        return StorageError(f"{path}: {action}: {detail}")

    def check_owner(self, db: sqlite3.Connection, path: str) -> int:
        """The file's schema version, or StorageError if it belongs to something
        else or to a newer Chhaya. Reads only."""
        (app_id,) = db.execute("PRAGMA application_id").fetchone()
        (version,) = db.execute("PRAGMA user_version").fetchone()
        if app_id == 0 and version == 0:
            (tables,) = db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
            if tables:
                raise self.not_ours(path)
        elif app_id != self.application_id or version < 0:
            raise self.not_ours(path)
        if version > self.version:
            raise StorageError(
                f"{path}: {self.name} database has schema version {version};"
                f" this chhaya knows up to {self.version}"
            )
        return int(version)

    def migrate(self, db: sqlite3.Connection, path: str) -> None:
        """Bring an empty or older database up to date, in one transaction."""
        if self.check_owner(db, path) == self.version:
            return
        db.execute("BEGIN IMMEDIATE")
        try:
            version = self.check_owner(db, path)  # again, under the lock
            for step in self.migrations[version:]:
                for statement in step:
                    db.execute(statement)
            db.execute(f"PRAGMA application_id={self.application_id}")
            db.execute(f"PRAGMA user_version={self.version}")
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
            raise


def create_private(path: str) -> None:
    """Create ``path`` empty and 0600 if it does not exist yet (SQLite gives
    its -wal and -shm files the same mode)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    except OSError as exc:
        raise StorageError(f"{path}: cannot create: {exc.strerror}") from None
    os.close(fd)
