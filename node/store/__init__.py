"""The node's logstore: one SQLite file holding conversation states and messages.

Append-only tables keep every ratchet state version, every message and every
receipt; a mutable outbox keeps ciphertexts until they are acknowledged. See
:class:`LogStore` for the commit-before-send rule.
"""

from ._contacts import Contact, ContactBook, InboxEntry, incoming_after, message_status
from ._logstore import (
    RETRY_INITIAL_MS,
    RETRY_MAX_MS,
    Direction,
    HistoryEntry,
    LogStore,
    OutboxEntry,
    Status,
    retry_delay_ms,
)
from ._schema import APPLICATION_ID, SCHEMA_VERSION

__all__ = [
    "APPLICATION_ID",
    "RETRY_INITIAL_MS",
    "RETRY_MAX_MS",
    "SCHEMA_VERSION",
    "Contact",
    "ContactBook",
    "Direction",
    "HistoryEntry",
    "InboxEntry",
    "LogStore",
    "OutboxEntry",
    "Status",
    "incoming_after",
    "message_status",
    "retry_delay_ms",
]
