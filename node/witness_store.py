"""A witness's durable memory of the last head it signed (one small file).

    file = "CWST1" || SignedHead || SHA-256(all before)[:16]

Written with :func:`replace_file_atomic` before the signature is released.
A missing file means "never signed"; a corrupt file stops the witness rather
than letting it forget what it signed.
"""

from __future__ import annotations

from pathlib import Path

from chhaya import DecodeError, StorageError
from chhaya.crypto import sha256
from chhaya.safety import ct_equal
from quorum import SIGNED_HEAD_SIZE, SignedHead

from .fsio import replace_file_atomic
from .keystore import read_bounded

__all__ = ["FileWitnessStore"]

_MAGIC = b"CWST1"
_CHECK = 16


class FileWitnessStore:
    def __init__(self, path: Path) -> None:
        self._path = path

    def load(self) -> SignedHead | None:
        if not self._path.exists():
            return None
        data = read_bounded(self._path, 1024, "witness state file")
        body, check = data[:-_CHECK], data[-_CHECK:]
        if (
            len(data) != len(_MAGIC) + SIGNED_HEAD_SIZE + _CHECK
            or not body.startswith(_MAGIC)
            or not ct_equal(check, sha256(body)[:_CHECK])
        ):
            raise StorageError(f"{self._path}: witness state is corrupt; refusing to sign")
        try:
            return SignedHead.decode_untrusted(body[len(_MAGIC) :])
        except DecodeError:
            raise StorageError(
                f"{self._path}: witness state is corrupt; refusing to sign"
            ) from None

    def record(self, head: SignedHead) -> None:
        body = _MAGIC + head.encode()
        replace_file_atomic(self._path, body + sha256(body)[:_CHECK], 0o600)
