"""Equivocation evidence: proof that a directory signed two histories.

Two heads signed by the same directory key for the same epoch, with
different contents, cannot both be honest. The pair verifies by itself, so
any node can check it, gossip it, and refuse the directory from then on.

    EquivocationEvidence = "CEV1" || SignedHead || SignedHead
"""

from __future__ import annotations

from dataclasses import dataclass

from chhaya import DecodeError, VerificationError
from chhaya.wire import Reader

from ._head import SIGNED_HEAD_SIZE, SignedHead

__all__ = ["EquivocationEvidence"]

_MAGIC = b"CEV1"


@dataclass(frozen=True, slots=True)
class EquivocationEvidence:
    first: SignedHead
    second: SignedHead

    @classmethod
    def from_heads(cls, a: SignedHead, b: SignedHead) -> EquivocationEvidence:
        """Order the pair canonically (by head hash) and check it."""
        first, second = sorted((a, b), key=lambda h: h.head.head_hash)
        evidence = cls(first, second)
        evidence.verify()
        return evidence

    @property
    def directory_id(self) -> bytes:
        return self.first.head.directory_id

    @property
    def epoch(self) -> int:
        return self.first.head.epoch

    def verify(self) -> None:
        """Raise VerificationError unless this really proves equivocation."""
        self.first.verify()
        self.second.verify()
        if (self.first.directory_key, self.first.vrf_key) != (
            self.second.directory_key,
            self.second.vrf_key,
        ):
            raise VerificationError("evidence-directory", "heads from different directories")
        if self.first.head.epoch != self.second.head.epoch:
            raise VerificationError("evidence-epoch", "heads are for different epochs")
        if self.first.head.head_hash == self.second.head.head_hash:
            raise VerificationError("evidence-identical", "the two heads are the same")

    def encode(self) -> bytes:
        return _MAGIC + self.first.encode() + self.second.encode()

    @classmethod
    def decode_untrusted(cls, data: bytes) -> EquivocationEvidence:
        """Parse only; call :meth:`verify` before acting on it."""
        r = Reader(data)
        r.expect(_MAGIC, "evidence magic")
        first = SignedHead.decode_untrusted(r.fixed(SIGNED_HEAD_SIZE, "first head"))
        second = SignedHead.decode_untrusted(r.fixed(SIGNED_HEAD_SIZE, "second head"))
        r.finish()
        if not first.head.head_hash < second.head.head_hash:
            raise DecodeError("evidence heads out of canonical order")  # one encoding each
        return cls(first, second)
