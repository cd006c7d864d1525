"""The SQLite directory store (same behaviour as the in-memory one) and the
directory's data directory: key file, crash recovery between the databases."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from chhaya import DecodeError, KeyFileError, StorageError
from chhaya.crypto import FAST
from node.directory_db import APPLICATION_ID, SCHEMA_VERSION, SqliteDirectoryStore, migrate
from node.directory_files import (
    DIRECTORY_DB,
    KEY_FILE,
    TREE_DB,
    certify_epochs,
    decode_directory_key_untrusted,
    encode_directory_key,
    init_directory,
    open_directory,
    witness_state_path,
)
from node.vkd_sqlite_store import SqliteNodeStore
from quorum import (
    CertificateVerifier,
    InMemoryWitnessStore,
    SignedKind,
    Witness,
    WitnessMember,
    WitnessSet,
    assemble_certificate,
)
from quorum.bls import get_backend
from vkd import (
    Directory,
    DirectoryKeys,
    DirectoryStore,
    DirectoryTrust,
    InMemoryDirectoryStore,
    PendingUpdate,
    VerifiedBinding,
    VersionRecord,
    audit_checker,
    verify_vkd_proof,
)
from vkd.tree import InMemoryNodeStore, SparseMerkleTree

from ..vkd.conftest import NOW, bundle_for, det_rng

StoreFactory = Callable[[], DirectoryStore]


@pytest.fixture(params=["memory", "sqlite"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    opened: list[SqliteDirectoryStore] = []

    def factory() -> DirectoryStore:
        if request.param == "memory":
            return InMemoryDirectoryStore()
        store = SqliteDirectoryStore(tmp_path / f"dir-{len(opened)}.sqlite")
        opened.append(store)
        return store

    yield factory
    for store in opened:
        store.close()


def _record(handle: str, version: int, epoch: int) -> VersionRecord:
    tag = f"{handle}/{version}".encode()
    return VersionRecord(
        handle,
        version,
        epoch,
        b"value " + tag,
        hashlib.sha256(b"o" + tag).digest(),
        bytes(80),
        hashlib.sha256(b"i" + tag).digest(),
    )


# ----------------------------------------------------------------- both stores


def test_empty_store(make_store: StoreFactory) -> None:
    store = make_store()
    assert store.latest_version("alice") == 0
    assert store.get_version("alice", 1) is None
    assert store.pending() == []
    assert store.latest_epoch() is None
    assert store.get_head(0) is None
    assert store.get_audit(0) is None
    assert store.get_certificate(0) is None
    assert store.latest_certified_epoch() is None


def test_pending_updates_keep_their_order_until_committed(make_store: StoreFactory) -> None:
    store = make_store()
    updates = [
        PendingUpdate("alice", b"1"),
        PendingUpdate("bob", b"2"),
        PendingUpdate("alice", b"3"),
    ]
    for u in updates:
        store.add_pending(u)
    assert store.pending() == updates
    store.commit_epoch(0, [], b"head0", b"")
    assert store.pending() == []


def test_commit_stores_versions_heads_and_audits(make_store: StoreFactory) -> None:
    store = make_store()
    store.commit_epoch(0, [], b"head0", b"")
    records = [_record("alice", 1, 1), _record("bob", 1, 1)]
    store.commit_epoch(1, records, b"head1", b"audit1")
    store.commit_epoch(2, [_record("alice", 2, 2)], b"head2", b"audit2")
    assert store.latest_epoch() == 2
    assert store.latest_version("alice") == 2
    assert store.latest_version("bob") == 1
    assert store.latest_version("carol") == 0
    assert store.get_version("alice", 1) == records[0]
    assert store.get_version("alice", 2) == _record("alice", 2, 2)
    assert store.get_version("alice", 3) is None
    assert store.get_head(1) == b"head1"
    assert store.get_audit(0) == b""  # genesis has an empty audit, not a missing one
    assert store.get_audit(2) == b"audit2"
    assert store.get_head(3) is None


@pytest.mark.parametrize("bad_epoch", [1, -1, 5])
def test_out_of_order_first_epoch_is_refused(make_store: StoreFactory, bad_epoch: int) -> None:
    store = make_store()
    store.add_pending(PendingUpdate("alice", b"1"))
    with pytest.raises(StorageError, match="out of order"):
        store.commit_epoch(bad_epoch, [_record("alice", 1, bad_epoch)], b"h", b"a")
    assert store.latest_epoch() is None
    assert store.latest_version("alice") == 0
    assert store.pending() == [PendingUpdate("alice", b"1")]


@pytest.mark.parametrize("bad_epoch", [0, 1, 3, 2**63, 2**64])
def test_out_of_order_later_epoch_is_refused(make_store: StoreFactory, bad_epoch: int) -> None:
    store = make_store()
    store.commit_epoch(0, [], b"h0", b"")
    store.commit_epoch(1, [], b"h1", b"a1")
    with pytest.raises(StorageError, match="out of order"):
        store.commit_epoch(bad_epoch, [_record("alice", 1, 2)], b"h", b"a")
    assert store.latest_epoch() == 1
    assert store.get_head(1) == b"h1"
    assert store.get_version("alice", 1) is None


def test_certificates(make_store: StoreFactory) -> None:
    store = make_store()
    with pytest.raises(StorageError, match="no head"):
        store.put_certificate(0, b"cert")
    for epoch in range(3):
        store.commit_epoch(epoch, [], b"h%d" % epoch, b"")
    store.put_certificate(1, b"cert1")
    assert store.latest_certified_epoch() == 1
    store.put_certificate(0, b"cert0")
    assert store.latest_certified_epoch() == 1
    assert store.get_certificate(0) == b"cert0"
    assert store.get_certificate(2) is None
    store.put_certificate(1, b"again")
    assert store.get_certificate(1) == b"again"
    for bad in (3, -1, 2**64):
        with pytest.raises(StorageError, match="no head"):
            store.put_certificate(bad, b"cert")


@pytest.mark.parametrize("bad", [-1, 2**63, 2**64])
def test_out_of_range_numbers_are_absent(make_store: StoreFactory, bad: int) -> None:
    store = make_store()
    store.commit_epoch(0, [], b"h0", b"")
    assert store.get_head(bad) is None
    assert store.get_audit(bad) is None
    assert store.get_certificate(bad) is None
    assert store.get_version("alice", bad) is None


def _publish_world(store: DirectoryStore) -> tuple[Directory, list[bytes], object]:
    """A deterministic directory over ``store``: three certified epochs."""
    backend = get_backend("blst")
    sks = [backend.key_gen(hashlib.sha256(b"db-w%d" % i).digest()) for i in range(3)]
    members = tuple(
        WitnessMember(f"W{i + 1}", backend.sk_to_pk(sk), backend.pop_prove(sk))
        for i, sk in enumerate(sks)
    )
    ws = WitnessSet(members, 2)
    keys = DirectoryKeys(
        FAST.sig.from_seed(hashlib.sha256(b"db-sig").digest()), hashlib.sha256(b"db-vrf").digest()
    )
    directory = Directory(keys, SparseMerkleTree(InMemoryNodeStore()), store)
    witnesses = [
        Witness(
            secret_key=sk,
            backend=backend,
            set_id=ws.set_id,
            directory_key=directory.directory_key,
            directory_vrf_key=directory.vrf_public_key,
            store=InMemoryWitnessStore(),
            audit=audit_checker,
        )
        for sk in sks[:2]
    ]
    rng = det_rng(b"db")
    heads = []
    batches = [[], [("alice", "alice"), ("bob", "bob")], [("alice", "alice-2")]]
    for epoch, batch in enumerate(batches):
        for handle, seed in batch:
            directory.add(handle, bundle_for(seed))
        head, audit = directory.publish(NOW + epoch * 1000, rng)
        proof = b"" if audit is None else audit.encode()
        partials = {
            f"W{i + 1}": w.sign_head(head, proof, NOW + epoch * 1000)
            for i, w in enumerate(witnesses)
        }
        cert = assemble_certificate(
            ws, backend, SignedKind.EPOCH_HEAD, head.head.head_hash, partials
        )
        directory.attach_certificate(epoch, cert)
        heads.append(head.encode())
    trust = DirectoryTrust(CertificateVerifier(ws, backend), directory.directory_key)
    return directory, heads, trust


def test_directory_over_either_store_gives_the_same_epochs(make_store: StoreFactory) -> None:
    directory, heads, trust = _publish_world(make_store())
    reference, reference_heads, _ = _publish_world(InMemoryDirectoryStore())
    assert heads == reference_heads  # same keys, rng and clock: byte-identical heads
    assert isinstance(trust, DirectoryTrust)
    got = verify_vkd_proof(directory.lookup("alice"), trust, None, NOW + 5000)
    assert isinstance(got, VerifiedBinding)
    assert got.version == 2
    assert got.bundle == bundle_for("alice-2").bundle
    assert directory.lookup("alice").encode() == reference.lookup("alice").encode()
    directory.audit(2).verify()


# ----------------------------------------------------------------- SQLite only


def test_reopened_store_keeps_everything(tmp_path: Path) -> None:
    path = tmp_path / "d.sqlite"
    with SqliteDirectoryStore(path) as store:
        store.commit_epoch(0, [], b"h0", b"")
        store.commit_epoch(1, [_record("alice", 1, 1)], b"h1", b"a1")
        store.put_certificate(1, b"c1")
        store.add_pending(PendingUpdate("bob", b"x"))
    with SqliteDirectoryStore(path) as store:
        assert store.latest_epoch() == 1
        assert store.get_version("alice", 1) == _record("alice", 1, 1)
        assert store.get_certificate(1) == b"c1"
        assert store.pending() == [PendingUpdate("bob", b"x")]
        assert store.records_in_epoch(1) == [_record("alice", 1, 1)]
        db = store._db
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert db.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
        assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        assert db.execute("PRAGMA application_id").fetchone() == (APPLICATION_ID,)


def test_a_published_version_is_never_overwritten(tmp_path: Path) -> None:
    with SqliteDirectoryStore(tmp_path / "d.sqlite") as store:
        store.commit_epoch(0, [_record("alice", 1, 0)], b"h0", b"")
        store.add_pending(PendingUpdate("alice", b"new"))
        store.pending()
        changed = _record("bob", 1, 1), _record("alice", 1, 1)
        with pytest.raises(StorageError, match="published version would change"):
            store.commit_epoch(1, changed, b"h1", b"a1")
        assert store.latest_epoch() == 0  # the whole epoch rolled back
        assert store.get_version("bob", 1) is None
        assert store.get_version("alice", 1) == _record("alice", 1, 0)
        assert store.pending() == [PendingUpdate("alice", b"new")]


def test_an_update_queued_meanwhile_waits_for_the_next_epoch(tmp_path: Path) -> None:
    path = tmp_path / "d.sqlite"
    with SqliteDirectoryStore(path) as publisher, SqliteDirectoryStore(path) as other:
        publisher.add_pending(PendingUpdate("alice", b"1"))
        assert publisher.pending() == [PendingUpdate("alice", b"1")]
        other.add_pending(PendingUpdate("bob", b"2"))  # after the publisher read the queue
        publisher.commit_epoch(0, [_record("alice", 1, 0)], b"h0", b"")
        assert publisher.pending() == [PendingUpdate("bob", b"2")]


def test_migrate_creates_the_schema_once(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "d.sqlite", isolation_level=None)
    migrate(db)
    migrate(db)  # idempotent
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"versions", "epochs", "pending"} <= tables
    db.close()


def _expect_storage_error(path: Path, *fragments: str, timeout_s: float = 5.0) -> None:
    with pytest.raises(StorageError) as info:
        SqliteDirectoryStore(path, timeout_s=timeout_s).close()
    for fragment in fragments:
        assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_garbage_file_is_not_a_directory_database(tmp_path: Path) -> None:
    path = tmp_path / "d.sqlite"
    path.write_bytes(b"this is not a database" * 200)
    _expect_storage_error(path, str(path), "not a chhaya directory database")


def test_another_sqlite_database_is_refused(tmp_path: Path) -> None:
    with SqliteNodeStore(tmp_path / "tree.sqlite"):
        pass
    _expect_storage_error(tmp_path / "tree.sqlite", "not a chhaya directory database")
    other = tmp_path / "other.sqlite"
    db = sqlite3.connect(other)
    db.execute("CREATE TABLE t (x)")
    db.commit()
    db.close()
    _expect_storage_error(other, "not a chhaya directory database")


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "d.sqlite"
    SqliteDirectoryStore(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    _expect_storage_error(path, f"schema version {SCHEMA_VERSION + 1}")


def test_smashed_page_is_a_storage_error(tmp_path: Path) -> None:
    path = tmp_path / "d.sqlite"
    with SqliteDirectoryStore(path) as store:
        for epoch in range(40):
            store.commit_epoch(epoch, [_record(f"h{epoch}", 1, epoch)], os.urandom(300), b"")
        store._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = path.read_bytes()
    path.write_bytes(data[:4096] + b"\xff" * 4096 + data[8192:])  # smash the second page
    with pytest.raises(StorageError, match="directory database is corrupt"):
        _read_everything(path)


def _read_everything(path: Path) -> None:
    with SqliteDirectoryStore(path) as store:
        for epoch in range(40):
            store.get_head(epoch)
            store.get_version(f"h{epoch}", 1)


def test_corrupt_row_is_a_storage_error(tmp_path: Path) -> None:
    path = tmp_path / "d.sqlite"
    with SqliteDirectoryStore(path) as store:
        store.commit_epoch(0, [_record("alice", 1, 0)], b"h0", b"")
        store._db.execute("UPDATE epochs SET head = 'text' WHERE epoch = 0")
        store._db.execute("UPDATE versions SET epoch = 'x'")
        with pytest.raises(StorageError, match="corrupt epoch head"):
            store.get_head(0)
        with pytest.raises(StorageError, match="corrupt version record"):
            store.get_version("alice", 1)


def test_locked_database_is_a_clear_storage_error(tmp_path: Path) -> None:
    path = tmp_path / "d.sqlite"
    with SqliteDirectoryStore(path, timeout_s=0.05) as store:
        store.commit_epoch(0, [], b"h0", b"")
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # another process is writing
        try:
            with pytest.raises(StorageError, match="directory database is locked"):
                store.commit_epoch(1, [_record("alice", 1, 1)], b"h1", b"a1")
            with pytest.raises(StorageError, match="directory database is locked"):
                store.add_pending(PendingUpdate("alice", b"1"))
            with pytest.raises(StorageError, match="directory database is locked"):
                store.put_certificate(0, b"c")
            assert store.get_head(0) == b"h0"  # readers are not blocked (WAL)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        store.commit_epoch(1, [_record("alice", 1, 1)], b"h1", b"a1")


def test_locked_while_opening_is_a_clear_storage_error(tmp_path: Path) -> None:
    path = tmp_path / "d.sqlite"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE x (y)")
    holder.execute("BEGIN EXCLUSIVE")  # rollback-journal mode: locks out everyone
    try:
        _expect_storage_error(path, "directory database is locked", timeout_s=0.05)
    finally:
        holder.execute("ROLLBACK")
        holder.close()


# ----------------------------------------------------------------- the data directory


def test_directory_key_file_round_trip_and_tamper() -> None:
    rng = det_rng(b"keyfile")
    keys = DirectoryKeys(FAST.sig.generate(rng), rng(32))
    data = encode_directory_key(keys)
    assert len(data) == 89
    assert data.startswith(b"CHHYDIR1\x00")
    back = decode_directory_key_untrusted(data)
    assert back.signing.public_key == keys.signing.public_key
    assert back.vrf_secret == keys.vrf_secret
    for i in range(len(data)):
        flipped = bytearray(data)
        flipped[i] ^= 0x01
        with pytest.raises(DecodeError):
            decode_directory_key_untrusted(bytes(flipped))
    for bad in (b"", data[:-1], data + b"\x00"):
        with pytest.raises(DecodeError):
            decode_directory_key_untrusted(bad)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "dir"
    opened, genesis = init_directory(d, NOW, det_rng(b"init"))
    opened.close()
    assert genesis.head.epoch == 0
    return d


def test_init_makes_private_files(data_dir: Path) -> None:
    for name in (KEY_FILE, TREE_DB, DIRECTORY_DB):
        assert stat.S_IMODE((data_dir / name).stat().st_mode) == 0o600, name
    with pytest.raises(StorageError, match="already holds a directory"):
        init_directory(data_dir, NOW, det_rng(b"again"))


def test_readable_key_file_is_refused(data_dir: Path) -> None:
    (data_dir / KEY_FILE).chmod(0o640)
    with pytest.raises(KeyFileError, match="chmod 600"):
        open_directory(data_dir)


def test_crash_between_records_and_tree_is_replayed(data_dir: Path) -> None:
    with open_directory(data_dir) as opened:
        opened.directory.add("alice", bundle_for("alice"))
        # Directory.publish without OpenedDirectory's flush: the records commit,
        # the tree's batch is still held when the process "dies".
        head, _ = opened.directory.publish(NOW + 1000, det_rng(b"crash"))
    with SqliteNodeStore(data_dir / TREE_DB) as store:
        assert store.latest_epoch() == 0
    open_directory(data_dir).close()
    with SqliteNodeStore(data_dir / TREE_DB) as store:
        tree = SparseMerkleTree(store)
        assert tree.epoch == 1
        assert tree.root_at(1) == head.head.root


def test_tree_ahead_of_the_records_is_refused(data_dir: Path) -> None:
    with SqliteNodeStore(data_dir / TREE_DB) as store:
        SparseMerkleTree(store).insert_batch({})
        SparseMerkleTree(store).insert_batch({})
    with pytest.raises(StorageError, match="disagree"):
        open_directory(data_dir)


def test_certify_epochs_catches_witnesses_up(data_dir: Path) -> None:
    backend = get_backend("blst")
    sks = [backend.key_gen(hashlib.sha256(b"cw%d" % i).digest()) for i in range(3)]
    members = tuple(
        WitnessMember(f"W{i + 1}", backend.sk_to_pk(sk), backend.pop_prove(sk))
        for i, sk in enumerate(sks)
    )
    ws = WitnessSet(members, 2)
    rng = det_rng(b"certify")
    with open_directory(data_dir) as opened:
        opened.directory.add("alice", bundle_for("alice"))
        opened.publish(NOW + 1000, rng)
        done = certify_epochs(opened, ws, backend, {"W1": sks[0], "W2": sks[1]}, NOW + 2000)
        assert [(c.epoch, c.signers) for c in done] == [(0, ("W1", "W2")), (1, ("W1", "W2"))]
        opened.publish(NOW + 3000, rng)
        # W3 never signed anything: it walks the chain from genesis first.
        done = certify_epochs(opened, ws, backend, {"W3": sks[2], "W2": sks[1]}, NOW + 4000)
        assert [(c.epoch, c.signers) for c in done] == [(2, ("W2", "W3"))]
        assert opened.records.latest_certified_epoch() == 2
        assert certify_epochs(opened, ws, backend, {"W1": sks[0]}, NOW + 5000) == []
    assert witness_state_path(data_dir, "W3").is_file()
