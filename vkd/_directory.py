"""The directory publisher: batches updates into epochs and serves proofs.

How it works
------------
``add(handle, value)`` queues an update. ``publish(now, rng)`` turns the
queue into the next epoch: each update becomes a new (handle, version) whose
tree index is the VRF output for ``vrf_input(handle, version)`` and whose
leaf is a fresh hiding commitment to (handle, version, epoch, value). The
leaves go into the tree in one batch; the new root goes into an epoch head
chained to the previous one and signed with the directory's Ed25519 key,
together with an audit proof (signed too) that lets witnesses check the
batch only added leaves. Witnesses' signatures come back as a quorum
certificate (``attach_certificate``). Lookups and histories are answered
against the newest *certified* epoch only.
"""

from __future__ import annotations

from dataclasses import dataclass

from chhaya import LocalProtocolError, StorageError
from chhaya.crypto import Rng, SigningKey
from quorum import (
    GENESIS_PREVIOUS,
    EpochHead,
    QuorumCertificate,
    SignedHead,
    directory_id_for,
    sign_head,
)

from ._bundle import DirectoryValue
from ._commitment import OPENING_SIZE, commitment, valid_handle, vrf_input
from ._proofs import MAX_VERSION, AuditProof, HistoryProof, LookupProof, VersionOpening
from ._store import DirectoryStore, PendingUpdate, VersionRecord
from .tree import SparseMerkleTree
from .vrf import FAST_VRF, Vrf

__all__ = ["Directory", "DirectoryKeys"]


@dataclass(frozen=True, slots=True, repr=False)
class DirectoryKeys:
    signing: SigningKey
    vrf_secret: bytes

    def __repr__(self) -> str:
        return "DirectoryKeys(<secrets redacted>)"


