"""``chhaya keygen`` and ``chhaya fingerprint`` as real processes."""

from __future__ import annotations

import re
import stat
from pathlib import Path

from .conftest import assert_one_line_error, run_cli


def test_keygen_writes_private_0600_and_public(tmp_path: Path) -> None:
    r = run_cli("keygen", "--out-dir", str(tmp_path / "k"), "--name", "alice")
    assert r.rc == 0, r
    key = tmp_path / "k" / "alice.key"
    pub = tmp_path / "k" / "alice.pub"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert pub.read_text().startswith("chhaya-pub-v1 alice ")
    assert "not sealed" in r.out


def test_keygen_refuses_to_overwrite(tmp_path: Path) -> None:
    assert run_cli("keygen", "--out-dir", str(tmp_path), "--name", "a").rc == 0
    before = (tmp_path / "a.key").read_bytes()
    r = run_cli("keygen", "--out-dir", str(tmp_path), "--name", "a")
    assert_one_line_error(r, "a.key", "already exists")
    assert (tmp_path / "a.key").read_bytes() == before


def test_keygen_rejects_bad_name(tmp_path: Path) -> None:
    assert_one_line_error(
        run_cli("keygen", "--out-dir", str(tmp_path), "--name", "../evil"), "invalid name"
    )


def test_fingerprint_is_twelve_groups_of_five_digits(tmp_path: Path) -> None:
    run_cli("keygen", "--out-dir", str(tmp_path), "--name", "a")
    r = run_cli("fingerprint", str(tmp_path / "a.pub"))
    assert r.rc == 0, r
    digits = re.findall(r"\b\d{5}\b", r.out)
    assert len(digits) == 12
    assert r.out.count("\n") == 4  # name line + three lines of four groups


def test_fingerprint_errors_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.pub"
    assert_one_line_error(run_cli("fingerprint", str(missing)), str(missing), "not found")
    garbage = tmp_path / "garbage.pub"
    garbage.write_bytes(b"\xff\x00 not a key")
    assert_one_line_error(run_cli("fingerprint", str(garbage)), str(garbage))
    run_cli("keygen", "--out-dir", str(tmp_path), "--name", "a")
    pub = tmp_path / "a.pub"
    pub.write_text(pub.read_text()[:100])
    assert_one_line_error(run_cli("fingerprint", str(pub)), str(pub))


def _connect_args(keys: Path, key: Path) -> list[str]:
    # A port nothing listens on: key loading fails before any connection.
    return ["channel", "connect", "127.0.0.1:9", "--key", str(key), "--expect",
            str(keys / "a.pub"), "--msg", "x"]  # fmt: skip


def test_sealed_key_needs_the_right_passphrase(tmp_path: Path) -> None:
    pw = tmp_path / "pw.txt"
    pw.write_text("correct horse battery staple\n")
    r = run_cli("keygen", "--out-dir", str(tmp_path), "--name", "a", "--passphrase-file", str(pw))
    assert r.rc == 0, r
    assert "sealed with Argon2id" in r.out
    key = tmp_path / "a.key"
    assert_one_line_error(run_cli(*_connect_args(tmp_path, key)), str(key), "sealed")
    bad = run_cli(*_connect_args(tmp_path, key), env={"CHHAYA_PASSPHRASE": "wrong"})
    assert_one_line_error(bad, str(key), "wrong passphrase")
    # The right passphrase gets past the key file: the failure is now the network.
    ok = run_cli(*_connect_args(tmp_path, key), "--passphrase-file", str(pw))
    assert_one_line_error(ok, "cannot connect")
    env_ok = run_cli(
        *_connect_args(tmp_path, key), env={"CHHAYA_PASSPHRASE": "correct horse battery staple"}
    )
    assert_one_line_error(env_ok, "cannot connect")


def test_keygen_with_env_passphrase_seals(tmp_path: Path) -> None:
    r = run_cli("keygen", "--out-dir", str(tmp_path), "--name", "a", env={"CHHAYA_PASSPHRASE": "p"})
    assert "sealed with Argon2id" in r.out


def test_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    run_cli("keygen", "--out-dir", str(tmp_path), "--name", "a")
    key = tmp_path / "a.key"
    for mode in (0o640, 0o604, 0o644):
        key.chmod(mode)
        assert_one_line_error(run_cli(*_connect_args(tmp_path, key)), str(key), "chmod 600")


def test_truncated_or_corrupt_key_is_refused(tmp_path: Path) -> None:
    run_cli("keygen", "--out-dir", str(tmp_path), "--name", "a")
    key = tmp_path / "a.key"
    data = key.read_bytes()
    key.write_bytes(data[:50])
    assert_one_line_error(run_cli(*_connect_args(tmp_path, key)), str(key), "not a valid key")
    corrupt = bytearray(data)
    corrupt[40] ^= 1
    key.write_bytes(bytes(corrupt))
    assert_one_line_error(run_cli(*_connect_args(tmp_path, key)), str(key), "corrupt")
    key.write_bytes(b"")
    assert_one_line_error(run_cli(*_connect_args(tmp_path, key)), str(key))


def test_usage_errors_exit_2_without_traceback() -> None:
    r = run_cli("no-such-command")
    assert r.rc == 2
    assert "Traceback" not in r.err
    r = run_cli("keygen")
    assert r.rc == 2
    assert "Traceback" not in r.err
