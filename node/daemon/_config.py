"""A node's data directory: its config file, keys and databases.

    DIR/config.json      0600  what `chhaya run` was first started with (below)
    DIR/identity.key     0600  the user's Chhaya identity (chhaya.identity key file)
    DIR/identity.pub     0644
    DIR/node.key         0600  "CHHYNOD1" || Ed25519 seed (32): the libp2p node key (peer ID)
    DIR/chhaya.sqlite    0600  the logstore (node.store)
    DIR/prekeys.sqlite   0600  private prekeys (node.prekey_db)
    DIR/mailbox.sqlite   0600  envelopes this node keeps for others (node.mailbox_db)
    DIR/control.sock     0600  the control API (node.daemon.control)

The config file is JSON so that people can read and edit it::

    {"format": "chhaya-node-config-v1", "listen": [...], "bootstrap": [...],
     "mdns": false, "relay": false, "relay_via": [MULTIADDR, ...], "relay_only": false,
     "cover_traffic": ENVELOPES_PER_MINUTE, "mailbox_poll_s": SECONDS,
     "relay_limits": {"max_reservations": N, "max_circuits": N, "reservation_ttl_s": N,
                      "circuit_duration_s": N, "circuit_data_bytes": N},
     "directory": MULTIADDR | null,
     "witness_set": PATH | null, "directory_key": HEX | null,
     "metrics": "HOST:PORT" | null, "handle": HANDLE | null}

`chhaya run` writes it on first run from its options. On later runs an
option given on the command line replaces the stored value and is saved.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from chhaya import KeyFileError, StorageError
from chhaya.identity import PrivateIdentity

from ..clock import system_rng
from ..fsio import replace_file_atomic, write_new_file_atomic
from ..keystore import load_private_identity, read_bounded, read_private_file, write_identity

__all__ = [
    "CONFIG_FILE",
    "CONTROL_SOCKET",
    "DEFAULT_LISTEN",
    "IDENTITY_NAME",
    "LOGSTORE_FILE",
    "MAILBOX_FILE",
    "NODE_KEY_FILE",
    "PREKEYS_FILE",
    "ConfigError",
    "NodeConfig",
    "ensure_data_dir",
    "load_config",
    "load_or_create_identity",
    "load_or_create_node_key",
    "load_or_create_node_key_file",
    "save_config",
    "socket_path",
]

CONFIG_FILE = "config.json"
CONTROL_SOCKET = "control.sock"
IDENTITY_NAME = "identity"
NODE_KEY_FILE = "node.key"
LOGSTORE_FILE = "chhaya.sqlite"
PREKEYS_FILE = "prekeys.sqlite"
MAILBOX_FILE = "mailbox.sqlite"
DEFAULT_LISTEN = ("/ip4/0.0.0.0/tcp/0",)

_FORMAT = "chhaya-node-config-v1"
_MAX_CONFIG_FILE = 64 * 1024
_NODE_KEY_MAGIC = b"CHHYNOD1"
_SEED_SIZE = 32


class ConfigError(StorageError):
    """The config file is unreadable or malformed."""


@dataclass(frozen=True, slots=True)
class NodeConfig:
    listen: tuple[str, ...] = DEFAULT_LISTEN
    bootstrap: tuple[str, ...] = ()
    mdns: bool = False
    relay: bool = False
    relay_via: tuple[str, ...] = ()
    relay_only: bool = False
    cover_traffic: float = 0.0
    mailbox_poll_s: float = 30.0
    relay_limits: dict[str, int] = field(default_factory=dict)
    directory: str | None = None
    witness_set: str | None = None
    directory_key: str | None = None
    metrics: str | None = None
    handle: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def to_json(self) -> str:
        doc = {"format": _FORMAT, **asdict(self)}
        doc.pop("extra")
        doc.update(self.extra)  # keys a newer version wrote survive a rewrite
        return json.dumps(doc, indent=2, sort_keys=True) + "\n"

    def merged(self, **overrides: Any) -> NodeConfig:
        """This config with every override that is not None applied."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


def _strings(doc: dict[str, Any], key: str, path: Path) -> tuple[str, ...]:
    value = doc.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{path}: {key!r} must be a list of strings")
    return tuple(value)


