"""Key file and public file encodings (no file I/O here; see node.keystore).

``NAME.key`` is binary::

    magic "CHHYKEY1" | mode u8
    mode 0 (plain):  secret (128) | check = SHA-256(magic|mode|secret)[:16]
    mode 1 (sealed): time u32 | memory_kib u32 | lanes u8 | salt (16) |
                     nonce (12) | ChaCha20-Poly1305(key, nonce, secret, aad)
                     key = Argon2id(passphrase, salt, time, memory, lanes)
                     aad = every byte before the ciphertext

The checksum of a plain file catches corruption; the AEAD tag of a sealed
file catches corruption and a wrong passphrase alike (they cannot be told
apart, on purpose).

``NAME.pub`` is one line of text: ``chhaya-pub-v1 NAME BASE64(PublicIdentity)``.
"""

from __future__ import annotations

import base64
import binascii
import re

from ..crypto import (
    AEAD_TAG_SIZE,
    FAST,
    Argon2Params,
    ChaCha20Poly1305Aead,
    CryptoSuite,
    Rng,
    argon2id,
    sha256,
)
from ..safety import CryptoError, DecodeError, ct_equal
from ..wire import Reader, Writer
from ._identity import SECRET_IDENTITY_SIZE, PrivateIdentity, PublicIdentity

__all__ = [
    "MAX_KEY_FILE_SIZE",
    "MAX_NAME_LENGTH",
    "MAX_PUB_FILE_SIZE",
    "PassphraseRequired",
    "WrongPassphrase",
    "decode_key_file_untrusted",
    "decode_pub_file_untrusted",
    "encode_key_file",
    "encode_pub_file",
    "key_file_is_sealed_untrusted",
    "valid_name",
]

_MAGIC = b"CHHYKEY1"
_MODE_PLAIN = 0
_MODE_SEALED = 1
_CHECK_SIZE = 16
_SALT_SIZE = 16
_NONCE_SIZE = 12
_PUB_PREFIX = "chhaya-pub-v1"
MAX_NAME_LENGTH = 64
MAX_KEY_FILE_SIZE = 512
MAX_PUB_FILE_SIZE = 4096
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class PassphraseRequired(DecodeError):
    """The key file is sealed and no passphrase was given."""


class WrongPassphrase(DecodeError):
    """The passphrase is wrong, or the sealed file was modified."""


def valid_name(name: str) -> bool:
    return _NAME_RE.fullmatch(name) is not None


def encode_key_file(
    identity: PrivateIdentity,
    rng: Rng,
    passphrase: bytes | None = None,
    params: Argon2Params | None = None,
) -> bytes:
    secret = identity.secret_bytes()
    if passphrase is None:
        head = _MAGIC + bytes((_MODE_PLAIN,))
        return head + secret + sha256(head, secret)[:_CHECK_SIZE]
    params = params or Argon2Params()
    if not params.in_bounds():
        raise ValueError("Argon2 parameters out of bounds")
    salt = rng(_SALT_SIZE)
    nonce = rng(_NONCE_SIZE)
    head = (
        Writer()
        .raw(_MAGIC)
        .u8(_MODE_SEALED)
        .u32(params.time_cost)
        .u32(params.memory_kib)
        .u8(params.lanes)
        .raw(salt)
        .raw(nonce)
        .getvalue()
    )
    key = argon2id(passphrase, salt, params)
    return head + ChaCha20Poly1305Aead(key).encrypt(nonce, secret, head)


def key_file_is_sealed_untrusted(data: bytes) -> bool:
    r = Reader(data[: len(_MAGIC) + 1])
    r.expect(_MAGIC, "key file magic")
    mode = r.u8("key file mode")
    if mode not in (_MODE_PLAIN, _MODE_SEALED):
        raise DecodeError("unknown key file mode")
    return mode == _MODE_SEALED


def decode_key_file_untrusted(
    data: bytes, passphrase: bytes | None = None, suite: CryptoSuite = FAST
) -> PrivateIdentity:
    if len(data) > MAX_KEY_FILE_SIZE:
        raise DecodeError("key file too large")
    r = Reader(data)
    r.expect(_MAGIC, "key file magic")
    mode = r.u8("key file mode")
    if mode == _MODE_PLAIN:
        secret = r.fixed(SECRET_IDENTITY_SIZE, "secret keys")
        check = r.fixed(_CHECK_SIZE, "checksum")
        r.finish()
        head = data[: len(_MAGIC) + 1]
        if not ct_equal(check, sha256(head, secret)[:_CHECK_SIZE]):
            raise DecodeError("checksum mismatch (file corrupt)")
        return PrivateIdentity.from_secret_bytes(secret, suite)
    if mode != _MODE_SEALED:
        raise DecodeError("unknown key file mode")
    params = Argon2Params(
        time_cost=r.u32("argon2 time"), memory_kib=r.u32("argon2 memory"), lanes=r.u8("lanes")
    )
    if not params.in_bounds():
        raise DecodeError("argon2 parameters out of bounds")
    salt = r.fixed(_SALT_SIZE, "salt")
    nonce = r.fixed(_NONCE_SIZE, "nonce")
    head_len = len(data) - r.remaining()
    sealed = r.fixed(SECRET_IDENTITY_SIZE + AEAD_TAG_SIZE, "sealed keys")
    r.finish()
    if passphrase is None:
        raise PassphraseRequired("key file is sealed: a passphrase is required")
    key = argon2id(passphrase, salt, params)
    try:
        secret = ChaCha20Poly1305Aead(key).decrypt(nonce, sealed, data[:head_len])
    except CryptoError:
        raise WrongPassphrase("wrong passphrase or corrupt key file") from None
    return PrivateIdentity.from_secret_bytes(secret, suite)


def encode_pub_file(name: str, identity: PublicIdentity) -> str:
    if not valid_name(name):
        raise ValueError(f"invalid name {name!r}")
    b64 = base64.b64encode(identity.encode()).decode("ascii")
    return f"{_PUB_PREFIX} {name} {b64}\n"


def decode_pub_file_untrusted(data: bytes) -> tuple[str, PublicIdentity]:
    """Return ``(name, identity)`` from the contents of a ``.pub`` file."""
    if len(data) > MAX_PUB_FILE_SIZE:
        raise DecodeError("public key file too large")
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise DecodeError("public key file is not ASCII") from None
    parts = text.strip().split(" ")
    if len(parts) != 3 or parts[0] != _PUB_PREFIX:
        raise DecodeError("not a chhaya public key file")
    name = parts[1]
    if not valid_name(name):
        raise DecodeError("invalid name in public key file")
    try:
        raw = base64.b64decode(parts[2], validate=True)
    except (binascii.Error, ValueError):
        raise DecodeError("public key is not valid base64") from None
    if base64.b64encode(raw).decode("ascii") != parts[2]:
        raise DecodeError("public key is not in canonical base64")  # one text per key
    return name, PublicIdentity.decode_untrusted(raw)
