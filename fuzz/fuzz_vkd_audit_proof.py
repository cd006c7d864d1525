"""Fuzz ``vkd.AuditProof.decode_untrusted``: only DecodeError, and a decoding
re-encodes to exactly the input. A decoded proof goes through the witnesses'
``audit_checker`` for its own two heads: that raises only VerificationError,
and passes only the audit proofs the directory really made.

Run: ``python fuzz/fuzz_vkd_audit_proof.py [corpus_dir] [-max_total_time=60]``
"""

from __future__ import annotations

import dataclasses
import functools
import sys

import atheris

with atheris.instrument_imports(include=["quorum", "vkd"]):
    import _vkd_seeds

    from chhaya import DecodeError, VerificationError
    from quorum import SIGNED_HEAD_SIZE
    from vkd import MAX_AUDIT_BATCH, AuditProof, audit_checker


@functools.cache
def _seed_list() -> tuple[bytes, ...]:
    world = _vkd_seeds.directory_world()
    first, second = (a.encode() for a in world.audits)
    forged = world.violation.audit.encode()
    # Signature kept, batch changed: no longer what the directory signed.
    unsigned = dataclasses.replace(world.audits[1], batch=world.audits[1].batch[:1]).encode()
    # A batch count that the remaining bytes cannot hold.
    at = 4 + 2 * SIGNED_HEAD_SIZE
    counted = second[:at] + MAX_AUDIT_BATCH.to_bytes(4, "big") + second[at + 4 :]
    return (first, second, forged, unsigned, counted, first[:-1], first + b"\x00", b"CVA1", b"")


def seeds() -> list[bytes]:
    return list(_seed_list())


@functools.cache
def _valid() -> frozenset[bytes]:
    return frozenset(a.encode() for a in _vkd_seeds.directory_world().audits)


def TestOneInput(data: bytes) -> None:
    try:
        proof = AuditProof.decode_untrusted(data)
    except DecodeError:
        return
    assert proof.encode() == data
    try:
        audit_checker(proof.old, proof.new, data)
    except VerificationError:
        return
    assert data in _valid()


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
