"""The Double Ratchet: per-message keys with forward secrecy and healing."""

from ._errors import DuplicateMessageError, SkipLimitError
from ._kdf import kdf_ck, kdf_rk, kdf_rk_he, message_key_material
from ._message import (
    ENCRYPTED_HEADER_SIZE,
    HEADER_SIZE,
    MAX_RATCHET_CIPHERTEXT,
    MAX_RATCHET_PLAINTEXT,
    RATCHET_VERSION,
    Header,
    RatchetMessage,
)
from ._session import (
    MAX_RECEIVER_CHAINS,
    MAX_SESSION_AD,
    MAX_SKIP_PER_CHAIN,
    MAX_SKIPPED_TOTAL,
    RatchetSession,
)

__all__ = [
    "ENCRYPTED_HEADER_SIZE",
    "HEADER_SIZE",
    "MAX_RATCHET_CIPHERTEXT",
    "MAX_RATCHET_PLAINTEXT",
    "MAX_RECEIVER_CHAINS",
    "MAX_SESSION_AD",
    "MAX_SKIPPED_TOTAL",
    "MAX_SKIP_PER_CHAIN",
    "RATCHET_VERSION",
    "DuplicateMessageError",
    "Header",
    "RatchetMessage",
    "RatchetSession",
    "SkipLimitError",
    "kdf_ck",
    "kdf_rk",
    "kdf_rk_he",
    "message_key_material",
]
