"""Entry points of the three long-running roles (the CLI calls them under trio.run)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import trio
from libp2p.peer.id import ID

from chhaya import KeyFileError, TransportError
from quorum import CertificateVerifier
from quorum.bls import BlsBackend, default_backend

from ..keystore import read_passphrase
from ..quorum_files import load_witness_key, load_witness_set
from ._config import (
    NodeConfig,
    ensure_data_dir,
    load_config,
    load_or_create_identity,
    load_or_create_node_key,
    load_or_create_node_key_file,
    save_config,
    socket_path,
)
from ._metrics import NodeMetrics
from ._runner import Stoppable, announce, run_until_signal

__all__ = ["bls_backend", "run_directory", "run_user", "run_witness"]

Say = Callable[[str], None]


def bls_backend() -> BlsBackend:
    try:
        return default_backend(os.environ)
    except ValueError as exc:
        raise TransportError(str(exc)) from None


async def run_user(
    data_dir: Path,
    overrides: dict[str, Any],
    passphrase_file: str | None,
    as_json: bool,
    say: Say,
) -> None:
    """`chhaya run`: load or create the config, keys and databases; run until a signal."""
    from ._user import UserNode

    ensure_data_dir(data_dir)
    stored = load_config(data_dir)
    config = (stored or NodeConfig()).merged(**overrides)
    if config != stored:
        save_config(data_dir, config)
    identity = load_or_create_identity(data_dir, read_passphrase(passphrase_file))
    node_seed = load_or_create_node_key(data_dir)
    verifier = None
    if config.witness_set is not None:
        verifier = CertificateVerifier(
            load_witness_set(Path(config.witness_set), bls_backend()), bls_backend()
        )
    if config.directory is not None and verifier is None:
        raise KeyFileError("--witness-set", "a directory needs the witness set that certifies it")
    metrics = NodeMetrics()
    node = UserNode(data_dir, config, identity, node_seed, verifier, metrics, say=say)
    node.on_config_change(lambda new: save_config(data_dir, new))

    async def start(nursery: trio.Nursery) -> Stoppable:
        started: UserNode = await nursery.start(node.run)
        return started

    def ready(_: Stoppable, metrics_url: str | None) -> None:
        doc = {
            "role": "user",
            "peer_id": str(node.peer_id),
            "handle": node.handle,
            "addresses": node.addresses(),
            "control": str(socket_path(data_dir)),
            "metrics": metrics_url,
        }
        lines = [
            f"node ready: peer {node.peer_id}",
            f"  handle: {node.handle or '(none yet: chhaya register HANDLE)'}",
            *(f"  listening on {a}" for a in node.addresses()),
            f"  control socket: {socket_path(data_dir)}",
        ]
        if metrics_url:
            lines.append(f"  metrics: {metrics_url}")
        announce(say, as_json, doc, "\n".join(lines))

    await run_until_signal(start, ready, metrics, config.metrics)


async def run_directory(
    data_dir: Path,
    listen: Sequence[str],
    witness_set_path: Path,
    witness_addrs: Sequence[str],
    epoch_interval_s: float,
    metrics_address: str | None,
    as_json: bool,
    say: Say,
) -> None:
    """`chhaya directory serve`."""
    from ..directory_files import open_directory
    from ._directory_node import DirectoryNode

    backend = bls_backend()
    witness_set = load_witness_set(witness_set_path, backend)
    node_seed = load_or_create_node_key(data_dir)
    metrics = NodeMetrics()
    with open_directory(data_dir) as opened:
        node = DirectoryNode(
            opened,
            node_seed,
            listen,
            witness_set,
            backend,
            witness_addrs,
            metrics,
            epoch_interval_s=epoch_interval_s,
            say=say,
        )

        async def start(nursery: trio.Nursery) -> Stoppable:
            started: DirectoryNode = await nursery.start(node.run)
            return started

        def ready(_: Stoppable, metrics_url: str | None) -> None:
            doc = {
                "role": "directory",
                "peer_id": str(node.peer_id),
                "addresses": node.addresses(),
                "directory_id": opened.public.directory_id.hex(),
                "metrics": metrics_url,
            }
            lines = [
                f"directory ready: peer {node.peer_id}",
                f"  directory id {opened.public.directory_id.hex()}",
                *(f"  listening on {a}" for a in node.addresses()),
            ]
            announce(say, as_json, doc, "\n".join(lines))

        await run_until_signal(start, ready, metrics, metrics_address)


async def run_witness(
    key_path: Path,
    witness_set_path: Path,
    directory_public_path: Path,
    state_path: Path,
    listen: Sequence[str],
    directory_peer: str | None,
    as_json: bool,
    say: Say,
) -> None:
    """`chhaya witness serve`."""
    from ..directory_files import load_directory_public
    from ._witness_node import WitnessNode

    backend = bls_backend()
    witness_set = load_witness_set(witness_set_path, backend)
    secret_key = load_witness_key(key_path)
    public = load_directory_public(directory_public_path)
    node_seed = load_or_create_node_key_file(state_path.with_name(state_path.name + ".node.key"))
    try:
        allowed = ID.from_base58(directory_peer) if directory_peer else None
    except Exception:  # base58 and multihash raise several unrelated types
        raise KeyFileError("--directory-peer", "not a peer ID") from None
    node = WitnessNode(
        secret_key,
        witness_set,
        backend,
        public.directory_key,
        public.vrf_key,
        state_path,
        node_seed,
        listen,
        directory_peer=allowed,
    )

    async def start(nursery: trio.Nursery) -> Stoppable:
        started: WitnessNode = await nursery.start(node.run)
        return started

    def ready(_: Stoppable, metrics_url: str | None) -> None:
        doc = {
            "role": "witness",
            "witness_id": node.witness_id,
            "peer_id": str(node.peer_id),
            "addresses": node.addresses(),
        }
        lines = [
            f"witness {node.witness_id} ready: peer {node.peer_id}",
            *(f"  listening on {a}" for a in node.addresses()),
        ]
        announce(say, as_json, doc, "\n".join(lines))

    await run_until_signal(start, ready, NodeMetrics(), None)
