"""The witness: co-signs the next epoch head only if it extends what it signed.

How it works
------------
A witness remembers the last head it signed (in a :class:`WitnessStore`,
which must be durable). Asked to sign a new head, it checks, in order:

1. the directory's signature, and that the head is from the directory it
   witnesses;
2. the epoch: the same epoch as the last signed head is fine only for the
   very same head (the signature is re-issued); a different head for that
   epoch is equivocation, answered with :class:`EquivocationEvidence`;
   anything but ``last + 1`` is refused;
3. that ``previous`` is the hash of the last signed head, and that time does
   not run backwards or too far ahead of the witness's clock;
4. the append-only audit proof, through an :class:`AuditChecker` that the key
   directory provides.

Only then does it record ``(epoch, head)`` in the store, and only after the
store returns does it compute and release the signature. A crash between the
two loses a signature, never safety: after a restart the witness will re-sign
that same head and refuse any other head for the epoch.
"""

from __future__ import annotations

from typing import Protocol

from chhaya import LocalProtocolError, VerificationError

from ._domain import SignedKind, signing_message
from ._evidence import EquivocationEvidence
from ._head import GENESIS_PREVIOUS, SignedHead, directory_id_for
from .bls import BlsBackend

__all__ = [
    "AuditChecker",
    "EquivocationDetected",
    "InMemoryWitnessStore",
    "Witness",
    "WitnessStore",
]

#: How far ahead of the witness's clock a head's time may be.
MAX_HEAD_CLOCK_SKEW_MS = 60_000


class WitnessStore(Protocol):
    """Durable memory of the last head signed. ``record`` must be durable on return."""

    def load(self) -> SignedHead | None: ...

    def record(self, head: SignedHead) -> None: ...


class AuditChecker(Protocol):
    """Checks that ``new`` extends ``old`` append-only, given the proof bytes.

    Raises VerificationError (check ``append-only``) when it does not.
    """

    def __call__(self, old: SignedHead, new: SignedHead, proof: bytes) -> None: ...


class EquivocationDetected(VerificationError):
    """The directory signed two heads for one epoch; ``evidence`` proves it."""

    def __init__(self, evidence: EquivocationEvidence) -> None:
        self.evidence = evidence
        super().__init__("equivocation", f"two heads for epoch {evidence.epoch}")


class InMemoryWitnessStore:
    """For tests and for witnesses that need no restart safety."""

    def __init__(self) -> None:
        self._head: SignedHead | None = None

    def load(self) -> SignedHead | None:
        return self._head

    def record(self, head: SignedHead) -> None:
        self._head = head


class Witness:
    def __init__(
        self,
        *,
        secret_key: int,
        backend: BlsBackend,
        set_id: bytes,
        directory_key: bytes,
        directory_vrf_key: bytes,
        store: WitnessStore,
        audit: AuditChecker,
        genesis_root: bytes | None = None,
    ) -> None:
        self._sk = secret_key
        self._backend = backend
        self._set_id = set_id
        self._directory_key = directory_key
        self._directory_id = directory_id_for(directory_key, directory_vrf_key)
        self._store = store
        self._audit = audit
        # The append-only argument is an induction from the first head, so a
        # directory whose genesis must be empty says so here.
        self._genesis_root = genesis_root

    @property
    def last_signed(self) -> SignedHead | None:
        return self._store.load()

    def sign_head(self, signed: SignedHead, audit_proof: bytes, now: int) -> bytes:
        """Return this witness's BLS signature over the head, or raise."""
        signed.verify()
        head = signed.head
        if signed.directory_key != self._directory_key or head.directory_id != self._directory_id:
            raise VerificationError("directory", "head is from a directory we do not witness")
        if head.time_ms > now + MAX_HEAD_CLOCK_SKEW_MS:
            raise VerificationError("head-time", "head time is too far in the future")
        last = self._store.load()
        if last is None:
            if head.epoch != 0 or head.previous != GENESIS_PREVIOUS:
                raise VerificationError("epoch", "a witness starts at the genesis head")
            if self._genesis_root is not None and head.root != self._genesis_root:
                raise VerificationError("genesis-root", "the genesis head must be empty")
        else:
            if head.epoch == last.head.epoch:
                if head.head_hash == last.head.head_hash:
                    return self._sign(signed)  # the same head again: idempotent
                raise EquivocationDetected(EquivocationEvidence.from_heads(last, signed))
            if head.epoch != last.head.epoch + 1:
                raise VerificationError(
                    "epoch", f"expected epoch {last.head.epoch + 1}, got {head.epoch}"
                )
            if head.previous != last.head.head_hash:
                raise VerificationError("previous-hash", "head does not extend the last one")
            if head.time_ms < last.head.time_ms:
                raise VerificationError("head-time", "head time runs backwards")
            self._audit(last, signed, audit_proof)
        self._store.record(signed)  # durable before the signature exists
        return self._sign(signed)

    def _sign(self, signed: SignedHead) -> bytes:
        if self._sk <= 0:
            raise LocalProtocolError("witness has no secret key")
        message = signing_message(SignedKind.EPOCH_HEAD, self._set_id, signed.head.head_hash)
        return self._backend.sign(self._sk, message)

    def __repr__(self) -> str:
        return "Witness(<secret key redacted>)"
