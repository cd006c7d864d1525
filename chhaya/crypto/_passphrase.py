"""Argon2id (RFC 9106) for sealing key files under a passphrase."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

__all__ = ["Argon2Params", "argon2id"]


@dataclass(frozen=True, slots=True)
class Argon2Params:
    """Cost parameters. The defaults follow RFC 9106's second recommended
    option (64 MiB, 3 passes), with 4 lanes."""

    time_cost: int = 3
    memory_kib: int = 64 * 1024
    lanes: int = 4

    # Bounds applied when parameters come from a file, so that a crafted
    # key file cannot make us allocate without limit.
    MIN_TIME = 1
    MAX_TIME = 16
    MAX_MEMORY_KIB = 1024 * 1024
    MAX_LANES = 16

    def in_bounds(self) -> bool:
        return (
            self.MIN_TIME <= self.time_cost <= self.MAX_TIME
            and 1 <= self.lanes <= self.MAX_LANES
            and 8 * self.lanes <= self.memory_kib <= self.MAX_MEMORY_KIB
        )


def argon2id(passphrase: bytes, salt: bytes, params: Argon2Params, length: int = 32) -> bytes:
    kdf = Argon2id(
        salt=salt,
        length=length,
        iterations=params.time_cost,
        lanes=params.lanes,
        memory_cost=params.memory_kib,
    )
    return kdf.derive(passphrase)
