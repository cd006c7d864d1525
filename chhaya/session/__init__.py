"""Conversations: ratchet sessions with message ids, receipts and de-duplication."""

from ._payload import (
    MAX_RECEIPT_IDS,
    MAX_TEXT_BYTES,
    MESSAGE_ID_SIZE,
    PAYLOAD_VERSION,
    Payload,
    PayloadKind,
    ReceiptStatus,
)
from ._session import (
    CONVERSATION_ID_CONTEXT,
    CONVERSATION_ID_SIZE,
    MAX_SEEN_IDS,
    Conversation,
    ReceiptReceived,
    TextReceived,
)
from ._setup import (
    SESSION_HELLO_SIZE,
    initiator_from_bundle,
    initiator_from_channel,
    responder_from_channel,
    responder_from_initial,
    session_associated_data,
)

__all__ = [
    "CONVERSATION_ID_CONTEXT",
    "CONVERSATION_ID_SIZE",
    "MAX_RECEIPT_IDS",
    "MAX_SEEN_IDS",
    "MAX_TEXT_BYTES",
    "MESSAGE_ID_SIZE",
    "PAYLOAD_VERSION",
    "SESSION_HELLO_SIZE",
    "Conversation",
    "Payload",
    "PayloadKind",
    "ReceiptReceived",
    "ReceiptStatus",
    "TextReceived",
    "initiator_from_bundle",
    "initiator_from_channel",
    "responder_from_channel",
    "responder_from_initial",
    "session_associated_data",
]
