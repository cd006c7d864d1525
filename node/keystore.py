"""Key files on disk: written 0600 and atomically, refused if others can read.

The encodings live in :mod:`chhaya.identity`; this module adds the file
system: permissions, atomic writes, passphrase lookup and clear errors that
name the file.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from chhaya import ChhayaError, DecodeError, KeyFileError
from chhaya.crypto import Argon2Params
from chhaya.identity import (
    MAX_KEY_FILE_SIZE,
    MAX_PUB_FILE_SIZE,
    PassphraseRequired,
    PrivateIdentity,
    PublicIdentity,
    WrongPassphrase,
    decode_key_file_untrusted,
    decode_pub_file_untrusted,
    encode_key_file,
    encode_pub_file,
    valid_name,
)

from .clock import system_rng
from .fsio import write_new_file_atomic

__all__ = [
    "PASSPHRASE_ENV",
    "load_private_identity",
    "load_public_identity",
    "read_bounded",
    "read_passphrase",
    "read_private_file",
    "write_identity",
]

PASSPHRASE_ENV = "CHHAYA_PASSPHRASE"  # noqa: S105 (a variable name, not a secret)
_MAX_PASSPHRASE_FILE = 4096


def read_passphrase(passphrase_file: str | None) -> bytes | None:
    """The passphrase from ``--passphrase-file`` or ``$CHHAYA_PASSPHRASE``."""
    if passphrase_file is not None:
        raw = read_bounded(Path(passphrase_file), _MAX_PASSPHRASE_FILE, "passphrase file")
        text = raw.rstrip(b"\r\n")
        if not text:
            raise KeyFileError(passphrase_file, "passphrase file is empty")
        return text
    env = os.environ.get(PASSPHRASE_ENV)
    if env:
        return env.encode("utf-8")
    return None


def read_bounded(path: Path, limit: int, what: str) -> bytes:
    try:
        with path.open("rb") as f:
            data = f.read(limit + 1)
    except FileNotFoundError:
        raise KeyFileError(str(path), f"{what} not found") from None
    except IsADirectoryError:
        raise KeyFileError(str(path), f"{what} is a directory") from None
    except OSError as exc:
        raise KeyFileError(str(path), f"cannot read {what}: {exc.strerror}") from None
    if len(data) > limit:
        raise KeyFileError(str(path), f"{what} is too large to be valid")
    return data


def write_identity(
    out_dir: Path,
    name: str,
    identity: PrivateIdentity,
    passphrase: bytes | None = None,
    params: Argon2Params | None = None,
) -> tuple[Path, Path]:
    """Write ``NAME.key`` (0600) and ``NAME.pub`` (0644) into ``out_dir``."""
    if not valid_name(name):
        raise KeyFileError(name, "invalid name: use letters, digits, '.', '_' or '-' (max 64)")
    try:
        out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise KeyFileError(str(out_dir), f"cannot create directory: {exc.strerror}") from None
    key_path = out_dir / f"{name}.key"
    pub_path = out_dir / f"{name}.pub"
    for p in (key_path, pub_path):
        if p.exists():
            raise KeyFileError(str(p), "already exists; refusing to overwrite a key")
    key_bytes = encode_key_file(identity, system_rng, passphrase, params)
    write_new_file_atomic(key_path, key_bytes, 0o600)
    write_new_file_atomic(pub_path, encode_pub_file(name, identity.public).encode("ascii"), 0o644)
    return key_path, pub_path


def read_private_file(path: Path, limit: int, what: str = "key file") -> bytes:
    """Read a secret file; refuse it if group or others have any access."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise KeyFileError(str(path), f"{what} not found") from None
    except OSError as exc:
        raise KeyFileError(str(path), f"cannot stat {what}: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise KeyFileError(str(path), "not a regular file")
    if st.st_mode & 0o077:
        raise KeyFileError(
            str(path),
            f"permissions {stat.S_IMODE(st.st_mode):04o} let others read it; run chmod 600",
        )
    return read_bounded(path, limit, what)


def load_private_identity(path: Path, passphrase: bytes | None) -> PrivateIdentity:
    """Read a ``.key`` file; refuse it if group or others can read it."""
    data = read_private_file(path, MAX_KEY_FILE_SIZE)
    try:
        return decode_key_file_untrusted(data, passphrase)
    except PassphraseRequired:
        raise KeyFileError(
            str(path), "key file is sealed: give --passphrase-file or set CHHAYA_PASSPHRASE"
        ) from None
    except WrongPassphrase:
        raise KeyFileError(str(path), "wrong passphrase, or the key file is corrupt") from None
    except DecodeError as exc:
        raise KeyFileError(str(path), f"not a valid key file ({exc})") from None


def load_public_identity(path: Path) -> tuple[str, PublicIdentity]:
    """Read a ``.pub`` file and return ``(name, identity)``."""
    data = read_bounded(path, MAX_PUB_FILE_SIZE, "public key file")
    try:
        return decode_pub_file_untrusted(data)
    except ChhayaError as exc:
        raise KeyFileError(str(path), f"not a valid public key file ({exc})") from None
