"""Prekey wire types: the bundle an initiator fetches and the first message.

Layouts (all integers big-endian; byte layouts also in docs/PROTOCOL.md):

    SignedPrekey     = id u32 || X25519 key (32) || signature (64)            (100)
    SignedKemPrekey  = id u32 || last_resort u8 || ML-KEM-1024 key (1568)
                       || signature (64)                                      (1637)
    OneTimePrekey    = id u32 || X25519 key (32)                              (36)
    PrekeyBundle     = "CPB1" || PublicIdentity (1636) || SignedPrekey
                       || SignedKemPrekey || has_opk u8 || [OneTimePrekey]
    InitialMessage   = "CPM1" || initiator PublicIdentity (1636)
                       || ephemeral X25519 key (32) || signed prekey id u32
                       || has_opk u8 || [one-time prekey id u32]
                       || KEM prekey id u32 || ML-KEM-1024 ciphertext (1568)
                       || ratchet message length u32 || ratchet message

Every X25519 key on the wire must be canonical (less than 2^255 - 19): the
curve ignores the top bit and reduces larger values, so a non-canonical key
would be a second encoding of the same point. For the ephemeral key that
would let a replayed first message dodge the replay set; rejecting every
non-canonical key keeps one encoding per value.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..crypto import (
    ED25519_SIGNATURE_SIZE,
    FAST,
    MLKEM1024_CIPHERTEXT_SIZE,
    MLKEM1024_PUBLIC_KEY_SIZE,
    X25519_KEY_SIZE,
    Signatures,
)
from ..identity import PUBLIC_IDENTITY_SIZE, PublicIdentity
from ..ratchet import ENCRYPTED_HEADER_SIZE, MAX_RATCHET_CIPHERTEXT, RatchetMessage
from ..safety import CryptoError, DecodeError, VerificationError
from ..wire import Reader, Writer

__all__ = [
    "INITIAL_MESSAGE_TAG",
    "KEM_PREKEY_LABEL",
    "MAX_INITIAL_MESSAGE_SIZE",
    "MAX_INITIAL_RATCHET_MESSAGE",
    "MAX_PREKEY_BUNDLE_SIZE",
    "ONE_TIME_PREKEY_SIZE",
    "PREKEY_BUNDLE_TAG",
    "SIGNED_KEM_PREKEY_SIZE",
    "SIGNED_PREKEY_LABEL",
    "SIGNED_PREKEY_SIZE",
    "InitialMessage",
    "OneTimePrekey",
    "PrekeyBundle",
    "SignedKemPrekey",
    "SignedPrekey",
    "is_canonical_x25519",
]

SIGNED_PREKEY_LABEL = b"chhaya/pqxdh/v1/spk"
KEM_PREKEY_LABEL = b"chhaya/pqxdh/v1/kem"
PREKEY_BUNDLE_TAG = b"CPB1"
INITIAL_MESSAGE_TAG = b"CPM1"

SIGNED_PREKEY_SIZE = 4 + X25519_KEY_SIZE + ED25519_SIGNATURE_SIZE
SIGNED_KEM_PREKEY_SIZE = 4 + 1 + MLKEM1024_PUBLIC_KEY_SIZE + ED25519_SIGNATURE_SIZE
ONE_TIME_PREKEY_SIZE = 4 + X25519_KEY_SIZE
#: The first ratchet message: version, flags, the larger (encrypted) header
#: part and the largest ratchet ciphertext.
MAX_INITIAL_RATCHET_MESSAGE = 2 + ENCRYPTED_HEADER_SIZE + MAX_RATCHET_CIPHERTEXT
MAX_PREKEY_BUNDLE_SIZE = (
    4
    + PUBLIC_IDENTITY_SIZE
    + SIGNED_PREKEY_SIZE
    + SIGNED_KEM_PREKEY_SIZE
    + 1
    + ONE_TIME_PREKEY_SIZE
)
MAX_INITIAL_MESSAGE_SIZE = (
    4
    + PUBLIC_IDENTITY_SIZE
    + X25519_KEY_SIZE
    + 4
    + 1
    + 4
    + 4
    + MLKEM1024_CIPHERTEXT_SIZE
    + 4
    + MAX_INITIAL_RATCHET_MESSAGE
)

_P25519 = 2**255 - 19
_U32_MAX = 2**32 - 1


def is_canonical_x25519(key: bytes) -> bool:
    """True for a 32-byte X25519 key whose integer value is below 2^255 - 19."""
    return len(key) == X25519_KEY_SIZE and int.from_bytes(key, "little") < _P25519


def _read_x25519(r: Reader, what: str) -> bytes:
    key = r.fixed(X25519_KEY_SIZE, what)
    if not is_canonical_x25519(key):
        raise DecodeError(f"non-canonical {what}")
    return key


def _write_x25519(w: Writer, key: bytes) -> None:
    if not is_canonical_x25519(key):
        raise ValueError("X25519 key is not 32 canonical bytes")
    w.raw(key)


def _write_id(w: Writer, prekey_id: int) -> None:
    if not 0 <= prekey_id <= _U32_MAX:
        raise ValueError("prekey id out of range")
    w.u32(prekey_id)


def _read_flag(r: Reader, what: str) -> bool:
    flag = r.u8(what)
    if flag not in (0, 1):
        raise DecodeError(f"bad {what}")
    return flag == 1


@dataclass(frozen=True, slots=True)
class SignedPrekey:
    """A medium-term X25519 prekey, signed by the identity's Ed25519 key."""

    prekey_id: int
    public_key: bytes
    signature: bytes

    def signed_bytes(self) -> bytes:
        """What the signature covers: label || id || key."""
        w = Writer().raw(SIGNED_PREKEY_LABEL)
        _write_id(w, self.prekey_id)
        _write_x25519(w, self.public_key)
        return w.getvalue()

    def verify(self, identity: PublicIdentity, sig: Signatures = FAST.sig) -> None:
        """Raise VerificationError("prekey-signature") unless ``identity`` signed it."""
        try:
            sig.verify(identity.signing_key, self.signed_bytes(), self.signature)
        except (CryptoError, ValueError):
            raise VerificationError("prekey-signature", "signed prekey") from None

    def _write(self, w: Writer) -> None:
        _write_id(w, self.prekey_id)
        _write_x25519(w, self.public_key)
        w.fixed(self.signature, ED25519_SIGNATURE_SIZE)

    @classmethod
    def _read(cls, r: Reader) -> SignedPrekey:
        return cls(
            prekey_id=r.u32("signed prekey id"),
            public_key=_read_x25519(r, "signed prekey"),
            signature=r.fixed(ED25519_SIGNATURE_SIZE, "signed prekey signature"),
        )

    def encode(self) -> bytes:
        w = Writer()
        self._write(w)
        return w.getvalue()

    @classmethod
    def decode_untrusted(cls, data: bytes) -> SignedPrekey:
        r = Reader(data)
        out = cls._read(r)
        r.finish()
        return out


