"""A key directory's data directory on disk: keys, databases, witness state.

    DIR/directory.key     0600  "CHHYDIR1" || 0x00 || Ed25519 seed (32) || VRF secret (32)
                                || SHA-256(all before)[:16]                         (89 bytes)
    DIR/directory.json    0644  {"format": "chhaya-directory-v1", "directory_key": hex,
                                 "vrf_key": hex, "directory_id": hex}
    DIR/tree.sqlite       0600  the sparse Merkle tree (node.vkd_sqlite_store)
    DIR/directory.sqlite  0600  versions, openings, heads, audit proofs, certificates, pending
                                (node.directory_db)
    DIR/witnesses/ID.state  0600  the last head each local witness signed (FileWitnessStore)

The byte after the magic is a flags byte, 0 for an unsealed key; other
values are refused, leaving room for a passphrase-sealed variant.

Crash safety across the two databases: the directory records are the log,
the tree is derived from them. A publish holds the tree's new batch in
memory until the directory database has committed the epoch, and only then
writes the tree. A crash in between leaves the tree one epoch behind, and
opening the directory replays that epoch into the tree from the stored
versions, checking the result against the signed head's root.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from chhaya import DecodeError, KeyFileError, StorageError, VerificationError
from chhaya.crypto import FAST, Rng, sha256
from chhaya.safety import ct_equal
from quorum import (
    SignedHead,
    SignedKind,
    Witness,
    WitnessSet,
    assemble_certificate,
    directory_id_for,
    valid_witness_id,
)
from quorum.bls import BlsBackend
from vkd import AuditProof, Directory, DirectoryKeys, DirectoryStore, audit_checker, commitment
from vkd.tree import EMPTY_HASH, SparseMerkleTree
from vkd.vrf import FAST_VRF

from .directory_db import SqliteDirectoryStore
from .fsio import write_new_file_atomic
from .keystore import read_bounded, read_private_file
from .vkd_sqlite_store import SqliteNodeStore
from .witness_store import FileWitnessStore

__all__ = [
    "DIRECTORY_DB",
    "DIRECTORY_FORMAT",
    "KEY_FILE",
    "PUBLIC_FILE",
    "TREE_DB",
    "WITNESS_DIR",
    "CertifiedEpoch",
    "DirectoryPublic",
    "OpenedDirectory",
    "certify_epochs",
    "decode_directory_key_untrusted",
    "encode_directory_key",
    "generate_directory_keys",
    "holds_directory",
    "init_directory",
    "load_directory_keys",
    "load_directory_public",
    "open_directory",
    "witness_state_path",
]

KEY_FILE = "directory.key"
PUBLIC_FILE = "directory.json"
TREE_DB = "tree.sqlite"
DIRECTORY_DB = "directory.sqlite"
WITNESS_DIR = "witnesses"
DIRECTORY_FORMAT = "chhaya-directory-v1"

_KEY_MAGIC = b"CHHYDIR1"
_KEY_FLAGS_UNSEALED = 0x00
_CHECK = 16
_KEY_FILE_SIZE = len(_KEY_MAGIC) + 1 + 32 + 32 + _CHECK
_MAX_PUBLIC_FILE = 4096


# ----------------------------------------------------------------- key file


def generate_directory_keys(rng: Rng) -> DirectoryKeys:
    return DirectoryKeys(FAST.sig.generate(rng), rng(32))


def encode_directory_key(keys: DirectoryKeys) -> bytes:
    if len(keys.vrf_secret) != 32:
        raise ValueError("VRF secret must be 32 bytes")
    body = _KEY_MAGIC + bytes((_KEY_FLAGS_UNSEALED,)) + keys.signing.seed + keys.vrf_secret
    return body + sha256(body)[:_CHECK]


def decode_directory_key_untrusted(data: bytes) -> DirectoryKeys:
    if len(data) != _KEY_FILE_SIZE:
        raise DecodeError("directory key file has the wrong size")
    body, check = data[:-_CHECK], data[-_CHECK:]
    if not body.startswith(_KEY_MAGIC):
        raise DecodeError("not a directory key file")
    if not ct_equal(check, sha256(body)[:_CHECK]):
        raise DecodeError("checksum mismatch: the key file is corrupt")
    flags = body[len(_KEY_MAGIC)]
    if flags != _KEY_FLAGS_UNSEALED:
        raise DecodeError(f"unknown key flags {flags:#04x}")
    seed = body[len(_KEY_MAGIC) + 1 : len(_KEY_MAGIC) + 33]
    return DirectoryKeys(FAST.sig.from_seed(seed), body[len(_KEY_MAGIC) + 33 :])


def load_directory_keys(path: Path) -> DirectoryKeys:
    """Read ``directory.key``; refuse it if group or others can read it."""
    data = read_private_file(path, 4096, "directory key file")
    try:
        return decode_directory_key_untrusted(data)
    except DecodeError as exc:
        raise KeyFileError(str(path), f"not a valid directory key file ({exc})") from None


# ----------------------------------------------------------------- public file


@dataclass(frozen=True, slots=True)
class DirectoryPublic:
    """What a directory publishes about itself: both public keys and its id."""

    directory_key: bytes
    vrf_key: bytes

    @property
    def directory_id(self) -> bytes:
        return directory_id_for(self.directory_key, self.vrf_key)

    @classmethod
    def of(cls, keys: DirectoryKeys) -> DirectoryPublic:
        return cls(keys.signing.public_key, FAST_VRF.public_key(keys.vrf_secret))

    def to_json(self) -> str:
        doc = {
            "format": DIRECTORY_FORMAT,
            "directory_key": self.directory_key.hex(),
            "vrf_key": self.vrf_key.hex(),
            "directory_id": self.directory_id.hex(),
        }
        return json.dumps(doc, indent=2) + "\n"


def load_directory_public(path: Path) -> DirectoryPublic:
    raw = read_bounded(path, _MAX_PUBLIC_FILE, "directory public file")
    try:
        doc = json.loads(raw)
        if not isinstance(doc, dict) or doc.get("format") != DIRECTORY_FORMAT:
            raise ValueError(f"format is not {DIRECTORY_FORMAT}")
        public = DirectoryPublic(
            bytes.fromhex(str(doc["directory_key"])), bytes.fromhex(str(doc["vrf_key"]))
        )
        if len(public.directory_key) != 32 or len(public.vrf_key) != 32:
            raise ValueError("keys must be 32 bytes")
        if doc.get("directory_id") != public.directory_id.hex():
            raise ValueError("directory_id does not match the keys")
    except (ValueError, KeyError, TypeError) as exc:
        raise StorageError(f"{path}: invalid directory public file ({exc})") from None
    return public


# ----------------------------------------------------------------- the tree, held back


class _HeldNodeStore:
    """The tree's node store, holding the next batch until :meth:`flush`.

    Reads see the held batch, so the tree behaves as if it were written; the
    directory writes it only after its own records are committed.
    """

    def __init__(self, inner: SqliteNodeStore) -> None:
        self._inner = inner
        self._held: tuple[dict[bytes, bytes], bytes, int] | None = None

    def get_node(self, ref: bytes) -> bytes | None:
        if self._held is not None and ref in self._held[0]:
            return self._held[0][ref]
        return self._inner.get_node(ref)

    def write_batch(self, nodes: Mapping[bytes, bytes], root: bytes, epoch: int) -> None:
        latest = self.latest_epoch()
        expected = 0 if latest is None else latest + 1
        if self._held is not None or epoch != expected:
            raise StorageError(f"epoch {epoch} does not follow epoch {latest}")
        self._held = (dict(nodes), root, epoch)

    def get_root(self, epoch: int) -> bytes | None:
        if self._held is not None and epoch == self._held[2]:
            return self._held[1]
        return self._inner.get_root(epoch)

    def latest_epoch(self) -> int | None:
        if self._held is not None:
            return self._held[2]
        return self._inner.latest_epoch()

    def flush(self) -> None:
        if self._held is not None:
            nodes, root, epoch = self._held
            self._held = None
            self._inner.write_batch(nodes, root, epoch)

    def discard(self) -> None:
        self._held = None


def _replay_epoch(tree_store: _HeldNodeStore, records: SqliteDirectoryStore, epoch: int) -> None:
    """Rebuild the tree's ``epoch`` from the committed directory records."""
    raw = records.get_head(epoch)
    if raw is None:
        raise StorageError(f"no head for epoch {epoch}")
    try:
        head = SignedHead.decode_untrusted(raw)
    except DecodeError:
        raise StorageError(f"corrupt head for epoch {epoch}") from None
    batch = {
        r.index: commitment(r.opening, r.handle, r.version, r.epoch, r.value)
        for r in records.records_in_epoch(epoch)
    }
    root = SparseMerkleTree(tree_store).insert_batch(batch)
    if root != head.head.root:
        tree_store.discard()
        raise StorageError(f"replaying epoch {epoch} into the tree does not give its signed root")
    tree_store.flush()


