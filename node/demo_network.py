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
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from chhaya import ChhayaError, TransportError

from .clock import system_rng, wall_ms
from .daemon import call, socket_path
from .procs import LOOPBACK_LISTEN, NodeProcess, ProcessGroup

__all__ = ["LocalNetwork", "NetworkDemoResult", "run_network_demo"]

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


def _make_quorum(root: Path, witnesses: int, threshold: int) -> Path:
    from quorum import WitnessSet

    from .daemon._main import bls_backend
    from .quorum_files import witness_set_to_json, write_witness_key

    backend = bls_backend()
    members = []
    for i in range(witnesses):
        sk = backend.key_gen(system_rng(32))
        _, _, member = write_witness_key(root / "witnesses", f"w{i + 1}", sk, backend)
        members.append(member)
    set_path = root / "SET.json"
    set_path.write_text(witness_set_to_json(WitnessSet(tuple(members), threshold)))
    return set_path


class LocalNetwork:
    """A quorum, a directory and user nodes as processes under ``root`` (127.0.0.1).

    Also the integration tests' fixture. Use inside ``with network.group.running():``
    so every process is stopped by its PID whatever happens.
    """

    def __init__(
        self,
        root: Path,
        say: Callable[[str], None] = lambda _: None,
        *,
        witnesses: int = WITNESSES,
        threshold: int = THRESHOLD,
        log_dir: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        from .directory_files import init_directory

        self.root = root
        self.say = say
        self.set_path = _make_quorum(root, witnesses, threshold)
        self.witness_count = witnesses
        opened, genesis = init_directory(root / "directory", wall_ms(), system_rng)
        opened.close()
        say(f"directory created (epoch {genesis.head.epoch}); witness set: {threshold} of "
            f"{witnesses}")  # fmt: skip
        self.group = ProcessGroup(env=env, log_dir=log_dir or root)
        self.witness_addrs: list[str] = []
        self.directory: NodeProcess | None = None
        self.users: dict[str, NodeProcess] = {}

    def witness_args(self, name: str, listen: str = LOOPBACK_LISTEN) -> list[str]:
        return [
            "witness", "serve", "--key", str(self.root / "witnesses" / f"{name}.key"),
            "--set", str(self.set_path),
            "--directory-public", str(self.root / "directory" / "directory.json"),
            "--state", str(self.root / "witnesses" / f"{name}.state"),
            "--listen", listen, "--json",
        ]  # fmt: skip

    def start_witnesses(
        self, count: int | None = None, *, listen: str = LOOPBACK_LISTEN,
        prefix: Sequence[str] = (),
    ) -> None:  # fmt: skip
        """``prefix``/``listen``: run them elsewhere (e.g. ``ip netns exec NS``)."""
        for i in range(self.witness_count if count is None else count):
            name = f"w{i + 1}"
            node = self.group.start(name, self.witness_args(name, listen), prefix=prefix)
            self.witness_addrs.append(node.address)
            self.say(f"witness {name} up (pid {node.pid})")

    def start_directory(
        self, epoch_interval_s: float = 0.2, *, listen: str = LOOPBACK_LISTEN,
        prefix: Sequence[str] = (),
    ) -> NodeProcess:  # fmt: skip
        witness_args = [arg for a in self.witness_addrs for arg in ("--witness", a)]
        self.directory = self.group.start("directory", [
            "directory", "serve", "--dir", str(self.root / "directory"),
            "--witness-set", str(self.set_path), "--listen", listen,
            "--epoch-interval", str(epoch_interval_s), *witness_args, "--json",
        ], prefix=prefix)  # fmt: skip
        self.say(f"directory up (pid {self.directory.pid}) at {self.directory.address}")
        return self.directory

    def user_dir(self, handle: str) -> Path:
        return self.root / "users" / handle

    def socket(self, handle: str) -> Path:
        return socket_path(self.user_dir(handle))

    def user_args(self, handle: str, listen: str = LOOPBACK_LISTEN) -> list[str]:
        assert self.directory is not None
        return [
            "run", "--data-dir", str(self.user_dir(handle)), "--listen", listen,
            "--directory", self.directory.address, "--witness-set", str(self.set_path),
            "--json",
        ]  # fmt: skip

    def start_user(
        self, handle: str, extra: Sequence[str] = (), *, listen: str = LOOPBACK_LISTEN,
        prefix: Sequence[str] = (),
    ) -> NodeProcess:  # fmt: skip
        """Start (or restart, with the same data directory) the node of ``handle``."""
        node = self.group.start(handle, [*self.user_args(handle, listen), *extra], prefix=prefix)
        self.users[handle] = node
        self.say(f"user node {handle} up (pid {node.pid}, peer {node.ready['peer_id']})")
        return node

    def call(self, handle: str, op: str, args: dict[str, Any] | None = None,
             timeout_s: float = 90.0) -> dict[str, Any]:  # fmt: skip
        return call(self.socket(handle), op, args or {}, timeout_s)

    def register(self, handles: Sequence[str]) -> list[dict[str, Any]]:
        return _parallel([
            functools.partial(self.call, h, "register", {"handle": h, "timeout_s": 30}, 60)
            for h in handles
        ])  # fmt: skip


def run_network_demo(
    users: int, say: Callable[[str], None], log_dir: Path | None = None
) -> NetworkDemoResult:
    if users < 2:
        raise ChhayaError("the demo needs at least 2 users")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="chhaya-demo-") as tmp:
        root = Path(tmp)
        say(f"setting up in {root}")
        net = LocalNetwork(root, say, log_dir=log_dir)
        group = net.group
        with group.running():
            net.start_witnesses()
            net.start_directory()
            handles = [_handle(i) for i in range(users)]
            for handle in handles:
                net.start_user(handle)
            for result in net.register(handles):
                say(f"registered {result['handle']}: certified in epoch {result['epoch']}")
            sends = [(a, b) for a in handles for b in handles if a != b]
            say(f"sending {len(sends)} sealed-sender messages (every user to every other)")
            results = _parallel([
                functools.partial(net.call, a, "send", {
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
                inbox = net.call(handle, "inbox")["messages"]
                received += len(inbox)
                for doc in inbox:
                    say(f"  {handle}'s inbox: from {doc['from']}: {doc['text']!r}")
            statuses = [net.call(h, "status") for h in handles]
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
            witnesses=net.witness_count,
            messages_sent=len(sends),
            messages_delivered=delivered,
            messages_received=received,
            proofs_verified=proofs,
            epochs_certified=epoch + 1,
            clean_exits=clean,
            elapsed_s=round(time.perf_counter() - started, 2),
        )
