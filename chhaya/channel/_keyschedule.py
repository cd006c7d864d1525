"""Transcript hashing and key derivation for the channel handshake.

    h0   = SHA-256("chhaya/ch/v1/syn" || Syn without signature)
    sigD = Ed25519(dialer, "chhaya/ch/v1/syn-sig" || h0)
    cont = SHA-256("chhaya/ch/v1/cont" || Syn)            (continuation tag)
    h1   = SHA-256(cont || SynAck without signature and confirmation)
    sigL = Ed25519(listener, "chhaya/ch/v1/synack-sig" || h1)
    h2   = SHA-256(h1 || sigL)
    okm  = HKDF-SHA256(ikm = X25519 secret || ML-KEM secret,
                       salt = namespace digest,
                       info = "chhaya/ch/v1/keys" || h2, 192 bytes)
         = key_d2l | key_l2d | confirm_l | confirm_d | ratchet_root | exporter
    macL = HMAC(confirm_l, h2)        sent in SynAck
    h3   = SHA-256(h2 || macL)
    macD = HMAC(confirm_d, h3)        sent in Ack
    th   = SHA-256(h3 || macD)        final transcript hash

Both shared secrets enter one extraction, so the keys stay secret while
either X25519 or ML-KEM-1024 holds; the transcript in ``info`` binds them to
both identities, both ephemeral keys and the KEM ciphertext.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..crypto import hkdf_expand, hkdf_extract, hmac_sha256, sha256
from ..safety import Secret

__all__ = [
    "SIG_CONTEXT_SYN",
    "SIG_CONTEXT_SYN_ACK",
    "Exporter",
    "SessionKeys",
    "continuation_tag",
    "derive_session_keys",
    "namespace_digest",
    "syn_digest",
    "synack_signed_digest",
]

SIG_CONTEXT_SYN = b"chhaya/ch/v1/syn-sig"
SIG_CONTEXT_SYN_ACK = b"chhaya/ch/v1/synack-sig"
_LABEL_NAMESPACE = b"chhaya/ch/v1/namespace"
_LABEL_SYN = b"chhaya/ch/v1/syn"
_LABEL_CONT = b"chhaya/ch/v1/cont"
_LABEL_KEYS = b"chhaya/ch/v1/keys"
_LABEL_EXPORTER = b"chhaya/ch/v1/exporter"


def namespace_digest(namespace: bytes) -> bytes:
    return sha256(_LABEL_NAMESPACE, namespace)


def syn_digest(syn_unsigned: bytes) -> bytes:
    return sha256(_LABEL_SYN, syn_unsigned)


def continuation_tag(syn_encoded: bytes) -> bytes:
    return sha256(_LABEL_CONT, syn_encoded)


class Exporter:
    """Derives application secrets bound to this channel (like TLS exporters)."""

    __slots__ = ("_secret",)

    def __init__(self, secret: bytes) -> None:
        self._secret = Secret(secret)

    def export(self, label: bytes, context: bytes, length: int) -> bytes:
        if len(label) > 255:
            raise ValueError("exporter label too long")
        info = _LABEL_EXPORTER + bytes((len(label),)) + label + sha256(context)
        return hkdf_expand(self._secret.reveal(), info, length)

    def __repr__(self) -> str:
        return "Exporter(<secret redacted>)"


@dataclass(frozen=True, slots=True, repr=False)
class SessionKeys:
    key_d2l: bytes
    key_l2d: bytes
    confirm_l: bytes
    confirm_d: bytes
    ratchet_root: bytes
    exporter_secret: bytes
    h2: bytes

    def listener_confirmation(self) -> bytes:
        return hmac_sha256(self.confirm_l, self.h2)

    def dialer_confirmation(self, listener_mac: bytes) -> bytes:
        return hmac_sha256(self.confirm_d, sha256(self.h2, listener_mac))

    def transcript_hash(self, listener_mac: bytes, dialer_mac: bytes) -> bytes:
        return sha256(sha256(self.h2, listener_mac), dialer_mac)

    def __repr__(self) -> str:
        return "SessionKeys(<secrets redacted>)"


def derive_session_keys(
    ns_digest: bytes,
    dh_secret: bytes,
    kem_secret: bytes,
    syn_encoded: bytes,
    syn_ack_unsigned: bytes,
    listener_signature: bytes,
) -> SessionKeys:
    h1 = sha256(continuation_tag(syn_encoded), syn_ack_unsigned)
    h2 = sha256(h1, listener_signature)
    prk = hkdf_extract(ns_digest, dh_secret + kem_secret)
    okm = hkdf_expand(prk, _LABEL_KEYS + h2, 192)
    return SessionKeys(
        key_d2l=okm[0:32],
        key_l2d=okm[32:64],
        confirm_l=okm[64:96],
        confirm_d=okm[96:128],
        ratchet_root=okm[128:160],
        exporter_secret=okm[160:192],
        h2=h2,
    )


def synack_signed_digest(syn_encoded: bytes, syn_ack_unsigned: bytes) -> bytes:
    """h1: what the listener signs (after SIG_CONTEXT_SYN_ACK)."""
    return sha256(continuation_tag(syn_encoded), syn_ack_unsigned)
