"""Fuzz ``quorum.QuorumCertificate.decode_untrusted``: only DecodeError, and a
decoding re-encodes to exactly the input. A decoded certificate is verified
against a fixed 3-of-4 set and digest: that raises only VerificationError,
and succeeds only for the certificates the witnesses really made (one per
signer set of three or four).

Run: ``python fuzz/fuzz_quorum_certificate.py [corpus_dir] [-max_total_time=60]``
"""

from __future__ import annotations

import functools
import sys

import atheris

with atheris.instrument_imports(include=["quorum"]):
    import _seeds
    import _vkd_seeds

    from chhaya import DecodeError, VerificationError
    from quorum import CertificateVerifier, QuorumCertificate, SignedKind
    from quorum.bls import BLS_SIGNATURE_SIZE

KIND = SignedKind.EPOCH_HEAD
DIGEST = _seeds.DeterministicRng(b"seed/quorum-certificate/digest")(32)


@functools.cache
def _verifier() -> CertificateVerifier:
    return CertificateVerifier(_vkd_seeds.quorum().witness_set, _vkd_seeds.backend())


@functools.cache
def _valid() -> frozenset[bytes]:
    return _vkd_seeds.valid_certificates(_vkd_seeds.quorum(), KIND, DIGEST)


@functools.cache
def _seed_list() -> tuple[bytes, ...]:
    q = _vkd_seeds.quorum()
    rng = _seeds.DeterministicRng(b"seed/quorum-certificate")
    valid = _vkd_seeds.certify(q, KIND, DIGEST).encode()
    others = sorted(_valid() - {valid})
    set_id = q.witness_set.set_id
    two = _vkd_seeds.certify(q, KIND, DIGEST, (0, 1, 2))
    under = QuorumCertificate(set_id, b"\x03", two.signature).encode()  # 2 of 3 needed
    past = QuorumCertificate(set_id, b"\x17", two.signature).encode()  # bit 4 of 4 members
    wide = QuorumCertificate(rng(32), b"\xff" * 128, rng(BLS_SIGNATURE_SIZE)).encode()
    empty = QuorumCertificate(set_id, b"", bytes(BLS_SIGNATURE_SIZE)).encode()
    return (valid, *others, under, past, wide, empty, valid[:-1], valid + b"\x00", b"CQC1", b"")


def seeds() -> list[bytes]:
    return list(_seed_list())


def TestOneInput(data: bytes) -> None:
    try:
        certificate = QuorumCertificate.decode_untrusted(data)
    except DecodeError:
        return
    assert certificate.encode() == data
    try:
        signers = _verifier().verify(certificate, KIND, DIGEST)
    except VerificationError:
        return
    assert len(signers) >= _vkd_seeds.THRESHOLD
    assert data in _valid()


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
