"""`chhaya demo`: a whole Chhaya network on 127.0.0.1, as separate processes.

1. Four witness keys and a 3-of-4 witness set; a fresh key directory.
2. Four `chhaya witness serve` processes and one `chhaya directory serve`.
3. N user nodes (`chhaya run`), each registering its handle through the
   control API; each registration is visible only once a lookup proof of a
   certified epoch verifies.
4. Every user sends every other user one sealed-sender message, after
   looking the handle up through a verified proof, and waits for its
   delivery receipt; every inbox is then read back.
5. Every process is stopped by its PID (SIGTERM) and must exit cleanly.
"""

from __future__ import annotations

import functools
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from chhaya import ChhayaError, TransportError

from .clock import system_rng, wall_ms
from .daemon import call, socket_path
from .procs import LOOPBACK_LISTEN, ProcessGroup

__all__ = ["NetworkDemoResult", "run_network_demo"]

HANDLES = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy")
WITNESSES = 4
THRESHOLD = 3


@dataclass(frozen=True, slots=True)
class NetworkDemoResult:
    nodes: int
    users: int
    witnesses: int
    messages_sent: int
    messages_delivered: int
    messages_received: int
    proofs_verified: int
    epochs_certified: int
    clean_exits: int
    elapsed_s: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _handle(i: int) -> str:
    return HANDLES[i] if i < len(HANDLES) else f"user{i}"


def _parallel(jobs: list[Callable[[], Any]]) -> list[Any]:
    """Run blocking control calls at once; re-raise the first failure."""
    results: list[Any] = [None] * len(jobs)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            results[i] = jobs[i]()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    if errors:
        raise errors[0]
    return results


def _make_quorum(root: Path) -> Path:
    from quorum import WitnessSet

    from .daemon._main import bls_backend
    from .quorum_files import witness_set_to_json, write_witness_key

    backend = bls_backend()
    members = []
    for i in range(WITNESSES):
        sk = backend.key_gen(system_rng(32))
        _, _, member = write_witness_key(root / "witnesses", f"w{i + 1}", sk, backend)
        members.append(member)
    set_path = root / "SET.json"
    set_path.write_text(witness_set_to_json(WitnessSet(tuple(members), THRESHOLD)))
    return set_path


def run_network_demo(
    users: int, say: Callable[[str], None], log_dir: Path | None = None
) -> NetworkDemoResult:
    if users < 2:
        raise ChhayaError("the demo needs at least 2 users")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="chhaya-demo-") as tmp:
        root = Path(tmp)
        say(f"setting up in {root}")
        set_path = _make_quorum(root)
        from .directory_files import init_directory

        opened, genesis = init_directory(root / "directory", wall_ms(), system_rng)
        opened.close()
        say(f"directory created (epoch {genesis.head.epoch}); witness set: {THRESHOLD} of "
            f"{WITNESSES}")  # fmt: skip
        group = ProcessGroup(log_dir=log_dir or root)
        with group.running():
            witness_addrs = []
            for i in range(WITNESSES):
                name = f"w{i + 1}"
                node = group.start(name, [
                    "witness", "serve", "--key", str(root / "witnesses" / f"{name}.key"),
                    "--set", str(set_path),
                    "--directory-public", str(root / "directory" / "directory.json"),
                    "--state", str(root / "witnesses" / f"{name}.state"),
                    "--listen", LOOPBACK_LISTEN, "--json",
                ])  # fmt: skip
                witness_addrs.append(node.address)
                say(f"witness {name} up (pid {node.pid})")
            witness_args = [arg for a in witness_addrs for arg in ("--witness", a)]
            directory = group.start("directory", [
                "directory", "serve", "--dir", str(root / "directory"),
                "--witness-set", str(set_path), "--listen", LOOPBACK_LISTEN,
                "--epoch-interval", "0.2", *witness_args, "--json",
            ])  # fmt: skip
            say(f"directory up (pid {directory.pid}) at {directory.address}")
            handles = [_handle(i) for i in range(users)]
            sockets = {}
            for handle in handles:
                data_dir = root / "users" / handle
                node = group.start(handle, [
                    "run", "--data-dir", str(data_dir), "--listen", LOOPBACK_LISTEN,
                    "--directory", directory.address, "--witness-set", str(set_path), "--json",
                ])  # fmt: skip
                sockets[handle] = socket_path(data_dir)
                say(f"user node {handle} up (pid {node.pid}, peer {node.ready['peer_id']})")
            registered = _parallel([
                functools.partial(call, sockets[h], "register", {"handle": h, "timeout_s": 30}, 60)
                for h in handles
            ])  # fmt: skip
            for result in registered:
                say(f"registered {result['handle']}: certified in epoch {result['epoch']}")
            sends = [(a, b) for a in handles for b in handles if a != b]
            say(f"sending {len(sends)} sealed-sender messages (every user to every other)")
            results = _parallel([
                functools.partial(call, sockets[a], "send", {
                    "handle": b, "text": f"hello {b}, this is {a}", "wait": True,
                    "timeout_s": 30,
                }, 90)
                for a, b in sends
            ])  # fmt: skip
            delivered = sum(1 for r in results if r["status"] in ("delivered", "read"))
            for (a, b), r in zip(sends, results, strict=True):
                say(f"  {a} -> {b}: {r['status']}")
            received = 0
            for handle in handles:
                inbox = call(sockets[handle], "inbox", {})["messages"]
                received += len(inbox)
                for doc in inbox:
                    say(f"  {handle}'s inbox: from {doc['from']}: {doc['text']!r}")
            statuses = [call(sockets[h], "status", {}) for h in handles]
            proofs = sum(int(s["proofs_verified"]) for s in statuses)
            epoch = max(int(s["directory_epoch"] or 0) for s in statuses)
            say("stopping every process (SIGTERM by PID)")
        codes = [p.process.returncode for p in group.processes]
        clean = sum(1 for c in codes if c == 0)
        if clean != len(codes):
            bad = [
                f"{p.name} ({p.process.returncode})"
                for p in group.processes
                if p.process.returncode != 0
            ]
            raise TransportError(f"processes did not exit cleanly: {', '.join(bad)}")
        return NetworkDemoResult(
            nodes=len(group.processes),
            users=users,
            witnesses=WITNESSES,
            messages_sent=len(sends),
            messages_delivered=delivered,
            messages_received=received,
            proofs_verified=proofs,
            epochs_certified=epoch + 1,
            clean_exits=clean,
            elapsed_s=round(time.perf_counter() - started, 2),
        )
