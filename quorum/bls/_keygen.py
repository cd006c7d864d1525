"""KeyGen from draft-irtf-cfrg-bls-signature-05, section 2.3, shared by both backends.

A pure function of the input keying material: the caller draws ``ikm`` from
its own randomness (or derives it), so this module needs no rng.
"""

from __future__ import annotations

import hashlib
import hmac

from ._api import CURVE_ORDER

__all__ = ["KEYGEN_MIN_IKM_SIZE", "key_gen"]

#: The draft: "IKM MUST be at least 32 bytes long".
KEYGEN_MIN_IKM_SIZE = 32

_SALT = b"BLS-SIG-KEYGEN-SALT-"
#: L = ceil((3 * ceil(log2(r))) / 16): 48 bytes, so that OS2IP(OKM) mod r is
#: statistically close to uniform.
_L = 48
_HASH_LEN = 32


def _hkdf_expand(prk: bytes, info: bytes, length: int) -> bytes:
    okm = b""
    block = b""
    counter = 1
    while len(okm) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        okm += block
        counter += 1
    return okm[:length]


def key_gen(ikm: bytes, key_info: bytes = b"") -> int:
    """Derive a secret key in [1, r) from ``ikm`` (at least 32 bytes) and ``key_info``."""
    if len(ikm) < KEYGEN_MIN_IKM_SIZE:
        raise ValueError(f"KeyGen needs at least {KEYGEN_MIN_IKM_SIZE} bytes of IKM")
    ikm = bytes(ikm)
    info = bytes(key_info) + _L.to_bytes(2, "big")
    salt = _SALT
    sk = 0
    while sk == 0:
        salt = hashlib.sha256(salt).digest()
        prk = hmac.new(salt, ikm + b"\x00", hashlib.sha256).digest()
        sk = int.from_bytes(_hkdf_expand(prk, info, _L), "big") % CURVE_ORDER
    return sk
