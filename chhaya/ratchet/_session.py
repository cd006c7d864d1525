"""The Double Ratchet (Signal specification), with optional header encryption.

How it works
------------
Each side holds a root key, a sending chain and a receiving chain. Every
message takes the next key of the sending chain (a symmetric ratchet step:
HMAC). When a message arrives under a new ratchet public key, the receiver
makes a Diffie-Hellman ratchet step: two X25519 computations fold fresh
secrets into the root key and start new chains, which heals the session
after a key compromise.

Out-of-order messages are handled by storing skipped message keys, at most
``MAX_SKIP_PER_CHAIN`` per chain, ``MAX_SKIPPED_TOTAL`` in all, from at most
``MAX_RECEIVER_CHAINS`` chains; past those caps the oldest are forgotten and
their messages fail cleanly.

Decryption is transactional: every new value is computed into locals and
written to the session only after the AEAD tag verifies, so a forged,
corrupt or replayed message leaves the session exactly as it was.

With header encryption (spec section 4), headers are encrypted under header
keys that the root KDF also ratchets, so a relay cannot link messages of one
session by their ratchet keys.
"""

from __future__ import annotations

import struct
from collections import OrderedDict, deque
from collections.abc import Iterable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..crypto import FAST, Dh, DhKeyPair, Rng
from ..safety import CryptoError, DecodeError, LocalProtocolError
from ..wire import Reader, Writer
from ._errors import DuplicateMessageError, SkipLimitError
from ._kdf import initial_header_keys, kdf_ck, kdf_rk, kdf_rk_he, message_key_material
from ._message import (
    FLAG_HEADER_ENCRYPTED,
    MAX_MESSAGE_NUMBER,
    MAX_RATCHET_PLAINTEXT,
    RATCHET_VERSION,
    Header,
    RatchetMessage,
)

__all__ = [
    "MAX_RECEIVER_CHAINS",
    "MAX_SESSION_AD",
    "MAX_SKIPPED_TOTAL",
    "MAX_SKIP_PER_CHAIN",
    "RatchetSession",
]

MAX_SKIP_PER_CHAIN = 1000
MAX_SKIPPED_TOTAL = 2000
MAX_RECEIVER_CHAINS = 5
MAX_SESSION_AD = 4096

_HEADER = struct.Struct(">32sII")
_STATE_MAGIC = b"CDRS"
_STATE_VERSION = 1
_PREFIX_PLAIN = bytes((RATCHET_VERSION, 0))
_PREFIX_HE = bytes((RATCHET_VERSION, FLAG_HEADER_ENCRYPTED))

_SkippedKey = tuple[bytes, int]  # (chain id, message number) -> message key


def _seal(mk: bytes, plaintext: bytes, aad: bytes) -> bytes:
    key, nonce = message_key_material(mk)
    return AESGCM(key).encrypt(nonce, plaintext, aad)


def _open(mk: bytes, ciphertext: bytes, aad: bytes) -> bytes:
    key, nonce = message_key_material(mk)
    try:
        return AESGCM(key).decrypt(nonce, ciphertext, aad)
    except InvalidTag:
        raise CryptoError() from None


def _decrypt_header(hk: bytes | None, part: bytes, ad: bytes) -> Header | None:
    if hk is None:
        return None
    try:
        raw = AESGCM(hk).decrypt(part[:12], part[12:], ad)
    except InvalidTag:
        return None
    return Header.decode_untrusted(raw)


