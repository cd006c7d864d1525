"""Directory proofs: lookup, key history and audit. Wire types only.

    VersionOpening = value var32 (<= MAX_VALUE_LEN) || opening (32) || epoch u64
                     || VRF proof (80) || membership proof var16
    LookupProof    = "CVL1" || handle var16 || version u64 || [VersionOpening if version > 0]
                     || next VRF proof (80) || non-membership proof var16
                     || SignedHead || certificate var16
    HistoryProof   = "CVH1" || handle var16 || count u16 (<= MAX_HISTORY)
                     || count x VersionOpening (versions 1..count, in order)
                     || next VRF proof (80) || non-membership proof var16
                     || SignedHead || certificate var16
    AuditProof     = "CVA1" || old SignedHead || new SignedHead
                     || count u32 (<= MAX_AUDIT_BATCH) || count x (index (32) || value hash (32))
                     || append-only proof var32 || directory signature (64)

A lookup for version 0 proves that the handle was never published: it has
no opening, and the "next" version is 1. The directory signs each audit
proof, binding it to the two heads: a signed audit proof that fails to
verify is itself evidence that the directory broke the append-only rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from chhaya import CryptoError, DecodeError, VerificationError
from chhaya.crypto import FAST, SigningKey, sha256
from chhaya.wire import Reader, Writer
from quorum import SIGNED_HEAD_SIZE, QuorumCertificate, SignedHead

from ._commitment import MAX_HANDLE_LEN, MAX_VALUE_LEN, OPENING_SIZE, valid_handle
from .tree import (
    MAX_APPEND_ONLY_PROOF_SIZE,
    MAX_MEMBERSHIP_PROOF_SIZE,
    MAX_NON_MEMBERSHIP_PROOF_SIZE,
    AppendOnlyProof,
    MembershipProof,
    NonMembershipProof,
    verify_append_only,
)
from .vrf import VRF_PROOF_SIZE

__all__ = [
    "MAX_AUDIT_BATCH",
    "MAX_HISTORY",
    "MAX_LOOKUP_PROOF_SIZE",
    "MAX_VERSION",
    "AppendOnlyViolation",
    "AuditProof",
    "HistoryProof",
    "LookupProof",
    "VersionOpening",
    "audit_signature_message",
]

MAX_HISTORY = 1024
#: The last u64 is reserved so that "the next version" always exists.
MAX_VERSION = (1 << 64) - 1
MAX_AUDIT_BATCH = 200_000
_MAX_CERT = 4 + 32 + 2 + 128 + 96
MAX_LOOKUP_PROOF_SIZE = (
    4 + 2 + MAX_HANDLE_LEN + 8 + 4 + MAX_VALUE_LEN + OPENING_SIZE + 8 + VRF_PROOF_SIZE
    + 2 + MAX_MEMBERSHIP_PROOF_SIZE + VRF_PROOF_SIZE + 2 + MAX_NON_MEMBERSHIP_PROOF_SIZE
    + SIGNED_HEAD_SIZE + 2 + _MAX_CERT
)  # fmt: skip
_AUDIT_LABEL = b"chhaya/vkd/v1/audit"


@dataclass(frozen=True, slots=True)
class VersionOpening:
    """One published version: its value, commitment opening, epoch and proofs."""

    value: bytes
    opening: bytes
    epoch: int
    vrf_proof: bytes
    membership: MembershipProof

    def _write(self, w: Writer) -> None:
        w.var32(self.value, MAX_VALUE_LEN).fixed(self.opening, OPENING_SIZE).u64(self.epoch)
        w.fixed(self.vrf_proof, VRF_PROOF_SIZE)
        w.var16(self.membership.encode(), MAX_MEMBERSHIP_PROOF_SIZE)

    @classmethod
    def _read(cls, r: Reader) -> VersionOpening:
        return cls(
            value=r.var32(MAX_VALUE_LEN, "value"),
            opening=r.fixed(OPENING_SIZE, "opening"),
            epoch=r.u64("version epoch"),
            vrf_proof=r.fixed(VRF_PROOF_SIZE, "VRF proof"),
            membership=MembershipProof.decode_untrusted(
                r.var16(MAX_MEMBERSHIP_PROOF_SIZE, "membership proof")
            ),
        )


def _read_handle(r: Reader) -> str:
    handle = r.utf8(MAX_HANDLE_LEN, "handle")
    if not valid_handle(handle):
        raise DecodeError("invalid handle")
    return handle


def _write_tail(
    w: Writer,
    next_vrf: bytes,
    non_membership: NonMembershipProof,
    head: SignedHead,
    cert: QuorumCertificate,
) -> None:
    w.fixed(next_vrf, VRF_PROOF_SIZE)
    w.var16(non_membership.encode(), MAX_NON_MEMBERSHIP_PROOF_SIZE)
    w.raw(head.encode()).var16(cert.encode(), _MAX_CERT)


def _read_tail(r: Reader) -> tuple[bytes, NonMembershipProof, SignedHead, QuorumCertificate]:
    next_vrf = r.fixed(VRF_PROOF_SIZE, "next VRF proof")
    non_membership = NonMembershipProof.decode_untrusted(
        r.var16(MAX_NON_MEMBERSHIP_PROOF_SIZE, "non-membership proof")
    )
    head = SignedHead.decode_untrusted(r.fixed(SIGNED_HEAD_SIZE, "signed head"))
    cert = QuorumCertificate.decode_untrusted(r.var16(_MAX_CERT, "certificate"))
    return next_vrf, non_membership, head, cert


@dataclass(frozen=True, slots=True)
class LookupProof:
    handle: str
    version: int
    latest: VersionOpening | None
    next_vrf_proof: bytes
    non_membership: NonMembershipProof
    head: SignedHead
    certificate: QuorumCertificate

    def encode(self) -> bytes:
        if (self.version == 0) != (self.latest is None):
            raise ValueError("version 0 has no opening, and only version 0")
        w = Writer().raw(b"CVL1").utf8(self.handle, MAX_HANDLE_LEN).u64(self.version)
        if self.latest is not None:
            self.latest._write(w)
        _write_tail(w, self.next_vrf_proof, self.non_membership, self.head, self.certificate)
        return w.getvalue()

    @classmethod
    def decode_untrusted(cls, data: bytes) -> LookupProof:
        if len(data) > MAX_LOOKUP_PROOF_SIZE:
            raise DecodeError("lookup proof too large")
        r = Reader(data)
        r.expect(b"CVL1", "lookup proof magic")
        handle = _read_handle(r)
        version = r.u64("version")
        if version >= MAX_VERSION:
            raise DecodeError("version out of range")  # version + 1 must fit in u64
        latest = VersionOpening._read(r) if version > 0 else None
        next_vrf, non_membership, head, cert = _read_tail(r)
        r.finish()
        return cls(handle, version, latest, next_vrf, non_membership, head, cert)


@dataclass(frozen=True, slots=True)
class HistoryProof:
    handle: str
    versions: tuple[VersionOpening, ...]
    next_vrf_proof: bytes
    non_membership: NonMembershipProof
    head: SignedHead
    certificate: QuorumCertificate

    def encode(self) -> bytes:
        if len(self.versions) > MAX_HISTORY:
            raise ValueError("history too long")
        w = Writer().raw(b"CVH1").utf8(self.handle, MAX_HANDLE_LEN).u16(len(self.versions))
        for v in self.versions:
            v._write(w)
        _write_tail(w, self.next_vrf_proof, self.non_membership, self.head, self.certificate)
        return w.getvalue()

    @classmethod
    def decode_untrusted(cls, data: bytes) -> HistoryProof:
        r = Reader(data)
        r.expect(b"CVH1", "history proof magic")
        handle = _read_handle(r)
        count = r.u16("version count")
        if count > MAX_HISTORY:
            raise DecodeError("history too long")
        versions = tuple(VersionOpening._read(r) for _ in range(count))
        next_vrf, non_membership, head, cert = _read_tail(r)
        r.finish()
        return cls(handle, versions, next_vrf, non_membership, head, cert)


def audit_signature_message(
    old: SignedHead, new: SignedHead, batch: Sequence[tuple[bytes, bytes]], proof: bytes
) -> bytes:
    h = sha256(b"".join(i + v for i, v in batch), proof)
    return _AUDIT_LABEL + old.head.head_hash + new.head.head_hash + h


@dataclass(frozen=True, slots=True)
class AuditProof:
    """What a witness needs to check that ``new`` only adds ``batch`` to ``old``."""

    old: SignedHead
    new: SignedHead
    batch: tuple[tuple[bytes, bytes], ...]
    append_only: AppendOnlyProof
    signature: bytes

    @classmethod
    def create(
        cls,
        directory_key: SigningKey,
        old: SignedHead,
        new: SignedHead,
        batch: Sequence[tuple[bytes, bytes]],
        append_only: AppendOnlyProof,
    ) -> AuditProof:
        message = audit_signature_message(old, new, batch, append_only.encode())
        return cls(old, new, tuple(batch), append_only, directory_key.sign(message))

    def encode(self) -> bytes:
        w = Writer().raw(b"CVA1").raw(self.old.encode()).raw(self.new.encode())
        w.u32(len(self.batch))
        for index, value_hash in self.batch:
            w.fixed(index, 32).fixed(value_hash, 32)
        w.var32(self.append_only.encode(), MAX_APPEND_ONLY_PROOF_SIZE)
        return w.fixed(self.signature, 64).getvalue()

    @classmethod
    def decode_untrusted(cls, data: bytes) -> AuditProof:
        r = Reader(data)
        r.expect(b"CVA1", "audit proof magic")
        old = SignedHead.decode_untrusted(r.fixed(SIGNED_HEAD_SIZE, "old head"))
        new = SignedHead.decode_untrusted(r.fixed(SIGNED_HEAD_SIZE, "new head"))
        count = r.u32("batch size")
        if count > MAX_AUDIT_BATCH:
            raise DecodeError("audit batch too large")
        if r.remaining() < count * 64:
            raise DecodeError("truncated audit batch")
        batch = tuple((r.fixed(32, "index"), r.fixed(32, "value hash")) for _ in range(count))
        append_only = AppendOnlyProof.decode_untrusted(
            r.var32(MAX_APPEND_ONLY_PROOF_SIZE, "append-only proof")
        )
        signature = r.fixed(64, "audit signature")
        r.finish()
        return cls(old, new, batch, append_only, signature)

    def check_signature(self) -> None:
        """The directory vouched for this proof (same key as both heads)."""
        self.old.verify()
        self.new.verify()
        if self.old.directory_key != self.new.directory_key:
            raise VerificationError("audit-directory", "heads from different directories")
        message = audit_signature_message(self.old, self.new, self.batch, self.append_only.encode())
        try:
            FAST.sig.verify(self.new.directory_key, message, self.signature)
        except CryptoError:
            raise VerificationError("audit-signature", "audit proof not signed") from None

    def verify(self) -> None:
        """Signature, chaining, then the append-only check itself."""
        self.check_signature()
        if self.new.head.epoch != self.old.head.epoch + 1:
            raise VerificationError("audit-epoch", "heads are not consecutive")
        if self.new.head.previous != self.old.head.head_hash:
            raise VerificationError("audit-chain", "new head does not extend the old one")
        verify_append_only(self.old.head.root, self.new.head.root, self.batch, self.append_only)


@dataclass(frozen=True, slots=True)
class AppendOnlyViolation:
    """A signed audit proof that does not verify: the directory changed or
    removed a leaf (or lied about its batch), and signed that it did so."""

    audit: AuditProof

    def verify(self) -> None:
        """Raise VerificationError unless this really proves a violation."""
        self.audit.check_signature()
        try:
            self.audit.verify()
        except VerificationError as exc:
            if exc.check in ("append-only", "audit-epoch", "audit-chain"):
                return
            raise
        raise VerificationError("evidence-invalid", "the audit proof verifies")

    @property
    def directory_key(self) -> bytes:
        return self.audit.new.directory_key

    @property
    def directory_id(self) -> bytes:
        return self.audit.new.head.directory_id

    def encode(self) -> bytes:
        return b"CVV1" + self.audit.encode()

    @classmethod
    def decode_untrusted(cls, data: bytes) -> AppendOnlyViolation:
        if not data.startswith(b"CVV1"):
            raise DecodeError("not append-only violation evidence")
        return cls(AuditProof.decode_untrusted(data[4:]))
