"""Witness quorum: BLS12-381 co-signed epoch certificates and equivocation
evidence. Sans-IO: storage and the append-only check come in through small
interfaces (:class:`WitnessStore`, :class:`AuditChecker`).
"""

from ._certificate import (
    CertificateVerifier,
    QuorumCertificate,
    assemble_certificate,
    signers_from_bitmap,
)
from ._domain import SignedKind, signing_message
from ._evidence import EquivocationEvidence
from ._head import (
    EPOCH_HEAD_SIZE,
    GENESIS_PREVIOUS,
    SIGNED_HEAD_SIZE,
    EpochHead,
    SignedHead,
    directory_id_for,
    sign_head,
)
from ._keyfile import (
    decode_witness_key_untrusted,
    decode_witness_pub_untrusted,
    encode_witness_key,
    encode_witness_pub,
)
from ._rotation import SetRotation
from ._tracker import HeadTracker
from ._witness import (
    AuditChecker,
    EquivocationDetected,
    InMemoryWitnessStore,
    Witness,
    WitnessStore,
)
from ._witness_set import (
    MAX_WITNESS_ID_LEN,
    MAX_WITNESSES,
    WitnessMember,
    WitnessSet,
    valid_witness_id,
)

__all__ = [
    "EPOCH_HEAD_SIZE",
    "GENESIS_PREVIOUS",
    "MAX_WITNESSES",
    "MAX_WITNESS_ID_LEN",
    "SIGNED_HEAD_SIZE",
    "AuditChecker",
    "CertificateVerifier",
    "EpochHead",
    "EquivocationDetected",
    "EquivocationEvidence",
    "HeadTracker",
    "InMemoryWitnessStore",
    "QuorumCertificate",
    "SetRotation",
    "SignedHead",
    "SignedKind",
    "Witness",
    "WitnessMember",
    "WitnessSet",
    "WitnessStore",
    "assemble_certificate",
    "decode_witness_key_untrusted",
    "decode_witness_pub_untrusted",
    "directory_id_for",
    "encode_witness_key",
    "encode_witness_pub",
    "sign_head",
    "signers_from_bitmap",
    "signing_message",
    "valid_witness_id",
]
