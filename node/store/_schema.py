"""The logstore's schema: versioned migrations and connection settings.

``MIGRATIONS[v]`` is the SQL script that takes the schema from version ``v``
to ``v + 1``; :func:`migrate` runs every missing step and the bump of
``PRAGMA user_version`` in one transaction, so a crash mid-migration leaves
the previous version intact. ``PRAGMA application_id`` marks the file as a
Chhaya node logstore, so that a database belonging to something else is
refused instead of being written into.

Tables (``sessions``, ``messages`` and ``receipts`` are append-only: triggers
abort any UPDATE or DELETE, so a committed ratchet state, message or receipt
can never be rewritten, not even by a bug elsewhere in the node)::

    sessions(peer, version, state, created_ms)          -- PK (peer, version)
        every committed conversation state; the current one is the highest
        version, versions of a peer are 1, 2, 3, ... without gaps
    messages(id, peer, direction, body, sent_ms, created_ms, session_version)
        message history; (peer, session_version) references the session
        version committed in the same transaction
    receipts(message_id, status, at_ms)                  -- PK (message_id, status)
        'sent', 'delivered' and 'read' for a stored message
    outbox(message_id, peer, envelope, attempts, next_attempt_ms)  -- mutable
        ciphertexts still waiting for a delivery receipt
    contacts(handle, identity, peer, verified, added_ms, updated_ms)  -- mutable (v2)
        the public identity last verified for a handle (pinned: a different
        key for the handle is refused until the user accepts it); ``peer``
        is the logstore name of that identity; ``verified`` is set once the
        user compared fingerprints; ``devices`` (v3) is set only for a
        contact pinned from a contact card, without the directory: a JSON
        list of its libp2p peer IDs
"""

from __future__ import annotations

import sqlite3

from chhaya import StorageError

__all__ = [
    "APPLICATION_ID",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "configure",
    "migrate",
    "not_a_logstore",
]

#: ``PRAGMA application_id`` of a node logstore: "CHYN".
APPLICATION_ID = 0x4348594E


def _append_only(table: str) -> str:
    return (
        f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table}"
        f" BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END;\n"
        f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table}"
        f" BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END;\n"
    )


_V1 = (
    """
CREATE TABLE sessions (
    peer TEXT NOT NULL,
    version INTEGER NOT NULL CHECK (version >= 1),
    state BLOB NOT NULL,
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (peer, version)
) WITHOUT ROWID;
CREATE TABLE messages (
    id BLOB PRIMARY KEY NOT NULL,
    peer TEXT NOT NULL,
    direction TEXT NOT NULL CHECK (direction IN ('out', 'in')),
    body BLOB NOT NULL,
    sent_ms INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    session_version INTEGER NOT NULL,
    FOREIGN KEY (peer, session_version) REFERENCES sessions (peer, version)
);
CREATE INDEX messages_by_peer ON messages (peer, created_ms);
CREATE TABLE receipts (
    message_id BLOB NOT NULL REFERENCES messages (id),
    status TEXT NOT NULL CHECK (status IN ('sent', 'delivered', 'read')),
    at_ms INTEGER NOT NULL,
    PRIMARY KEY (message_id, status)
) WITHOUT ROWID;
CREATE TABLE outbox (
    message_id BLOB PRIMARY KEY NOT NULL REFERENCES messages (id),
    peer TEXT NOT NULL,
    envelope BLOB NOT NULL,
    attempts INTEGER NOT NULL CHECK (attempts >= 0),
    next_attempt_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX outbox_by_due ON outbox (next_attempt_ms);
"""
    + _append_only("sessions")
    + _append_only("messages")
    + _append_only("receipts")
)

_V2 = """
CREATE TABLE contacts (
    handle TEXT PRIMARY KEY NOT NULL,
    identity BLOB NOT NULL,
    peer TEXT NOT NULL,
    verified INTEGER NOT NULL CHECK (verified IN (0, 1)),
    added_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX contacts_by_peer ON contacts (peer);
"""

_V3 = """
ALTER TABLE contacts ADD COLUMN devices TEXT;
"""

#: ``MIGRATIONS[v]`` takes the schema from version ``v`` to ``v + 1``.
MIGRATIONS: tuple[str, ...] = (_V1, _V2, _V3)
#: The schema version :func:`migrate` produces.
SCHEMA_VERSION = len(MIGRATIONS)


def not_a_logstore(path: str) -> StorageError:
    """The one error for a file that is not a logstore, whatever exactly is wrong."""
    return StorageError(f"{path} is not a chhaya database or is corrupt")


def _statements(script: str) -> list[str]:
    """Split a script into statements (``executescript`` would commit our transaction)."""
    out: list[str] = []
    current = ""
    for piece in script.split(";"):
        current += piece + ";"
        if sqlite3.complete_statement(current):
            if current.strip(" \n\t;"):
                out.append(current.strip())
            current = ""
    if current.strip(" \n\t;"):
        raise ValueError(f"incomplete SQL statement in migration: {current!r}")
    return out


def configure(db: sqlite3.Connection, path: str) -> None:
    """Per-connection settings: WAL, ``synchronous=FULL``, foreign keys on."""
    db.execute("PRAGMA foreign_keys=ON")
    (mode,) = db.execute("PRAGMA journal_mode=WAL").fetchone()
    if str(mode).lower() != "wal":
        raise StorageError(f"{path}: cannot switch the database to WAL mode (got {mode})")
    db.execute("PRAGMA synchronous=FULL")


def migrate(db: sqlite3.Connection, path: str) -> None:
    """Bring an empty or older logstore up to :data:`SCHEMA_VERSION`.

    Refuses a database that belongs to something else or that a newer
    Chhaya wrote. All steps run in one transaction.
    """
    (app_id,) = db.execute("PRAGMA application_id").fetchone()
    (version,) = db.execute("PRAGMA user_version").fetchone()
    if app_id == 0 and version == 0:
        (tables,) = db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        if tables:
            raise not_a_logstore(path)
    elif app_id != APPLICATION_ID:
        raise not_a_logstore(path)
    if version == SCHEMA_VERSION:
        return
    if version > SCHEMA_VERSION:
        raise StorageError(
            f"{path} was written by a newer chhaya (schema version {version};"
            f" this one knows up to {SCHEMA_VERSION})"
        )
    if version < 0:
        raise not_a_logstore(path)
    db.execute("BEGIN IMMEDIATE")
    try:
        (app_id,) = db.execute("PRAGMA application_id").fetchone()  # re-read under the lock
        (version,) = db.execute("PRAGMA user_version").fetchone()
        if app_id not in (0, APPLICATION_ID) or not 0 <= version <= SCHEMA_VERSION:
            raise not_a_logstore(path)
        for script in MIGRATIONS[version:]:
            for statement in _statements(script):
                db.execute(statement)
        db.execute(f"PRAGMA application_id={APPLICATION_ID}")
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
