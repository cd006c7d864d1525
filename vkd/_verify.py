"""The one door to trust: ``verify_vkd_proof``, and the witnesses' audit check.

``verify_vkd_proof`` checks, in this order, and raises VerificationError
naming the first check that fails:

1. ``directory-equivocated``: the client holds evidence against the directory;
2. ``directory`` / ``directory-id`` / ``head-signature``: the head is signed
   by the trusted directory key;
3. ``certificate-*``: the quorum certificate, against the trusted witness set;
4. ``stale-head`` / ``head-time``: the head is fresh, and not from the future;
5. ``rollback`` / ``equivocation``: not older than the last head this client
   saw, and not a different head for that same epoch;
6. per version: ``vrf`` and ``vrf-index`` (the index is the VRF output of
   this handle and version), ``commitment`` (the opening matches the leaf),
   ``tree-membership``, ``version-epoch``, ``value``;
7. the next version: ``vrf``, ``vrf-index``, ``tree-non-membership`` (so the
   version shown is the newest);
8. for a lookup: ``not-registered`` (a verified absence), ``revoked``
   (tombstone), ``bundle-expired``, ``prekey-signature``.
"""

from __future__ import annotations

from dataclasses import dataclass

from chhaya import DecodeError, VerificationError
from quorum import (
    CertificateVerifier,
    EquivocationDetected,
    EquivocationEvidence,
    QuorumCertificate,
    SignedHead,
    SignedKind,
)

from ._bundle import DirectoryValue, IdentityBundle
from ._commitment import commitment, vrf_input
from ._proofs import AppendOnlyViolation, AuditProof, HistoryProof, LookupProof, VersionOpening
from .tree import NonMembershipProof, verify_membership, verify_non_membership
from .vrf import FAST_VRF

__all__ = [
    "AppendOnlyViolationDetected",
    "DirectoryTrust",
    "NotRegistered",
    "VerifiedBinding",
    "VerifiedHistory",
    "audit_checker",
    "verify_vkd_proof",
]

DEFAULT_MAX_HEAD_AGE_MS = 60 * 60 * 1000
MAX_CLOCK_SKEW_MS = 60_000


class NotRegistered(VerificationError):
    """The proof verified, and it shows the handle was never published."""


class AppendOnlyViolationDetected(VerificationError):
    """A witness's audit failed on a signed audit proof: ``evidence`` proves it."""

    def __init__(self, evidence: AppendOnlyViolation, detail: str) -> None:
        self.evidence = evidence
        super().__init__("append-only", detail)


@dataclass(frozen=True, slots=True)
class DirectoryTrust:
    """What a client trusts: the witness quorum, and optionally a pinned
    directory key. The directory's VRF key comes from the certified head,
    whose directory id commits to it."""

    verifier: CertificateVerifier
    directory_key: bytes | None = None
    max_head_age_ms: int = DEFAULT_MAX_HEAD_AGE_MS
    evidence: tuple[EquivocationEvidence | AppendOnlyViolation, ...] = ()

    def with_evidence(self, evidence: EquivocationEvidence | AppendOnlyViolation) -> DirectoryTrust:
        """Add verified evidence; a directory with any is refused from then on."""
        evidence.verify()
        return DirectoryTrust(
            self.verifier, self.directory_key, self.max_head_age_ms, (*self.evidence, evidence)
        )


@dataclass(frozen=True, slots=True)
class VerifiedBinding:
    handle: str
    version: int
    epoch: int
    bundle: IdentityBundle
    head: SignedHead


@dataclass(frozen=True, slots=True)
class VerifiedHistory:
    handle: str
    versions: tuple[tuple[int, int, DirectoryValue], ...]  # (version, epoch, value)
    head: SignedHead


def _evidence_directory(e: EquivocationEvidence | AppendOnlyViolation) -> bytes:
    return e.directory_id


