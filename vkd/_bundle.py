"""What the directory binds to a handle: an identity bundle, or a tombstone.

    DirectoryValue = 0x01 || IdentityBundle          (a live binding)
                   | 0x02                            (tombstone: the handle is revoked)
    IdentityBundle = "CIB1" || PublicIdentity (1636)
                     || device count u8 (1..8) || each: device peer id var16 (1..64)
                     || has_prekeys u8 || [PrekeyBundle var16]
                     || expires_ms u64

The prekey bundle is the long-lived one (signed X25519 prekey and
last-resort ML-KEM prekey); it must belong to the same identity.
"""

from __future__ import annotations

from dataclasses import dataclass

from chhaya import DecodeError, VerificationError
from chhaya.identity import PUBLIC_IDENTITY_SIZE, PublicIdentity
from chhaya.prekeys import PrekeyBundle
from chhaya.wire import Reader, Writer

__all__ = [
    "MAX_DEVICES",
    "MAX_DEVICE_ID_LEN",
    "MAX_PREKEY_BUNDLE_LEN",
    "DirectoryValue",
    "IdentityBundle",
]

MAX_DEVICES = 8
MAX_DEVICE_ID_LEN = 64
MAX_PREKEY_BUNDLE_LEN = 4096
_TAG = b"CIB1"
_KIND_BUNDLE = 0x01
_KIND_TOMBSTONE = 0x02


@dataclass(frozen=True, slots=True)
class IdentityBundle:
    identity: PublicIdentity
    devices: tuple[bytes, ...]
    prekeys: PrekeyBundle | None
    expires_ms: int

    def encode(self) -> bytes:
        if not 1 <= len(self.devices) <= MAX_DEVICES:
            raise ValueError(f"a bundle lists 1..{MAX_DEVICES} devices")
        w = Writer().raw(_TAG).raw(self.identity.encode()).u8(len(self.devices))
        for device in self.devices:
            if not device:
                raise ValueError("empty device id")
            w.var16(device, MAX_DEVICE_ID_LEN)
        if self.prekeys is None:
            w.u8(0)
        else:
            if self.prekeys.identity != self.identity:
                raise ValueError("prekey bundle belongs to another identity")
            w.u8(1).var16(self.prekeys.encode(), MAX_PREKEY_BUNDLE_LEN)
        return w.u64(self.expires_ms).getvalue()

    @classmethod
    def _read(cls, r: Reader) -> IdentityBundle:
        r.expect(_TAG, "identity bundle tag")
        identity = PublicIdentity.decode_untrusted(r.fixed(PUBLIC_IDENTITY_SIZE, "identity"))
        count = r.u8("device count")
        if not 1 <= count <= MAX_DEVICES:
            raise DecodeError("device count out of bounds")
        devices = []
        for _ in range(count):
            device = r.var16(MAX_DEVICE_ID_LEN, "device id")
            if not device:
                raise DecodeError("empty device id")
            devices.append(device)
        has_prekeys = r.u8("prekey flag")
        prekeys: PrekeyBundle | None = None
        if has_prekeys == 1:
            prekeys = PrekeyBundle.decode_untrusted(r.var16(MAX_PREKEY_BUNDLE_LEN, "prekeys"))
            if prekeys.identity != identity:
                raise DecodeError("prekey bundle belongs to another identity")
        elif has_prekeys != 0:
            raise DecodeError("bad prekey flag")
        return cls(identity, tuple(devices), prekeys, r.u64("expiry"))

    @classmethod
    def decode_untrusted(cls, data: bytes) -> IdentityBundle:
        r = Reader(data)
        out = cls._read(r)
        r.finish()
        return out

    def check(self, now: int) -> None:
        """Expiry and prekey signatures: what a client checks before use."""
        if now >= self.expires_ms:
            raise VerificationError("bundle-expired", "the identity bundle has expired")
        if self.prekeys is not None:
            self.prekeys.verify()


@dataclass(frozen=True, slots=True)
class DirectoryValue:
    """A bundle, or a tombstone (``bundle is None``) that revokes the handle."""

    bundle: IdentityBundle | None

    @property
    def is_tombstone(self) -> bool:
        return self.bundle is None

    def encode(self) -> bytes:
        if self.bundle is None:
            return bytes((_KIND_TOMBSTONE,))
        return bytes((_KIND_BUNDLE,)) + self.bundle.encode()

    @classmethod
    def decode_untrusted(cls, data: bytes) -> DirectoryValue:
        r = Reader(data)
        kind = r.u8("value kind")
        if kind == _KIND_TOMBSTONE:
            r.finish()
            return cls(None)
        if kind != _KIND_BUNDLE:
            raise DecodeError("unknown directory value kind")
        bundle = IdentityBundle._read(r)
        r.finish()
        return cls(bundle)
