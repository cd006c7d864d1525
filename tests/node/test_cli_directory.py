"""``chhaya directory ...`` as real processes, from init to verified proofs.

One module-scoped directory goes through a short life (CLI processes cost
about half a second each):

    epoch 0  genesis (init)
    epoch 1  alice, bob, carol                  certified by W1, W2
    epoch 2  alice (new key), carol tombstone   certified by W2, W3 (W3 catches up)
    epoch 3  bob (new devices)                  published without keys: uncertified

Tests that change the directory work on a copy.
"""

from __future__ import annotations

import json
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from chhaya.identity import fingerprint
from node.keystore import load_public_identity

from .conftest import Result, assert_one_line_error, run_cli


@dataclass
class World:
    root: Path
    dir: Path
    ids: Path
    witnesses: Path
    set_file: Path
    other_set: Path
    init: Result
    publish1: Result
    publish2: Result
    publish3: Result

    def fp(self, name: str) -> str:
        return fingerprint(load_public_identity(self.ids / f"{name}.pub")[1])

    def keys(self, *names: str) -> list[str]:
        return ["--keys", *(str(self.witnesses / f"{n}.key") for n in names)]


def _ok(*args: str) -> Result:
    r = run_cli(*args)
    assert r.rc == 0, r
    return r


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp("directory")
    ids, wit, d = root / "ids", root / "witnesses", root / "dir"
    for name in ("alice", "bob"):
        _ok("keygen", "--out-dir", str(ids), "--name", name)
    for name in ("W1", "W2", "W3"):
        _ok("quorum", "keygen", "--out-dir", str(wit), "--name", name)
    pubs = [str(wit / f"W{i}.pub") for i in (1, 2, 3)]
    set_file, other_set = root / "SET.json", root / "OTHER.json"
    set_file.write_text(_ok("quorum", "set", "--threshold", "2", *pubs).out)
    other_set.write_text(_ok("quorum", "set", "--threshold", "2", *pubs[:2]).out)
    w = World(root, d, ids, wit, set_file, other_set, *(Result(0, "", ""),) * 4)
    w.init = _ok("directory", "init", "--dir", str(d), "--json")
    alice, bob = str(ids / "alice.pub"), str(ids / "bob.pub")
    _ok("directory", "add", "--dir", str(d), "alice", "--pub", alice)
    _ok("directory", "add", "--dir", str(d), "bob", "--pub", bob)
    _ok("directory", "add", "--dir", str(d), "carol", "--pub", alice, "--device", "c1")
    s = ["--witness-set", str(set_file)]
    w.publish1 = _ok("directory", "publish", "--dir", str(d), *s, *w.keys("W1", "W2"), "--json")
    _ok("directory", "add", "--dir", str(d), "alice", "--pub", bob, "--device", "laptop")
    _ok("directory", "add", "--dir", str(d), "carol", "--tombstone")
    w.publish2 = _ok("directory", "publish", "--dir", str(d), *s, *w.keys("W3", "W2"))
    _ok("directory", "add", "--dir", str(d), "bob", "--pub", bob, "--device", "p", "--device", "q")
    w.publish3 = _ok("directory", "publish", "--dir", str(d), "--json")
    return w


def _proof(world: World, kind: str, handle: str, name: str) -> Path:
    out = world.root / f"{name}.json"
    if not out.exists():
        _ok("directory", kind, "--dir", str(world.dir), handle, "--out", str(out))
    return out


def _verify(world: World, proof: Path, *extra: str, set_file: Path | None = None) -> Result:
    s = world.set_file if set_file is None else set_file
    return run_cli("directory", "verify", str(proof), "--witness-set", str(s), *extra)


def _verify_json(world: World, proof: Path) -> dict[str, Any]:
    r = _verify(world, proof, "--json")
    assert r.rc == 0, r
    doc = json.loads(r.out)
    assert isinstance(doc, dict)
    return doc


def _copy(world: World, tmp_path: Path) -> Path:
    d = tmp_path / "copy"
    shutil.copytree(world.dir, d)
    return d


# ----------------------------------------------------------------- init and publish


def test_init_writes_private_key_and_public_file(world: World) -> None:
    doc = json.loads(world.init.out)
    assert doc["epoch"] == 0
    assert doc["certified"] is False
    public = json.loads((world.dir / "directory.json").read_text())
    assert public["format"] == "chhaya-directory-v1"
    assert public["directory_key"] == doc["directory_key"]
    assert public["directory_id"] == doc["directory_id"]
    for name in ("directory.key", "directory.sqlite", "tree.sqlite"):
        assert stat.S_IMODE((world.dir / name).stat().st_mode) == 0o600, name
    assert len((world.dir / "directory.key").read_bytes()) == 89


def test_init_twice_is_refused(world: World) -> None:
    before = (world.dir / "directory.key").read_bytes()
    r = run_cli("directory", "init", "--dir", str(world.dir))
    assert_one_line_error(r, "already holds a directory")
    assert (world.dir / "directory.key").read_bytes() == before


