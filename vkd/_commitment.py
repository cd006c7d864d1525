"""Where a (handle, version) lives in the tree, and what its leaf holds.

    alpha      = "chhaya/vkd/v1/index" || handle var16 (UTF-8, <= 64) || version u64
    index      = VRF_proof_to_hash(VRF_prove(directory VRF key, alpha))[:32]
    commitment = SHA-256("chhaya/vkd/v1/commit" || opening (32)
                         || handle var16 || version u64 || epoch u64 || value var32)

The VRF makes indices unpredictable and unlinkable without the directory's
key, so a lookup proof for one handle reveals nothing about another. The
commitment is hiding (the 32-byte random opening) and binding (SHA-256), so
the tree's leaves reveal nothing until the directory hands out an opening.
The leaf commits to the epoch in which the version was published, which is
what a key-history proof reports.
"""

from __future__ import annotations

import re

from chhaya.crypto import sha256
from chhaya.wire import Writer

__all__ = [
    "MAX_HANDLE_LEN",
    "MAX_VALUE_LEN",
    "OPENING_SIZE",
    "commitment",
    "valid_handle",
    "vrf_input",
]

MAX_HANDLE_LEN = 64
MAX_VALUE_LEN = 16 * 1024
OPENING_SIZE = 32
_INDEX_LABEL = b"chhaya/vkd/v1/index"
_COMMIT_LABEL = b"chhaya/vkd/v1/commit"
_HANDLE_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


def valid_handle(handle: str) -> bool:
    """Handles are lower-case, so that "Alice" and "alice" cannot both exist."""
    return _HANDLE_RE.fullmatch(handle) is not None


def vrf_input(handle: str, version: int) -> bytes:
    return Writer().raw(_INDEX_LABEL).utf8(handle, MAX_HANDLE_LEN).u64(version).getvalue()


def commitment(opening: bytes, handle: str, version: int, epoch: int, value: bytes) -> bytes:
    if len(opening) != OPENING_SIZE:
        raise ValueError("opening must be 32 bytes")
    body = (
        Writer()
        .raw(opening)
        .utf8(handle, MAX_HANDLE_LEN)
        .u64(version)
        .u64(epoch)
        .var32(value, MAX_VALUE_LEN)
        .getvalue()
    )
    return sha256(_COMMIT_LABEL, body)
