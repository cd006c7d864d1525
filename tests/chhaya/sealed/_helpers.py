"""Deterministic identities, certificates and randomness for the sealed-sender tests."""

from __future__ import annotations

import functools
import hashlib

from chhaya.crypto import Rng
from chhaya.identity import PrivateIdentity
from chhaya.sealed import SenderCertificate, issue_certificate

#: A wall-clock-like time in milliseconds.
NOW = 1_700_000_000_000
#: Expiry of the default certificate: one day after NOW.
EXPIRES = NOW + 86_400_000


def det_rng(seed: bytes) -> Rng:
    """SHA-256(seed || counter) blocks: the same bytes on every run."""
    counter = 0

    def rng(n: int) -> bytes:
        nonlocal counter
        out = bytearray()
        while len(out) < n:
            out += hashlib.sha256(seed + counter.to_bytes(8, "big")).digest()
            counter += 1
        return bytes(out[:n])

    return rng


@functools.cache
def identity(label: bytes) -> PrivateIdentity:
    return PrivateIdentity.generate(det_rng(b"identity/" + label))


def alice() -> PrivateIdentity:
    return identity(b"alice")


def bob() -> PrivateIdentity:
    return identity(b"bob")


def carol() -> PrivateIdentity:
    return identity(b"carol")


@functools.cache
def alice_cert(expires_ms: int = EXPIRES) -> SenderCertificate:
    return issue_certificate(alice(), "alice", b"device-1", expires_ms)


def filler(seed: bytes, n: int) -> bytes:
    """``n`` pseudo-random bytes from a short seed (hypothesis cannot draw 64 KiB)."""
    return hashlib.shake_256(seed).digest(n) if n else b""
