"""Fuzz the VRF proof checks: ``verify`` raises only VerificationError,
``proof_to_hash`` only DecodeError, and the libsodium and pure-Python paths
parse every proof alike.

The input is the proof; it is verified against a fixed key and alpha, so the
first seed (the honest proof) verifies, and whatever verifies must hash to
the same output that ``proof_to_hash`` gives.

Run: ``python fuzz/fuzz_vrf_proof.py [corpus_dir] [-max_total_time=60]``
"""

from __future__ import annotations

import hashlib
import sys

import atheris

with atheris.instrument_imports(include=["vkd"]):
    from chhaya import DecodeError, VerificationError
    from vkd.vrf import FAST_VRF, REFERENCE_VRF, VRF_PROOF_SIZE

SECRET_KEY = hashlib.sha256(b"chhaya/fuzz/vrf").digest()
PUBLIC_KEY = FAST_VRF.public_key(SECRET_KEY)
ALPHA = b"alice@example.org\x00\x00\x00\x01"

#: q, the order of the base point, little-endian: an s just out of range.
_GROUP_ORDER = (2**252 + 27742317777372353535851937790883648493).to_bytes(32, "little")
#: The point of order 2, (0, -1): a Gamma that decodes but is of small order.
_ORDER_TWO = bytes.fromhex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f")


def seeds() -> list[bytes]:
    proof = FAST_VRF.prove(SECRET_KEY, ALPHA)
    return [
        proof,
        FAST_VRF.prove(SECRET_KEY, b"bob@example.org\x00\x00\x00\x01"),
        FAST_VRF.prove(hashlib.sha256(b"another key").digest(), ALPHA),
        _ORDER_TWO + proof[32:],
        proof[:48] + _GROUP_ORDER,
        proof[:-1],
        proof + b"\x00",
        bytes(VRF_PROOF_SIZE),
    ]


def TestOneInput(data: bytes) -> None:
    try:
        beta: bytes | None = FAST_VRF.proof_to_hash(data)
    except DecodeError:
        beta = None
    try:
        reference_beta: bytes | None = REFERENCE_VRF.proof_to_hash(data)
    except DecodeError:
        reference_beta = None
    assert beta == reference_beta
    try:
        verified = FAST_VRF.verify(PUBLIC_KEY, ALPHA, data)
    except VerificationError:
        return
    assert verified == beta


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
