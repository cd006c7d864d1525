"""Fuzz ``quorum.SetRotation.decode_untrusted``: only DecodeError, and a decoding
re-encodes to exactly the input. ``verify()`` under the old 3-of-4 set raises
only VerificationError and succeeds only for the rotation that set certified
(under any signer set that meets the threshold).

Run: ``python fuzz/fuzz_quorum_set_rotation.py [corpus_dir] [-max_total_time=60]``
"""

from __future__ import annotations

import functools
import sys

import atheris

with atheris.instrument_imports(include=["quorum"]):
    import _vkd_seeds

    from chhaya import DecodeError, VerificationError
    from quorum import CertificateVerifier, QuorumCertificate, SetRotation, SignedKind, WitnessSet

KIND = SignedKind.SET_ROTATION


def _new_set() -> WitnessSet:
    return _vkd_seeds.quorum(b"n", 5, 3).witness_set


@functools.cache
def _old_verifier() -> CertificateVerifier:
    return CertificateVerifier(_vkd_seeds.quorum().witness_set, _vkd_seeds.backend())


@functools.cache
def _valid() -> frozenset[bytes]:
    """Every rotation the old set certified: to the new set, and to itself."""
    old = _vkd_seeds.quorum()
    out = set()
    for target in (_new_set(), old.witness_set):
        for c in _vkd_seeds.valid_certificates(old, KIND, target.set_id):
            out.add(SetRotation(target, QuorumCertificate.decode_untrusted(c)).encode())
    return frozenset(out)


@functools.cache
def _seed_list() -> tuple[bytes, ...]:
    old, new = _vkd_seeds.quorum(), _new_set()
    valid = SetRotation(new, _vkd_seeds.certify(old, KIND, new.set_id)).encode()
    # The new set certifying itself, and the old set's certificate of the wrong kind.
    self_signed = SetRotation(
        new, _vkd_seeds.certify(_vkd_seeds.quorum(b"n", 5, 3), KIND, new.set_id)
    )
    wrong_kind = SetRotation(new, _vkd_seeds.certify(old, SignedKind.MESSAGE, new.set_id))
    back = SetRotation(old.witness_set, _vkd_seeds.certify(old, KIND, old.witness_set.set_id))
    return (
        valid,
        self_signed.encode(),
        wrong_kind.encode(),
        back.encode(),
        valid[:-1],
        valid + b"\x00",
        b"CSR1\x00\x00\x00\x04CWS1",
        b"",
    )


def seeds() -> list[bytes]:
    return list(_seed_list())


def TestOneInput(data: bytes) -> None:
    try:
        rotation = SetRotation.decode_untrusted(data)
    except DecodeError:
        return
    assert rotation.encode() == data
    try:
        verifier = rotation.verify(_old_verifier(), _vkd_seeds.backend())
    except VerificationError:
        return
    assert verifier.set_id == rotation.new_set.set_id
    assert data in _valid()


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
