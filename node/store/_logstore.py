"""The node's logstore: conversation states, message history, receipts, outbox.

The rule this store exists for: a conversation's new state is committed
before the ciphertext it produced leaves the node. :meth:`LogStore.commit_outgoing`
writes, in one transaction, the new session version, the message, its
'sent' receipt and the outbox row holding the ciphertext; only after it
returns does the node send. A crash before the commit loses a message that
was never sent and never acknowledged to the user; a crash after it leaves
the ciphertext in the outbox, to be retried on restart. Either way no
message key is used twice and no acknowledged message is lost.

Why sqlite3 in worker threads and not aiosqlite: aiosqlite runs sqlite3 in
its own thread and hands results back through asyncio futures, so it needs
a running asyncio event loop, and the node runs on trio. Instead one
connection (``check_same_thread=False``) is driven through
``trio.to_thread.run_sync``, and a :class:`trio.Lock` makes sure only one
call uses it at a time. A call that is cancelled still runs to the end in its
thread (trio does not abandon it), so a transaction is either committed or
rolled back, never left half done.

WAL mode with ``synchronous=FULL``: a transaction that returned survives a
process kill and power loss. Every SQLite failure surfaces as a one-line
:class:`~chhaya.StorageError`, never as a raw ``sqlite3`` exception.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal, TypeVar

import trio

from chhaya import StorageError

from ._schema import configure, migrate, not_a_logstore

__all__ = [
    "RETRY_INITIAL_MS",
    "RETRY_MAX_MS",
    "Direction",
    "HistoryEntry",
    "LogStore",
    "OutboxEntry",
    "Status",
    "retry_delay_ms",
]

Direction = Literal["out", "in"]
Status = Literal["sent", "delivered", "read"]

#: First retry delay after a send; each further attempt doubles it.
RETRY_INITIAL_MS = 1_000
#: The longest retry delay.
RETRY_MAX_MS = 5 * 60_000

_T = TypeVar("_T")
_RANK: dict[str, int] = {"sent": 0, "delivered": 1, "read": 2}
_MAX_INT64 = 2**63 - 1
_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6
_SQLITE_CORRUPT = 11
_SQLITE_FULL = 13
_SQLITE_CANTOPEN = 14
_SQLITE_NOTADB = 26


def retry_delay_ms(attempts: int) -> int:
    """Backoff before the next send after ``attempts`` sends: 1 s, 2 s, 4 s ... 5 min."""
    if attempts <= 1:
        return RETRY_INITIAL_MS
    return min(RETRY_MAX_MS, RETRY_INITIAL_MS << min(attempts - 1, 32))


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """A ciphertext that still waits for its delivery receipt."""

    message_id: bytes
    peer: str
    envelope: bytes
    attempts: int
    next_attempt_ms: int


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One stored message and its receipts, lowest status first."""

    message_id: bytes
    peer: str
    direction: Direction
    body: bytes
    sent_ms: int
    created_ms: int
    receipts: tuple[tuple[Status, int], ...]

    @property
    def status(self) -> Status | None:
        """The furthest status reached: 'sent' < 'delivered' < 'read'."""
        return self.receipts[-1][0] if self.receipts else None


def _error(path: str, exc: sqlite3.Error, action: str) -> StorageError:
    """A one-line StorageError for a failed SQLite call."""
    code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
    if code in (_SQLITE_BUSY, _SQLITE_LOCKED):
        return StorageError(f"{path}: database is locked by another process")
    if code in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
        return not_a_logstore(path)
    if code == _SQLITE_FULL:
        return StorageError(f"{path}: {action}: disk full")
    if code == _SQLITE_CANTOPEN:
        return StorageError(f"{path}: cannot open the database file")
    detail = " ".join(str(exc).split())
    return StorageError(f"{path}: {action}: {detail}")


def _check_int(name: str, value: int) -> None:
    if not 0 <= value <= _MAX_INT64:
        raise ValueError(f"{name} out of range: {value}")