def test_publish_reports_epochs_and_certification(world: World) -> None:
    p1 = json.loads(world.publish1.out)
    assert p1["epoch"] == 1
    assert p1["updates"] == 3
    assert p1["certified"] is True
    assert p1["certified_epochs"] == [
        {"epoch": 0, "signers": ["W1", "W2"]},
        {"epoch": 1, "signers": ["W1", "W2"]},
    ]
    assert len(bytes.fromhex(p1["root"])) == 32
    assert "published epoch 2: 2 update(s)" in world.publish2.out
    assert "certified epoch 2 by W2, W3" in world.publish2.out
    p3 = json.loads(world.publish3.out)
    assert (p3["epoch"], p3["updates"], p3["certified"]) == (3, 1, False)
    assert p3["latest_certified_epoch"] == 2
    states = sorted(p.name for p in (world.dir / "witnesses").iterdir())
    assert states == ["W1.state", "W2.state", "W3.state"]


def test_add_rejects_bad_input_in_one_line(world: World) -> None:
    d = str(world.dir)
    pub = str(world.ids / "alice.pub")
    assert_one_line_error(
        run_cli("directory", "add", "--dir", d, "Alice", "--pub", pub), "invalid handle 'Alice'"
    )
    assert_one_line_error(
        run_cli("directory", "add", "--dir", d, "dave", "--pub", str(world.set_file)),
        "not a valid public key file",
    )


# ----------------------------------------------------------------- lookups


def test_lookup_verifies_with_handle_version_and_fingerprint(world: World) -> None:
    doc = _verify_json(world, _proof(world, "lookup", "alice", "alice"))
    assert doc["valid"] is True
    assert (doc["handle"], doc["registered"]) == ("alice", True)
    assert (doc["version"], doc["version_epoch"]) == (2, 2)
    assert doc["fingerprint"] == world.fp("bob")  # alice's second key is bob's .pub
    assert doc["devices"] == ["laptop"]
    assert doc["head"]["epoch"] == 2
    assert doc["head"]["signers"] == ["W2", "W3"]
    proof_doc = json.loads(_proof(world, "lookup", "alice", "alice").read_text())
    assert proof_doc["format"] == "chhaya-vkd-proof-v1"
    assert proof_doc["kind"] == "lookup"
    assert proof_doc["size_bytes"] == len(bytes.fromhex(proof_doc["proof"]))


def test_readable_verify_output(world: World) -> None:
    r = _verify(world, _proof(world, "lookup", "alice", "alice"))
    assert r.rc == 0, r
    assert "valid: alice version 2 (published in epoch 2)" in r.out
    assert "certified by 2 of 3 witnesses (W2, W3)" in r.out
    assert world.fp("bob") in r.out


def test_uncertified_epoch_is_not_served(world: World) -> None:
    r = _ok("directory", "lookup", "--dir", str(world.dir), "bob")  # the proof file on stdout
    proof = world.root / "bob-stdout.json"
    proof.write_text(r.out)
    doc = _verify_json(world, proof)
    assert doc["version"] == 1  # epoch 3's update is published, not certified
    assert doc["head"]["epoch"] == 2
    assert doc["devices"] == ["default"]


def test_history_lists_every_version(world: World) -> None:
    doc = _verify_json(world, _proof(world, "history", "alice", "alice-history"))
    assert doc["kind"] == "history"
    versions = [(v["version"], v["epoch"], v["fingerprint"]) for v in doc["versions"]]
    assert versions == [(1, 1, world.fp("alice")), (2, 2, world.fp("bob"))]


def test_unknown_handle_is_a_verified_absence(world: World) -> None:
    proof = _proof(world, "lookup", "nobody", "nobody")
    r = _verify(world, proof)
    assert r.rc == 0, r
    assert "not registered (verified)" in r.out
    assert _verify_json(world, proof)["registered"] is False


def test_tombstone_fails_as_revoked(world: World) -> None:
    r = _verify(world, _proof(world, "lookup", "carol", "carol"))
    assert_one_line_error(r, "invalid: revoked")
    history = _verify_json(world, _proof(world, "history", "carol", "carol-history"))
    assert [v["revoked"] for v in history["versions"]] == [False, True]


def test_another_witness_set_fails_the_certificate_check(world: World) -> None:
    proof = _proof(world, "lookup", "alice", "alice")
    assert_one_line_error(
        _verify(world, proof, set_file=world.other_set), "invalid: certificate-set"
    )
    r = _verify(world, proof, "--json", set_file=world.other_set)
    assert r.rc == 1
    assert json.loads(r.out) == {
        "valid": False,
        "kind": "lookup",
        "check": "certificate-set",
        "detail": "certificate is for another witness set",
    }


def test_pinned_directory_key(world: World) -> None:
    proof = _proof(world, "lookup", "alice", "alice")
    key = json.loads(world.init.out)["directory_key"]
    assert _verify(world, proof, "--directory-key", key).rc == 0
    other = ("0" if key[0] != "0" else "1") + key[1:]
    assert_one_line_error(_verify(world, proof, "--directory-key", other), "invalid: directory")


