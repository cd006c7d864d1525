"""Contacts and the inbox, on top of the logstore's connection.

A contact pins the public identity a handle had when we first verified its
directory entry (trust on first use, backed by the directory proof). A later
lookup that shows another identity for the handle is a key change: the node
refuses it until the user accepts it with ``contacts add --accept-new-key``.
``verified`` records that the user compared fingerprints out of band.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass

from chhaya import DecodeError
from chhaya.identity import PublicIdentity

from ._logstore import HistoryEntry, LogStore, Status

__all__ = ["Contact", "ContactBook", "InboxEntry", "incoming_after", "message_status"]


@dataclass(frozen=True, slots=True)
class Contact:
    handle: str
    identity: PublicIdentity
    peer: str
    verified: bool
    added_ms: int
    #: Peer IDs (base58) of a contact pinned from a card; None for directory contacts.
    devices: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class InboxEntry:
    """An incoming message and its position in the log (for ``--follow``)."""

    cursor: int
    entry: HistoryEntry


class ContactBook:
    def __init__(self, store: LogStore) -> None:
        self._store = store

    def _row(self, row: tuple[object, ...]) -> Contact:
        handle, identity, peer, verified, added_ms, devices_json = row
        if not (
            isinstance(handle, str)
            and isinstance(identity, bytes)
            and isinstance(peer, str)
            and verified in (0, 1)
            and isinstance(added_ms, int)
        ):
            raise self._store._corrupt("contact")
        try:
            public = PublicIdentity.decode_untrusted(identity)
        except DecodeError:
            raise self._store._corrupt("contact identity") from None
        devices: tuple[str, ...] | None = None
        if devices_json is not None:
            try:
                parsed = json.loads(str(devices_json))
            except ValueError:
                raise self._store._corrupt("contact devices") from None
            if not isinstance(parsed, list) or not all(isinstance(d, str) for d in parsed):
                raise self._store._corrupt("contact devices")
            devices = tuple(parsed)
        return Contact(handle, public, peer, bool(verified), added_ms, devices)

    async def get(self, handle: str) -> Contact | None:
        def body(db: sqlite3.Connection) -> Contact | None:
            row = db.execute(
                "SELECT handle, identity, peer, verified, added_ms, devices"
                " FROM contacts WHERE handle = ?",
                (handle,),
            ).fetchone()
            return None if row is None else self._row(row)

        return await self._store._run("cannot read a contact", body)

    async def by_peer(self, peer: str) -> Contact | None:
        def body(db: sqlite3.Connection) -> Contact | None:
            row = db.execute(
                "SELECT handle, identity, peer, verified, added_ms, devices"
                " FROM contacts WHERE peer = ? ORDER BY updated_ms DESC LIMIT 1",
                (peer,),
            ).fetchone()
            return None if row is None else self._row(row)

        return await self._store._run("cannot read a contact", body)

    async def all(self) -> list[Contact]:
        def body(db: sqlite3.Connection) -> list[Contact]:
            rows = db.execute(
                "SELECT handle, identity, peer, verified, added_ms, devices"
                " FROM contacts ORDER BY handle"
            ).fetchall()
            return [self._row(r) for r in rows]

        return await self._store._run("cannot list contacts", body)

    async def put(
        self,
        handle: str,
        identity: PublicIdentity,
        peer: str,
        verified: bool,
        now_ms: int,
        devices: tuple[str, ...] | None = None,
    ) -> None:
        """Add or replace the contact for ``handle`` (``devices``: pinned from a card)."""
        devices_json = None if devices is None else json.dumps(list(devices))

        def body(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT INTO contacts"
                " (handle, identity, peer, verified, added_ms, updated_ms, devices)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (handle) DO UPDATE SET identity = excluded.identity,"
                " peer = excluded.peer, verified = excluded.verified,"
                " updated_ms = excluded.updated_ms, devices = excluded.devices",
                (handle, identity.encode(), peer, int(verified), now_ms, now_ms, devices_json),
            )

        await self._store._write("cannot save a contact", body)


async def incoming_after(store: LogStore, cursor: int, limit: int = 100) -> list[InboxEntry]:
    """Incoming messages logged after ``cursor`` (0 for all), oldest first."""

    def body(db: sqlite3.Connection) -> list[InboxEntry]:
        rows = db.execute(
            "SELECT rowid, id, peer, body, sent_ms, created_ms FROM messages"
            " WHERE direction = 'in' AND rowid > ? ORDER BY rowid LIMIT ?",
            (cursor, limit),
        ).fetchall()
        out = []
        for rowid, message_id, peer, text, sent_ms, created_ms in rows:
            if not (
                isinstance(rowid, int)
                and isinstance(message_id, bytes)
                and isinstance(peer, str)
                and isinstance(text, bytes)
                and isinstance(sent_ms, int)
                and isinstance(created_ms, int)
            ):
                raise store._corrupt("message")
            entry = HistoryEntry(message_id, peer, "in", text, sent_ms, created_ms, ())
            out.append(InboxEntry(rowid, entry))
        return out

    return await store._run("cannot read the inbox", body)


async def message_status(store: LogStore, message_id: bytes) -> Status | None:
    """The furthest receipt of a stored message: 'sent', 'delivered', 'read' or None."""

    def body(db: sqlite3.Connection) -> Status | None:
        rows = db.execute(
            "SELECT status FROM receipts WHERE message_id = ?", (message_id,)
        ).fetchall()
        statuses = {r[0] for r in rows}
        ranked: tuple[Status, ...] = ("read", "delivered", "sent")
        return next((status for status in ranked if status in statuses), None)

    return await store._run("cannot read a receipt", body)
