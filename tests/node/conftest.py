"""Helpers for running the real ``chhaya`` CLI in subprocesses."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

CLI = [sys.executable, "-m", "node.cli"]
TIMEOUT_S = 60


@dataclass
class Result:
    rc: int
    out: str
    err: str


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> Result:
    full_env = {k: v for k, v in os.environ.items() if k != "CHHAYA_PASSPHRASE"}
    full_env.update(env or {})
    proc = subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        env=full_env,
        cwd=cwd,
        check=False,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def assert_one_line_error(result: Result, *fragments: str) -> None:
    assert result.rc == 1, result
    assert "Traceback" not in result.err
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert len(lines) == 1, result.err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


@dataclass
class Server:
    proc: subprocess.Popen[str]
    address: str

    def stop(self, sig: int = signal.SIGTERM) -> tuple[int, str, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            out, err = self.proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate(timeout=5)
        return self.proc.returncode, out, err


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    d = tmp_path / "keys"
    for name in ("server", "client", "stranger"):
        r = run_cli("keygen", "--out-dir", str(d), "--name", name)
        assert r.rc == 0, r
    return d


def start_server(keys: Path, *allow: str) -> Server:
    args = [*CLI, "channel", "serve", "--bind", "127.0.0.1:0", "--key", str(keys / "server.key")]
    for name in allow:
        args += ["--allow", str(keys / f"{name}.pub")]
    proc = subprocess.Popen(  # stopped by PID in Server.stop()
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(r"listening on (\S+:\d+)", line)
    if match is None:
        proc.kill()
        _, err = proc.communicate(timeout=5)
        raise AssertionError(f"server did not start: {line!r} {err!r}")
    return Server(proc, match.group(1))


@pytest.fixture
def server(keys: Path) -> Iterator[Server]:
    srv = start_server(keys, "client")
    try:
        yield srv
    finally:
        srv.stop()
