"""Witness key files (no I/O here; the node writes them 0600).

W.key = "CHHYBLS1" || 0x00 || secret key (32, big-endian) || SHA-256(all before)[:16]
W.pub = one line: "chhaya-witness-v1 ID PUBLIC_KEY_HEX POP_HEX"
"""

from __future__ import annotations

import binascii

from chhaya import DecodeError
from chhaya.crypto import sha256
from chhaya.safety import ct_equal
from chhaya.wire import Reader

from ._witness_set import WitnessMember, valid_witness_id
from .bls import BLS_PUBLIC_KEY_SIZE, BLS_SECRET_KEY_SIZE, BLS_SIGNATURE_SIZE, CURVE_ORDER

__all__ = [
    "MAX_WITNESS_KEY_FILE",
    "MAX_WITNESS_PUB_FILE",
    "decode_witness_key_untrusted",
    "decode_witness_pub_untrusted",
    "encode_witness_key",
    "encode_witness_pub",
]

_MAGIC = b"CHHYBLS1"
_CHECK = 16
_PUB_PREFIX = "chhaya-witness-v1"
MAX_WITNESS_KEY_FILE = 128
MAX_WITNESS_PUB_FILE = 1024


def encode_witness_key(secret_key: int) -> bytes:
    if not 0 < secret_key < CURVE_ORDER:
        raise ValueError("secret key out of range")
    body = _MAGIC + b"\x00" + secret_key.to_bytes(BLS_SECRET_KEY_SIZE, "big")
    return body + sha256(body)[:_CHECK]


def decode_witness_key_untrusted(data: bytes) -> int:
    if len(data) > MAX_WITNESS_KEY_FILE:
        raise DecodeError("witness key file too large")
    r = Reader(data)
    r.expect(_MAGIC, "witness key magic")
    if r.u8("witness key mode") != 0:
        raise DecodeError("unknown witness key mode")
    raw = r.fixed(BLS_SECRET_KEY_SIZE, "secret key")
    check = r.fixed(_CHECK, "checksum")
    r.finish()
    if not ct_equal(check, sha256(data[:-_CHECK])[:_CHECK]):
        raise DecodeError("checksum mismatch (file corrupt)")
    sk = int.from_bytes(raw, "big")
    if not 0 < sk < CURVE_ORDER:
        raise DecodeError("secret key out of range")
    return sk


def encode_witness_pub(member: WitnessMember) -> str:
    return (
        f"{_PUB_PREFIX} {member.witness_id} {member.public_key.hex()} "
        f"{member.proof_of_possession.hex()}\n"
    )


def decode_witness_pub_untrusted(data: bytes) -> WitnessMember:
    """Parse only; the witness set validates the key and its proof of possession."""
    if len(data) > MAX_WITNESS_PUB_FILE:
        raise DecodeError("witness public file too large")
    try:
        parts = data.decode("ascii").strip().split(" ")
    except UnicodeDecodeError:
        raise DecodeError("witness public file is not ASCII") from None
    if len(parts) != 4 or parts[0] != _PUB_PREFIX:
        raise DecodeError("not a chhaya witness public file")
    if not valid_witness_id(parts[1]):
        raise DecodeError("invalid witness id")
    try:
        pk = binascii.unhexlify(parts[2])
        pop = binascii.unhexlify(parts[3])
    except (binascii.Error, ValueError):
        raise DecodeError("witness public file is not valid hex") from None
    if len(pk) != BLS_PUBLIC_KEY_SIZE or len(pop) != BLS_SIGNATURE_SIZE:
        raise DecodeError("wrong key or proof length")
    if pk.hex() != parts[2] or pop.hex() != parts[3]:
        raise DecodeError("hex must be lower case")  # one text per key
    return WitnessMember(parts[1], pk, pop)