@pytest.mark.parametrize("position", [0.1, 0.5, 0.97])
def test_tampered_proof_fails_in_one_line(world: World, tmp_path: Path, position: float) -> None:
    doc = json.loads(_proof(world, "lookup", "alice", "alice").read_text())
    proof = doc["proof"]
    i = int(len(proof) * position)
    doc["proof"] = proof[:i] + ("1" if proof[i] == "0" else "0") + proof[i + 1 :]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    assert_one_line_error(_verify(world, bad), "invalid: ")


def test_proof_for_another_handle_than_the_file_says(world: World, tmp_path: Path) -> None:
    doc = json.loads(_proof(world, "lookup", "alice", "alice").read_text())
    doc["handle"] = "bob"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    assert_one_line_error(_verify(world, bad), "invalid: handle")


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("{", "malformed JSON"),
        ("[1, 2]", "not a proof file"),
        (
            '{"format": "chhaya-vkd-proof-v1", "kind": "lookup", "handle": "a", "proof": "zz"}',
            "hex",
        ),
        ('{"format": "chhaya-vkd-proof-v1", "kind": "nope", "proof": ""}', "unknown proof kind"),
    ],
)
def test_malformed_proof_files(tmp_path: Path, world: World, content: str, fragment: str) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    assert_one_line_error(_verify(world, bad), fragment)


# ----------------------------------------------------------------- audit


def test_audit_proof_is_append_only_and_verifies(world: World) -> None:
    out = world.root / "audit2.json"
    r = _ok("directory", "audit", "--dir", str(world.dir), "--epoch", "2", "--out", str(out))
    assert "append-only: ok" in r.out
    doc = json.loads(out.read_text())
    assert (doc["kind"], doc["epoch"], doc["batch_size"]) == ("audit", 2, 2)
    v = run_cli("directory", "verify", str(out), "--json")
    assert v.rc == 0, v
    got = json.loads(v.out)
    assert (got["valid"], got["append_only"], got["batch_size"]) == (True, "ok", 2)
    doc["epoch"] = 1
    bad = world.root / "audit-wrong-epoch.json"
    bad.write_text(json.dumps(doc))
    assert_one_line_error(run_cli("directory", "verify", str(bad)), "invalid: epoch")


def test_genesis_has_no_audit_proof(world: World) -> None:
    r = run_cli("directory", "audit", "--dir", str(world.dir), "--epoch", "0")
    assert_one_line_error(r, "no audit proof for epoch 0")


# ----------------------------------------------------------------- on a copy


def test_publishing_with_keys_certifies_the_skipped_epoch(world: World, tmp_path: Path) -> None:
    d = _copy(world, tmp_path)
    args = ["--witness-set", str(world.set_file), *world.keys("W1", "W3"), "--json"]
    doc = json.loads(_ok("directory", "publish", "--dir", str(d), *args).out)
    assert [c["epoch"] for c in doc["certified_epochs"]] == [3, 4]
    assert doc["certified"] is True
    out = tmp_path / "bob.json"
    _ok("directory", "lookup", "--dir", str(d), "bob", "--out", str(out))
    got = _verify_json(world, out)
    assert (got["version"], got["head"]["epoch"], got["devices"]) == (2, 4, ["p", "q"])


def test_readable_key_file_is_refused(world: World, tmp_path: Path) -> None:
    d = _copy(world, tmp_path)
    (d / "directory.key").chmod(0o644)
    r = run_cli("directory", "lookup", "--dir", str(d), "alice")
    assert_one_line_error(r, "directory.key", "chmod 600")


def test_corrupt_database_is_a_one_line_storage_error(world: World, tmp_path: Path) -> None:
    d = _copy(world, tmp_path)
    for leftover in ("directory.sqlite-wal", "directory.sqlite-shm"):
        (d / leftover).unlink(missing_ok=True)
    (d / "directory.sqlite").write_bytes(b"garbage!" * 1024)
    r = run_cli("directory", "lookup", "--dir", str(d), "alice")
    assert_one_line_error(r, "directory.sqlite", "not a chhaya directory database")


def test_not_a_directory(tmp_path: Path) -> None:
    r = run_cli("directory", "publish", "--dir", str(tmp_path))
    assert_one_line_error(r, "not a chhaya directory", "chhaya directory init")


def test_witness_key_outside_the_set_is_refused_before_publishing(
    world: World, tmp_path: Path
) -> None:
    d = _copy(world, tmp_path)
    args = ["--witness-set", str(world.other_set), *world.keys("W1", "W3"), "--json"]
    assert_one_line_error(
        run_cli("directory", "publish", "--dir", str(d), *args), "W3.key", "not in the set"
    )
    doc = json.loads(_ok("directory", "publish", "--dir", str(d), "--json").out)
    assert doc["epoch"] == 4  # the refused publish published nothing
