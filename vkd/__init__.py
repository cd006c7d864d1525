"""Key directory: VRF-private lookups in a sparse Merkle tree, epoch heads
certified by a witness quorum, lookup / history / audit proofs, and
:func:`verify_vkd_proof`, the only door to trust. Sans-IO.
"""

from ._bundle import MAX_DEVICE_ID_LEN, MAX_DEVICES, DirectoryValue, IdentityBundle
from ._commitment import MAX_HANDLE_LEN, commitment, valid_handle, vrf_input
from ._directory import Directory, DirectoryKeys
from ._proofs import (
    MAX_AUDIT_BATCH,
    MAX_HISTORY,
    MAX_LOOKUP_PROOF_SIZE,
    MAX_VERSION,
    AppendOnlyViolation,
    AuditProof,
    HistoryProof,
    LookupProof,
    VersionOpening,
)
from ._store import DirectoryStore, InMemoryDirectoryStore, PendingUpdate, VersionRecord
from ._verify import (
    AppendOnlyViolationDetected,
    DirectoryTrust,
    NotRegistered,
    VerifiedBinding,
    VerifiedHistory,
    audit_checker,
    verify_vkd_proof,
)

__all__ = [
    "MAX_AUDIT_BATCH",
    "MAX_DEVICES",
    "MAX_DEVICE_ID_LEN",
    "MAX_HANDLE_LEN",
    "MAX_HISTORY",
    "MAX_LOOKUP_PROOF_SIZE",
    "MAX_VERSION",
    "AppendOnlyViolation",
    "AppendOnlyViolationDetected",
    "AuditProof",
    "Directory",
    "DirectoryKeys",
    "DirectoryStore",
    "DirectoryTrust",
    "DirectoryValue",
    "HistoryProof",
    "IdentityBundle",
    "InMemoryDirectoryStore",
    "LookupProof",
    "NotRegistered",
    "PendingUpdate",
    "VerifiedBinding",
    "VerifiedHistory",
    "VersionOpening",
    "VersionRecord",
    "audit_checker",
    "commitment",
    "valid_handle",
    "verify_vkd_proof",
    "vrf_input",
]
