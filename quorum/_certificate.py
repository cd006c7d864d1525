"""Quorum certificates: one aggregate BLS signature plus a signer bitmap.

    QuorumCertificate = "CQC1" || set id (32) || bitmap var16 || signature (96)

Bit i (bit ``i % 8`` of byte ``i // 8``, least significant first) says that
member i of the set signed. The bitmap has exactly ``ceil(n / 8)`` bytes and
no bit at or past n, so each set of signers has one encoding. Verification
checks, in order: the set id, the bitmap's shape, the threshold, then one
FastAggregateVerify over the signers' public keys, which the verifier parsed
once and keeps.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from chhaya import DecodeError, VerificationError
from chhaya.wire import Reader, Writer

from ._domain import SignedKind, signing_message
from ._witness_set import MAX_WITNESSES, WitnessSet
from .bls import BLS_SIGNATURE_SIZE, BlsBackend, ParsedPublicKey

__all__ = [
    "CertificateVerifier",
    "QuorumCertificate",
    "assemble_certificate",
    "signers_from_bitmap",
]

_MAGIC = b"CQC1"
_MAX_BITMAP = (MAX_WITNESSES + 7) // 8


def signers_from_bitmap(bitmap: bytes, n: int) -> list[int]:
    return [i for i in range(min(n, len(bitmap) * 8)) if bitmap[i // 8] >> (i % 8) & 1]


def _bitmap(indices: list[int], n: int) -> bytes:
    out = bytearray((n + 7) // 8)
    for i in indices:
        out[i // 8] |= 1 << (i % 8)
    return bytes(out)


@dataclass(frozen=True, slots=True)
class QuorumCertificate:
    set_id: bytes
    signers: bytes
    signature: bytes

    def encode(self) -> bytes:
        return (
            Writer()
            .raw(_MAGIC)
            .fixed(self.set_id, 32)
            .var16(self.signers, _MAX_BITMAP)
            .fixed(self.signature, BLS_SIGNATURE_SIZE)
            .getvalue()
        )

    @classmethod
    def decode_untrusted(cls, data: bytes) -> QuorumCertificate:
        r = Reader(data)
        r.expect(_MAGIC, "certificate magic")
        out = cls(
            set_id=r.fixed(32, "set id"),
            signers=r.var16(_MAX_BITMAP, "signer bitmap"),
            signature=r.fixed(BLS_SIGNATURE_SIZE, "aggregate signature"),
        )
        r.finish()
        return out


def assemble_certificate(
    witness_set: WitnessSet,
    backend: BlsBackend,
    kind: SignedKind,
    digest: bytes,
    partials: Mapping[str, bytes],
) -> QuorumCertificate:
    """Check each witness's signature, then aggregate.

    ``partials`` maps witness ids to their signatures; a mapping cannot hold
    a signer twice. An unknown witness or a bad partial signature is refused
    by name, so one faulty witness cannot spoil the aggregate silently.
    """
    set_id = witness_set.set_id
    message = signing_message(kind, set_id, digest)
    indices = []
    for witness_id, signature in partials.items():
        try:
            i = witness_set.index_of(witness_id)
        except KeyError:
            raise VerificationError("unknown-witness", witness_id) from None
        if not backend.verify(witness_set.members[i].public_key, message, signature):
            raise VerificationError("partial-signature", f"bad signature from {witness_id}")
        indices.append(i)
    if len(indices) < witness_set.threshold:
        raise VerificationError(
            "certificate-threshold", f"{len(indices)} of {witness_set.threshold} signatures"
        )
    indices.sort()
    aggregate = backend.aggregate([partials[witness_set.members[i].witness_id] for i in indices])
    return QuorumCertificate(set_id, _bitmap(indices, witness_set.size), aggregate)


class CertificateVerifier:
    """Verifies certificates of one validated witness set; caches parsed keys."""

    def __init__(self, witness_set: WitnessSet, backend: BlsBackend) -> None:
        witness_set.validate(backend)
        self.witness_set = witness_set
        self.backend = backend
        self.set_id = witness_set.set_id
        try:
            self._keys: list[ParsedPublicKey] = [
                backend.parse_public_key_untrusted(m.public_key) for m in witness_set.members
            ]
        except DecodeError:  # validate() already checked; keep the error typed
            raise VerificationError("witness-key", "unparseable public key") from None

    def verify(self, certificate: QuorumCertificate, kind: SignedKind, digest: bytes) -> list[int]:
        """Return the signer indices, or raise VerificationError naming the check."""
        ws = self.witness_set
        if certificate.set_id != self.set_id:
            raise VerificationError("certificate-set", "certificate is for another witness set")
        if len(certificate.signers) != ws.bitmap_size:
            raise VerificationError("certificate-bitmap", "bitmap length does not match the set")
        n = ws.size
        if n % 8 and certificate.signers[-1] >> (n % 8):
            raise VerificationError("certificate-bitmap", "bit set past the last witness")
        signers = signers_from_bitmap(certificate.signers, n)
        if len(signers) < ws.threshold:
            raise VerificationError(
                "certificate-threshold", f"{len(signers)} signers, {ws.threshold} needed"
            )
        message = signing_message(kind, self.set_id, digest)
        keys = [self._keys[i] for i in signers]
        if not self.backend.fast_aggregate_verify_parsed(keys, message, certificate.signature):
            raise VerificationError("certificate-signature", "aggregate signature is invalid")
        return signers
