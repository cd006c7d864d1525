"""The record layer: AES-256-GCM frames with implicit counter nonces.

Each direction has its own key and a 64-bit frame counter that starts at 0.
The counter is never sent: it is the nonce (four zero bytes, then the counter
big-endian), so a replayed, dropped, reordered or modified frame fails the tag
check and ends the channel. The 5-byte frame header (length and type) is the
AAD. Every ``rekey_interval`` frames the key is replaced by
HKDF-Expand(key, "chhaya/ch/v1/rekey") and the old key is dropped, which
bounds how much one key protects and gives forward secrecy within a channel.
Before the counter reaches ``max_frames`` the channel refuses to go on.
"""

from __future__ import annotations

import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..crypto import AEAD_TAG_SIZE, hkdf_expand
from ..safety import CryptoError, LocalProtocolError, RemoteProtocolError

__all__ = ["RecordReceiver", "RecordSender"]

_HEADER = struct.Struct(">IB")
_NONCE = struct.Struct(">4xQ")
_REKEY_LABEL = b"chhaya/ch/v1/rekey"


def _next_key(key: bytes) -> bytes:
    return hkdf_expand(key, _REKEY_LABEL, 32)


class _Direction:
    __slots__ = (
        "_aead",
        "_counter",
        "_key",
        "_max_frames",
        "_next_event_at",
        "_next_rekey",
        "_rekey_interval",
    )

    def __init__(self, key: bytes, rekey_interval: int, max_frames: int) -> None:
        if rekey_interval <= 0 or max_frames <= 0:
            raise ValueError("rekey interval and frame limit must be positive")
        self._key: bytes | None = key
        # The raw AESGCM object, not the provider wrapper: this is the hot path.
        self._aead: AESGCM | None = AESGCM(key)
        self._counter = 0
        self._rekey_interval = rekey_interval
        self._next_rekey = rekey_interval
        self._max_frames = max_frames
        # The next counter value at which a rekey or the frame limit is due.
        self._next_event_at = min(rekey_interval, max_frames)

    @property
    def counter(self) -> int:
        return self._counter

    def _rekey(self) -> AESGCM:
        assert self._key is not None
        self._key = _next_key(self._key)
        self._aead = AESGCM(self._key)
        self._next_rekey += self._rekey_interval
        self._next_event_at = min(self._next_rekey, self._max_frames)
        return self._aead

    def wipe(self) -> None:
        self._key = None
        self._aead = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(counter={self._counter}, <key redacted>)"


class RecordSender(_Direction):
    __slots__ = ()

    def seal(self, frame_type: int, plaintext: bytes) -> bytes:
        """Return the whole frame: header, then ciphertext and tag."""
        aead = self._aead
        if aead is None:
            raise LocalProtocolError("record layer is closed")
        c = self._counter
        if c >= self._next_event_at:  # one comparison on the hot path
            if c >= self._max_frames:
                raise LocalProtocolError("frame counter exhausted: re-establish the channel")
            aead = self._rekey()
        header = _HEADER.pack(1 + len(plaintext) + AEAD_TAG_SIZE, frame_type)
        out = header + aead.encrypt(_NONCE.pack(c), plaintext, header)
        self._counter = c + 1
        return out


class RecordReceiver(_Direction):
    __slots__ = ()

    def open(self, header: bytes | memoryview, ciphertext: bytes | memoryview) -> bytes:
        """Decrypt one frame; any failure raises and the channel must close."""
        aead = self._aead
        if aead is None:
            raise LocalProtocolError("record layer is closed")
        c = self._counter
        if c >= self._next_event_at:
            if c >= self._max_frames:
                raise RemoteProtocolError("peer exceeded the frame limit")
            aead = self._rekey()
        try:
            plaintext = aead.decrypt(_NONCE.pack(c), ciphertext, header)
        except InvalidTag:
            raise CryptoError() from None
        self._counter = c + 1
        return plaintext
