"""The node's data directory: config file, node key, metrics address parsing."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from chhaya import KeyFileError, StorageError, TransportError
from node.daemon import ConfigError, NodeConfig, load_config, save_config
from node.daemon._config import (
    ensure_data_dir,
    load_or_create_identity,
    load_or_create_node_key,
)
from node.daemon._metrics import NodeMetrics, parse_host_port, serve_metrics


def test_first_run_has_no_config_then_round_trips(tmp_path: Path) -> None:
    assert load_config(tmp_path) is None
    config = NodeConfig(listen=("/ip4/127.0.0.1/tcp/0",), mdns=True, handle="alice")
    save_config(tmp_path, config)
    assert load_config(tmp_path) == config
    assert stat.S_IMODE((tmp_path / "config.json").stat().st_mode) == 0o600


def test_overrides_replace_only_what_is_given() -> None:
    config = NodeConfig(directory="/ip4/1.2.3.4/tcp/1/p2p/x", handle="alice")
    merged = config.merged(directory=None, mdns=True, listen=("/ip4/127.0.0.1/tcp/5",))
    assert merged.directory == config.directory
    assert merged.mdns is True
    assert merged.listen == ("/ip4/127.0.0.1/tcp/5",)
    assert merged.handle == "alice"


def test_unknown_keys_survive_a_rewrite(tmp_path: Path) -> None:
    doc = json.loads(NodeConfig().to_json())
    doc["future_option"] = [1, 2]
    (tmp_path / "config.json").write_text(json.dumps(doc))
    loaded = load_config(tmp_path)
    assert loaded is not None
    save_config(tmp_path, loaded.merged(handle="bob"))
    assert json.loads((tmp_path / "config.json").read_text())["future_option"] == [1, 2]


@pytest.mark.parametrize(
    "content",
    [
        b"not json",
        b"[]",
        b'{"format": "something-else"}',
        b'{"format": "chhaya-node-config-v1", "listen": "not-a-list"}',
        b'{"format": "chhaya-node-config-v1", "mdns": "yes"}',
        b'{"format": "chhaya-node-config-v1", "directory": 5}',
        b"\xff\xfe",
    ],
)
def test_bad_config_files_are_one_clear_error(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "config.json").write_bytes(content)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert "config.json" in str(info.value)
    assert "\n" not in str(info.value)


def test_data_dir_is_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "node"
    ensure_data_dir(data_dir)
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    os.chmod(data_dir, 0o755)  # noqa: S103 (the point of the test)
    with pytest.raises(StorageError, match="chmod 700"):
        ensure_data_dir(data_dir)


def test_keys_are_created_once_and_private(tmp_path: Path) -> None:
    seed = load_or_create_node_key(tmp_path)
    assert len(seed) == 32
    assert load_or_create_node_key(tmp_path) == seed
    identity = load_or_create_identity(tmp_path, None)
    assert load_or_create_identity(tmp_path, None).public == identity.public
    for name in ("node.key", "identity.key"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600


def test_a_readable_or_foreign_node_key_is_refused(tmp_path: Path) -> None:
    load_or_create_node_key(tmp_path)
    os.chmod(tmp_path / "node.key", 0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        load_or_create_node_key(tmp_path)
    os.chmod(tmp_path / "node.key", 0o600)
    (tmp_path / "node.key").write_bytes(b"x" * 40)
    with pytest.raises(KeyFileError, match="not a chhaya node key"):
        load_or_create_node_key(tmp_path)


@pytest.mark.parametrize("text", ["", "9100", "host:", ":9100", "host:70000", "host:port"])
def test_bad_metrics_addresses(text: str) -> None:
    with pytest.raises(TransportError):
        parse_host_port(text)


def test_metrics_are_served_and_stop(tmp_path: Path) -> None:
    import urllib.request

    metrics = NodeMetrics()
    metrics.messages_sent.inc(3)
    metrics.proof_failures.labels("certificate-set").inc()
    with serve_metrics(metrics, "127.0.0.1:0") as (host, port):
        body = urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5).read()
    text = body.decode()
    assert "chhaya_messages_sent_total 3.0" in text
    assert 'chhaya_proof_verification_failures_total{reason="certificate-set"} 1.0' in text


def test_relay_limits_round_trip_and_bad_maps_are_refused(tmp_path: Path) -> None:
    config = NodeConfig(relay_limits={"max_circuits": 32, "circuit_duration_s": 600})
    save_config(tmp_path, config)
    loaded = load_config(tmp_path)
    assert loaded is not None
    assert loaded.relay_limits == {"max_circuits": 32, "circuit_duration_s": 600}
    doc = json.loads(NodeConfig().to_json())
    doc["relay_limits"] = {"max_circuits": "many"}
    (tmp_path / "config.json").write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match="relay_limits"):
        load_config(tmp_path)


def test_an_unknown_relay_limit_is_one_clear_error(tmp_path: Path) -> None:
    from .conftest import run_cli

    r = run_cli(
        "run", "--data-dir", str(tmp_path / "n"), "--listen", "/ip4/127.0.0.1/tcp/0",
        "--relay-limit", "max_bananas=3",
    )  # fmt: skip
    assert r.rc == 1, r
    assert "Traceback" not in r.err
    assert "relay limits" in r.err
    assert "max_bananas" in r.err
    r = run_cli("run", "--data-dir", str(tmp_path / "m"), "--relay-limit", "max_circuits")
    assert r.rc == 2
    assert "NAME=N" in r.err
