"""A shared real-process network for the daemon integration tests.

One quorum (3 of 4 witnesses) and one directory per test module; each test
starts its own user nodes (with handles of its own) on top of them. Every
process runs inside ``net.group.running()``, so it is stopped by its PID
whatever happens.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from chhaya import TransportError
from node.demo_network import LocalNetwork
from node.procs import NodeProcess

__all__ = ["history", "network", "open_readonly", "stop_users", "wait_for"]


def network(root: Path) -> Iterator[LocalNetwork]:
    """Witnesses and a directory under ``root``; stopped by PID on exit."""
    net = LocalNetwork(root)
    with net.group.running():
        net.start_witnesses()
        net.start_directory()
        yield net


def wait_for(what: str, check: Callable[[], bool], timeout_s: float = 30.0) -> None:
    """Poll ``check`` until it holds; fail after ``timeout_s`` (a bound, not a timing claim)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if check():
                return
        except TransportError:
            pass  # a node still starting or restarting
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def stop_users(net: LocalNetwork, *handles: str) -> None:
    """SIGTERM the nodes of ``handles`` by PID; each must exit with status 0."""
    for handle in handles:
        node: NodeProcess | None = net.users.get(handle)
        if node is not None and node.process.poll() is None:
            assert node.stop() == 0, f"{handle} did not exit cleanly"


def open_readonly(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def history(net: LocalNetwork, handle: str, peer: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = net.call(handle, "history", {"handle": peer, "limit": 1000})[
        "messages"
    ]
    return messages