def _optional_str(doc: dict[str, Any], key: str, path: Path) -> str | None:
    value = doc.get(key)
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{path}: {key!r} must be a string or null")
    return value


def _flag(doc: dict[str, Any], key: str, path: Path) -> bool:
    value = doc.get(key, False)
    if not isinstance(value, bool):
        raise ConfigError(f"{path}: {key!r} must be true or false")
    return value


def _number(doc: dict[str, Any], key: str, path: Path, default: float = 0.0) -> float:
    value = doc.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"{path}: {key!r} must be a non-negative number")
    return float(value)


def _int_map(doc: dict[str, Any], key: str, path: Path) -> dict[str, int]:
    value = doc.get(key, {})
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool)
        for k, v in value.items()
    ):
        raise ConfigError(f"{path}: {key!r} must map names to integers")
    return dict(value)


def load_config(data_dir: Path) -> NodeConfig | None:
    """The stored config, or None on first run. ConfigError for a bad file."""
    path = data_dir / CONFIG_FILE
    if not path.exists():
        return None
    try:
        doc = json.loads(read_bounded(path, _MAX_CONFIG_FILE, "config file"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc})") from None
    except KeyFileError as exc:
        raise ConfigError(str(exc)) from None
    if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
        raise ConfigError(f"{path}: not a chhaya node config ({_FORMAT})")
    known = {f for f in NodeConfig.__dataclass_fields__ if f != "extra"} | {"format"}
    return NodeConfig(
        listen=_strings(doc, "listen", path) or DEFAULT_LISTEN,
        bootstrap=_strings(doc, "bootstrap", path),
        mdns=_flag(doc, "mdns", path),
        relay=_flag(doc, "relay", path),
        relay_via=_strings(doc, "relay_via", path),
        relay_only=_flag(doc, "relay_only", path),
        cover_traffic=_number(doc, "cover_traffic", path),
        mailbox_poll_s=_number(doc, "mailbox_poll_s", path, 30.0) or 30.0,
        relay_limits=_int_map(doc, "relay_limits", path),
        directory=_optional_str(doc, "directory", path),
        witness_set=_optional_str(doc, "witness_set", path),
        directory_key=_optional_str(doc, "directory_key", path),
        metrics=_optional_str(doc, "metrics", path),
        handle=_optional_str(doc, "handle", path),
        extra={k: v for k, v in doc.items() if k not in known},
    )


def save_config(data_dir: Path, config: NodeConfig) -> None:
    replace_file_atomic(data_dir / CONFIG_FILE, config.to_json().encode(), 0o600)


def ensure_data_dir(data_dir: Path) -> None:
    """Create the data directory (0700) if needed; refuse one others can enter."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        mode = data_dir.stat().st_mode
    except OSError as exc:
        raise StorageError(f"{data_dir}: cannot create data directory: {exc.strerror}") from None
    if mode & 0o077:
        raise StorageError(
            f"{data_dir}: permissions {mode & 0o777:04o} let others in; run chmod 700"
        )


def load_or_create_identity(data_dir: Path, passphrase: bytes | None) -> PrivateIdentity:
    """The node's user identity; generated (and written 0600) on first run."""
    key_path = data_dir / f"{IDENTITY_NAME}.key"
    if not key_path.exists():
        write_identity(data_dir, IDENTITY_NAME, PrivateIdentity.generate(system_rng), passphrase)
    return load_private_identity(key_path, passphrase)


def load_or_create_node_key(data_dir: Path) -> bytes:
    """The 32-byte Ed25519 seed of the libp2p node key; generated on first run."""
    return load_or_create_node_key_file(data_dir / NODE_KEY_FILE)


def load_or_create_node_key_file(path: Path) -> bytes:
    """Like :func:`load_or_create_node_key`, for a key file named by its path."""
    if not path.exists():
        write_new_file_atomic(path, _NODE_KEY_MAGIC + system_rng(_SEED_SIZE), 0o600)
    data = read_private_file(path, 64, "node key file")
    if len(data) != len(_NODE_KEY_MAGIC) + _SEED_SIZE or not data.startswith(_NODE_KEY_MAGIC):
        raise KeyFileError(str(path), "not a chhaya node key file")
    return data[len(_NODE_KEY_MAGIC) :]


def socket_path(data_dir: Path) -> Path:
    return data_dir / CONTROL_SOCKET
