"""Deterministic randomness and hypothesis strategies for the identity tests."""

from __future__ import annotations

import hashlib

from hypothesis import strategies as st

from chhaya.crypto import Argon2Params, Rng
from chhaya.identity import SECRET_IDENTITY_SIZE, PrivateIdentity

#: Argon2id cheap enough to run hundreds of times (64 KiB, one pass).
CHEAP = Argon2Params(time_cost=1, memory_kib=64, lanes=1)

NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"


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


def no_rng(n: int) -> bytes:
    raise AssertionError("no randomness expected here")


def identity(label: bytes) -> PrivateIdentity:
    return PrivateIdentity.generate(det_rng(b"identity/" + label))


secrets_st = st.binary(min_size=SECRET_IDENTITY_SIZE, max_size=SECRET_IDENTITY_SIZE)
identities_st = secrets_st.map(PrivateIdentity.from_secret_bytes)
names_st = st.from_regex(NAME_PATTERN, fullmatch=True)