def _check_key(peer: str, message_id: bytes | None = None) -> None:
    if not peer:
        raise ValueError("peer must not be empty")
    if message_id is not None and not message_id:
        raise ValueError("message_id must not be empty")


def _connect(path: str, busy_timeout_s: float) -> sqlite3.Connection:
    if not os.path.exists(path):
        # Ratchet states are secrets: the file (and SQLite's -wal and -shm
        # files, which copy its mode) is for this user only.
        with contextlib.suppress(OSError):
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    try:
        db = sqlite3.connect(
            path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
        )
    except sqlite3.Error as exc:
        raise _error(path, exc, "cannot open the database") from None
    try:
        configure(db, path)
        migrate(db, path)
    except sqlite3.Error as exc:
        db.close()
        raise _error(path, exc, "cannot open the database") from None
    except BaseException:
        db.close()
        raise
    return db


def _transaction(db: sqlite3.Connection, body: Callable[[sqlite3.Connection], _T]) -> _T:
    """Run ``body`` in one write transaction: all of it is committed or none."""
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


def _append_session(db: sqlite3.Connection, peer: str, state: bytes, now_ms: int) -> int:
    (latest,) = db.execute("SELECT MAX(version) FROM sessions WHERE peer = ?", (peer,)).fetchone()
    version = 1 if latest is None else int(latest) + 1
    db.execute(
        "INSERT INTO sessions (peer, version, state, created_ms) VALUES (?, ?, ?, ?)",
        (peer, version, state, now_ms),
    )
    return version


def _insert_incoming(
    db: sqlite3.Connection,
    peer: str,
    new_state: bytes,
    message_id: bytes,
    body: bytes,
    sent_ms: int,
    now_ms: int,
) -> bool:
    """Store a received message with its state; False (nothing written) for a duplicate."""
    if db.execute("SELECT 1 FROM messages WHERE id = ?", (message_id,)).fetchone():
        return False
    version = _append_session(db, peer, new_state, now_ms)
    db.execute(
        "INSERT INTO messages"
        " (id, peer, direction, body, sent_ms, created_ms, session_version)"
        " VALUES (?, ?, 'in', ?, ?, ?, ?)",
        (message_id, peer, body, sent_ms, now_ms, version),
    )
    return True


def _insert_receipt(
    db: sqlite3.Connection, message_id: bytes, status: Status, now_ms: int, peer: str | None
) -> bool:
    """Record one receipt; True if it is new. See :meth:`LogStore.mark_delivered`."""
    row = db.execute("SELECT peer, direction FROM messages WHERE id = ?", (message_id,)).fetchone()
    if row is None or (peer is not None and row[0] != peer):
        return False
    if status == "delivered" and row[1] != "out":
        return False
    cursor = db.execute(
        "INSERT OR IGNORE INTO receipts (message_id, status, at_ms) VALUES (?, ?, ?)",
        (message_id, status, now_ms),
    )
    if row[1] == "out":  # delivered or read: stop retrying
        db.execute("DELETE FROM outbox WHERE message_id = ?", (message_id,))
    return cursor.rowcount == 1


