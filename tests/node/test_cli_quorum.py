"""``chhaya quorum keygen|set|certify|verify`` as real processes."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from .conftest import assert_one_line_error, run_cli


@pytest.fixture(scope="module")
def witnesses(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("witnesses")
    for name in ("W1", "W2", "W3", "W4", "X1"):
        r = run_cli("quorum", "keygen", "--out-dir", str(d), "--name", name)
        assert r.rc == 0, r
    r = run_cli("quorum", "set", "--threshold", "3", *(str(d / f"W{i}.pub") for i in range(1, 5)))
    assert r.rc == 0, r
    (d / "SET.json").write_text(r.out)
    return d


def test_keygen_writes_0600_key(witnesses: Path) -> None:
    assert stat.S_IMODE((witnesses / "W1.key").stat().st_mode) == 0o600
    assert (witnesses / "W1.pub").read_text().startswith("chhaya-witness-v1 W1 ")


def test_set_json(witnesses: Path) -> None:
    doc = json.loads((witnesses / "SET.json").read_text())
    assert doc["threshold"] == 3
    assert [m["id"] for m in doc["members"]] == ["W1", "W2", "W3", "W4"]


def test_certify_and_verify_round_trip(witnesses: Path) -> None:
    s = str(witnesses / "SET.json")
    keys = [str(witnesses / f"W{i}.key") for i in (1, 2, 4)]
    r = run_cli("quorum", "certify", "--set", s, "--message", "c0ffee", "--keys", *keys, "--json")
    assert r.rc == 0, r
    doc = json.loads(r.out)
    assert doc["message"] == "c0ffee"
    assert doc["signer_ids"] == ["W1", "W2", "W4"]
    assert doc["signers"] == "0b"
    assert len(bytes.fromhex(doc["aggregate_signature"])) == 96
    ok = run_cli(
        "quorum", "verify", "--set", s, "--message", "c0ffee", "--cert", doc["certificate"]
    )
    assert ok.rc == 0, ok
    assert "3 of 4" in ok.out
    other = run_cli(
        "quorum", "verify", "--set", s, "--message", "c0ffef", "--cert", doc["certificate"]
    )
    assert_one_line_error(other, "certificate-signature")


def test_below_threshold_is_refused(witnesses: Path) -> None:
    s = str(witnesses / "SET.json")
    keys = [str(witnesses / "W1.key"), str(witnesses / "W2.key")]
    r = run_cli("quorum", "certify", "--set", s, "--message", "00", "--keys", *keys)
    assert_one_line_error(r, "certificate-threshold")


def test_key_outside_the_set_is_refused(witnesses: Path) -> None:
    s = str(witnesses / "SET.json")
    keys = [str(witnesses / k) for k in ("W1.key", "W2.key", "X1.key")]
    r = run_cli("quorum", "certify", "--set", s, "--message", "00", "--keys", *keys)
    assert_one_line_error(r, "X1.key", "not in the set")


def test_verify_rejects_garbage_certificates(witnesses: Path) -> None:
    s = str(witnesses / "SET.json")
    for cert in ("zz", "00", "4351433" + "0" * 300):
        r = run_cli("quorum", "verify", "--set", s, "--message", "00", "--cert", cert)
        assert_one_line_error(r)


def test_minority_threshold_is_refused(witnesses: Path) -> None:
    pubs = [str(witnesses / f"W{i}.pub") for i in range(1, 5)]
    r = run_cli("quorum", "set", "--threshold", "2", *pubs)
    assert_one_line_error(r, "not a majority")


def test_tampered_set_file_is_refused(witnesses: Path, tmp_path: Path) -> None:
    doc = json.loads((witnesses / "SET.json").read_text())
    doc["members"][0]["proof_of_possession"] = doc["members"][1]["proof_of_possession"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    r = run_cli("quorum", "verify", "--set", str(bad), "--message", "00", "--cert", "00")
    assert_one_line_error(r, "proof of possession")
