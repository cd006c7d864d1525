"""Crypto providers behind synchronous interfaces.

``FAST`` uses pyca/cryptography and pynacl. ``REFERENCE`` swaps ML-KEM for the
pure-Python kyber-py implementation; the other primitives have no pure
reference worth having and are shared.
"""

from ._api import (
    ED25519_PUBLIC_KEY_SIZE,
    ED25519_SEED_SIZE,
    ED25519_SIGNATURE_SIZE,
    MLKEM1024_CIPHERTEXT_SIZE,
    MLKEM1024_PUBLIC_KEY_SIZE,
    MLKEM1024_SEED_SIZE,
    MLKEM_SHARED_SECRET_SIZE,
    X25519_KEY_SIZE,
    CryptoSuite,
    Dh,
    DhKeyPair,
    Kem,
    KemKeyPair,
    Rng,
    Signatures,
    SigningKey,
)
from ._fast import FastDh, FastKem, FastSignatures
from ._passphrase import Argon2Params, argon2id
from ._reference import ReferenceKem
from ._symmetric import (
    AEAD_KEY_SIZE,
    AEAD_NONCE_SIZE,
    AEAD_TAG_SIZE,
    Aes256Gcm,
    ChaCha20Poly1305Aead,
    hkdf,
    hkdf_expand,
    hkdf_extract,
    hmac_sha256,
    sha256,
    sha512,
)

FAST = CryptoSuite(name="fast", kem=FastKem(), sig=FastSignatures(), dh=FastDh())
REFERENCE = CryptoSuite(name="reference", kem=ReferenceKem(), sig=FastSignatures(), dh=FastDh())

__all__ = [
    "AEAD_KEY_SIZE",
    "AEAD_NONCE_SIZE",
    "AEAD_TAG_SIZE",
    "ED25519_PUBLIC_KEY_SIZE",
    "ED25519_SEED_SIZE",
    "ED25519_SIGNATURE_SIZE",
    "FAST",
    "MLKEM1024_CIPHERTEXT_SIZE",
    "MLKEM1024_PUBLIC_KEY_SIZE",
    "MLKEM1024_SEED_SIZE",
    "MLKEM_SHARED_SECRET_SIZE",
    "REFERENCE",
    "X25519_KEY_SIZE",
    "Aes256Gcm",
    "Argon2Params",
    "ChaCha20Poly1305Aead",
    "CryptoSuite",
    "Dh",
    "DhKeyPair",
    "FastDh",
    "FastKem",
    "FastSignatures",
    "Kem",
    "KemKeyPair",
    "ReferenceKem",
    "Rng",
    "Signatures",
    "SigningKey",
    "argon2id",
    "hkdf",
    "hkdf_expand",
    "hkdf_extract",
    "hmac_sha256",
    "sha256",
    "sha512",
]