class RatchetSession:
    """One side of a Double Ratchet session. Not thread-safe."""

    __slots__ = (
        "_ad",
        "_ck_recv",
        "_ck_send",
        "_dh",
        "_dh_remote",
        "_dh_self",
        "_he",
        "_hk_recv",
        "_hk_send",
        "_n_recv",
        "_n_send",
        "_nhk_recv",
        "_nhk_send",
        "_pn",
        "_previous_chains",
        "_root",
        "_skipped",
    )

    def __init__(
        self,
        *,
        ad: bytes,
        root: bytes,
        dh_self: DhKeyPair,
        dh_remote: bytes | None,
        header_encryption: bool,
        dh: Dh = FAST.dh,
    ) -> None:
        if len(ad) > MAX_SESSION_AD:
            raise LocalProtocolError("session associated data too long")
        self._ad = bytes(ad)
        self._root = root
        self._dh_self = dh_self
        self._dh_remote = dh_remote
        self._he = header_encryption
        self._dh = dh
        self._ck_send: bytes | None = None
        self._ck_recv: bytes | None = None
        self._n_send = 0
        self._n_recv = 0
        self._pn = 0
        self._hk_send: bytes | None = None
        self._hk_recv: bytes | None = None
        self._nhk_send: bytes | None = None
        self._nhk_recv: bytes | None = None
        # Receiving-chain ids we have moved past (ratchet keys, or header keys
        # with header encryption): a message on one of them is a duplicate or
        # lost for good, never a reason to ratchet.
        self._previous_chains: deque[bytes] = deque(maxlen=MAX_RECEIVER_CHAINS)
        self._skipped: OrderedDict[_SkippedKey, bytes] = OrderedDict()

    # ------------------------------------------------------------ set-up

    @classmethod
    def initiator(
        cls,
        shared_secret: bytes,
        ad: bytes,
        remote_ratchet_key: bytes,
        rng: Rng,
        *,
        header_encryption: bool = False,
        dh: Dh = FAST.dh,
    ) -> RatchetSession:
        """RatchetInitAlice: we know the responder's first ratchet public key."""
        dh_self = dh.generate(rng)
        s = cls(
            ad=ad,
            root=shared_secret,
            dh_self=dh_self,
            dh_remote=remote_ratchet_key,
            header_encryption=header_encryption,
            dh=dh,
        )
        dh_out = dh_self.exchange(remote_ratchet_key)
        if header_encryption:
            hka, nhkb = initial_header_keys(shared_secret)
            s._root, s._ck_send, s._nhk_send = kdf_rk_he(shared_secret, dh_out)
            s._hk_send = hka
            s._nhk_recv = nhkb
        else:
            s._root, s._ck_send = kdf_rk(shared_secret, dh_out)
        return s

    @classmethod
    def responder(
        cls,
        shared_secret: bytes,
        ad: bytes,
        own_ratchet_key: DhKeyPair,
        *,
        header_encryption: bool = False,
        dh: Dh = FAST.dh,
    ) -> RatchetSession:
        """RatchetInitBob: our first ratchet key pair is the one the initiator used."""
        s = cls(
            ad=ad,
            root=shared_secret,
            dh_self=own_ratchet_key,
            dh_remote=None,
            header_encryption=header_encryption,
            dh=dh,
        )
        if header_encryption:
            hka, nhkb = initial_header_keys(shared_secret)
            s._nhk_send = nhkb
            s._nhk_recv = hka
        return s

    # ------------------------------------------------------------- queries

    @property
    def header_encryption(self) -> bool:
        return self._he

    @property
    def associated_data(self) -> bytes:
        """The session's associated data: both identities and the set-up transcript."""
        return self._ad

    @property
    def can_send(self) -> bool:
        """The responder can send only after the initiator's first message."""
        return self._ck_send is not None

    @property
    def skipped_count(self) -> int:
        return len(self._skipped)

    @property
    def ratchet_public_key(self) -> bytes:
        return self._dh_self.public_key

    # ------------------------------------------------------------ encrypt

    def encrypt(self, plaintext: bytes, rng: Rng) -> bytes:
        """Encrypt one message; ``rng`` is used only for header-key nonces."""
        ck = self._ck_send
        if ck is None:
            raise LocalProtocolError("cannot send before the first message from the initiator")
        if len(plaintext) > MAX_RATCHET_PLAINTEXT:
            raise LocalProtocolError("ratchet plaintext too large")
        n = self._n_send
        if n >= MAX_MESSAGE_NUMBER:
            raise LocalProtocolError("sending chain exhausted")
        header = _HEADER.pack(self._dh_self.public_key, self._pn, n)
        if self._he:
            if self._hk_send is None:
                raise LocalProtocolError("no sending header key")
            nonce = rng(12)
            prefix = _PREFIX_HE + nonce + AESGCM(self._hk_send).encrypt(nonce, header, self._ad)
        else:
            prefix = _PREFIX_PLAIN + header
        ck_next, mk = kdf_ck(ck)
        out = prefix + _seal(mk, plaintext, self._ad + prefix)
        self._ck_send = ck_next
        self._n_send = n + 1
        return out

    # ------------------------------------------------------------ decrypt

    def decrypt(self, data: bytes, rng: Rng) -> bytes:
        """Decrypt one message. On any failure the session is unchanged."""
        msg = RatchetMessage.decode_untrusted(data)
        if msg.header_encrypted != self._he:
            raise DecodeError("header encryption does not match the session")
        aad = self._ad + msg.prefix()
        if self._he:
            return self._decrypt_he(msg, aad, rng)
        header = Header.decode_untrusted(msg.header_part)
        return self._decrypt_with(header, header.dh, msg, aad, rng, ratchet=None)

    def _decrypt_he(self, msg: RatchetMessage, aad: bytes, rng: Rng) -> bytes:
        part = msg.header_part
        # 1. A header key of a chain with skipped keys?
        for chain in self._skipped_chains():
            header = _decrypt_header(chain, part, self._ad)
            if header is not None:
                mk = self._skipped.get((chain, header.n))
                if mk is None:
                    if chain == self._hk_recv:
                        break  # current chain: handled below
                    raise DuplicateMessageError("message key already used or forgotten")
                plaintext = _open(mk, msg.ciphertext, aad)
                del self._skipped[(chain, header.n)]
                return plaintext
        # 2. The current receiving header key, then the next one.
        header = _decrypt_header(self._hk_recv, part, self._ad)
        if header is not None:
            assert self._hk_recv is not None
            return self._decrypt_with(header, self._hk_recv, msg, aad, rng, ratchet=False)
        header = _decrypt_header(self._nhk_recv, part, self._ad)
        if header is not None:
            return self._decrypt_with(header, b"", msg, aad, rng, ratchet=True)
        for chain in self._previous_chains:
            if _decrypt_header(chain, part, self._ad) is not None:
                raise DuplicateMessageError("message from a chain whose keys are gone")
        raise CryptoError()

    def _skipped_chains(self) -> list[bytes]:
        seen: dict[bytes, None] = {}
        for chain, _ in self._skipped:
            seen.setdefault(chain, None)
        return list(seen)

    def _decrypt_with(
        self,
        header: Header,
        chain_id: bytes,
        msg: RatchetMessage,
        aad: bytes,
        rng: Rng,
        ratchet: bool | None,
    ) -> bytes:
        """Shared by both variants. ``ratchet`` None means "decide by DH key"."""
        if not self._he:
            mk = self._skipped.get((chain_id, header.n))
            if mk is not None:
                plaintext = _open(mk, msg.ciphertext, aad)
                del self._skipped[(chain_id, header.n)]
                return plaintext
            ratchet = header.dh != self._dh_remote
            if ratchet and header.dh in self._previous_chains:
                raise DuplicateMessageError("message from a chain whose keys are gone")
        if not ratchet:
            if self._ck_recv is None:
                raise CryptoError()
            if header.n < self._n_recv:
                raise DuplicateMessageError("message key already used or forgotten")
            new_skipped, ck = self._skip(chain_id, self._ck_recv, self._n_recv, header.n)
            ck_next, mk = kdf_ck(ck)
            plaintext = _open(mk, msg.ciphertext, aad)
            self._ck_recv = ck_next
            self._n_recv = header.n + 1
            self._store_skipped(new_skipped)
            return plaintext
        return self._ratchet_and_decrypt(header, msg, aad, rng)

    def _ratchet_and_decrypt(
        self, header: Header, msg: RatchetMessage, aad: bytes, rng: Rng
    ) -> bytes:
        # Keys left in the chain we are leaving, up to the sender's PN.
        old_chain = self._hk_recv if self._he else self._dh_remote
        pending: list[tuple[_SkippedKey, bytes]] = []
        if self._ck_recv is not None and old_chain is not None:
            pending, _ = self._skip(old_chain, self._ck_recv, self._n_recv, header.pn)
        dh_out = self._dh_self.exchange(header.dh)
        new_self = self._dh.generate(rng)
        dh_out2 = new_self.exchange(header.dh)
        if self._he:
            root, ck_recv, nhk_recv = kdf_rk_he(self._root, dh_out)
            root, ck_send, nhk_send = kdf_rk_he(root, dh_out2)
            chain_id = self._nhk_recv
            assert chain_id is not None
        else:
            root, ck_recv = kdf_rk(self._root, dh_out)
            root, ck_send = kdf_rk(root, dh_out2)
            chain_id = header.dh
        more, ck = self._skip(chain_id, ck_recv, 0, header.n)
        ck_next, mk = kdf_ck(ck)
        plaintext = _open(mk, msg.ciphertext, aad)
        # Authenticated: commit.
        if old_chain is not None:
            self._previous_chains.append(old_chain)
        if self._he:
            self._hk_send = self._nhk_send
            self._hk_recv = self._nhk_recv
            self._nhk_recv = nhk_recv
            self._nhk_send = nhk_send
        self._pn = self._n_send
        self._n_send = 0
        self._n_recv = header.n + 1
        self._dh_remote = header.dh
        self._dh_self = new_self
        self._root = root
        self._ck_send = ck_send
        self._ck_recv = ck_next
        self._store_skipped(pending)
        self._store_skipped(more)
        return plaintext

    @staticmethod
    def _skip(
        chain_id: bytes, ck: bytes, n_from: int, until: int
    ) -> tuple[list[tuple[_SkippedKey, bytes]], bytes]:
        if until - n_from > MAX_SKIP_PER_CHAIN:
            raise SkipLimitError(f"would skip {until - n_from} messages in one chain")
        out: list[tuple[_SkippedKey, bytes]] = []
        for n in range(n_from, until):
            ck, mk = kdf_ck(ck)
            out.append(((chain_id, n), mk))
        return out, ck

    def _store_skipped(self, keys: Iterable[tuple[_SkippedKey, bytes]]) -> None:
        skipped = self._skipped
        for key, mk in keys:
            skipped[key] = mk
        if not skipped:
            return
        chains = self._skipped_chains()
        while len(chains) > MAX_RECEIVER_CHAINS:
            oldest = chains.pop(0)
            for key in [k for k in skipped if k[0] == oldest]:
                del skipped[key]
        while len(skipped) > MAX_SKIPPED_TOTAL:
            skipped.popitem(last=False)

    # ------------------------------------------------------ serialization

    def encode(self) -> bytes:
        """Versioned serialization of the whole session, secrets included."""
        w = Writer().raw(_STATE_MAGIC).u8(_STATE_VERSION).u8(1 if self._he else 0)
        w.var16(self._ad, MAX_SESSION_AD)
        w.fixed(self._root, 32).fixed(self._dh_self.private_bytes, 32)
        for opt in (
            self._dh_remote,
            self._ck_send,
            self._ck_recv,
            self._hk_send,
            self._hk_recv,
            self._nhk_send,
            self._nhk_recv,
        ):
            if opt is None:
                w.u8(0)
            else:
                w.u8(1).fixed(opt, 32)
        w.u32(self._n_send).u32(self._n_recv).u32(self._pn)
        w.u8(len(self._previous_chains))
        for chain in self._previous_chains:
            w.fixed(chain, 32)
        w.u16(len(self._skipped))
        for (chain, n), mk in self._skipped.items():
            w.fixed(chain, 32).u32(n).fixed(mk, 32)
        return w.getvalue()

    @classmethod
    def decode_untrusted(cls, data: bytes, dh: Dh = FAST.dh) -> RatchetSession:
        r = Reader(data)
        r.expect(_STATE_MAGIC, "session magic")
        if r.u8("session version") != _STATE_VERSION:
            raise DecodeError("unsupported session version")
        he_flag = r.u8("header encryption flag")
        if he_flag not in (0, 1):
            raise DecodeError("bad header encryption flag")
        ad = r.var16(MAX_SESSION_AD, "session AD")
        root = r.fixed(32, "root key")
        try:
            dh_self = dh.from_private(r.fixed(32, "ratchet private key"))
        except CryptoError:
            raise DecodeError("bad ratchet private key") from None
        opts: list[bytes | None] = []
        for what in ("remote key", "send chain", "recv chain", "hks", "hkr", "nhks", "nhkr"):
            present = r.u8(what)
            if present not in (0, 1):
                raise DecodeError(f"bad presence flag for {what}")
            opts.append(r.fixed(32, what) if present else None)
        s = cls(
            ad=ad,
            root=root,
            dh_self=dh_self,
            dh_remote=opts[0],
            header_encryption=bool(he_flag),
            dh=dh,
        )
        s._ck_send, s._ck_recv, s._hk_send, s._hk_recv, s._nhk_send, s._nhk_recv = opts[1:]
        s._n_send = r.u32("n_send")
        s._n_recv = r.u32("n_recv")
        s._pn = r.u32("pn")
        # Header keys must match the variant and the chains that exist.
        if s._he:
            consistent = (
                s._nhk_send is not None
                and s._nhk_recv is not None
                and (s._hk_send is None) == (s._ck_send is None)
                and (s._hk_recv is None) == (s._ck_recv is None)
            )
        else:
            consistent = all(k is None for k in (s._hk_send, s._hk_recv, s._nhk_send, s._nhk_recv))
        if not consistent:
            raise DecodeError("header keys inconsistent with the session")
        n_prev = r.u8("previous chain count")
        if n_prev > MAX_RECEIVER_CHAINS:
            raise DecodeError("too many previous chains")
        for _ in range(n_prev):
            s._previous_chains.append(r.fixed(32, "previous chain"))
        n_skipped = r.u16("skipped count")
        if n_skipped > MAX_SKIPPED_TOTAL:
            raise DecodeError("too many skipped keys")
        for _ in range(n_skipped):
            chain = r.fixed(32, "skipped chain")
            n = r.u32("skipped number")
            s._skipped[(chain, n)] = r.fixed(32, "skipped key")
        if len(s._skipped) != n_skipped:
            raise DecodeError("duplicate skipped key")
        if len(s._skipped_chains()) > MAX_RECEIVER_CHAINS:
            raise DecodeError("skipped keys from too many chains")
        r.finish()
        return s

    def __repr__(self) -> str:
        return (
            f"RatchetSession(he={self._he}, n_send={self._n_send}, n_recv={self._n_recv}, "
            f"skipped={len(self._skipped)}, <secrets redacted>)"
        )
