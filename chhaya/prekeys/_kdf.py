"""PQXDH key derivation and the values both sides bind the session to.

    SK = HKDF-SHA256(ikm  = 0xFF * 32 || DH1 || DH2 || DH3 [|| DH4] || SS,
                     salt = 0x00 * 32,
                     info = "chhaya/pqxdh/v1/X25519_SHA-256_ML-KEM-1024",
                     L    = 32)
    AD = "chhaya/pqxdh/v1/ad" || PublicIdentity(initiator) || PublicIdentity(responder)

The 32 0xFF bytes make the input never a valid X25519 output prefix (as in
X3DH), so SK cannot collide with a key derived elsewhere from the same DH
values. SK stays secret while either X25519 or ML-KEM-1024 resists the
attacker: a future quantum adversary that records traffic must also break
ML-KEM.
"""

from __future__ import annotations

from ..crypto import MLKEM_SHARED_SECRET_SIZE, X25519_KEY_SIZE, hkdf, sha256
from ..identity import PublicIdentity
from ..safety import LocalProtocolError

__all__ = [
    "PQXDH_AD_LABEL",
    "PQXDH_INFO",
    "PQXDH_SECRET_SIZE",
    "derive_pqxdh_secret",
    "initial_message_digest",
    "pqxdh_associated_data",
]

PQXDH_INFO = b"chhaya/pqxdh/v1/X25519_SHA-256_ML-KEM-1024"
PQXDH_AD_LABEL = b"chhaya/pqxdh/v1/ad"
PQXDH_SECRET_SIZE = 32
_PAD = b"\xff" * 32
_SALT = bytes(32)


def derive_pqxdh_secret(
    dh1: bytes, dh2: bytes, dh3: bytes, dh4: bytes | None, kem_shared_secret: bytes
) -> bytes:
    """SK from the three or four X25519 outputs and the ML-KEM shared secret.

    A pure function so that known-answer tests can feed it exact inputs.
    """
    dhs = [dh1, dh2, dh3] if dh4 is None else [dh1, dh2, dh3, dh4]
    if any(len(d) != X25519_KEY_SIZE for d in dhs):
        raise LocalProtocolError("X25519 outputs must be 32 bytes")
    if len(kem_shared_secret) != MLKEM_SHARED_SECRET_SIZE:
        raise LocalProtocolError("ML-KEM shared secret must be 32 bytes")
    ikm = _PAD + b"".join(dhs) + kem_shared_secret
    return hkdf(ikm, _SALT, PQXDH_INFO, PQXDH_SECRET_SIZE)


def pqxdh_associated_data(initiator: PublicIdentity, responder: PublicIdentity) -> bytes:
    """The ratchet session's associated data: both full public identities."""
    return PQXDH_AD_LABEL + initiator.encode() + responder.encode()


def initial_message_digest(ephemeral_key: bytes, kem_ciphertext: bytes) -> bytes:
    """The replay-set key of an initial message: H(ephemeral key || ciphertext).

    Both inputs are fixed-size and SK depends on both, so two messages with
    one digest derive one SK: a repeat is a replay.
    """
    return sha256(ephemeral_key, kem_ciphertext)