def _verify_head(
    head: SignedHead,
    certificate: QuorumCertificate,
    trust: DirectoryTrust,
    last_seen: SignedHead | None,
    now: int,
) -> None:
    if any(_evidence_directory(e) == head.head.directory_id for e in trust.evidence):
        raise VerificationError("directory-equivocated", "this directory signed two histories")
    if trust.directory_key is not None and head.directory_key != trust.directory_key:
        raise VerificationError("directory", "head is signed by another directory")
    head.verify()
    trust.verifier.verify(certificate, SignedKind.EPOCH_HEAD, head.head.head_hash)
    if now - head.head.time_ms > trust.max_head_age_ms:
        raise VerificationError("stale-head", f"head is {now - head.head.time_ms} ms old")
    if head.head.time_ms > now + MAX_CLOCK_SKEW_MS:
        raise VerificationError("head-time", "head is from the future")
    if last_seen is not None:
        if head.head.epoch < last_seen.head.epoch:
            raise VerificationError(
                "rollback", f"epoch {head.head.epoch} < last seen {last_seen.head.epoch}"
            )
        if (
            head.head.epoch == last_seen.head.epoch
            and head.head.head_hash != last_seen.head.head_hash
        ):
            raise EquivocationDetected(EquivocationEvidence.from_heads(last_seen, head))


def _verify_index(
    handle: str, version: int, vrf_proof: bytes, index: bytes, head: SignedHead
) -> None:
    beta = FAST_VRF.verify(head.vrf_key, vrf_input(handle, version), vrf_proof)
    if beta[:32] != index:
        raise VerificationError("vrf-index", "proof is for another index")


def _verify_version(
    handle: str, version: int, opening: VersionOpening, head: SignedHead, trust: DirectoryTrust
) -> DirectoryValue:
    _verify_index(handle, version, opening.vrf_proof, opening.membership.index, head)
    expected = commitment(opening.opening, handle, version, opening.epoch, opening.value)
    if expected != opening.membership.value_hash:
        raise VerificationError("commitment", "opening does not match the leaf")
    verify_membership(head.head.root, opening.membership)
    if opening.epoch > head.head.epoch:
        raise VerificationError("version-epoch", "version claims a later epoch than the head")
    try:
        return DirectoryValue.decode_untrusted(opening.value)
    except DecodeError as exc:
        raise VerificationError("value", str(exc)) from None


def _verify_absence(
    handle: str,
    version: int,
    vrf_proof: bytes,
    proof: NonMembershipProof,
    head: SignedHead,
    trust: DirectoryTrust,
) -> None:
    _verify_index(handle, version, vrf_proof, proof.index, head)
    verify_non_membership(head.head.root, proof)


def verify_vkd_proof(
    proof: LookupProof | HistoryProof,
    trust: DirectoryTrust,
    last_seen_head: SignedHead | None,
    now: int,
) -> VerifiedBinding | VerifiedHistory:
    """The only way anything from the directory becomes trusted."""
    _verify_head(proof.head, proof.certificate, trust, last_seen_head, now)
    if isinstance(proof, HistoryProof):
        entries = []
        previous_epoch = 0
        for version, opening in enumerate(proof.versions, start=1):
            value = _verify_version(proof.handle, version, opening, proof.head, trust)
            if opening.epoch < previous_epoch:
                raise VerificationError("history-order", "versions out of epoch order")
            previous_epoch = opening.epoch
            entries.append((version, opening.epoch, value))
        _verify_absence(
            proof.handle,
            len(proof.versions) + 1,
            proof.next_vrf_proof,
            proof.non_membership,
            proof.head,
            trust,
        )
        return VerifiedHistory(proof.handle, tuple(entries), proof.head)
    if proof.latest is None:
        _verify_absence(
            proof.handle, 1, proof.next_vrf_proof, proof.non_membership, proof.head, trust
        )
        raise NotRegistered("not-registered", f"{proof.handle!r} is not in the directory")
    value = _verify_version(proof.handle, proof.version, proof.latest, proof.head, trust)
    _verify_absence(
        proof.handle,
        proof.version + 1,
        proof.next_vrf_proof,
        proof.non_membership,
        proof.head,
        trust,
    )
    if value.bundle is None:
        raise VerificationError("revoked", f"{proof.handle!r} has been revoked")
    value.bundle.check(now)
    return VerifiedBinding(
        proof.handle, proof.version, proof.latest.epoch, value.bundle, proof.head
    )


def audit_checker(old: SignedHead, new: SignedHead, proof: bytes) -> None:
    """The :class:`quorum.AuditChecker` a witness of this directory uses."""
    try:
        audit = AuditProof.decode_untrusted(proof)
    except DecodeError as exc:
        raise VerificationError("audit-proof", str(exc)) from None
    if audit.old != old or audit.new != new:
        raise VerificationError("audit-heads", "audit proof is for other heads")
    audit.check_signature()
    try:
        audit.verify()
    except VerificationError as exc:
        if exc.check == "append-only":
            raise AppendOnlyViolationDetected(AppendOnlyViolation(audit), str(exc)) from None
        raise
