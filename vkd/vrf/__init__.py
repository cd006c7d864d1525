"""ECVRF-EDWARDS25519-SHA512-TAI (RFC 9381) for the key directory's private index.

Two paths behind one interface, :class:`Vrf`, which must agree byte for byte:

- :data:`FAST_VRF` (:class:`FastVrf`) does its group operations in libsodium
  through pynacl's bindings; use it for real keys;
- :data:`REFERENCE_VRF` (:class:`ReferenceVrf`) is pure Python, slow and not
  constant time, and exists to cross-check the fast path.

``verify`` raises :class:`~chhaya.VerificationError` (check ``"vrf"``) for
every invalid input and returns the 64-byte output otherwise;
``proof_to_hash`` raises :class:`~chhaya.DecodeError` for a malformed proof.
"""

from ._api import (
    VRF_OUTPUT_SIZE,
    VRF_PROOF_SIZE,
    VRF_PUBLIC_KEY_SIZE,
    VRF_SECRET_KEY_SIZE,
    Vrf,
)
from ._fast import FastVrf
from ._reference import ReferenceVrf
from ._suite import ProveTranscript

FAST_VRF = FastVrf()
REFERENCE_VRF = ReferenceVrf()

__all__ = [
    "FAST_VRF",
    "REFERENCE_VRF",
    "VRF_OUTPUT_SIZE",
    "VRF_PROOF_SIZE",
    "VRF_PUBLIC_KEY_SIZE",
    "VRF_SECRET_KEY_SIZE",
    "FastVrf",
    "ProveTranscript",
    "ReferenceVrf",
    "Vrf",
]
