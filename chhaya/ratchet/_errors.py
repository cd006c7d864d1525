"""Errors particular to the Double Ratchet."""

from __future__ import annotations

from ..safety import RemoteProtocolError

__all__ = ["DuplicateMessageError", "SkipLimitError"]


class DuplicateMessageError(RemoteProtocolError):
    """The message was already decrypted, or its key was deliberately deleted."""


class SkipLimitError(RemoteProtocolError):
    """Decrypting would mean storing more skipped message keys than allowed."""
