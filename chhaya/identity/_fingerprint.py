"""Fingerprints that two people can read to each other aloud.

Like Signal's safety numbers: an iterated SHA-512 over the public identity,
shown as groups of five decimal digits. Iterating makes a second-preimage
search (an attacker's key with the same fingerprint) cost more per try.
"""

from __future__ import annotations

from ..crypto import sha512
from ._identity import PublicIdentity

__all__ = ["FINGERPRINT_GROUPS", "fingerprint", "format_fingerprint"]

FINGERPRINT_GROUPS = 12  # 12 x 5 digits, about 199 bits
_ITERATIONS = 1024
_LABEL = b"chhaya-fingerprint-v1"


def fingerprint(identity: PublicIdentity) -> str:
    """Return the fingerprint as ``FINGERPRINT_GROUPS`` space-separated groups."""
    encoded = identity.encode()
    digest = sha512(_LABEL, encoded)
    for _ in range(_ITERATIONS):
        digest = sha512(digest, encoded)
    # 12 groups x 5 bytes = 60 bytes of the 64-byte digest.
    groups = [
        f"{int.from_bytes(digest[i * 5 : i * 5 + 5], 'big') % 100_000:05d}"
        for i in range(FINGERPRINT_GROUPS)
    ]
    return " ".join(groups)


def format_fingerprint(fp: str) -> str:
    """Three lines of four groups, for reading aloud."""
    groups = fp.split()
    return "\n".join(" ".join(groups[i : i + 4]) for i in range(0, len(groups), 4))
