"""SQLite storage for the sealed envelopes a mailbox peer keeps for offline recipients.

A mailbox peer keeps them in ``DATA_DIR/mailboxes.sqlite``. Schema (version 1)::

    envelopes(seq INTEGER PRIMARY KEY, id BLOB UNIQUE (16), mailbox BLOB (32),
              expires_ms INTEGER, size INTEGER, envelope BLOB)
        indexed by (mailbox, seq) and by expires_ms; ``seq`` is the insertion
        order, so "oldest first" is ``ORDER BY seq``
    mailboxes(mailbox BLOB PRIMARY KEY, count INTEGER, bytes INTEGER)  -- WITHOUT ROWID
    totals(one INTEGER PRIMARY KEY CHECK (one = 0), bytes INTEGER)
        both kept by triggers on ``envelopes``, so the quota checks read one
        row instead of summing a table that may hold 500,000 envelopes

An envelope counts against its mailbox's quota and the total cap until it is
deleted or purged, even once expired: :meth:`MailboxStore.put` purges the
expired envelopes of the mailbox it stores into (and, when the total cap
would be exceeded, every expired envelope) before it checks.

The envelopes are sealed (only the recipient can open them), but which
mailboxes hold how much is metadata, so the file is created 0600 before
SQLite opens it. WAL mode, ``synchronous=FULL``: a stored envelope survives
power loss once :meth:`~MailboxStore.put` returned, which the depositor
relies on when it stops retrying. ``PRAGMA application_id`` ("CHYM") marks
the file and ``PRAGMA user_version`` holds the schema version, which
:func:`migrate` brings up to date. Every SQLite failure, and every stored row
that does not decode, surfaces as a one-line :class:`~chhaya.StorageError`.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Final, TypeVar

from chhaya import StorageError

from .sqlite_schema import SqliteSchema, create_private

__all__ = [
    "APPLICATION_ID",
    "DEFAULT_MAX_BYTES_PER_MAILBOX",
    "DEFAULT_MAX_ENVELOPES_PER_MAILBOX",
    "DEFAULT_MAX_TOTAL_BYTES",
    "DEFAULT_TTL_MS",
    "ENVELOPE_ID_SIZE",
    "MAILBOX_ID_SIZE",
    "SCHEMA_VERSION",
    "MailboxStore",
    "migrate",
]

#: ``PRAGMA application_id`` of a mailbox database: "CHYM".
APPLICATION_ID: Final = 0x4348594D
#: The schema version :func:`migrate` produces.
SCHEMA_VERSION: Final = 1

MAILBOX_ID_SIZE: Final = 32
ENVELOPE_ID_SIZE: Final = 16
DEFAULT_TTL_MS: Final = 7 * 24 * 3600 * 1000
DEFAULT_MAX_ENVELOPES_PER_MAILBOX: Final = 2000
DEFAULT_MAX_BYTES_PER_MAILBOX: Final = 32 << 20
DEFAULT_MAX_TOTAL_BYTES: Final = 512 << 20

_MAX_INT64: Final = 2**63 - 1

#: ``_MIGRATIONS[v]`` takes the schema from version ``v`` to ``v + 1``.
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE envelopes ("
        " seq INTEGER PRIMARY KEY NOT NULL,"
        f" id BLOB NOT NULL UNIQUE CHECK (length(id) = {ENVELOPE_ID_SIZE}),"
        f" mailbox BLOB NOT NULL CHECK (length(mailbox) = {MAILBOX_ID_SIZE}),"
        " expires_ms INTEGER NOT NULL,"
        " size INTEGER NOT NULL CHECK (size = length(envelope)),"
        " envelope BLOB NOT NULL)",
        "CREATE INDEX envelopes_by_mailbox ON envelopes (mailbox, seq)",
        "CREATE INDEX envelopes_by_expiry ON envelopes (expires_ms)",
        "CREATE TABLE mailboxes ("
        " mailbox BLOB PRIMARY KEY NOT NULL,"
        " count INTEGER NOT NULL CHECK (count >= 0),"
        " bytes INTEGER NOT NULL CHECK (bytes >= 0)) WITHOUT ROWID",
        "CREATE TABLE totals ("
        " one INTEGER PRIMARY KEY NOT NULL CHECK (one = 0),"
        " bytes INTEGER NOT NULL CHECK (bytes >= 0))",
        "INSERT INTO totals (one, bytes) VALUES (0, 0)",
        "CREATE TRIGGER envelopes_added AFTER INSERT ON envelopes BEGIN"
        " INSERT INTO mailboxes (mailbox, count, bytes) VALUES (NEW.mailbox, 1, NEW.size)"
        "  ON CONFLICT (mailbox) DO UPDATE SET count = count + 1, bytes = bytes + NEW.size;"
        " UPDATE totals SET bytes = bytes + NEW.size WHERE one = 0;"
        " END",
        "CREATE TRIGGER envelopes_removed AFTER DELETE ON envelopes BEGIN"
        " UPDATE mailboxes SET count = count - 1, bytes = bytes - OLD.size"
        "  WHERE mailbox = OLD.mailbox;"
        " DELETE FROM mailboxes WHERE mailbox = OLD.mailbox AND count = 0;"
        " UPDATE totals SET bytes = bytes - OLD.size WHERE one = 0;"
        " END",
    ),
)
assert len(_MIGRATIONS) == SCHEMA_VERSION

_T = TypeVar("_T")
_SCHEMA = SqliteSchema("mailbox", APPLICATION_ID, _MIGRATIONS)


def migrate(db: sqlite3.Connection, path: str = "mailbox database") -> None:
    """Bring an empty or older mailbox database up to :data:`SCHEMA_VERSION`.

    Refuses a database that belongs to something else or that a newer
    version of Chhaya wrote. All steps run in one transaction.
    """
    _SCHEMA.migrate(db, path)


def _check_mailbox(mailbox_id: bytes) -> None:
    if len(mailbox_id) != MAILBOX_ID_SIZE:
        raise ValueError(f"mailbox id must be {MAILBOX_ID_SIZE} bytes, not {len(mailbox_id)}")


def _check_ms(now_ms: int) -> None:
    if not 0 <= now_ms <= _MAX_INT64:
        raise ValueError(f"time out of range: {now_ms}")


class MailboxStore:
    """Sealed envelopes per mailbox, with a TTL, per-mailbox quotas and a total cap.

    ``rng(n)`` returns ``n`` random bytes; it makes the 16-byte envelope ids.
    Times are milliseconds passed in by the caller. Pass
    ``check_same_thread=False`` to use the store from worker threads (one at
    a time).
    """

    def __init__(
        self,
        path: Path | str,
        *,
        rng: Callable[[int], bytes] = os.urandom,
        ttl_ms: int = DEFAULT_TTL_MS,
        max_envelopes_per_mailbox: int = DEFAULT_MAX_ENVELOPES_PER_MAILBOX,
        max_bytes_per_mailbox: int = DEFAULT_MAX_BYTES_PER_MAILBOX,
        max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES,
        timeout_s: float = 5.0,
        check_same_thread: bool = True,
    ) -> None:
        if ttl_ms < 1 or max_envelopes_per_mailbox < 1:
            raise ValueError("ttl_ms and max_envelopes_per_mailbox must be positive")
        if max_bytes_per_mailbox < 1 or max_total_bytes < 1:
            raise ValueError("byte limits must be positive")
        self._path = str(path)
        self._rng = rng
        self.ttl_ms = ttl_ms
        self.max_envelopes_per_mailbox = max_envelopes_per_mailbox
        self.max_bytes_per_mailbox = max_bytes_per_mailbox
        self.max_total_bytes = max_total_bytes
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
            raise _SCHEMA.error(self._path, exc, "cannot open the mailbox database") from None
        try:
            _SCHEMA.check_owner(db, self._path)  # before anything writes to a foreign file
            (mode,) = db.execute("PRAGMA journal_mode=WAL").fetchone()
            if str(mode).lower() != "wal":
                raise StorageError(f"{self._path}: cannot switch the mailbox database to WAL")
            db.execute("PRAGMA synchronous=FULL")
            migrate(db, self._path)
        except sqlite3.Error as exc:
            db.close()
            raise _SCHEMA.error(self._path, exc, "cannot open the mailbox database") from None
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
            raise StorageError(f"{self._path}: mailbox database is closed")
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

    def _corrupt(self, what: str) -> StorageError:
        return StorageError(f"{self._path}: corrupt {what} in the mailbox database")

    def _int(self, value: object, what: str) -> int:
        if type(value) is not int or not 0 <= value <= _MAX_INT64:
            raise self._corrupt(what)
        return value

    def _usage(self, db: sqlite3.Connection, mailbox_id: bytes) -> tuple[int, int]:
        row = db.execute(
            "SELECT count, bytes FROM mailboxes WHERE mailbox = ?", (mailbox_id,)
        ).fetchone()
        if row is None:
            return 0, 0
        return self._int(row[0], "mailbox count"), self._int(row[1], "mailbox size")

    def _total(self, db: sqlite3.Connection) -> int:
        row = db.execute("SELECT bytes FROM totals WHERE one = 0").fetchone()
        if row is None:
            raise self._corrupt("total")
        return self._int(row[0], "total")

    # ------------------------------------------------------------- API

    def put(self, mailbox_id: bytes, envelope: bytes, now_ms: int) -> bytes | None:
        """Store ``envelope`` until ``now_ms + ttl_ms``; its new 16-byte id, or
        None when the mailbox's quota or the total cap has no room for it."""
        _check_mailbox(mailbox_id)
        _check_ms(now_ms)
        mailbox_id = bytes(mailbox_id)
        envelope = bytes(envelope)
        size = len(envelope)
        if size == 0:
            raise ValueError("an envelope cannot be empty")
        expires_ms = min(now_ms + self.ttl_ms, _MAX_INT64)

        def body(db: sqlite3.Connection) -> bytes | None:
            db.execute(
                "DELETE FROM envelopes WHERE mailbox = ? AND expires_ms <= ?", (mailbox_id, now_ms)
            )
            count, used = self._usage(db, mailbox_id)
            if count + 1 > self.max_envelopes_per_mailbox:
                return None
            if used + size > self.max_bytes_per_mailbox:
                return None
            if self._total(db) + size > self.max_total_bytes:
                db.execute("DELETE FROM envelopes WHERE expires_ms <= ?", (now_ms,))
                if self._total(db) + size > self.max_total_bytes:
                    return None
            envelope_id = bytes(self._rng(ENVELOPE_ID_SIZE))
            if len(envelope_id) != ENVELOPE_ID_SIZE:
                raise ValueError("rng returned the wrong number of bytes")
            db.execute(
                "INSERT INTO envelopes (id, mailbox, expires_ms, size, envelope)"
                " VALUES (?, ?, ?, ?, ?)",
                (envelope_id, mailbox_id, expires_ms, size, envelope),
            )
            return envelope_id

        return self._write("cannot store an envelope", body)

    def fetch(self, mailbox_id: bytes, limit: int, now_ms: int) -> list[tuple[bytes, bytes]]:
        """Up to ``limit`` unexpired ``(id, envelope)`` pairs of a mailbox, oldest first."""
        _check_mailbox(mailbox_id)
        _check_ms(now_ms)
        if limit < 1:
            return []

        def body(db: sqlite3.Connection) -> list[tuple[bytes, bytes]]:
            rows = db.execute(
                "SELECT id, envelope FROM envelopes WHERE mailbox = ? AND expires_ms > ?"
                " ORDER BY seq LIMIT ?",
                (bytes(mailbox_id), now_ms, limit),
            ).fetchall()
            out: list[tuple[bytes, bytes]] = []
            for envelope_id, envelope in rows:
                if not isinstance(envelope_id, bytes) or len(envelope_id) != ENVELOPE_ID_SIZE:
                    raise self._corrupt("envelope id")
                if not isinstance(envelope, bytes):
                    raise self._corrupt("envelope")
                out.append((envelope_id, envelope))
            return out

        return self._run("cannot read the mailbox database", body)

    def delete(self, mailbox_id: bytes, ids: Sequence[bytes]) -> int:
        """Delete the envelopes of ``mailbox_id`` named in ``ids``; how many were deleted.

        Ids of other mailboxes, unknown ids and duplicates are ignored.
        """
        _check_mailbox(mailbox_id)
        wanted = list(dict.fromkeys(bytes(i) for i in ids if len(i) == ENVELOPE_ID_SIZE))
        if not wanted:
            return 0

        def body(db: sqlite3.Connection) -> int:
            deleted = 0
            for envelope_id in wanted:
                cur = db.execute(
                    "DELETE FROM envelopes WHERE id = ? AND mailbox = ?",
                    (envelope_id, bytes(mailbox_id)),
                )
                deleted += cur.rowcount
            return deleted

        return self._write("cannot delete envelopes", body)

    def purge_expired(self, now_ms: int) -> int:
        """Delete every envelope expired by ``now_ms``; how many were deleted."""
        _check_ms(now_ms)
        return self._write(
            "cannot purge expired envelopes",
            lambda db: (
                db.execute("DELETE FROM envelopes WHERE expires_ms <= ?", (now_ms,)).rowcount
            ),
        )

    def counts(self, mailbox_id: bytes) -> tuple[int, int]:
        """``(envelopes, bytes)`` a mailbox holds against its quota (expired ones
        count until they are purged)."""
        _check_mailbox(mailbox_id)
        return self._run(
            "cannot read the mailbox database", lambda db: self._usage(db, bytes(mailbox_id))
        )

    def total_bytes(self) -> int:
        """Envelope bytes held across every mailbox (against ``max_total_bytes``)."""
        return self._run("cannot read the mailbox database", self._total)

    # ------------------------------------------------------------- lifetime

    def close(self) -> None:
        """Close the connection; later calls raise StorageError. Idempotent."""
        db, self._db = self._db, None
        if db is not None:
            try:
                db.close()
            except sqlite3.Error as exc:
                raise _SCHEMA.error(self._path, exc, "cannot close the mailbox database") from None

    def __enter__(self) -> MailboxStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