class LogStore:
    """One node's SQLite logstore, safe to share between trio tasks.

    Open with ``await LogStore.open(path)`` (or ``async with await
    LogStore.open(path) as store``). Sending a message::

        message_id, envelope = conversation.send_text(text, now, rng)
        await store.commit_outgoing(peer, conversation.encode(), message_id,
                                    text, envelope, now)
        await send(envelope)          # only now may the ciphertext leave

    Anything else that advances the ratchet before sending (a receipt, say)
    goes through :meth:`save_session` first.
    """

    def __init__(self, db: sqlite3.Connection, path: str) -> None:
        """Use :meth:`open`."""
        self._db: sqlite3.Connection | None = db
        self._path = path
        self._lock = trio.Lock()

    @classmethod
    async def open(cls, path: Path | str, *, busy_timeout_s: float = 5.0) -> LogStore:
        """Open (creating and migrating if needed) the logstore at ``path``.

        ``busy_timeout_s`` bounds how long any call waits for another
        process's lock before failing with "database is locked".
        """
        path_s = str(path)
        opened: list[sqlite3.Connection] = []

        def connect() -> None:
            opened.append(_connect(path_s, busy_timeout_s))

        try:
            await trio.to_thread.run_sync(connect)
        except BaseException:
            for db in opened:  # cancelled after the thread finished
                db.close()
            raise
        return cls(opened[0], path_s)

    @property
    def path(self) -> str:
        return self._path

    async def close(self) -> None:
        """Close the connection; later calls raise StorageError. Idempotent."""
        async with self._lock:
            db, self._db = self._db, None
            if db is not None:
                await trio.to_thread.run_sync(db.close)

    async def __aenter__(self) -> LogStore:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # ------------------------------------------------------------- plumbing

    async def _run(self, action: str, body: Callable[[sqlite3.Connection], _T]) -> _T:
        async with self._lock:
            db = self._db
            if db is None:
                raise StorageError(f"{self._path}: logstore is closed")
            return await trio.to_thread.run_sync(self._guarded, action, body, db)

    def _guarded(
        self, action: str, body: Callable[[sqlite3.Connection], _T], db: sqlite3.Connection
    ) -> _T:
        try:
            return body(db)
        except sqlite3.Error as exc:
            raise _error(self._path, exc, action) from None

    async def _write(self, action: str, body: Callable[[sqlite3.Connection], _T]) -> _T:
        return await self._run(action, lambda db: _transaction(db, body))

    def _corrupt(self, what: str) -> StorageError:
        return StorageError(f"{self._path}: corrupt {what} in the logstore")

    # ------------------------------------------------------------- sessions

    async def load_session(self, peer: str) -> bytes | None:
        """The latest committed conversation state with ``peer``, if any."""

        def body(db: sqlite3.Connection) -> bytes | None:
            row = db.execute(
                "SELECT state FROM sessions WHERE peer = ? ORDER BY version DESC LIMIT 1",
                (peer,),
            ).fetchone()
            if row is None:
                return None
            if not isinstance(row[0], bytes):
                raise self._corrupt("session state")
            return row[0]

        return await self._run("cannot load a session", body)

    async def save_session(self, peer: str, state: bytes, now_ms: int) -> int:
        """Append a new state version for ``peer`` and return its number (1, 2, ...)."""
        _check_key(peer)
        _check_int("now_ms", now_ms)
        return await self._write(
            "cannot save a session", lambda db: _append_session(db, peer, state, now_ms)
        )

    # ------------------------------------------------------------- messages

    async def commit_outgoing(
        self,
        peer: str,
        new_state: bytes,
        message_id: bytes,
        body: bytes,
        envelope: bytes,
        now_ms: int,
        *,
        next_attempt_ms: int | None = None,
    ) -> None:
        """Commit a message about to be sent, in one transaction.

        Appends the new session version, the message, its 'sent' receipt and
        the outbox row that keeps ``envelope`` until a delivery receipt.
        Call it before the envelope leaves the node. The first retry is due
        at ``next_attempt_ms`` (default: ``now_ms + RETRY_INITIAL_MS``).
        A message id that is already stored fails with StorageError, and
        then nothing at all is written.
        """
        _check_key(peer, message_id)
        _check_int("now_ms", now_ms)
        due = now_ms + RETRY_INITIAL_MS if next_attempt_ms is None else next_attempt_ms
        _check_int("next_attempt_ms", due)

        def write(db: sqlite3.Connection) -> None:
            version = _append_session(db, peer, new_state, now_ms)
            db.execute(
                "INSERT INTO messages"
                " (id, peer, direction, body, sent_ms, created_ms, session_version)"
                " VALUES (?, ?, 'out', ?, ?, ?, ?)",
                (message_id, peer, body, now_ms, now_ms, version),
            )
            db.execute(
                "INSERT INTO receipts (message_id, status, at_ms) VALUES (?, 'sent', ?)",
                (message_id, now_ms),
            )
            db.execute(
                "INSERT INTO outbox (message_id, peer, envelope, attempts, next_attempt_ms)"
                " VALUES (?, ?, ?, 1, ?)",
                (message_id, peer, envelope, due),
            )

        await self._write(f"cannot commit outgoing message {message_id.hex()}", write)

    async def commit_incoming(
        self,
        peer: str,
        new_state: bytes,
        message_id: bytes,
        body: bytes,
        sent_ms: int,
        now_ms: int,
    ) -> bool:
        """Commit a received message and the state that decrypted it.

        Returns False, and writes nothing, if ``message_id`` is already
        stored: a duplicate (a retry whose receipt got lost) is shown once.
        Its state is then not saved; the next commit saves a later one.
        """
        _check_key(peer, message_id)
        _check_int("sent_ms", sent_ms)
        _check_int("now_ms", now_ms)

        def write(db: sqlite3.Connection) -> bool:
            return _insert_incoming(db, peer, new_state, message_id, body, sent_ms, now_ms)

        return await self._write(f"cannot commit incoming message {message_id.hex()}", write)

    async def commit_incoming_and_reply(
        self,
        peer: str,
        new_state: bytes,
        message_id: bytes,
        body: bytes,
        sent_ms: int,
        now_ms: int,
        reply_state: bytes,
    ) -> bool:
        """:meth:`commit_incoming` and :meth:`save_session` of ``reply_state``, in one transaction.

        For a message that is answered at once (a delivery receipt): the state
        that decrypted it is stored with it, and ``reply_state``, the state
        after the reply was encrypted, as the next version, so the reply may
        leave once this returns. One transaction means one fsync instead of two.
        For a duplicate only ``reply_state`` is stored, and False is returned.
        """
        _check_key(peer, message_id)
        _check_int("sent_ms", sent_ms)
        _check_int("now_ms", now_ms)

        def write(db: sqlite3.Connection) -> bool:
            new = _insert_incoming(db, peer, new_state, message_id, body, sent_ms, now_ms)
            _append_session(db, peer, reply_state, now_ms)
            return new

        return await self._write(f"cannot commit incoming message {message_id.hex()}", write)

    async def commit_incoming_batch(
        self,
        peer: str,
        messages: Sequence[tuple[bytes, bytes, bytes, int]],
        now_ms: int,
        reply_state: bytes,
    ) -> list[bool]:
        """Several :meth:`commit_incoming` and the reply state, in one transaction.

        ``messages`` are ``(state that decrypted it, message id, body,
        sent_ms)`` in the order they were decrypted; each new message is
        stored with its own state version, a duplicate adds nothing. Then
        ``reply_state`` (after the receipts for all of them were encrypted)
        is the next version. Returns, per message, whether it was new. One
        fsync for the whole batch.
        """
        _check_int("now_ms", now_ms)
        for _, message_id, _, sent_ms in messages:
            _check_key(peer, message_id)
            _check_int("sent_ms", sent_ms)

        def write(db: sqlite3.Connection) -> list[bool]:
            new = [
                _insert_incoming(db, peer, state, message_id, body, sent_ms, now_ms)
                for state, message_id, body, sent_ms in messages
            ]
            _append_session(db, peer, reply_state, now_ms)
            return new

        return await self._write(f"cannot commit {len(messages)} incoming messages", write)

    async def has_message(self, message_id: bytes) -> bool:
        def body(db: sqlite3.Connection) -> bool:
            row = db.execute("SELECT 1 FROM messages WHERE id = ?", (message_id,)).fetchone()
            return row is not None

        return await self._run("cannot read messages", body)

    # ------------------------------------------------------------- receipts

    async def _receipt(
        self, message_id: bytes, status: Status, now_ms: int, peer: str | None
    ) -> bool:
        _check_int("now_ms", now_ms)

        def write(db: sqlite3.Connection) -> bool:
            return _insert_receipt(db, message_id, status, now_ms, peer)

        return await self._write(f"cannot record a '{status}' receipt", write)

    async def mark_delivered(
        self, message_id: bytes, now_ms: int, *, peer: str | None = None
    ) -> bool:
        """Record that the peer got an outgoing message, and drop it from the outbox.

        Returns True if the receipt is new. An unknown id, an incoming
        message, or (when ``peer`` is given) another peer's message is
        ignored and returns False.
        """
        return await self._receipt(message_id, "delivered", now_ms, peer)

    async def mark_read(self, message_id: bytes, now_ms: int, *, peer: str | None = None) -> bool:
        """Record that a message was read: by the peer (outgoing) or by us (incoming).

        Reading implies delivery, so an outgoing message also leaves the outbox.
        Returns True if the receipt is new; unknown ids return False.
        """
        return await self._receipt(message_id, "read", now_ms, peer)

    async def commit_receipts(
        self,
        peer: str,
        new_state: bytes,
        message_ids: Sequence[bytes],
        status: Literal["delivered", "read"],
        now_ms: int,
    ) -> int:
        """Record the peer's receipts and the state that decrypted them, in one transaction.

        Each id is handled as by :meth:`mark_delivered` or :meth:`mark_read`
        with ``peer=peer``; then ``new_state`` is appended as by
        :meth:`save_session`. Returns how many receipts were new.
        """
        _check_key(peer)
        _check_int("now_ms", now_ms)
        if status not in ("delivered", "read"):
            raise ValueError(f"not a receipt status: {status!r}")

        def write(db: sqlite3.Connection) -> int:
            new = sum(_insert_receipt(db, mid, status, now_ms, peer) for mid in message_ids)
            _append_session(db, peer, new_state, now_ms)
            return new

        return await self._write(f"cannot record '{status}' receipts", write)

    # ------------------------------------------------------------- outbox

    def _outbox_row(self, row: tuple[object, ...]) -> OutboxEntry:
        message_id, peer, envelope, attempts, due = row
        if not (
            isinstance(message_id, bytes)
            and isinstance(peer, str)
            and isinstance(envelope, bytes)
            and isinstance(attempts, int)
            and isinstance(due, int)
        ):
            raise self._corrupt("outbox row")
        return OutboxEntry(message_id, peer, envelope, attempts, due)

    async def pending_outbox(self, now_ms: int, limit: int = 100) -> list[OutboxEntry]:
        """Outbox entries due at ``now_ms``, the most overdue first."""

        def body(db: sqlite3.Connection) -> list[OutboxEntry]:
            rows = db.execute(
                "SELECT message_id, peer, envelope, attempts, next_attempt_ms FROM outbox"
                " WHERE next_attempt_ms <= ? ORDER BY next_attempt_ms, message_id LIMIT ?",
                (now_ms, limit),
            ).fetchall()
            return [self._outbox_row(row) for row in rows]

        return await self._run("cannot read the outbox", body)

    async def next_due_ms(self) -> int | None:
        """When the earliest outbox entry is due, or None if the outbox is empty."""

        def body(db: sqlite3.Connection) -> int | None:
            (due,) = db.execute("SELECT MIN(next_attempt_ms) FROM outbox").fetchone()
            return None if due is None else int(due)

        return await self._run("cannot read the outbox", body)

    async def reschedule(self, message_id: bytes, next_attempt_ms: int) -> bool:
        """Count one more send attempt and set when the next one is due.

        Returns False if the message is no longer in the outbox (delivered).
        """
        _check_int("next_attempt_ms", next_attempt_ms)

        def write(db: sqlite3.Connection) -> bool:
            cursor = db.execute(
                "UPDATE outbox SET attempts = attempts + 1, next_attempt_ms = ?"
                " WHERE message_id = ?",
                (next_attempt_ms, message_id),
            )
            return cursor.rowcount == 1

        return await self._write("cannot reschedule a message", write)

    async def commit_resend(
        self,
        peer: str,
        new_state: bytes,
        message_id: bytes,
        envelope: bytes,
        now_ms: int,
        next_attempt_ms: int,
    ) -> bool:
        """Commit a retry re-encrypted as a new ratchet message, before sending it.

        Appends the new session version and replaces the outbox envelope in
        one transaction. Returns False, writing nothing, if the message is
        no longer in the outbox for this peer (it was delivered meanwhile).
        """
        _check_key(peer, message_id)
        _check_int("now_ms", now_ms)
        _check_int("next_attempt_ms", next_attempt_ms)

        def write(db: sqlite3.Connection) -> bool:
            row = db.execute(
                "SELECT 1 FROM outbox WHERE message_id = ? AND peer = ?", (message_id, peer)
            ).fetchone()
            if row is None:
                return False
            _append_session(db, peer, new_state, now_ms)
            db.execute(
                "UPDATE outbox SET envelope = ?, attempts = attempts + 1, next_attempt_ms = ?"
                " WHERE message_id = ?",
                (envelope, next_attempt_ms, message_id),
            )
            return True

        return await self._write(f"cannot commit a resend of {message_id.hex()}", write)

    async def get_message_body(self, message_id: bytes) -> bytes | None:
        """The stored text of a message, or None if no such message is stored."""

        def body(db: sqlite3.Connection) -> bytes | None:
            row = db.execute("SELECT body FROM messages WHERE id = ?", (message_id,)).fetchone()
            if row is None:
                return None
            if not isinstance(row[0], bytes):
                raise self._corrupt("message")
            return row[0]

        return await self._run("cannot read a message", body)

    # ------------------------------------------------------------- history

    async def history(self, peer: str, limit: int = 50) -> list[HistoryEntry]:
        """The latest ``limit`` messages with ``peer``, oldest first, with receipts."""

        def body(db: sqlite3.Connection) -> list[HistoryEntry]:
            rows = db.execute(
                "SELECT m.id, m.direction, m.body, m.sent_ms, m.created_ms, r.status, r.at_ms"
                " FROM (SELECT rowid AS rid, * FROM messages WHERE peer = ?"
                "       ORDER BY created_ms DESC, rowid DESC LIMIT ?) AS m"
                " LEFT JOIN receipts AS r ON r.message_id = m.id"
                " ORDER BY m.created_ms, m.rid",
                (peer, limit),
            ).fetchall()
            out: list[HistoryEntry] = []
            receipts: dict[bytes, list[tuple[Status, int]]] = {}
            for message_id, direction, text, sent_ms, created_ms, status, at_ms in rows:
                if not (
                    isinstance(message_id, bytes)
                    and direction in ("out", "in")
                    and isinstance(text, bytes)
                    and isinstance(sent_ms, int)
                    and isinstance(created_ms, int)
                ):
                    raise self._corrupt("message")
                if message_id not in receipts:
                    receipts[message_id] = []
                    out.append(
                        HistoryEntry(message_id, peer, direction, text, sent_ms, created_ms, ())
                    )
                if status is not None:
                    if status not in _RANK or not isinstance(at_ms, int):
                        raise self._corrupt("receipt")
                    receipts[message_id].append((status, at_ms))
            return [
                HistoryEntry(
                    e.message_id,
                    e.peer,
                    e.direction,
                    e.body,
                    e.sent_ms,
                    e.created_ms,
                    tuple(sorted(receipts[e.message_id], key=lambda r: _RANK[r[0]])),
                )
                for e in out
            ]

        return await self._run("cannot read the history", body)
