"""Sealed sender: envelopes that hide the sender and the size, with cover traffic."""

from ._certificate import (
    CERTIFICATE_SIGNATURE_CONTEXT,
    DEFAULT_CACHE_ENTRIES,
    MAX_CERTIFICATE_SIZE,
    MAX_DEVICE_ID_LEN,
    MAX_HANDLE_LEN,
    MIN_CERTIFICATE_SIZE,
    CertificateCache,
    SenderCertificate,
    issue_certificate,
)
from ._envelope import (
    ENVELOPE_OVERHEAD,
    ENVELOPE_VERSION,
    KIND_COVER,
    KIND_MESSAGE,
    MAX_SEALED_CONTENT,
    OpenedEnvelope,
    open_envelope_untrusted,
    seal,
    seal_cover,
)
from ._padding import MAX_PADDED_SIZE, PADDING_BUCKETS, bucket_for, pad, unpad_untrusted

__all__ = [
    "CERTIFICATE_SIGNATURE_CONTEXT",
    "DEFAULT_CACHE_ENTRIES",
    "ENVELOPE_OVERHEAD",
    "ENVELOPE_VERSION",
    "KIND_COVER",
    "KIND_MESSAGE",
    "MAX_CERTIFICATE_SIZE",
    "MAX_DEVICE_ID_LEN",
    "MAX_HANDLE_LEN",
    "MAX_PADDED_SIZE",
    "MAX_SEALED_CONTENT",
    "MIN_CERTIFICATE_SIZE",
    "PADDING_BUCKETS",
    "CertificateCache",
    "OpenedEnvelope",
    "SenderCertificate",
    "bucket_for",
    "issue_certificate",
    "open_envelope_untrusted",
    "pad",
    "seal",
    "seal_cover",
    "unpad_untrusted",
]