def _reconcile(data_dir: Path, tree_store: _HeldNodeStore, records: SqliteDirectoryStore) -> None:
    tree_epoch, records_epoch = tree_store.latest_epoch(), records.latest_epoch()
    if tree_epoch == records_epoch:
        return
    behind_by_one = records_epoch is not None and (
        (tree_epoch is None and records_epoch == 0)
        or (tree_epoch is not None and tree_epoch + 1 == records_epoch)
    )
    if records_epoch is not None and behind_by_one:
        _replay_epoch(tree_store, records, records_epoch)
        return
    raise StorageError(
        f"{data_dir}: the tree (epoch {tree_epoch}) and the directory records"
        f" (epoch {records_epoch}) disagree; restore both databases from one backup"
    )


# ----------------------------------------------------------------- opening a directory


class OpenedDirectory:
    """A :class:`vkd.Directory` over the databases in one data directory."""

    def __init__(self, data_dir: Path, keys: DirectoryKeys) -> None:
        self.data_dir = data_dir
        self.public = DirectoryPublic.of(keys)
        self._node_store = SqliteNodeStore(data_dir / TREE_DB)
        try:
            self.records = SqliteDirectoryStore(data_dir / DIRECTORY_DB)
        except BaseException:
            self._node_store.close()
            raise
        try:
            self._tree_store = _HeldNodeStore(self._node_store)
            _reconcile(data_dir, self._tree_store, self.records)
            store: DirectoryStore = self.records
            self.directory = Directory(keys, SparseMerkleTree(self._tree_store), store)
        except BaseException:
            self.close()
            raise

    def publish(self, now: int, rng: Rng) -> tuple[SignedHead, AuditProof | None]:
        """Publish the next epoch: directory records first, then the tree."""
        try:
            signed, audit = self.directory.publish(now, rng)
        except BaseException:
            self._tree_store.discard()
            raise
        self._tree_store.flush()
        return signed, audit

    def close(self) -> None:
        self._node_store.close()
        self.records.close()

    def __enter__(self) -> OpenedDirectory:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _create_private(path: Path) -> None:
    """Create an empty 0600 file (SQLite gives its -wal and -shm files the same mode)."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        os.chmod(path, 0o600)
    except FileExistsError:
        raise StorageError(f"{path}: already exists; refusing to overwrite it") from None
    except OSError as exc:
        raise StorageError(f"{path}: cannot create: {exc.strerror}") from None


def holds_directory(data_dir: Path) -> bool:
    names = (KEY_FILE, PUBLIC_FILE, DIRECTORY_DB, TREE_DB)
    return any((data_dir / name).exists() for name in names)


def init_directory(data_dir: Path, now: int, rng: Rng) -> tuple[OpenedDirectory, SignedHead]:
    """Create keys, both databases and the (uncertified) genesis epoch."""
    if holds_directory(data_dir):
        raise StorageError(f"{data_dir}: already holds a directory; refusing to overwrite it")
    try:
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise StorageError(f"{data_dir}: cannot create directory: {exc.strerror}") from None
    files = [data_dir / name for name in (TREE_DB, DIRECTORY_DB, KEY_FILE, PUBLIC_FILE)]
    created: list[Path] = []
    try:
        for path in files[:2]:  # private: the databases hold every handle and opening
            _create_private(path)
            created.append(path)
        keys = generate_directory_keys(rng)
        write_new_file_atomic(files[2], encode_directory_key(keys), 0o600)
        created.append(files[2])
        public = DirectoryPublic.of(keys).to_json().encode("ascii")
        write_new_file_atomic(files[3], public, 0o644)
        created.append(files[3])
        opened = OpenedDirectory(data_dir, keys)
        try:
            genesis, _ = opened.publish(now, rng)
        except BaseException:
            opened.close()
            raise
    except BaseException:
        for path in created:  # nothing was published: leave no half-made directory
            for leftover in (
                path,
                path.with_name(path.name + "-wal"),
                path.with_name(path.name + "-shm"),
            ):
                with contextlib.suppress(OSError):
                    leftover.unlink()
        raise
    return opened, genesis


def open_directory(data_dir: Path) -> OpenedDirectory:
    """Open an existing directory; refuse a data directory that holds none."""
    key_path = data_dir / KEY_FILE
    if not key_path.exists():
        raise StorageError(
            f"{data_dir}: not a chhaya directory (no {KEY_FILE}); run `chhaya directory init`"
        )
    keys = load_directory_keys(key_path)
    public = load_directory_public(data_dir / PUBLIC_FILE)
    if public != DirectoryPublic.of(keys):
        raise StorageError(f"{data_dir}: {PUBLIC_FILE} does not match {KEY_FILE}")
    for name in (TREE_DB, DIRECTORY_DB):
        if not (data_dir / name).is_file():
            raise StorageError(f"{data_dir / name}: directory database is missing")
    return OpenedDirectory(data_dir, keys)


# ----------------------------------------------------------------- local certification


def witness_state_path(data_dir: Path, witness_id: str) -> Path:
    if not valid_witness_id(witness_id):
        raise ValueError(f"invalid witness id {witness_id!r}")
    return data_dir / WITNESS_DIR / f"{witness_id}.state"


@dataclass(frozen=True, slots=True)
class CertifiedEpoch:
    epoch: int
    signers: tuple[str, ...]


def certify_epochs(
    opened: OpenedDirectory,
    witness_set: WitnessSet,
    backend: BlsBackend,
    secret_keys: Mapping[str, int],
    now: int,
) -> list[CertifiedEpoch]:
    """Certify every epoch after the newest certified one, in order.

    Runs one :class:`quorum.Witness` per key (witness id -> secret key), each
    with its durable state in ``DIR/witnesses/ID.state``. A witness that is
    behind first signs its way through the epochs it missed, checking each
    audit proof; one that already signed past an epoch is skipped for it.
    """
    directory, records = opened.directory, opened.records
    latest = records.latest_epoch()
    if latest is None:
        return []
    certified = records.latest_certified_epoch()
    first = 0 if certified is None else certified + 1
    state_dir = opened.data_dir / WITNESS_DIR
    try:
        state_dir.mkdir(exist_ok=True, mode=0o700)
    except OSError as exc:
        raise StorageError(f"{state_dir}: cannot create directory: {exc.strerror}") from None
    witnesses = {
        witness_id: Witness(
            secret_key=sk,
            backend=backend,
            set_id=witness_set.set_id,
            directory_key=directory.directory_key,
            directory_vrf_key=directory.vrf_public_key,
            store=FileWitnessStore(witness_state_path(opened.data_dir, witness_id)),
            audit=audit_checker,
            genesis_root=EMPTY_HASH,
        )
        for witness_id, sk in secret_keys.items()
    }

    def audit_bytes(epoch: int) -> bytes:
        return b"" if epoch == 0 else directory.audit(epoch).encode()

    def sign(witness_id: str, witness: Witness, epoch: int) -> bytes:
        try:
            return witness.sign_head(directory.head(epoch), audit_bytes(epoch), now)
        except VerificationError as exc:
            raise VerificationError(
                "witness-refused", f"witness {witness_id} refused epoch {epoch} ({exc})"
            ) from None

    out = []
    for epoch in range(first, latest + 1):
        head = directory.head(epoch)
        partials: dict[str, bytes] = {}
        for witness_id, witness in witnesses.items():
            last = witness.last_signed
            if last is not None and last.head.epoch > epoch:
                continue
            for missed in range(0 if last is None else last.head.epoch + 1, epoch):
                sign(witness_id, witness, missed)
            partials[witness_id] = sign(witness_id, witness, epoch)
        try:
            cert = assemble_certificate(
                witness_set, backend, SignedKind.EPOCH_HEAD, head.head.head_hash, partials
            )
        except VerificationError as exc:
            raise VerificationError(
                exc.check, f"epoch {epoch} was published but not certified ({exc})"
            ) from None
        directory.attach_certificate(epoch, cert)
        out.append(CertifiedEpoch(epoch, tuple(sorted(partials))))
    return out
