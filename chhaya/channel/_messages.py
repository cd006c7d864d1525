"""Handshake wire types: Syn, SynAck and Ack.

All three have fixed sizes, so decoding is a sequence of fixed reads followed
by a check that nothing trails. Byte layouts are in docs/PROTOCOL.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..crypto import (
    ED25519_PUBLIC_KEY_SIZE,
    ED25519_SIGNATURE_SIZE,
    MLKEM1024_CIPHERTEXT_SIZE,
    MLKEM1024_PUBLIC_KEY_SIZE,
    X25519_KEY_SIZE,
)
from ..safety import DecodeError
from ..wire import Reader, Writer
from ._constants import MSG_ACK, MSG_SYN, MSG_SYN_ACK, PROTOCOL_VERSION

__all__ = ["Ack", "Syn", "SynAck"]

_DIGEST = 32
_MAC = 32


@dataclass(frozen=True, slots=True)
class Syn:
    """Dialer to listener: who I am, whom I expect, my ephemeral keys."""

    namespace_digest: bytes
    expected_listener: bytes
    dialer: bytes
    ephemeral_x25519: bytes
    ephemeral_kem: bytes
    timestamp_ms: int
    signature: bytes

    def unsigned_bytes(self) -> bytes:
        return (
            Writer()
            .u8(MSG_SYN)
            .u8(PROTOCOL_VERSION)
            .fixed(self.namespace_digest, _DIGEST)
            .fixed(self.expected_listener, ED25519_PUBLIC_KEY_SIZE)
            .fixed(self.dialer, ED25519_PUBLIC_KEY_SIZE)
            .fixed(self.ephemeral_x25519, X25519_KEY_SIZE)
            .fixed(self.ephemeral_kem, MLKEM1024_PUBLIC_KEY_SIZE)
            .u64(self.timestamp_ms)
            .getvalue()
        )

    def encode(self) -> bytes:
        if len(self.signature) != ED25519_SIGNATURE_SIZE:
            raise ValueError("bad signature length")
        return self.unsigned_bytes() + self.signature

    @classmethod
    def decode_untrusted(cls, data: bytes) -> Syn:
        r = Reader(data)
        if r.u8("frame type") != MSG_SYN:
            raise DecodeError("not a Syn")
        if r.u8("version") != PROTOCOL_VERSION:
            raise DecodeError("unsupported protocol version")
        out = cls(
            namespace_digest=r.fixed(_DIGEST, "namespace digest"),
            expected_listener=r.fixed(ED25519_PUBLIC_KEY_SIZE, "expected listener"),
            dialer=r.fixed(ED25519_PUBLIC_KEY_SIZE, "dialer identity"),
            ephemeral_x25519=r.fixed(X25519_KEY_SIZE, "ephemeral X25519"),
            ephemeral_kem=r.fixed(MLKEM1024_PUBLIC_KEY_SIZE, "ephemeral ML-KEM key"),
            timestamp_ms=r.u64("timestamp"),
            signature=r.fixed(ED25519_SIGNATURE_SIZE, "signature"),
        )
        r.finish()
        return out


@dataclass(frozen=True, slots=True)
class SynAck:
    """Listener to dialer: my identity, ephemeral key, KEM ciphertext, proof."""

    listener: bytes
    ephemeral_x25519: bytes
    kem_ciphertext: bytes
    timestamp_ms: int
    continuation: bytes
    signature: bytes
    confirmation: bytes

    def unsigned_bytes(self) -> bytes:
        return (
            Writer()
            .u8(MSG_SYN_ACK)
            .fixed(self.listener, ED25519_PUBLIC_KEY_SIZE)
            .fixed(self.ephemeral_x25519, X25519_KEY_SIZE)
            .fixed(self.kem_ciphertext, MLKEM1024_CIPHERTEXT_SIZE)
            .u64(self.timestamp_ms)
            .fixed(self.continuation, _DIGEST)
            .getvalue()
        )

    def encode(self) -> bytes:
        if len(self.signature) != ED25519_SIGNATURE_SIZE or len(self.confirmation) != _MAC:
            raise ValueError("bad signature or confirmation length")
        return self.unsigned_bytes() + self.signature + self.confirmation

    @classmethod
    def decode_untrusted(cls, data: bytes) -> SynAck:
        r = Reader(data)
        if r.u8("frame type") != MSG_SYN_ACK:
            raise DecodeError("not a SynAck")
        out = cls(
            listener=r.fixed(ED25519_PUBLIC_KEY_SIZE, "listener identity"),
            ephemeral_x25519=r.fixed(X25519_KEY_SIZE, "ephemeral X25519"),
            kem_ciphertext=r.fixed(MLKEM1024_CIPHERTEXT_SIZE, "ML-KEM ciphertext"),
            timestamp_ms=r.u64("timestamp"),
            continuation=r.fixed(_DIGEST, "continuation tag"),
            signature=r.fixed(ED25519_SIGNATURE_SIZE, "signature"),
            confirmation=r.fixed(_MAC, "confirmation"),
        )
        r.finish()
        return out


@dataclass(frozen=True, slots=True)
class Ack:
    """Dialer to listener: key confirmation."""

    confirmation: bytes

    def encode(self) -> bytes:
        return Writer().u8(MSG_ACK).fixed(self.confirmation, _MAC).getvalue()

    @classmethod
    def decode_untrusted(cls, data: bytes) -> Ack:
        r = Reader(data)
        if r.u8("frame type") != MSG_ACK:
            raise DecodeError("not an Ack")
        out = cls(confirmation=r.fixed(_MAC, "confirmation"))
        r.finish()
        return out
