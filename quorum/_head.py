"""Epoch heads: what a directory publishes each epoch and witnesses co-sign.

    EpochHead  = "CEH1" || directory id (32) || epoch u64 || root (32)
                 || previous head hash (32) || time_ms u64                  (116)
    head hash  = SHA-256("chhaya/quorum/v1/head" || EpochHead)
    SignedHead = EpochHead || directory Ed25519 key (32) || directory VRF key (32)
                 || signature (64)
    signature  = Ed25519(directory key, "chhaya/quorum/v1/head-sig" || EpochHead)
    directory id = SHA-256("chhaya/quorum/v1/directory-id" || directory key || VRF key)

The directory id is derived from both of the directory's public keys, so a
signed head carries everything needed to check it, and a certified head
certifies the VRF key too: a directory cannot place one handle under two
VRF keys and show each to different clients. The first head (epoch 0) has an
all-zero previous hash.
"""

from __future__ import annotations

from dataclasses import dataclass

from chhaya import CryptoError, VerificationError
from chhaya.crypto import ED25519_PUBLIC_KEY_SIZE, ED25519_SIGNATURE_SIZE, FAST, SigningKey, sha256
from chhaya.wire import Reader, Writer

__all__ = [
    "EPOCH_HEAD_SIZE",
    "GENESIS_PREVIOUS",
    "SIGNED_HEAD_SIZE",
    "EpochHead",
    "SignedHead",
    "directory_id_for",
    "sign_head",
]

_MAGIC = b"CEH1"
_HASH_LABEL = b"chhaya/quorum/v1/head"
_SIG_LABEL = b"chhaya/quorum/v1/head-sig"
_DIR_ID_LABEL = b"chhaya/quorum/v1/directory-id"
EPOCH_HEAD_SIZE = 4 + 32 + 8 + 32 + 32 + 8
SIGNED_HEAD_SIZE = EPOCH_HEAD_SIZE + 2 * ED25519_PUBLIC_KEY_SIZE + ED25519_SIGNATURE_SIZE
GENESIS_PREVIOUS = bytes(32)


def directory_id_for(directory_key: bytes, vrf_key: bytes) -> bytes:
    return sha256(_DIR_ID_LABEL, directory_key, vrf_key)


@dataclass(frozen=True, slots=True)
class EpochHead:
    directory_id: bytes
    epoch: int
    root: bytes
    previous: bytes
    time_ms: int

    def encode(self) -> bytes:
        return (
            Writer()
            .raw(_MAGIC)
            .fixed(self.directory_id, 32)
            .u64(self.epoch)
            .fixed(self.root, 32)
            .fixed(self.previous, 32)
            .u64(self.time_ms)
            .getvalue()
        )

    @classmethod
    def decode_untrusted(cls, data: bytes) -> EpochHead:
        r = Reader(data)
        out = cls._read(r)
        r.finish()
        return out

    @classmethod
    def _read(cls, r: Reader) -> EpochHead:
        r.expect(_MAGIC, "epoch head magic")
        return cls(
            directory_id=r.fixed(32, "directory id"),
            epoch=r.u64("epoch"),
            root=r.fixed(32, "root"),
            previous=r.fixed(32, "previous head hash"),
            time_ms=r.u64("time"),
        )

    @property
    def head_hash(self) -> bytes:
        return sha256(_HASH_LABEL, self.encode())


@dataclass(frozen=True, slots=True)
class SignedHead:
    head: EpochHead
    directory_key: bytes
    vrf_key: bytes
    signature: bytes

    def encode(self) -> bytes:
        return (
            Writer()
            .raw(self.head.encode())
            .fixed(self.directory_key, ED25519_PUBLIC_KEY_SIZE)
            .fixed(self.vrf_key, ED25519_PUBLIC_KEY_SIZE)
            .fixed(self.signature, ED25519_SIGNATURE_SIZE)
            .getvalue()
        )

    @classmethod
    def decode_untrusted(cls, data: bytes) -> SignedHead:
        r = Reader(data)
        head = EpochHead._read(r)
        out = cls(
            head,
            r.fixed(ED25519_PUBLIC_KEY_SIZE, "directory key"),
            r.fixed(ED25519_PUBLIC_KEY_SIZE, "directory VRF key"),
            r.fixed(ED25519_SIGNATURE_SIZE, "head signature"),
        )
        r.finish()
        return out

    def verify(self) -> None:
        """Check the directory's signature and that the id matches its key."""
        if self.head.directory_id != directory_id_for(self.directory_key, self.vrf_key):
            raise VerificationError("directory-id", "head names another directory")
        try:
            FAST.sig.verify(self.directory_key, _SIG_LABEL + self.head.encode(), self.signature)
        except CryptoError:
            raise VerificationError("head-signature", "directory signature is invalid") from None


def sign_head(directory_key: SigningKey, vrf_key: bytes, head: EpochHead) -> SignedHead:
    if head.directory_id != directory_id_for(directory_key.public_key, vrf_key):
        raise ValueError("head names another directory")
    signature = directory_key.sign(_SIG_LABEL + head.encode())
    return SignedHead(head, directory_key.public_key, vrf_key, signature)