@dataclass(frozen=True, slots=True)
class SignedKemPrekey:
    """A signed ML-KEM-1024 prekey: one-time, or the reusable last-resort one."""

    prekey_id: int
    public_key: bytes
    last_resort: bool
    signature: bytes

    def signed_bytes(self) -> bytes:
        """What the signature covers: label || id || last_resort || key."""
        w = Writer().raw(KEM_PREKEY_LABEL)
        _write_id(w, self.prekey_id)
        w.u8(1 if self.last_resort else 0)
        w.fixed(self.public_key, MLKEM1024_PUBLIC_KEY_SIZE)
        return w.getvalue()

    def verify(self, identity: PublicIdentity, sig: Signatures = FAST.sig) -> None:
        """Raise VerificationError("prekey-signature") unless ``identity`` signed it."""
        try:
            sig.verify(identity.signing_key, self.signed_bytes(), self.signature)
        except (CryptoError, ValueError):
            raise VerificationError("prekey-signature", "KEM prekey") from None

    def _write(self, w: Writer) -> None:
        _write_id(w, self.prekey_id)
        w.u8(1 if self.last_resort else 0)
        w.fixed(self.public_key, MLKEM1024_PUBLIC_KEY_SIZE)
        w.fixed(self.signature, ED25519_SIGNATURE_SIZE)

    @classmethod
    def _read(cls, r: Reader) -> SignedKemPrekey:
        prekey_id = r.u32("KEM prekey id")
        last_resort = _read_flag(r, "last-resort flag")
        return cls(
            prekey_id=prekey_id,
            public_key=r.fixed(MLKEM1024_PUBLIC_KEY_SIZE, "KEM prekey"),
            last_resort=last_resort,
            signature=r.fixed(ED25519_SIGNATURE_SIZE, "KEM prekey signature"),
        )

    def encode(self) -> bytes:
        w = Writer()
        self._write(w)
        return w.getvalue()

    @classmethod
    def decode_untrusted(cls, data: bytes) -> SignedKemPrekey:
        r = Reader(data)
        out = cls._read(r)
        r.finish()
        return out


