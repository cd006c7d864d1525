"""Rotation to a new witness set, certified by a threshold of the old one.

    SetRotation = "CSR1" || new WitnessSet var32 || QuorumCertificate var16
    the certificate is over kind SET_ROTATION, digest = new set id

A client that trusts the old set moves to the new one only through a
rotation that verifies under the old set.
"""

from __future__ import annotations

from dataclasses import dataclass

from chhaya import DecodeError, VerificationError
from chhaya.wire import Reader, Writer

from ._certificate import CertificateVerifier, QuorumCertificate
from ._domain import SignedKind
from ._witness_set import WitnessSet
from .bls import BlsBackend

__all__ = ["SetRotation"]

_MAGIC = b"CSR1"
_MAX_SET = 4 + 4 + 1024 * (2 + 64 + 48 + 96)
_MAX_CERT = 4 + 32 + 2 + 128 + 96


@dataclass(frozen=True, slots=True)
class SetRotation:
    new_set: WitnessSet
    certificate: QuorumCertificate

    def encode(self) -> bytes:
        return (
            Writer()
            .raw(_MAGIC)
            .var32(self.new_set.encode(), _MAX_SET)
            .var16(self.certificate.encode(), _MAX_CERT)
            .getvalue()
        )

    @classmethod
    def decode_untrusted(cls, data: bytes) -> SetRotation:
        r = Reader(data)
        r.expect(_MAGIC, "rotation magic")
        new_set = WitnessSet.decode_untrusted(r.var32(_MAX_SET, "new set"))
        cert = QuorumCertificate.decode_untrusted(r.var16(_MAX_CERT, "certificate"))
        r.finish()
        return cls(new_set, cert)

    def verify(self, old: CertificateVerifier, backend: BlsBackend) -> CertificateVerifier:
        """Return a verifier for the new set if the old set certified it."""
        old.verify(self.certificate, SignedKind.SET_ROTATION, self.new_set.set_id)
        try:
            return CertificateVerifier(self.new_set, backend)
        except DecodeError:
            raise VerificationError("witness-set", "new set does not parse") from None
