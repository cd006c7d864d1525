"""Sealed-sender envelopes: hide who sent a message, and how long it is.

An envelope encrypts a sender certificate and a content (in practice a
ratchet message) to the recipient's X25519 identity agreement key with a
fresh ephemeral key, so relays and mailboxes see neither the sender nor the
length: the whole envelope is exactly one padding bucket long. Cover
envelopes have the same format, encrypted to the same key; only the
recipient, after decryption, learns that one is cover, and drops it.

Layout::

    envelope   = version u8 (1) || ephemeral X25519 public key (32)
                 || AES-256-GCM(key, nonce, plaintext, aad)       (plaintext + 16)
    len(envelope) is one of PADDING_BUCKETS

    ss         = X25519(ephemeral, recipient agreement key)
    okm        = HKDF-SHA256(ikm = ss, salt = eph_pub || recipient_pub,
                             info = "chhaya/ss/v1/envelope", 44)
    key, nonce = okm[:32], okm[32:44]
    aad        = version || eph_pub || recipient_pub

    plaintext  = inner || 0x80 || 0x00*                          (ISO/IEC 7816-4)
    inner      = KIND_MESSAGE (1) || certificate var16 || content var32
               | KIND_COVER (2)

The ephemeral key is new for every envelope, so a (key, nonce) pair never
repeats as long as ``rng`` does not.

What this layer does and does not provide:

- **Only X25519.** A future quantum adversary who recorded an envelope can
  recover its plaintext, and so learn the sender certificate and tell cover
  from real traffic: sender anonymity is *not* post-quantum. Content
  secrecy is, because the content is a ratchet message whose keys descend
  from the hybrid (X25519 + ML-KEM-1024) handshake or PQXDH root.
- **No sender authentication.** Anyone can seal to anyone with any
  certificate. The certificate is bound to the content by the inner ratchet
  message, whose associated data includes both identities: a swapped
  certificate makes the inner decryption fail. The caller must also match
  the certificate against a verified directory entry.
- **No replay protection.** A replayed envelope opens again; the ratchet
  rejects the repeated message inside.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..crypto import (
    AEAD_KEY_SIZE,
    AEAD_NONCE_SIZE,
    AEAD_TAG_SIZE,
    FAST,
    X25519_KEY_SIZE,
    Aes256Gcm,
    Rng,
    hkdf,
)
from ..identity import PrivateIdentity
from ..safety import DecodeError, LocalProtocolError
from ..wire import Reader, Writer
from ._certificate import MAX_CERTIFICATE_SIZE, CertificateCache, SenderCertificate
from ._padding import MAX_PADDED_SIZE, PADDING_BUCKETS, bucket_for, pad, unpad_untrusted

__all__ = [
    "ENVELOPE_OVERHEAD",
    "ENVELOPE_VERSION",
    "KIND_COVER",
    "KIND_MESSAGE",
    "MAX_SEALED_CONTENT",
    "OpenedEnvelope",
    "open_envelope_untrusted",
    "seal",
    "seal_cover",
]

ENVELOPE_VERSION = 1
KIND_MESSAGE = 1
KIND_COVER = 2

_VERSION_BYTE = bytes((ENVELOPE_VERSION,))
_INFO = b"chhaya/ss/v1/envelope"
_HEADER_SIZE = 1 + X25519_KEY_SIZE
#: Bytes of every envelope outside the plaintext: version, ephemeral key, tag.
ENVELOPE_OVERHEAD = _HEADER_SIZE + AEAD_TAG_SIZE
# kind u8, certificate length u16, content length u32, padding marker.
_MESSAGE_FRAMING = 1 + 2 + 4 + 1
#: Largest content :func:`seal` accepts: with the largest possible
#: certificate it still fits the largest bucket.
MAX_SEALED_CONTENT = MAX_PADDED_SIZE - ENVELOPE_OVERHEAD - _MESSAGE_FRAMING - MAX_CERTIFICATE_SIZE

_BUCKETS = frozenset(PADDING_BUCKETS)


@dataclass(frozen=True, slots=True)
class OpenedEnvelope:
    """A real (not cover) envelope after decryption and certificate checks."""

    certificate: SenderCertificate
    content: bytes


def _cipher(shared: bytes, eph_pub: bytes, recipient_pub: bytes) -> tuple[Aes256Gcm, bytes, bytes]:
    """The AEAD, nonce and AAD for one envelope."""
    okm = hkdf(shared, eph_pub + recipient_pub, _INFO, AEAD_KEY_SIZE + AEAD_NONCE_SIZE)
    aad = _VERSION_BYTE + eph_pub + recipient_pub
    return Aes256Gcm(okm[:AEAD_KEY_SIZE]), okm[AEAD_KEY_SIZE:], aad


def _seal_plaintext(recipient_agreement_key: bytes, plaintext: bytes, rng: Rng) -> bytes:
    """Encrypt an already padded plaintext; the envelope must come out a bucket long."""
    if len(recipient_agreement_key) != X25519_KEY_SIZE:
        raise LocalProtocolError("recipient agreement key must be 32 bytes")
    if len(plaintext) + ENVELOPE_OVERHEAD not in _BUCKETS:
        raise LocalProtocolError("padded plaintext does not fill a bucket")
    eph = FAST.dh.generate(rng)
    eph_pub = eph.public_key
    aead, nonce, aad = _cipher(
        eph.exchange(recipient_agreement_key), eph_pub, recipient_agreement_key
    )
    return _VERSION_BYTE + eph_pub + aead.encrypt(nonce, plaintext, aad)


def _seal_inner(recipient_agreement_key: bytes, inner: bytes, bucket: int, rng: Rng) -> bytes:
    return _seal_plaintext(recipient_agreement_key, pad(inner, bucket - ENVELOPE_OVERHEAD), rng)


def seal(
    recipient_agreement_key: bytes, certificate: SenderCertificate, content: bytes, rng: Rng
) -> bytes:
    """Seal ``content`` from ``certificate``'s holder to the recipient's agreement key.

    The result is exactly ``bucket_for(len(result))`` bytes. Raises
    LocalProtocolError if ``content`` is longer than
    :data:`MAX_SEALED_CONTENT`, the certificate does not encode, or the key is
    not 32 bytes; CryptoError if the key is a low-order point.
    """
    if len(content) > MAX_SEALED_CONTENT:
        raise LocalProtocolError(f"sealed content longer than {MAX_SEALED_CONTENT} bytes")
    try:
        cert = certificate.encode()
    except ValueError:
        raise LocalProtocolError("invalid sender certificate") from None
    inner = (
        Writer()
        .u8(KIND_MESSAGE)
        .var16(cert, MAX_CERTIFICATE_SIZE)
        .var32(content, MAX_SEALED_CONTENT)
        .getvalue()
    )
    bucket = bucket_for(ENVELOPE_OVERHEAD + len(inner) + 1)
    return _seal_inner(recipient_agreement_key, inner, bucket, rng)


def seal_cover(recipient_agreement_key: bytes, size_hint: int, rng: Rng) -> bytes:
    """A cover envelope ``bucket_for(size_hint)`` bytes long.

    On the wire it is indistinguishable from :func:`seal` output of the same
    bucket; the recipient drops it after decryption. Choosing cover sizes and
    times that look like real traffic is the caller's job. Raises
    LocalProtocolError if ``size_hint`` is negative or above the largest
    bucket.
    """
    return _seal_inner(recipient_agreement_key, bytes((KIND_COVER,)), bucket_for(size_hint), rng)


def _decrypt_untrusted(recipient: PrivateIdentity, data: bytes) -> bytes:
    """The padded plaintext of an envelope addressed to ``recipient``."""
    r = Reader(data)
    if r.remaining() not in _BUCKETS:
        raise DecodeError("envelope size is not a padding bucket")
    if r.u8("envelope version") != ENVELOPE_VERSION:
        raise DecodeError("unsupported envelope version")
    eph_pub = r.fixed(X25519_KEY_SIZE, "ephemeral key")
    ciphertext = r.fixed(r.remaining(), "ciphertext")
    r.finish()
    recipient_pub = recipient.public.agreement_key
    aead, nonce, aad = _cipher(recipient.agreement.exchange(eph_pub), eph_pub, recipient_pub)
    return aead.decrypt(nonce, ciphertext, aad)


def open_envelope_untrusted(
    recipient: PrivateIdentity,
    data: bytes,
    now: int,
    cache: CertificateCache | None = None,
) -> OpenedEnvelope | None:
    """Decrypt an envelope, check its certificate; None for a cover envelope.

    Raises DecodeError for a malformed envelope (size not a bucket, unknown
    version or kind, bad padding, bad inner encoding), CryptoError if the
    tag does not verify (wrong recipient, any tampering), and
    VerificationError (``"certificate-signature"``, ``"certificate-expired"``)
    if the certificate fails at ``now`` (ms). With a ``cache``, the signature
    of a certificate verified before is not checked again; its expiry always
    is. A returned certificate is only self-consistent: match it against the
    directory before trusting who sent the content.
    """
    r = Reader(unpad_untrusted(_decrypt_untrusted(recipient, data)))
    kind = r.u8("envelope kind")
    if kind == KIND_COVER:
        r.finish()
        return None
    if kind != KIND_MESSAGE:
        raise DecodeError("unknown envelope kind")
    cert_bytes = r.var16(MAX_CERTIFICATE_SIZE, "sender certificate")
    content = r.var32(MAX_SEALED_CONTENT, "sealed content")
    r.finish()
    certificate = SenderCertificate.decode_untrusted(cert_bytes)
    if cache is None:
        certificate.verify(now)
    else:
        cache.verify(certificate, now)
    return OpenedEnvelope(certificate, content)
