"""The directory's own records, behind a small interface.

The tree's nodes live in a :class:`vkd.tree.NodeStore`; this store keeps
what only the directory knows: every published version of every handle with
its opening and VRF proof, the signed head, audit proof and certificate of
every epoch, and the updates waiting for the next epoch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from chhaya import StorageError

__all__ = ["DirectoryStore", "InMemoryDirectoryStore", "PendingUpdate", "VersionRecord"]


@dataclass(frozen=True, slots=True)
class VersionRecord:
    handle: str
    version: int
    epoch: int
    value: bytes
    opening: bytes
    vrf_proof: bytes
    index: bytes


@dataclass(frozen=True, slots=True)
class PendingUpdate:
    handle: str
    value: bytes


class DirectoryStore(Protocol):
    def latest_version(self, handle: str) -> int:
        """0 when the handle has never been published."""
        ...

    def get_version(self, handle: str, version: int) -> VersionRecord | None: ...

    def add_pending(self, update: PendingUpdate) -> None: ...

    def pending(self) -> list[PendingUpdate]: ...

    def commit_epoch(
        self, epoch: int, records: Sequence[VersionRecord], head: bytes, audit: bytes
    ) -> None:
        """Atomically store the epoch's versions, signed head and audit proof,
        and clear the pending updates."""
        ...

    def get_head(self, epoch: int) -> bytes | None: ...

    def get_audit(self, epoch: int) -> bytes | None: ...

    def latest_epoch(self) -> int | None: ...

    def put_certificate(self, epoch: int, certificate: bytes) -> None: ...

    def get_certificate(self, epoch: int) -> bytes | None: ...

    def latest_certified_epoch(self) -> int | None: ...


class InMemoryDirectoryStore:
    def __init__(self) -> None:
        self._versions: dict[tuple[str, int], VersionRecord] = {}
        self._latest: dict[str, int] = {}
        self._pending: list[PendingUpdate] = []
        self._heads: dict[int, bytes] = {}
        self._audits: dict[int, bytes] = {}
        self._certs: dict[int, bytes] = {}

    def latest_version(self, handle: str) -> int:
        return self._latest.get(handle, 0)

    def get_version(self, handle: str, version: int) -> VersionRecord | None:
        return self._versions.get((handle, version))

    def add_pending(self, update: PendingUpdate) -> None:
        self._pending.append(update)

    def pending(self) -> list[PendingUpdate]:
        return list(self._pending)

    def commit_epoch(
        self, epoch: int, records: Sequence[VersionRecord], head: bytes, audit: bytes
    ) -> None:
        expected = 0 if not self._heads else max(self._heads) + 1
        if epoch != expected:
            raise StorageError(f"epoch {epoch} out of order (expected {expected})")
        for rec in records:
            self._versions[(rec.handle, rec.version)] = rec
            self._latest[rec.handle] = max(self._latest.get(rec.handle, 0), rec.version)
        self._heads[epoch] = head
        self._audits[epoch] = audit
        self._pending.clear()

    def get_head(self, epoch: int) -> bytes | None:
        return self._heads.get(epoch)

    def get_audit(self, epoch: int) -> bytes | None:
        return self._audits.get(epoch)

    def latest_epoch(self) -> int | None:
        return max(self._heads) if self._heads else None

    def put_certificate(self, epoch: int, certificate: bytes) -> None:
        if epoch not in self._heads:
            raise StorageError(f"no head for epoch {epoch}")
        self._certs[epoch] = certificate

    def get_certificate(self, epoch: int) -> bytes | None:
        return self._certs.get(epoch)

    def latest_certified_epoch(self) -> int | None:
        return max(self._certs) if self._certs else None
