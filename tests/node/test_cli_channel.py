"""``chhaya channel serve/connect`` and ``chhaya demo`` as real processes on 127.0.0.1."""

from __future__ import annotations

import json
import signal
from pathlib import Path

from .conftest import Server, assert_one_line_error, run_cli, start_server


def _connect(server: Server, keys: Path, key: str, expect: str, *msgs: str) -> list[str]:
    args = ["channel", "connect", server.address, "--key", str(keys / f"{key}.key")]
    args += ["--expect", str(keys / f"{expect}.pub")]
    for m in msgs:
        args += ["--msg", m]
    return args


def test_echo_round_trip(server: Server, keys: Path) -> None:
    r = run_cli(*_connect(server, keys, "client", "server", "hello", "second message"))
    assert r.rc == 0, r
    assert r.out.splitlines() == ["hello", "second message"]
    rc, _, err = server.stop()
    assert rc == 0
    assert "accepted handshake" in err
    assert "client" in err


def test_identity_not_allowed_is_refused_and_logged(server: Server, keys: Path) -> None:
    r = run_cli(*_connect(server, keys, "stranger", "server", "hi"))
    assert_one_line_error(r, "closed the connection during the handshake")
    assert "hi" not in r.out
    _, _, err = server.stop()
    assert "rejected handshake" in err
    assert "identity-not-allowed" in err


def test_wrong_expected_identity_is_refused(server: Server, keys: Path) -> None:
    r = run_cli(*_connect(server, keys, "client", "stranger", "hi"))
    assert_one_line_error(r)
    _, _, err = server.stop()
    assert "expected-identity" in err


def test_server_survives_garbage_and_keeps_serving(server: Server, keys: Path) -> None:
    import socket

    host, port = server.address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(b"\x00\x00\x06\xea" + b"\x01" * 1770)
        s.settimeout(5)
        assert s.recv(100) == b""  # closed, and nothing said about why
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(b"\xff\xff\xff\xff")
        s.settimeout(5)
        assert s.recv(100) == b""
    r = run_cli(*_connect(server, keys, "client", "server", "still here"))
    assert r.rc == 0, r
    assert r.out.strip() == "still here"


def test_sigint_stops_the_server_cleanly(keys: Path) -> None:
    srv = start_server(keys, "client")
    rc, out, err = srv.stop(signal.SIGINT)
    assert rc == 0, err
    assert "stopped" in out
    assert "Traceback" not in err


def test_connect_to_closed_port_fails_in_one_line(keys: Path) -> None:
    r = run_cli(
        "channel", "connect", "127.0.0.1:9", "--key", str(keys / "client.key"),
        "--expect", str(keys / "server.pub"), "--msg", "x",
    )  # fmt: skip
    assert_one_line_error(r, "cannot connect")


def test_bad_address_fails_in_one_line(keys: Path) -> None:
    r = run_cli(
        "channel", "connect", "nonsense", "--key", str(keys / "client.key"),
        "--expect", str(keys / "server.pub"), "--msg", "x",
    )  # fmt: skip
    assert_one_line_error(r, "invalid address")


def test_channel_demo_json_reports_every_message_echoed() -> None:
    r = run_cli("demo", "--channel-only", "--json")
    assert r.rc == 0, r
    summary = json.loads(r.out.strip().splitlines()[-1])
    assert summary["messages_sent"] == summary["messages_echoed"] == 3
    assert summary["identities"] == 2


def test_channel_demo_human_transcript() -> None:
    r = run_cli("demo", "--channel-only")
    assert r.rc == 0, r
    assert "alice -> bob" in r.out
    assert "3/3 messages echoed" in r.out
