"""Ratchet message wire types.

    Header          = ratchet public key (32) || PN u32 || N u32          (40)
    RatchetMessage  = version u8 (1) || flags u8 || header part || ciphertext
        flags bit 0 = header encrypted
        plain header part     = Header (40)
        encrypted header part = nonce (12) || AES-256-GCM(HK, nonce, Header, AD) (56)
        ciphertext            = AES-256-GCM(mk-derived key and nonce, payload,
                                            AD || version || flags || header part)

The ciphertext runs to the end of the message; its length is bounded by
``MAX_RATCHET_CIPHERTEXT``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ..crypto import AEAD_TAG_SIZE, X25519_KEY_SIZE
from ..safety import DecodeError
from ..wire import Reader

__all__ = [
    "ENCRYPTED_HEADER_SIZE",
    "FLAG_HEADER_ENCRYPTED",
    "HEADER_SIZE",
    "MAX_MESSAGE_NUMBER",
    "MAX_RATCHET_CIPHERTEXT",
    "MAX_RATCHET_PLAINTEXT",
    "RATCHET_VERSION",
    "Header",
    "RatchetMessage",
]

RATCHET_VERSION = 1
FLAG_HEADER_ENCRYPTED = 0x01
HEADER_SIZE = X25519_KEY_SIZE + 4 + 4
HEADER_NONCE_SIZE = 12
ENCRYPTED_HEADER_SIZE = HEADER_NONCE_SIZE + HEADER_SIZE + AEAD_TAG_SIZE
MAX_RATCHET_PLAINTEXT = 64 * 1024
MAX_RATCHET_CIPHERTEXT = MAX_RATCHET_PLAINTEXT + AEAD_TAG_SIZE
# Message numbers are u32; the last value is reserved so that a counter of
# "next expected message" always fits in a u32 too.
MAX_MESSAGE_NUMBER = (1 << 32) - 1
_HEADER = struct.Struct(">32sII")


@dataclass(frozen=True, slots=True)
class Header:
    dh: bytes
    pn: int
    n: int

    def encode(self) -> bytes:
        return _HEADER.pack(self.dh, self.pn, self.n)

    @classmethod
    def decode_untrusted(cls, data: bytes) -> Header:
        if len(data) != HEADER_SIZE:
            raise DecodeError("ratchet header has the wrong size")
        dh, pn, n = _HEADER.unpack(data)
        if n >= MAX_MESSAGE_NUMBER:  # PN may equal it: a chain used to its end
            raise DecodeError("ratchet message number out of range")
        return cls(bytes(dh), int(pn), int(n))


@dataclass(frozen=True, slots=True)
class RatchetMessage:
    """A parsed message; ``header_part`` is a plain or an encrypted header."""

    header_encrypted: bool
    header_part: bytes
    ciphertext: bytes

    def prefix(self) -> bytes:
        """Everything before the ciphertext: it is bound as AAD."""
        flags = FLAG_HEADER_ENCRYPTED if self.header_encrypted else 0
        return bytes((RATCHET_VERSION, flags)) + self.header_part

    def encode(self) -> bytes:
        return self.prefix() + self.ciphertext

    @classmethod
    def decode_untrusted(cls, data: bytes) -> RatchetMessage:
        r = Reader(data)
        if r.u8("ratchet version") != RATCHET_VERSION:
            raise DecodeError("unsupported ratchet message version")
        flags = r.u8("ratchet flags")
        if flags & ~FLAG_HEADER_ENCRYPTED:
            raise DecodeError("unknown ratchet flags")
        encrypted = bool(flags & FLAG_HEADER_ENCRYPTED)
        header_part = r.fixed(ENCRYPTED_HEADER_SIZE if encrypted else HEADER_SIZE, "header")
        n = r.remaining()
        if n < AEAD_TAG_SIZE or n > MAX_RATCHET_CIPHERTEXT:
            raise DecodeError("ratchet ciphertext length out of bounds")
        ciphertext = r.fixed(n, "ciphertext")
        r.finish()
        return cls(encrypted, header_part, ciphertext)
