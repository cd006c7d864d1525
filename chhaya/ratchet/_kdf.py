"""Double Ratchet key derivation (Signal specification, section 5.2).

    KDF_RK(rk, dh_out)  = HKDF(salt = rk, ikm = dh_out, info = LABEL_ROOT, 64 or 96)
                          -> new root key, chain key (, next header key)
    KDF_CK(ck)          = HMAC(ck, 0x01) -> message key; HMAC(ck, 0x02) -> next chain key
    message AEAD        = HKDF(salt = 0^32, ikm = mk, info = LABEL_MESSAGE, 44)
                          -> AES-256-GCM key (32) || nonce (12)

The nonce comes from the one-use message key, so it never repeats and is
never counted.
"""

from __future__ import annotations

import hmac

from ..crypto import hkdf_expand, hkdf_extract

__all__ = [
    "LABEL_HEADER_KEYS",
    "LABEL_MESSAGE",
    "LABEL_ROOT",
    "initial_header_keys",
    "kdf_ck",
    "kdf_rk",
    "kdf_rk_he",
    "message_key_material",
]

LABEL_ROOT = b"chhaya/dr/v1/root"
LABEL_MESSAGE = b"chhaya/dr/v1/message"
LABEL_HEADER_KEYS = b"chhaya/dr/v1/initial-header-keys"
_ZERO_SALT = bytes(32)
_MK_INPUT = b"\x01"
_CK_INPUT = b"\x02"


def kdf_rk(root_key: bytes, dh_out: bytes) -> tuple[bytes, bytes]:
    okm = hkdf_expand(hkdf_extract(root_key, dh_out), LABEL_ROOT, 64)
    return okm[:32], okm[32:]


def kdf_rk_he(root_key: bytes, dh_out: bytes) -> tuple[bytes, bytes, bytes]:
    okm = hkdf_expand(hkdf_extract(root_key, dh_out), LABEL_ROOT, 96)
    return okm[:32], okm[32:64], okm[64:]


def kdf_ck(chain_key: bytes) -> tuple[bytes, bytes]:
    """Return ``(next_chain_key, message_key)``."""
    return (
        hmac.digest(chain_key, _CK_INPUT, "sha256"),
        hmac.digest(chain_key, _MK_INPUT, "sha256"),
    )


def message_key_material(message_key: bytes) -> tuple[bytes, bytes]:
    """Return ``(aead_key, nonce)`` for one message key."""
    prk = hmac.digest(_ZERO_SALT, message_key, "sha256")
    t1 = hmac.digest(prk, LABEL_MESSAGE + b"\x01", "sha256")
    t2 = hmac.digest(prk, t1 + LABEL_MESSAGE + b"\x02", "sha256")
    return t1, t2[:12]


def initial_header_keys(shared_secret: bytes) -> tuple[bytes, bytes]:
    """The two header keys both sides derive from the session secret:
    ``(initiator_send_hk, responder_next_hk)`` (SHARED_HKA, SHARED_NHKB)."""
    okm = hkdf_expand(hkdf_extract(_ZERO_SALT, shared_secret), LABEL_HEADER_KEYS, 64)
    return okm[:32], okm[32:]
