"""What a client believes about a directory's history.

How it works
------------
A :class:`HeadTracker` follows one directory under one trusted witness set.
``accept`` takes a signed head and its quorum certificate and checks the
directory signature, the certificate, and that the epoch never goes back
below the newest head accepted so far (no rollback). A second, different
head for an epoch already seen is equivocation: the tracker builds the
evidence, records it, and from then on refuses the directory. Evidence
received from others (``add_evidence``) has the same effect.
"""

from __future__ import annotations

from chhaya import VerificationError

from ._certificate import CertificateVerifier, QuorumCertificate
from ._domain import SignedKind
from ._evidence import EquivocationEvidence
from ._head import SignedHead, directory_id_for

__all__ = ["HeadTracker"]

_MAX_REMEMBERED_EPOCHS = 1024


class HeadTracker:
    def __init__(
        self, verifier: CertificateVerifier, directory_key: bytes, directory_vrf_key: bytes
    ) -> None:
        self._verifier = verifier
        self._directory_key = directory_key
        self._directory_id = directory_id_for(directory_key, directory_vrf_key)
        self._latest: SignedHead | None = None
        self._seen: dict[int, SignedHead] = {}
        self._evidence: EquivocationEvidence | None = None

    @property
    def latest(self) -> SignedHead | None:
        return self._latest

    @property
    def evidence(self) -> EquivocationEvidence | None:
        return self._evidence

    def check_directory_trusted(self) -> None:
        if self._evidence is not None:
            raise VerificationError("directory-equivocated", "this directory signed two histories")

    def add_evidence(self, evidence: EquivocationEvidence) -> None:
        """Verify evidence about our directory; once valid, refuse it for good."""
        evidence.verify()
        if evidence.directory_id != self._directory_id:
            raise VerificationError("evidence-directory", "evidence is about another directory")
        self._evidence = evidence

    def accept(self, signed: SignedHead, certificate: QuorumCertificate) -> SignedHead:
        """Check a certified head; return it if it is now the latest trusted one."""
        self.check_directory_trusted()
        signed.verify()
        if signed.head.directory_id != self._directory_id:
            raise VerificationError("directory", "head is from another directory")
        self._verifier.verify(certificate, SignedKind.EPOCH_HEAD, signed.head.head_hash)
        epoch = signed.head.epoch
        seen = self._seen.get(epoch)
        if seen is not None and seen.head.head_hash != signed.head.head_hash:
            self.add_evidence(EquivocationEvidence.from_heads(seen, signed))
            self.check_directory_trusted()
        latest = self._latest
        if latest is not None and epoch < latest.head.epoch:
            raise VerificationError(
                "rollback", f"epoch {epoch} is older than epoch {latest.head.epoch} already seen"
            )
        self._seen[epoch] = signed
        if len(self._seen) > _MAX_REMEMBERED_EPOCHS:
            del self._seen[min(self._seen)]
        if latest is None or epoch > latest.head.epoch:
            self._latest = signed
        return signed
