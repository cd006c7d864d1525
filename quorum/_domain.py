"""Domain separation for everything a witness signs.

A BLS signature is over ``"chhaya/quorum/v1/" || kind || 0x00 || set_id ||
digest``. The kind names what the digest is (an epoch head, a rotation to a
new witness set, an operator's raw message), so a signature over one kind
counts for no other, and the set id ties it to one witness set.
"""

from __future__ import annotations

from enum import Enum

__all__ = ["SignedKind", "signing_message"]

_PREFIX = b"chhaya/quorum/v1/"


class SignedKind(Enum):
    EPOCH_HEAD = b"epoch-head"
    SET_ROTATION = b"set-rotation"
    MESSAGE = b"message"


def signing_message(kind: SignedKind, set_id: bytes, digest: bytes) -> bytes:
    if len(set_id) != 32:
        raise ValueError("set id must be 32 bytes")
    return _PREFIX + kind.value + b"\x00" + set_id + digest
