"""Sender certificates: who sent a sealed envelope, as the sender states it.

A certificate names the sender (handle, Ed25519 identity key, X25519
agreement key, device id) and carries an expiry. It is self-signed: the
signature is made by the identity key it names, over a domain-separated
encoding, so it proves that the holder of ``identity_key`` issued exactly
these fields, and nothing more. In particular it does not prove that
``handle`` belongs to that key. Before it shows a sender, the recipient must
match the certificate against a directory entry verified with
``verify_vkd_proof``: the handle, both keys and the device id.

Layout (all lengths big-endian)::

    SenderCertificate = handle var16 (UTF-8, <= 64) || identity key (32)
                        || agreement key (32) || device id var16 (<= 64)
                        || expires_ms u64 || signature (64)
    signature         = Ed25519(identity key, "chhaya/ss/v1/cert" || unsigned)

where ``unsigned`` is the encoding without its signature. The decoder
accepts exactly one encoding per value.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, replace

from ..crypto import (
    ED25519_PUBLIC_KEY_SIZE,
    ED25519_SIGNATURE_SIZE,
    FAST,
    X25519_KEY_SIZE,
    sha256,
)
from ..identity import PrivateIdentity
from ..safety import CryptoError, LocalProtocolError, VerificationError
from ..wire import Reader, Writer

__all__ = [
    "CERTIFICATE_SIGNATURE_CONTEXT",
    "DEFAULT_CACHE_ENTRIES",
    "MAX_CERTIFICATE_SIZE",
    "MAX_DEVICE_ID_LEN",
    "MAX_HANDLE_LEN",
    "MIN_CERTIFICATE_SIZE",
    "CertificateCache",
    "SenderCertificate",
    "issue_certificate",
]

#: Longest handle, in UTF-8 bytes.
MAX_HANDLE_LEN = 64
#: Longest device id, in bytes.
MAX_DEVICE_ID_LEN = 64
#: Prefix of every message a certificate signature covers.
CERTIFICATE_SIGNATURE_CONTEXT = b"chhaya/ss/v1/cert"

_FIXED_SIZE = (
    2 + ED25519_PUBLIC_KEY_SIZE + X25519_KEY_SIZE + 2 + 8 + ED25519_SIGNATURE_SIZE
)  # both length prefixes, keys, expiry, signature
MIN_CERTIFICATE_SIZE = _FIXED_SIZE
MAX_CERTIFICATE_SIZE = _FIXED_SIZE + MAX_HANDLE_LEN + MAX_DEVICE_ID_LEN
_U64_LIMIT = 1 << 64

#: Default capacity of a :class:`CertificateCache`.
DEFAULT_CACHE_ENTRIES = 1024


@dataclass(frozen=True, slots=True)
class SenderCertificate:
    """The sender's self-signed statement of who it is, inside a sealed envelope.

    ``expires_ms`` is in milliseconds since the Unix epoch; the certificate
    is expired from that instant on.
    """

    handle: str
    identity_key: bytes
    agreement_key: bytes
    device_id: bytes
    expires_ms: int
    signature: bytes

    def unsigned_bytes(self) -> bytes:
        """The encoding without the signature. Invalid fields: ValueError."""
        if not 0 <= self.expires_ms < _U64_LIMIT:
            raise ValueError("expiry out of u64 range")
        return (
            Writer()
            .utf8(self.handle, MAX_HANDLE_LEN)
            .fixed(self.identity_key, ED25519_PUBLIC_KEY_SIZE)
            .fixed(self.agreement_key, X25519_KEY_SIZE)
            .var16(self.device_id, MAX_DEVICE_ID_LEN)
            .u64(self.expires_ms)
            .getvalue()
        )

    def signed_message(self) -> bytes:
        """What the signature covers: the context string, then the unsigned encoding."""
        return CERTIFICATE_SIGNATURE_CONTEXT + self.unsigned_bytes()

    def encode(self) -> bytes:
        """The wire encoding. Invalid fields: ValueError."""
        if len(self.signature) != ED25519_SIGNATURE_SIZE:
            raise ValueError("bad signature length")
        return self.unsigned_bytes() + self.signature

    @classmethod
    def decode_untrusted(cls, data: bytes) -> SenderCertificate:
        """Parse a certificate. Checks nothing but the format; see :meth:`verify`."""
        r = Reader(data)
        out = cls(
            handle=r.utf8(MAX_HANDLE_LEN, "handle"),
            identity_key=r.fixed(ED25519_PUBLIC_KEY_SIZE, "identity key"),
            agreement_key=r.fixed(X25519_KEY_SIZE, "agreement key"),
            device_id=r.var16(MAX_DEVICE_ID_LEN, "device id"),
            expires_ms=r.u64("expiry"),
            signature=r.fixed(ED25519_SIGNATURE_SIZE, "signature"),
        )
        r.finish()
        return out

    def verify_signature(self) -> None:
        """Raise VerificationError("certificate-signature") unless the signature holds."""
        try:
            FAST.sig.verify(self.identity_key, self.signed_message(), self.signature)
        except (CryptoError, ValueError):
            raise VerificationError("certificate-signature") from None

    def check_expiry(self, now: int) -> None:
        """Raise VerificationError("certificate-expired") if ``now >= expires_ms``."""
        if now >= self.expires_ms:
            raise VerificationError("certificate-expired", f"expired at {self.expires_ms}")

    def verify(self, now: int) -> None:
        """Check the signature, then the expiry at ``now`` (ms).

        Raises VerificationError with check ``"certificate-signature"`` or
        ``"certificate-expired"``. Success does not make the sender known:
        the fields must still match a verified directory entry.
        """
        self.verify_signature()
        self.check_expiry(now)


def issue_certificate(
    identity: PrivateIdentity, handle: str, device_id: bytes, expires_ms: int
) -> SenderCertificate:
    """Sign a certificate for ``identity``'s own keys.

    Raises LocalProtocolError if the handle is not encodable UTF-8 of at most
    :data:`MAX_HANDLE_LEN` bytes, the device id is longer than
    :data:`MAX_DEVICE_ID_LEN`, or the expiry is not a u64.
    """
    try:
        handle_len = len(handle.encode("utf-8"))
    except UnicodeEncodeError:
        raise LocalProtocolError("handle is not encodable as UTF-8") from None
    if handle_len > MAX_HANDLE_LEN:
        raise LocalProtocolError(f"handle longer than {MAX_HANDLE_LEN} bytes")
    if len(device_id) > MAX_DEVICE_ID_LEN:
        raise LocalProtocolError(f"device id longer than {MAX_DEVICE_ID_LEN} bytes")
    if isinstance(expires_ms, bool) or not 0 <= expires_ms < _U64_LIMIT:
        raise LocalProtocolError("expiry out of u64 range")
    public = identity.public
    unsigned = SenderCertificate(
        handle=handle,
        identity_key=public.signing_key,
        agreement_key=public.agreement_key,
        device_id=bytes(device_id),
        expires_ms=expires_ms,
        signature=b"",
    )
    return replace(unsigned, signature=identity.sign(unsigned.signed_message()))


class CertificateCache:
    """Remembers certificates whose signature verified, to skip verifying again.

    A sender reuses one certificate for many envelopes, and the Ed25519
    verification is the largest cost of opening one. Entries are keyed by
    SHA-256 of the certificate's (canonical) encoding, so a hit means exactly
    these bytes verified before. Only successes are stored; the expiry is
    checked on every use. The cache holds at most ``max_entries`` and drops
    the least recently used entry first. Since anyone can issue valid
    self-signed certificates, a peer can push entries out, which costs only
    speed. Not thread-safe.
    """

    __slots__ = ("_entries", "_max_entries", "hits", "misses")

    def __init__(self, max_entries: int = DEFAULT_CACHE_ENTRIES) -> None:
        if max_entries < 1:
            raise LocalProtocolError("a certificate cache needs at least one entry")
        self._max_entries = max_entries
        self._entries: OrderedDict[bytes, None] = OrderedDict()
        #: Verifications skipped and performed, for metrics.
        self.hits = 0
        self.misses = 0

    @property
    def max_entries(self) -> int:
        return self._max_entries

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, certificate: object) -> bool:
        if not isinstance(certificate, SenderCertificate):
            return False
        try:
            return sha256(certificate.encode()) in self._entries
        except ValueError:
            return False

    def clear(self) -> None:
        self._entries.clear()

    def verify(self, certificate: SenderCertificate, now: int) -> None:
        """Same checks and errors as :meth:`SenderCertificate.verify`."""
        key = sha256(certificate.encode())
        if key in self._entries:
            self._entries.move_to_end(key)
            self.hits += 1
        else:
            self.misses += 1
            certificate.verify_signature()
            self._entries[key] = None
            if len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)
        certificate.check_expiry(now)
