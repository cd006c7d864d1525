"""Deterministic identities, stores and hypothesis strategies for the prekey tests.

Randomness comes from :func:`det_rng`, a SHA-256 counter stream. The FAST
suite's ML-KEM encapsulation draws from OpenSSL regardless, so an
InitialMessage made with FAST is not reproducible; tests that need fixed
bytes pass ``suite=REFERENCE`` to ``initiate_session``.
"""

from __future__ import annotations

import functools
import hashlib

from hypothesis import strategies as st

from chhaya.crypto import (
    ED25519_PUBLIC_KEY_SIZE,
    ED25519_SIGNATURE_SIZE,
    MLKEM1024_CIPHERTEXT_SIZE,
    MLKEM1024_PUBLIC_KEY_SIZE,
    X25519_KEY_SIZE,
    Rng,
)
from chhaya.identity import PrivateIdentity, PublicIdentity
from chhaya.prekeys import (
    InitialMessage,
    InMemoryPrekeyStore,
    OneTimePrekey,
    PrekeyBundle,
    SignedKemPrekey,
    SignedPrekey,
    is_canonical_x25519,
)
from chhaya.ratchet import ENCRYPTED_HEADER_SIZE, HEADER_SIZE, RatchetMessage

#: A wall-clock-like base time in milliseconds.
NOW = 1_700_000_000_000

U32 = st.integers(min_value=0, max_value=2**32 - 1)


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
def identity(label: str) -> PrivateIdentity:
    return PrivateIdentity.generate(det_rng(b"prekeys/identity/" + label.encode()))


def make_store(
    owner: PrivateIdentity,
    seed: bytes = b"store",
    *,
    one_time: int = 4,
    kem_one_time: int = 0,
) -> InMemoryPrekeyStore:
    """A store with a signed prekey, a last-resort KEM prekey and some one-time keys."""
    rng = det_rng(b"prekeys/store/" + seed)
    store = InMemoryPrekeyStore(owner)
    store.rotate_signed_prekey(rng, NOW)
    store.rotate_last_resort_kem_prekey(rng, NOW)
    store.generate_one_time_prekeys(one_time, rng, NOW)
    store.generate_kem_prekeys(kem_one_time, rng, NOW)
    return store


def exact(n: int) -> st.SearchStrategy[bytes]:
    return st.binary(min_size=n, max_size=n)


x25519_keys = exact(X25519_KEY_SIZE).map(lambda b: b[:31] + bytes([b[31] & 0x7F]))
canonical_x25519 = x25519_keys.filter(is_canonical_x25519)
signatures = exact(ED25519_SIGNATURE_SIZE)

public_identities = st.builds(
    PublicIdentity,
    signing_key=exact(ED25519_PUBLIC_KEY_SIZE),
    agreement_key=exact(X25519_KEY_SIZE),
    kem_key=exact(MLKEM1024_PUBLIC_KEY_SIZE),
)
signed_prekeys = st.builds(
    SignedPrekey, prekey_id=U32, public_key=canonical_x25519, signature=signatures
)
signed_kem_prekeys = st.builds(
    SignedKemPrekey,
    prekey_id=U32,
    public_key=exact(MLKEM1024_PUBLIC_KEY_SIZE),
    last_resort=st.booleans(),
    signature=signatures,
)
one_time_prekeys = st.builds(OneTimePrekey, prekey_id=U32, public_key=canonical_x25519)
bundles = st.builds(
    PrekeyBundle,
    identity=public_identities,
    signed_prekey=signed_prekeys,
    kem_prekey=signed_kem_prekeys,
    one_time_prekey=st.none() | one_time_prekeys,
)


@st.composite
def ratchet_messages(draw: st.DrawFn) -> bytes:
    encrypted = draw(st.booleans())
    header = draw(exact(ENCRYPTED_HEADER_SIZE if encrypted else HEADER_SIZE))
    ciphertext = draw(st.binary(min_size=16, max_size=300))
    return RatchetMessage(encrypted, header, ciphertext).encode()


initial_messages = st.builds(
    InitialMessage,
    initiator_identity=public_identities,
    ephemeral_key=canonical_x25519,
    signed_prekey_id=U32,
    one_time_prekey_id=st.none() | U32,
    kem_prekey_id=U32,
    kem_ciphertext=exact(MLKEM1024_CIPHERTEXT_SIZE),
    ratchet_message=ratchet_messages(),
)


@st.composite
def mutations(draw: st.DrawFn, valid: st.SearchStrategy[bytes]) -> bytes:
    """A valid encoding with one flipped byte, a cut, or extra bytes."""
    data = bytearray(draw(valid))
    kind = draw(st.sampled_from(["flip", "set", "cut", "extend"]))
    if kind in ("flip", "set") and data:
        i = draw(st.integers(min_value=0, max_value=len(data) - 1))
        if kind == "flip":
            data[i] ^= 1 << draw(st.integers(min_value=0, max_value=7))
        else:
            data[i] = draw(st.integers(min_value=0, max_value=255))
    elif kind == "cut":
        del data[draw(st.integers(min_value=0, max_value=len(data))) :]
    else:
        data += draw(st.binary(min_size=1, max_size=40))
    return bytes(data)
