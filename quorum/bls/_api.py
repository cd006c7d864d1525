"""The BLS signature interface both backends implement.

Ciphersuite ``BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_`` of the IETF BLS
signature draft (draft-irtf-cfrg-bls-signature-05): minimal-pubkey-size
(public keys in G1, 48 bytes compressed; signatures in G2, 96 bytes), with
proofs of possession against rogue-key attacks.

Secret keys are integers in [1, r). Points cross this interface only in
their compressed encodings, except for the parsed public keys that
certificate verification caches (:meth:`BlsBackend.parse_public_key_untrusted`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

__all__ = [
    "BLS_DST_POP",
    "BLS_DST_SIG",
    "BLS_PUBLIC_KEY_SIZE",
    "BLS_SECRET_KEY_SIZE",
    "BLS_SIGNATURE_SIZE",
    "CURVE_ORDER",
    "BlsBackend",
    "ParsedPublicKey",
]

BLS_DST_SIG = b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_"
BLS_DST_POP = b"BLS_POP_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_"
BLS_PUBLIC_KEY_SIZE = 48
BLS_SIGNATURE_SIZE = 96
BLS_SECRET_KEY_SIZE = 32
#: r, the order of the BLS12-381 prime-order subgroups.
CURVE_ORDER = 0x73EDA753299D7D483339D80809A1D80553BDA402FFFE5BFEFFFFFFFF00000001


class ParsedPublicKey:
    """A validated public key in a backend's own representation.

    Parsing (decompression, subgroup check) costs more than the group
    additions of aggregation, so certificate verification caches these.
    """

    __slots__ = ("encoded", "point")

    def __init__(self, encoded: bytes, point: object) -> None:
        self.encoded = encoded
        self.point = point


class BlsBackend(ABC):
    """One implementation of the ciphersuite. All methods are synchronous."""

    name: str

    @abstractmethod
    def key_gen(self, ikm: bytes, key_info: bytes = b"") -> int:
        """KeyGen from the draft (HKDF-based, salt "BLS-SIG-KEYGEN-SALT-"); ikm >= 32 bytes."""

    @abstractmethod
    def sk_to_pk(self, sk: int) -> bytes: ...

    @abstractmethod
    def sign(self, sk: int, message: bytes) -> bytes: ...

    @abstractmethod
    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        """False for any invalid input: bad encoding, off-curve, wrong subgroup, identity."""

    @abstractmethod
    def aggregate(self, signatures: Sequence[bytes]) -> bytes:
        """Raises DecodeError if any signature is invalid or the list is empty."""

    @abstractmethod
    def fast_aggregate_verify(
        self, public_keys: Sequence[bytes], message: bytes, signature: bytes
    ) -> bool: ...

    @abstractmethod
    def pop_prove(self, sk: int) -> bytes: ...

    @abstractmethod
    def pop_verify(self, public_key: bytes, proof: bytes) -> bool: ...

    @abstractmethod
    def key_validate(self, public_key: bytes) -> bool:
        """KeyValidate: a valid point in the G1 subgroup and not the identity."""

    @abstractmethod
    def parse_public_key_untrusted(self, public_key: bytes) -> ParsedPublicKey:
        """Validate and decompress once; raises DecodeError on any invalid key."""

    @abstractmethod
    def fast_aggregate_verify_parsed(
        self, public_keys: Sequence[ParsedPublicKey], message: bytes, signature: bytes
    ) -> bool:
        """FastAggregateVerify over keys parsed earlier by this backend."""
