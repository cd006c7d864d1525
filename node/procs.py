"""Starting and stopping Chhaya node processes (for the demo and integration tests).

Every process is started with ``python -m node.cli ... --json`` and is
considered up once it prints its JSON "ready" line. Every process is stopped
by its PID: SIGTERM, then SIGKILL after a bound. Nothing here listens
anywhere but where the caller says (the demo and tests use 127.0.0.1).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from chhaya import TransportError

__all__ = ["NodeProcess", "ProcessGroup", "cli_command"]

#: Bound on a process printing its ready line.
READY_TIMEOUT_S = 30.0
#: Bound on a process exiting after SIGTERM before it is killed.
STOP_TIMEOUT_S = 10.0
LOOPBACK_LISTEN = "/ip4/127.0.0.1/tcp/0"


def cli_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "node.cli", *args]


@dataclass
class NodeProcess:
    name: str
    process: subprocess.Popen[str]
    ready: dict[str, Any]
    lines: queue.Queue[str] = field(default_factory=queue.Queue)
    output: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def address(self) -> str:
        addresses = self.ready.get("addresses")
        if not isinstance(addresses, list) or not addresses:
            raise TransportError(f"{self.name} reported no address")
        return str(addresses[0])

    def drain(self) -> list[str]:
        """Output lines printed since the last call."""
        out = []
        while True:
            try:
                out.append(self.lines.get_nowait())
            except queue.Empty:
                return out

    def stop(self, sig: int | None = signal.SIGTERM, timeout_s: float = STOP_TIMEOUT_S) -> int:
        """Signal the process by its PID (unless ``sig`` is None) and wait for it;
        SIGKILL if it does not exit in time."""
        if self.process.poll() is None:
            if sig is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.process.pid, sig)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        return self.process.returncode

    def kill(self) -> None:
        self.stop(signal.SIGKILL, 5)


def _pump(stream: IO[str], lines: queue.Queue[str], keep: list[str]) -> None:
    for line in stream:
        lines.put(line.rstrip("\n"))
        keep.append(line.rstrip("\n"))


class ProcessGroup:
    """Processes started together and stopped together (also on errors)."""

    def __init__(self, env: dict[str, str] | None = None, log_dir: Path | None = None) -> None:
        self._env = {**os.environ, **(env or {})}
        self._env.setdefault("PYTHONUNBUFFERED", "1")
        self._log_dir = log_dir
        self.processes: list[NodeProcess] = []

    def start(
        self,
        name: str,
        args: Sequence[str],
        timeout_s: float = READY_TIMEOUT_S,
        prefix: Sequence[str] = (),
    ) -> NodeProcess:
        """Start ``python -m node.cli ARGS`` and wait for its ready line.

        ``prefix`` is put before the command, e.g. ``("ip", "netns", "exec", NS)``
        to run it inside a network namespace; the prefix must exec the command
        (``ip netns exec`` does), so that the PID is still the node's own.
        """
        stderr: IO[str] | int = subprocess.DEVNULL
        if self._log_dir is not None:
            stderr = open(self._log_dir / f"{name}.log", "a")  # noqa: SIM115 (the child owns it)
        try:
            process = subprocess.Popen(
                [*prefix, *cli_command(*args)],
                stdout=subprocess.PIPE,
                stderr=stderr,
                stdin=subprocess.DEVNULL,
                text=True,
                env=self._env,
            )
        finally:
            if not isinstance(stderr, int):
                stderr.close()
        node = NodeProcess(name, process, {})
        self.processes.append(node)
        assert process.stdout is not None
        threading.Thread(
            target=_pump, args=(process.stdout, node.lines, node.output), daemon=True
        ).start()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                line = node.lines.get(timeout=0.1)
            except queue.Empty:
                if process.poll() is not None:
                    raise TransportError(
                        f"{name} exited with status {process.returncode} before it was ready"
                    ) from None
                continue
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    doc = json.loads(line)
                    if isinstance(doc, dict) and doc.get("event") == "ready":
                        node.ready = doc
                        return node
        node.kill()
        raise TransportError(f"{name} was not ready within {timeout_s:g} s")

    def stop_all(self) -> list[int]:
        """SIGTERM every process (newest first), then wait for each; SIGKILL laggards."""
        for node in reversed(self.processes):
            if node.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(node.pid, signal.SIGTERM)
        return [node.stop(None) for node in reversed(self.processes)]

    @contextlib.contextmanager
    def running(self) -> Iterator[ProcessGroup]:
        try:
            yield self
        finally:
            self.stop_all()