class Directory:
    def __init__(
        self,
        keys: DirectoryKeys,
        tree: SparseMerkleTree,
        store: DirectoryStore,
        vrf: Vrf = FAST_VRF,
    ) -> None:
        self._keys = keys
        self._tree = tree
        self._store = store
        self._vrf = vrf
        self.directory_key = keys.signing.public_key
        self.vrf_public_key = vrf.public_key(keys.vrf_secret)
        self.directory_id = directory_id_for(self.directory_key, self.vrf_public_key)
        tree_epoch, store_epoch = tree.epoch, store.latest_epoch()
        if tree_epoch != store_epoch:
            raise StorageError(
                f"tree (epoch {tree_epoch}) and directory records (epoch {store_epoch}) disagree"
            )

    # ------------------------------------------------------------- updates

    def add(self, handle: str, value: DirectoryValue) -> None:
        if not valid_handle(handle):
            raise LocalProtocolError(f"invalid handle {handle!r}")
        self._store.add_pending(PendingUpdate(handle, value.encode()))

    def _index(self, handle: str, version: int) -> tuple[bytes, bytes]:
        proof, beta = self._vrf.prove_with_output(self._keys.vrf_secret, vrf_input(handle, version))
        return proof, beta[:32]

    def publish(self, now: int, rng: Rng) -> tuple[SignedHead, AuditProof | None]:
        """Make the next epoch. The first call makes the empty genesis epoch."""
        latest = self._store.latest_epoch()
        if latest is None:
            root = self._tree.insert_batch({})
            genesis = sign_head(
                self._keys.signing,
                self.vrf_public_key,
                EpochHead(self.directory_id, 0, root, GENESIS_PREVIOUS, now),
            )
            self._store.commit_epoch(0, [], genesis.encode(), b"")
            return genesis, None
        previous = self.head(latest)
        epoch = latest + 1
        records: list[VersionRecord] = []
        batch: dict[bytes, bytes] = {}
        next_version: dict[str, int] = {}
        for update in self._store.pending():
            version = next_version.get(update.handle, self._store.latest_version(update.handle)) + 1
            if version >= MAX_VERSION:
                raise LocalProtocolError(f"{update.handle!r} has no versions left")
            next_version[update.handle] = version
            vrf_proof, index = self._index(update.handle, version)
            opening = rng(OPENING_SIZE)
            batch[index] = commitment(opening, update.handle, version, epoch, update.value)
            records.append(
                VersionRecord(
                    update.handle, version, epoch, update.value, opening, vrf_proof, index
                )
            )
        old_root = previous.head.root
        append_only = self._tree.prove_append_only(old_root, batch)
        root = self._tree.insert_batch(batch)
        head = EpochHead(
            self.directory_id, epoch, root, previous.head.head_hash, max(now, previous.head.time_ms)
        )
        signed = sign_head(self._keys.signing, self.vrf_public_key, head)
        audit = AuditProof.create(
            self._keys.signing, previous, signed, sorted(batch.items()), append_only
        )
        self._store.commit_epoch(epoch, records, signed.encode(), audit.encode())
        return signed, audit

    def attach_certificate(self, epoch: int, certificate: QuorumCertificate) -> None:
        self._store.put_certificate(epoch, certificate.encode())

    # ------------------------------------------------------------- queries

    def head(self, epoch: int) -> SignedHead:
        raw = self._store.get_head(epoch)
        if raw is None:
            raise LocalProtocolError(f"no epoch {epoch}")
        return SignedHead.decode_untrusted(raw)

    def audit(self, epoch: int) -> AuditProof:
        """The audit proof from ``epoch - 1`` to ``epoch``."""
        raw = self._store.get_audit(epoch)
        if not raw:
            raise LocalProtocolError(f"no audit proof for epoch {epoch}")
        return AuditProof.decode_untrusted(raw)

    def certified_epoch(self) -> int:
        epoch = self._store.latest_certified_epoch()
        if epoch is None:
            raise LocalProtocolError("no epoch has been certified yet")
        return epoch

    def certificate(self, epoch: int) -> QuorumCertificate:
        raw = self._store.get_certificate(epoch)
        if raw is None:
            raise LocalProtocolError(f"epoch {epoch} is not certified")
        return QuorumCertificate.decode_untrusted(raw)

    def _latest_version_at(self, handle: str, epoch: int) -> int:
        version = self._store.latest_version(handle)
        while version > 0:
            record = self._store.get_version(handle, version)
            if record is not None and record.epoch <= epoch:
                return version
            version -= 1
        return 0

    def _opening(self, handle: str, version: int, epoch: int) -> VersionOpening:
        record = self._store.get_version(handle, version)
        if record is None:
            raise StorageError(f"version {version} of {handle!r} is missing")
        membership = self._tree.prove_membership(record.index, epoch)
        return VersionOpening(
            record.value, record.opening, record.epoch, record.vrf_proof, membership
        )

    def lookup(self, handle: str) -> LookupProof:
        """The newest version of ``handle`` in the newest certified epoch."""
        epoch = self.certified_epoch()
        version = self._latest_version_at(handle, epoch)
        latest = self._opening(handle, version, epoch) if version else None
        next_vrf, next_index = self._index(handle, version + 1)
        return LookupProof(
            handle,
            version,
            latest,
            next_vrf,
            self._tree.prove_non_membership(next_index, epoch),
            self.head(epoch),
            self.certificate(epoch),
        )

    def history(self, handle: str) -> HistoryProof:
        """Every version of ``handle``, in order, in the newest certified epoch."""
        epoch = self.certified_epoch()
        last = self._latest_version_at(handle, epoch)
        versions = tuple(self._opening(handle, v, epoch) for v in range(1, last + 1))
        next_vrf, next_index = self._index(handle, last + 1)
        return HistoryProof(
            handle,
            versions,
            next_vrf,
            self._tree.prove_non_membership(next_index, epoch),
            self.head(epoch),
            self.certificate(epoch),
        )
