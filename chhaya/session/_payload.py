"""What a ratchet message carries: a text with its id, or receipts.

    Payload  = version u8 (1) || kind u8 || message id (16) || sent_at_ms u64 || body
    kind 1 TEXT     body = text var32 (<= MAX_TEXT_BYTES)
    kind 2 RECEIPT  body = status u8 (1 delivered, 2 read) || count u16 (1..256) || ids (16 each)

Message ids are random, chosen by the sender; a retry re-sends the same id
in a new ratchet message, so the receiver deduplicates by id.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from ..safety import DecodeError
from ..wire import Reader, Writer

__all__ = [
    "MAX_RATCHET_STATE",
    "MAX_RECEIPT_IDS",
    "MAX_TEXT_BYTES",
    "MESSAGE_ID_SIZE",
    "PAYLOAD_VERSION",
    "Payload",
    "PayloadKind",
    "ReceiptStatus",
]

PAYLOAD_VERSION = 1
MESSAGE_ID_SIZE = 16
MAX_TEXT_BYTES = 60 * 1024
MAX_RECEIPT_IDS = 256
# A serialized ratchet: header, chains, and up to 2,000 skipped keys of 68 bytes.
MAX_RATCHET_STATE = 4096 + 2000 * 68 + 1024


class PayloadKind(IntEnum):
    TEXT = 1
    RECEIPT = 2


class ReceiptStatus(IntEnum):
    DELIVERED = 1
    READ = 2


@dataclass(frozen=True, slots=True)
class Payload:
    kind: PayloadKind
    message_id: bytes
    sent_at_ms: int
    text: bytes = b""
    receipt_status: ReceiptStatus | None = None
    receipt_ids: tuple[bytes, ...] = ()

    def encode(self) -> bytes:
        w = Writer().u8(PAYLOAD_VERSION).u8(self.kind)
        w.fixed(self.message_id, MESSAGE_ID_SIZE).u64(self.sent_at_ms)
        if self.kind is PayloadKind.TEXT:
            w.var32(self.text, MAX_TEXT_BYTES)
        else:
            if self.receipt_status is None or not 0 < len(self.receipt_ids) <= MAX_RECEIPT_IDS:
                raise ValueError("a receipt needs a status and 1..256 ids")
            w.u8(self.receipt_status).u16(len(self.receipt_ids))
            for mid in self.receipt_ids:
                w.fixed(mid, MESSAGE_ID_SIZE)
        return w.getvalue()

    @classmethod
    def decode_untrusted(cls, data: bytes) -> Payload:
        r = Reader(data)
        if r.u8("payload version") != PAYLOAD_VERSION:
            raise DecodeError("unsupported payload version")
        try:
            kind = PayloadKind(r.u8("payload kind"))
        except ValueError:
            raise DecodeError("unknown payload kind") from None
        message_id = r.fixed(MESSAGE_ID_SIZE, "message id")
        sent_at = r.u64("sent time")
        if kind is PayloadKind.TEXT:
            out = cls(kind, message_id, sent_at, text=r.var32(MAX_TEXT_BYTES, "text"))
        else:
            try:
                status = ReceiptStatus(r.u8("receipt status"))
            except ValueError:
                raise DecodeError("unknown receipt status") from None
            count = r.u16("receipt count")
            if not 0 < count <= MAX_RECEIPT_IDS:
                raise DecodeError("receipt count out of bounds")
            ids = tuple(r.fixed(MESSAGE_ID_SIZE, "receipt id") for _ in range(count))
            out = cls(kind, message_id, sent_at, receipt_status=status, receipt_ids=ids)
        r.finish()
        return out
