"""Shared helpers for the Double Ratchet tests: deterministic sessions and state parsing.

Everything is deterministic: randomness comes from :func:`det_rng`, a SHA-256
counter stream, so a test builds the same keys and the same messages on every
run. :func:`parse_state` reads the session encoding independently of
``RatchetSession.decode_untrusted``, to look at the skipped-key store from
outside.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

from chhaya.crypto import FAST, Rng
from chhaya.ratchet import RatchetSession
from chhaya.wire import Reader, Writer

__all__ = [
    "AD",
    "HEADER_MODES",
    "HEADER_MODE_IDS",
    "OPTIONAL_FIELDS",
    "SHARED_SECRET",
    "Pair",
    "SessionState",
    "det_rng",
    "flip_bit",
    "make_pair",
    "parse_state",
]

SHARED_SECRET = hashlib.sha256(b"chhaya/tests/ratchet/shared-secret").digest()
AD = b"alice-identity-key||bob-identity-key"

HEADER_MODES = [False, True]
HEADER_MODE_IDS = ["plain-header", "encrypted-header"]


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


@dataclass
class Pair:
    """Alice (initiator) and Bob (responder), each with a deterministic rng."""

    alice: RatchetSession
    bob: RatchetSession
    alice_rng: Rng
    bob_rng: Rng

    def a2b(self, plaintext: bytes) -> bytes:
        return self.alice.encrypt(plaintext, self.alice_rng)

    def b2a(self, plaintext: bytes) -> bytes:
        return self.bob.encrypt(plaintext, self.bob_rng)

    def to_bob(self, data: bytes) -> bytes:
        return self.bob.decrypt(data, self.bob_rng)

    def to_alice(self, data: bytes) -> bytes:
        return self.alice.decrypt(data, self.alice_rng)


def make_pair(
    header_encryption: bool,
    *,
    seed: bytes = b"pair",
    shared_secret: bytes = SHARED_SECRET,
    ad: bytes = AD,
) -> Pair:
    alice_rng = det_rng(seed + b"/alice")
    bob_rng = det_rng(seed + b"/bob")
    bob_key = FAST.dh.generate(bob_rng)
    alice = RatchetSession.initiator(
        shared_secret, ad, bob_key.public_key, alice_rng, header_encryption=header_encryption
    )
    bob = RatchetSession.responder(shared_secret, ad, bob_key, header_encryption=header_encryption)
    return Pair(alice, bob, alice_rng, bob_rng)


def flip_bit(data: bytes, offset: int, bit: int) -> bytes:
    out = bytearray(data)
    out[offset] ^= 1 << bit
    return bytes(out)


#: The optional 32-byte fields of a session encoding, in order.
OPTIONAL_FIELDS = ("dh_remote", "ck_send", "ck_recv", "hk_send", "hk_recv", "nhk_send", "nhk_recv")


@dataclass(frozen=True)
class SessionState:
    """An encoded session, field by field (layout in ``_session.py``).

    Read independently of ``RatchetSession.decode_untrusted``, to look at the
    stores from outside; :meth:`encode` writes it back, so tests can build
    states (edited with ``dataclasses.replace``) that no conversation reaches.
    """

    header_encryption: bool
    ad: bytes
    root: bytes
    private_key: bytes
    optionals: tuple[bytes | None, ...]
    n_send: int
    n_recv: int
    pn: int
    previous_chains: tuple[bytes, ...]
    skipped: tuple[tuple[bytes, int, bytes], ...]  # (chain, n, message key)

    @property
    def skipped_chains(self) -> list[bytes]:
        return list(dict.fromkeys(chain for chain, _, _ in self.skipped))

    def optional(self, name: str) -> bytes | None:
        return self.optionals[OPTIONAL_FIELDS.index(name)]

    def with_optional(self, name: str, value: bytes | None) -> SessionState:
        values = list(self.optionals)
        values[OPTIONAL_FIELDS.index(name)] = value
        return replace(self, optionals=tuple(values))

    def encode(self) -> bytes:
        w = Writer().raw(b"CDRS").u8(1).u8(int(self.header_encryption)).var16(self.ad, 4096)
        w.fixed(self.root, 32).fixed(self.private_key, 32)
        for value in self.optionals:
            if value is None:
                w.u8(0)
            else:
                w.u8(1).fixed(value, 32)
        w.u32(self.n_send).u32(self.n_recv).u32(self.pn)
        w.u8(len(self.previous_chains))
        for chain in self.previous_chains:
            w.fixed(chain, 32)
        w.u16(len(self.skipped))
        for chain, n, mk in self.skipped:
            w.fixed(chain, 32).u32(n).fixed(mk, 32)
        return w.getvalue()


def parse_state(encoded: bytes) -> SessionState:
    """Parse ``RatchetSession.encode()`` output."""
    r = Reader(encoded)
    r.expect(b"CDRS", "magic")
    assert r.u8("version") == 1
    he = r.u8("he") == 1
    ad = r.var16(4096, "ad")
    root = r.fixed(32, "root")
    private_key = r.fixed(32, "private key")
    optionals = tuple(
        r.fixed(32, name) if r.u8(f"presence of {name}") else None for name in OPTIONAL_FIELDS
    )
    n_send, n_recv, pn = r.u32("n_send"), r.u32("n_recv"), r.u32("pn")
    previous = tuple(r.fixed(32, "previous") for _ in range(r.u8("n_prev")))
    skipped = tuple(
        (r.fixed(32, "chain"), r.u32("n"), r.fixed(32, "mk")) for _ in range(r.u16("n_skipped"))
    )
    r.finish()
    state = SessionState(
        he, ad, root, private_key, optionals, n_send, n_recv, pn, previous, skipped
    )
    assert state.encode() == encoded
    return state