@dataclass(frozen=True, slots=True)
class OneTimePrekey:
    """A one-time X25519 prekey. Unsigned, as in X3DH and PQXDH: whoever
    substitutes one only removes its own contribution (extra forward secrecy,
    replay protection); SK still rests on DH1-DH3 and the KEM secret."""

    prekey_id: int
    public_key: bytes

    def _write(self, w: Writer) -> None:
        _write_id(w, self.prekey_id)
        _write_x25519(w, self.public_key)

    @classmethod
    def _read(cls, r: Reader) -> OneTimePrekey:
        return cls(
            prekey_id=r.u32("one-time prekey id"),
            public_key=_read_x25519(r, "one-time prekey"),
        )

    def encode(self) -> bytes:
        w = Writer()
        self._write(w)
        return w.getvalue()

    @classmethod
    def decode_untrusted(cls, data: bytes) -> OneTimePrekey:
        r = Reader(data)
        out = cls._read(r)
        r.finish()
        return out


@dataclass(frozen=True, slots=True)
class PrekeyBundle:
    """What an initiator needs to open a session with a possibly offline peer.

    ``kem_prekey`` is a one-time signed ML-KEM prekey when one is left, else
    the last-resort one. ``one_time_prekey`` is absent when none is left.
    """

    identity: PublicIdentity
    signed_prekey: SignedPrekey
    kem_prekey: SignedKemPrekey
    one_time_prekey: OneTimePrekey | None

    def verify(self, sig: Signatures = FAST.sig) -> None:
        """Check both prekey signatures against the bundle's identity.

        Raises VerificationError("prekey-signature"). That the identity is
        the one the initiator meant to reach is for the directory to prove.
        """
        self.signed_prekey.verify(self.identity, sig)
        self.kem_prekey.verify(self.identity, sig)

    def encode(self) -> bytes:
        w = Writer().raw(PREKEY_BUNDLE_TAG).raw(self.identity.encode())
        self.signed_prekey._write(w)
        self.kem_prekey._write(w)
        if self.one_time_prekey is None:
            w.u8(0)
        else:
            w.u8(1)
            self.one_time_prekey._write(w)
        return w.getvalue()

    @classmethod
    def decode_untrusted(cls, data: bytes) -> PrekeyBundle:
        r = Reader(data)
        r.expect(PREKEY_BUNDLE_TAG, "prekey bundle tag")
        identity = PublicIdentity.decode_untrusted(r.fixed(PUBLIC_IDENTITY_SIZE, "identity"))
        signed_prekey = SignedPrekey._read(r)
        kem_prekey = SignedKemPrekey._read(r)
        one_time = OneTimePrekey._read(r) if _read_flag(r, "one-time prekey flag") else None
        r.finish()
        return cls(identity, signed_prekey, kem_prekey, one_time)


@dataclass(frozen=True, slots=True)
class InitialMessage:
    """The initiator's first message: key-agreement inputs and the first
    ratchet message. The responder may be offline when it is sent."""

    initiator_identity: PublicIdentity
    ephemeral_key: bytes
    signed_prekey_id: int
    one_time_prekey_id: int | None
    kem_prekey_id: int
    kem_ciphertext: bytes
    ratchet_message: bytes

    def encode(self) -> bytes:
        w = Writer().raw(INITIAL_MESSAGE_TAG).raw(self.initiator_identity.encode())
        _write_x25519(w, self.ephemeral_key)
        _write_id(w, self.signed_prekey_id)
        if self.one_time_prekey_id is None:
            w.u8(0)
        else:
            w.u8(1)
            _write_id(w, self.one_time_prekey_id)
        _write_id(w, self.kem_prekey_id)
        w.fixed(self.kem_ciphertext, MLKEM1024_CIPHERTEXT_SIZE)
        w.var32(self.ratchet_message, MAX_INITIAL_RATCHET_MESSAGE)
        return w.getvalue()

    @classmethod
    def decode_untrusted(cls, data: bytes) -> InitialMessage:
        r = Reader(data)
        r.expect(INITIAL_MESSAGE_TAG, "initial message tag")
        identity = PublicIdentity.decode_untrusted(r.fixed(PUBLIC_IDENTITY_SIZE, "initiator"))
        ephemeral = _read_x25519(r, "ephemeral key")
        signed_prekey_id = r.u32("signed prekey id")
        has_opk = _read_flag(r, "one-time prekey flag")
        one_time_prekey_id = r.u32("one-time prekey id") if has_opk else None
        kem_prekey_id = r.u32("KEM prekey id")
        kem_ciphertext = r.fixed(MLKEM1024_CIPHERTEXT_SIZE, "KEM ciphertext")
        ratchet_message = r.var32(MAX_INITIAL_RATCHET_MESSAGE, "ratchet message")
        r.finish()
        # Structure only; the ratchet authenticates it later.
        RatchetMessage.decode_untrusted(ratchet_message)
        return cls(
            initiator_identity=identity,
            ephemeral_key=ephemeral,
            signed_prekey_id=signed_prekey_id,
            one_time_prekey_id=one_time_prekey_id,
            kem_prekey_id=kem_prekey_id,
            kem_ciphertext=kem_ciphertext,
            ratchet_message=ratchet_message,
        )
