"""Witness sets: who the witnesses are and how many must co-sign.

A set lists members in a fixed order (a member's position is its bit in a
certificate's signer bitmap), each with a BLS public key and a proof of
possession, and a threshold t. The set id is the SHA-256 of the canonical
encoding, so it names exactly one list, order and threshold.

The threshold must be a strict majority (2t > n): with less, two disjoint
groups of honest-looking witnesses could certify two different heads for
one epoch without any single witness signing twice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from chhaya import DecodeError, VerificationError
from chhaya.crypto import sha256
from chhaya.wire import Reader, Writer

from .bls import BLS_PUBLIC_KEY_SIZE, BLS_SIGNATURE_SIZE, BlsBackend

__all__ = [
    "MAX_WITNESSES",
    "MAX_WITNESS_ID_LEN",
    "WitnessMember",
    "WitnessSet",
    "valid_witness_id",
]

MAX_WITNESSES = 1024
MAX_WITNESS_ID_LEN = 64
_MAGIC = b"CWS1"
_SET_ID_LABEL = b"chhaya/quorum/v1/set-id"
_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def valid_witness_id(witness_id: str) -> bool:
    return _ID_RE.fullmatch(witness_id) is not None


@dataclass(frozen=True, slots=True)
class WitnessMember:
    witness_id: str
    public_key: bytes
    proof_of_possession: bytes


@dataclass(frozen=True, slots=True)
class WitnessSet:
    members: tuple[WitnessMember, ...]
    threshold: int

    # ------------------------------------------------------------ encoding

    def encode(self) -> bytes:
        w = Writer().raw(_MAGIC).u16(self.threshold).u16(len(self.members))
        for m in self.members:
            w.utf8(m.witness_id, MAX_WITNESS_ID_LEN)
            w.fixed(m.public_key, BLS_PUBLIC_KEY_SIZE)
            w.fixed(m.proof_of_possession, BLS_SIGNATURE_SIZE)
        return w.getvalue()

    @classmethod
    def decode_untrusted(cls, data: bytes) -> WitnessSet:
        """Parse only; call :meth:`validate` before trusting the set."""
        r = Reader(data)
        r.expect(_MAGIC, "witness set magic")
        threshold = r.u16("threshold")
        count = r.u16("member count")
        if count > MAX_WITNESSES:
            raise DecodeError("too many witnesses")
        members = []
        for _ in range(count):
            witness_id = r.utf8(MAX_WITNESS_ID_LEN, "witness id")
            if not valid_witness_id(witness_id):
                raise DecodeError("invalid witness id")
            members.append(
                WitnessMember(
                    witness_id,
                    r.fixed(BLS_PUBLIC_KEY_SIZE, "public key"),
                    r.fixed(BLS_SIGNATURE_SIZE, "proof of possession"),
                )
            )
        r.finish()
        return cls(tuple(members), threshold)

    # ------------------------------------------------------------- queries

    @property
    def set_id(self) -> bytes:
        return sha256(_SET_ID_LABEL, self.encode())

    @property
    def size(self) -> int:
        return len(self.members)

    @property
    def bitmap_size(self) -> int:
        return (len(self.members) + 7) // 8

    def index_of(self, witness_id: str) -> int:
        for i, m in enumerate(self.members):
            if m.witness_id == witness_id:
                return i
        raise KeyError(witness_id)

    # ---------------------------------------------------------- validation

    def validate(self, backend: BlsBackend) -> None:
        """Raise VerificationError unless every rule holds.

        Checks: 1..MAX_WITNESSES members, unique ids and keys, a majority
        threshold, and for every key a valid point and a valid proof of
        possession (which stops rogue-key attacks on aggregation).
        """
        n = len(self.members)
        if not 1 <= n <= MAX_WITNESSES:
            raise VerificationError("witness-set-size", f"{n} witnesses")
        if not (1 <= self.threshold <= n and 2 * self.threshold > n):
            raise VerificationError(
                "witness-set-threshold", f"threshold {self.threshold} of {n} is not a majority"
            )
        if len({m.witness_id for m in self.members}) != n:
            raise VerificationError("witness-set-duplicate", "duplicate witness id")
        if len({m.public_key for m in self.members}) != n:
            raise VerificationError("witness-set-duplicate", "duplicate public key")
        for m in self.members:
            if not valid_witness_id(m.witness_id):
                raise VerificationError("witness-set-id", f"invalid witness id {m.witness_id!r}")
            if not backend.key_validate(m.public_key):
                raise VerificationError("witness-key", f"invalid public key for {m.witness_id}")
            if not backend.pop_verify(m.public_key, m.proof_of_possession):
                raise VerificationError(
                    "proof-of-possession", f"invalid proof of possession for {m.witness_id}"
                )
