"""A conversation with one peer: a ratchet plus message ids and receipts.

How it works
------------
``send_text`` wraps the text in a :class:`Payload` with a fresh random id
and encrypts it with the ratchet. ``receive`` decrypts (the ratchet rejects
forged and replayed messages and is left untouched by them), parses the
payload and reports whether its id was seen before: a sender that retries
re-sends the same id in a new ratchet message, and the receiver must show it
once. The ids seen most recently are remembered, up to ``MAX_SEEN_IDS``.
``encode``/``decode_untrusted`` persist the whole conversation state.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from ..crypto import FAST, Dh, Rng, sha256
from ..ratchet import RatchetSession
from ..safety import DecodeError
from ..wire import Reader, Writer
from ._payload import (
    MAX_RATCHET_STATE,
    MESSAGE_ID_SIZE,
    Payload,
    PayloadKind,
    ReceiptStatus,
)

__all__ = [
    "CONVERSATION_ID_CONTEXT",
    "CONVERSATION_ID_SIZE",
    "MAX_SEEN_IDS",
    "Conversation",
    "ReceiptReceived",
    "TextReceived",
]

#: Message ids remembered to flag retried messages as duplicates. The window
#: only needs to cover retries in flight; a node also keeps every message id
#: durably (its logstore refuses a second copy), and the window is stored in
#: every committed state, so a larger one costs a write per message
#: (4,096 ids are 64 KiB; 512 are 8 KiB).
MAX_SEEN_IDS = 512
#: States written with the earlier, larger window still decode (trimmed).
_MAX_SEEN_IDS_STORED = 4096
#: Bytes of a conversation id (a truncated SHA-256).
CONVERSATION_ID_SIZE = 16
CONVERSATION_ID_CONTEXT = b"chhaya/conversation-id/v1"
_MAGIC = b"CSES"
_VERSION = 1


@dataclass(frozen=True, slots=True)
class TextReceived:
    message_id: bytes
    sent_at_ms: int
    text: bytes
    duplicate: bool


@dataclass(frozen=True, slots=True)
class ReceiptReceived:
    status: ReceiptStatus
    message_ids: tuple[bytes, ...]


class Conversation:
    __slots__ = ("_ratchet", "_seen")

    def __init__(self, ratchet: RatchetSession) -> None:
        self._ratchet = ratchet
        self._seen: OrderedDict[bytes, None] = OrderedDict()

    @property
    def ratchet(self) -> RatchetSession:
        return self._ratchet

    @property
    def can_send(self) -> bool:
        return self._ratchet.can_send

    @property
    def conversation_id(self) -> bytes:
        """A public name for this conversation, the same on both sides.

        It hashes the ratchet's associated data (both identity keys and the
        set-up transcript hash), so it is fixed for the life of the
        conversation and says nothing secret. Two nodes compare ids to decide
        whether to continue a stored conversation or start a new one.
        """
        return sha256(CONVERSATION_ID_CONTEXT + self._ratchet.associated_data)[
            :CONVERSATION_ID_SIZE
        ]

    def send_text(
        self, text: bytes, now: int, rng: Rng, message_id: bytes | None = None
    ) -> tuple[bytes, bytes]:
        """Return ``(message_id, ratchet_message)``. Pass ``message_id`` to retry."""
        mid = message_id if message_id is not None else rng(MESSAGE_ID_SIZE)
        payload = Payload(PayloadKind.TEXT, mid, now, text=text)
        return mid, self._ratchet.encrypt(payload.encode(), rng)

    def send_receipt(
        self, status: ReceiptStatus, message_ids: Sequence[bytes], now: int, rng: Rng
    ) -> bytes:
        payload = Payload(
            PayloadKind.RECEIPT,
            rng(MESSAGE_ID_SIZE),
            now,
            receipt_status=status,
            receipt_ids=tuple(message_ids),
        )
        return self._ratchet.encrypt(payload.encode(), rng)

    def receive(self, data: bytes, rng: Rng) -> TextReceived | ReceiptReceived:
        """Decrypt and parse one message. Raises on forgery or replay.

        A payload that fails to parse after the ratchet authenticated it is
        a fault of the (authenticated) peer; the ratchet has advanced, which
        is correct: the message key is spent either way.
        """
        payload = Payload.decode_untrusted(self._ratchet.decrypt(data, rng))
        if payload.kind is PayloadKind.RECEIPT:
            assert payload.receipt_status is not None
            return ReceiptReceived(payload.receipt_status, payload.receipt_ids)
        duplicate = payload.message_id in self._seen
        self._remember(payload.message_id)
        return TextReceived(payload.message_id, payload.sent_at_ms, payload.text, duplicate)

    def _remember(self, message_id: bytes) -> None:
        self._seen[message_id] = None
        self._seen.move_to_end(message_id)
        while len(self._seen) > MAX_SEEN_IDS:
            self._seen.popitem(last=False)

    def encode(self) -> bytes:
        w = Writer().raw(_MAGIC).u8(_VERSION)
        w.var32(self._ratchet.encode(), MAX_RATCHET_STATE)
        w.u16(len(self._seen))
        # Every id is MESSAGE_ID_SIZE bytes (checked where ids enter the set),
        # so one join writes them all; per-id writes cost ~0.4 ms at 4,096 ids.
        w.raw(b"".join(self._seen))
        return w.getvalue()

    @classmethod
    def decode_untrusted(cls, data: bytes, dh: Dh = FAST.dh) -> Conversation:
        r = Reader(data)
        r.expect(_MAGIC, "conversation magic")
        if r.u8("conversation version") != _VERSION:
            raise DecodeError("unsupported conversation version")
        conv = cls(RatchetSession.decode_untrusted(r.var32(MAX_RATCHET_STATE, "ratchet"), dh))
        count = r.u16("seen count")
        if count > _MAX_SEEN_IDS_STORED:
            raise DecodeError("too many remembered message ids")
        ids = r.fixed(count * MESSAGE_ID_SIZE, "seen ids")
        start = max(0, count - MAX_SEEN_IDS) * MESSAGE_ID_SIZE  # keep the newest
        conv._seen = OrderedDict.fromkeys(
            ids[i : i + MESSAGE_ID_SIZE] for i in range(start, len(ids), MESSAGE_ID_SIZE)
        )
        r.finish()
        return conv

    def __repr__(self) -> str:
        return f"Conversation({self._ratchet!r}, seen={len(self._seen)})"
