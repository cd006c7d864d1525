"""Two nodes end to end: sealed messages over libp2p into SQLite, against a raw stream.

Run as ``python -m benchmarks.bench_node [--quick] [--repeats R]``.
One JSON object goes to stdout; progress goes to stderr.

Two processes, one node each (the machine this was written on has 2 cores):
this process is node A (Alice, the dialer); it starts node B (Bob) as a child
process (``python -m benchmarks.bench_node --serve ...``). Each node is a
:func:`node.p2p.running_host` (TCP + Noise + Yamux) on 127.0.0.1 with its own
:class:`~node.store.LogStore` (a real SQLite file in a temporary directory,
WAL, ``synchronous=FULL``). A opens ``/chhaya/channel/1.0.0`` to B and both
run a :class:`~node.delivery.Delivery`: A's ``send_text`` commits and sends
a sealed envelope; B opens it, commits it, and sends a DELIVERED receipt,
which A commits in turn.

Both processes read the same clock, ``CLOCK_MONOTONIC`` (``time.monotonic``
on Linux is system-wide), so B timestamps each commit itself and A compares
those stamps with its own. B reports them over a second stream of the same
connection, the bench protocol, once a measured block is over.

Each repeat runs, in this order:

1. **baseline**: the same number of length-framed messages, each the size of
   a real sealed envelope (the padded bucket), written one ``write()`` at a
   time on one raw libp2p stream of the same connection; B reads and parses
   them. Rate = messages / (B read the last one - A started writing).
2. **end to end**: ``send_text`` of 200-byte texts back to back. A message
   counts when B has committed it: rate = messages / (B committed the last
   one - A's first ``send_text`` call). ``receipts_per_s`` uses the time A
   committed the last DELIVERED receipt instead.
3. **latency**: one message at a time (the next is sent once A has seen the
   previous receipt); latency = B committed it - A called ``send_text``.

``ratio`` is the median of the per-repeat (end to end / raw) ratios; rates,
p50 and p99 are medians over the repeats. Finally the head-propagation
figure comes from :func:`benchmarks.bench_heads.run` (20 nodes in this
process, after node B has stopped).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Final, Literal

import trio
from libp2p.abc import IHost, INetStream
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr
from multiaddr import Multiaddr

from benchmarks import bench_heads
from benchmarks._common import median, version
from chhaya.channel import AllowlistResolver
from chhaya.identity import PrivateIdentity
from chhaya.sealed import SenderCertificate, issue_certificate
from chhaya.session import MAX_SEEN_IDS
from node.delivery import Delivery
from node.drivers import SecureChannel
from node.p2p import ChannelService, listen_addrs, open_channel, running_host
from node.store import LogStore

__all__ = ["idle_rss_mb", "main", "run"]

#: One clock for both processes: CLOCK_MONOTONIC is system-wide on Linux.
now = time.monotonic

BENCH_PROTOCOL: Final = TProtocol("/chhaya/bench/1.0.0")
TEXT_BYTES = 200
TARGET_RATIO = 0.70
TARGET_P50_MS = 5.0
TARGET_HEADS_S = bench_heads.TARGET_ALL_NODES_S
EXPIRES_MS = 2**62
LOOPBACK = ["/ip4/127.0.0.1/tcp/0"]

#: Bound on node B's start-up (importing libp2p alone takes about 1.3 s).
START_TIMEOUT_S = 30.0
#: Bound on any one measured block.
BLOCK_TIMEOUT_S = 60.0
#: Bound on stopping node B politely before SIGTERM, and on SIGTERM before SIGKILL.
STOP_TIMEOUT_S = 5.0
#: Largest frame of the bench protocol.
MAX_FRAME = 1 << 24
_RAW: Final = b"r"  # bench frame kinds: a raw message, a sync request, quit
_SYNC: Final = b"s"
_QUIT: Final = b"q"


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _frame(body: bytes) -> bytes:
    return len(body).to_bytes(4, "big") + body


class _FrameReader:
    """Length-prefixed frames from a raw libp2p stream."""

    def __init__(self, stream: INetStream) -> None:
        self._stream = stream
        self._buf = bytearray()

    def _pop(self) -> bytes | None:
        if len(self._buf) < 4:
            return None
        n = int.from_bytes(self._buf[:4], "big")
        if n > MAX_FRAME:
            raise ValueError(f"bench frame too long: {n}")
        if len(self._buf) < 4 + n:
            return None
        body = bytes(self._buf[4 : 4 + n])
        del self._buf[: 4 + n]
        return body

    async def next(self) -> bytes | None:
        """The next frame, or None at the end of the stream."""
        while (body := self._pop()) is None:
            try:
                data = await self._stream.read(65536)
            except EOFError:
                data = b""
            if not data:
                return None
            self._buf += data
        return body


class _TimedStore(LogStore):
    """A LogStore that stamps the moments the benchmark counts."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        #: When each new incoming message was committed.
        self.committed: list[float] = []
        #: When each new DELIVERED receipt was committed.
        self.receipts: list[float] = []
        #: Size of the last outgoing envelope.
        self.envelope_size = 0

    async def __aenter__(self) -> _TimedStore:
        return self

    async def commit_outgoing(
        self,
        peer: str,
        new_state: bytes,
        message_id: bytes,
        body: bytes,
        envelope: bytes,
        now_ms: int,
        *,
        next_attempt_ms: int | None = None,
    ) -> None:
        self.envelope_size = len(envelope)
        await super().commit_outgoing(
            peer, new_state, message_id, body, envelope, now_ms, next_attempt_ms=next_attempt_ms
        )

    async def commit_incoming(
        self,
        peer: str,
        new_state: bytes,
        message_id: bytes,
        body: bytes,
        sent_ms: int,
        now_ms: int,
    ) -> bool:
        new = await super().commit_incoming(peer, new_state, message_id, body, sent_ms, now_ms)
        if new:
            self.committed.append(now())
        return new

    async def commit_incoming_and_reply(
        self,
        peer: str,
        new_state: bytes,
        message_id: bytes,
        body: bytes,
        sent_ms: int,
        now_ms: int,
        reply_state: bytes,
    ) -> bool:
        new = await super().commit_incoming_and_reply(
            peer, new_state, message_id, body, sent_ms, now_ms, reply_state
        )
        if new:
            self.committed.append(now())
        return new

    async def mark_delivered(
        self, message_id: bytes, now_ms: int, *, peer: str | None = None
    ) -> bool:
        new = await super().mark_delivered(message_id, now_ms, peer=peer)
        if new:
            self.receipts.append(now())
        return new

    async def commit_receipts(
        self,
        peer: str,
        new_state: bytes,
        message_ids: Sequence[bytes],
        status: Literal["delivered", "read"],
        now_ms: int,
    ) -> int:
        new = await super().commit_receipts(peer, new_state, message_ids, status, now_ms)
        if status == "delivered":
            self.receipts.extend([now()] * new)
        return new


async def _open_store(path: Path) -> _TimedStore:
    store = await _TimedStore.open(path)
    assert isinstance(store, _TimedStore)
    return store


@dataclass
class _Keys:
    alice: PrivateIdentity
    bob: PrivateIdentity
    alice_cert: SenderCertificate = field(init=False)
    bob_cert: SenderCertificate = field(init=False)

    def __post_init__(self) -> None:
        self.alice_cert = issue_certificate(self.alice, "alice", b"d1", EXPIRES_MS)
        self.bob_cert = issue_certificate(self.bob, "bob", b"d1", EXPIRES_MS)

    def encode(self) -> str:
        return f"{self.alice.secret_bytes().hex()}:{self.bob.secret_bytes().hex()}"

    @classmethod
    def decode(cls, text: str) -> _Keys:
        a, b = text.split(":")
        return cls(
            PrivateIdentity.from_secret_bytes(bytes.fromhex(a)),
            PrivateIdentity.from_secret_bytes(bytes.fromhex(b)),
        )


# --------------------------------------------------------------------------- node B


async def _serve(keys: _Keys, db: Path, deadline_s: float) -> None:
    """Node B: accept Alice's channel and the bench stream until told to quit.

    Also stops when its parent, node A, exits, and after ``deadline_s`` in any case.
    """
    parent = os.getppid()
    with trio.move_on_after(deadline_s):
        async with (
            await _open_store(db) as store,
            running_host(create_new_key_pair(), LOOPBACK) as host,
            trio.open_nursery() as nursery,
        ):
            raw_times: list[float] = []

            async def channel_handler(channel: SecureChannel, peer_id: ID) -> None:
                bob = await Delivery.establish(
                    channel, store, keys.bob, keys.bob_cert, keys.alice.public, dialer=False
                )
                await bob.run()

            async def bench_handler(stream: INetStream) -> None:
                reader = _FrameReader(stream)
                while (body := await reader.next()) is not None:
                    kind = body[:1]
                    if kind == _RAW:
                        raw_times.append(now())
                    elif kind == _SYNC:
                        reply = {"raw": raw_times[:], "committed": store.committed[:]}
                        raw_times.clear()
                        store.committed.clear()
                        await stream.write(_frame(json.dumps(reply).encode()))
                    else:
                        break
                nursery.cancel_scope.cancel()

            service = ChannelService(
                host,
                keys.bob,
                AllowlistResolver({keys.alice.public.signing_key: "alice"}),
                handler=channel_handler,
                linger_s=1.0,
            )
            with service:
                host.set_stream_handler(BENCH_PROTOCOL, bench_handler)
                print(f"ready {listen_addrs(host)[0]}", flush=True)
                # Stop with node A, even if it dies without telling us.
                while os.getppid() == parent:
                    await trio.sleep(0.5)
                nursery.cancel_scope.cancel()


# --------------------------------------------------------------------------- node A


def _wait_for_line(proc: subprocess.Popen[bytes], marker: bytes, timeout_s: float) -> bytes | None:
    """The first line of ``proc``'s stdout containing ``marker``, or None.

    None if ``timeout_s`` passes or the output ends first.
    """
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    buf = b""
    deadline = time.monotonic() + timeout_s
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            return None
        chunk = os.read(fd, 4096)
        if not chunk:
            return None
        buf += chunk
        *lines, buf = buf.split(b"\n")
        for line in lines:
            if marker in line:
                return line
    return None


def _stop_pid(proc: subprocess.Popen[bytes], polite_s: float, term_s: float) -> None:
    """Wait ``polite_s`` for ``proc`` to exit, then SIGTERM, then SIGKILL after ``term_s``."""
    for sig, wait_s in ((None, polite_s), (signal.SIGTERM, term_s), (signal.SIGKILL, term_s)):
        if proc.poll() is not None:
            break
        if sig is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(wait_s)
    if proc.stdout is not None:
        proc.stdout.close()


class _NodeB:
    """The child process running node B, stopped by its PID."""

    def __init__(self, keys: _Keys, db: Path, deadline_s: float) -> None:
        cmd = [sys.executable, "-m", "benchmarks.bench_node", "--serve"]
        cmd += ["--db", str(db), "--deadline-s", str(deadline_s)]
        env = dict(os.environ, CHHAYA_BENCH_KEYS=keys.encode())
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, env=env)

    def wait_ready(self) -> str:
        line = _wait_for_line(self.proc, b"ready ", START_TIMEOUT_S)
        if line is None:
            raise RuntimeError("node B did not start")
        return line.split()[1].decode()

    def stop(self) -> None:
        _stop_pid(self.proc, STOP_TIMEOUT_S, STOP_TIMEOUT_S)


@dataclass
class _Session:
    alice: Delivery
    store: _TimedStore
    raw: INetStream
    reader: _FrameReader

    async def sync(self) -> dict[str, list[float]]:
        """Node B's stamps since the last sync (the stream is in order, so all of them)."""
        await self.raw.write(_frame(_SYNC))
        body = await self.reader.next()
        if body is None:
            raise RuntimeError("node B closed the bench stream")
        reply: dict[str, list[float]] = json.loads(body)
        return reply


@asynccontextmanager
async def _session(
    host: IHost, address: str, keys: _Keys, store: _TimedStore
) -> AsyncIterator[_Session]:
    channel = await open_channel(host, address, keys.alice, keys.bob.public.signing_key)
    alice = await Delivery.establish(
        channel, store, keys.alice, keys.alice_cert, keys.bob.public, dialer=True
    )
    peer_id = info_from_p2p_addr(Multiaddr(address)).peer_id
    raw = await host.new_stream(peer_id, [BENCH_PROTOCOL])
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(alice.run)
            yield _Session(alice, store, raw, _FrameReader(raw))
            with trio.move_on_after(STOP_TIMEOUT_S):
                await raw.write(_frame(_QUIT))
            nursery.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True), trio.move_on_after(STOP_TIMEOUT_S):
            await channel.aclose()


async def _raw_block(s: _Session, n: int, size: int) -> float:
    """Messages per second on the raw stream."""
    message = _frame(_RAW + bytes(size - 1))
    with trio.fail_after(BLOCK_TIMEOUT_S):
        t0 = now()
        for _ in range(n):
            await s.raw.write(message)
        stamps = (await s.sync())["raw"]
    if len(stamps) != n:
        raise RuntimeError(f"node B read {len(stamps)} raw messages, not {n}")
    return n / (stamps[-1] - t0)


async def _e2e_block(s: _Session, n: int) -> tuple[float, float]:
    """(messages committed by B per second, receipts committed by A per second)."""
    text = os.urandom(TEXT_BYTES)
    target = s.alice.delivered + n
    s.store.receipts.clear()
    with trio.fail_after(BLOCK_TIMEOUT_S):
        t0 = now()
        for _ in range(n):
            await s.alice.send_text(text)
        await s.alice.wait_until(lambda: s.alice.delivered >= target)
        committed = (await s.sync())["committed"]
    if len(committed) != n:
        raise RuntimeError(f"node B committed {len(committed)} messages, not {n}")
    return n / (committed[-1] - t0), n / (s.store.receipts[-1] - t0)


async def _latency_block(s: _Session, n: int) -> tuple[list[float], list[float]]:
    """Per message: (send_text call to B's commit, send_text call to A's receipt), in s."""
    text = os.urandom(TEXT_BYTES)
    sent: list[float] = []
    receipts: list[float] = []
    with trio.fail_after(BLOCK_TIMEOUT_S):
        for _ in range(n):
            target = s.alice.delivered + 1
            t0 = now()
            await s.alice.send_text(text)
            await s.alice.wait_until(partial(_reached, s.alice, target))
            receipts.append(now() - t0)
            sent.append(t0)
        committed = (await s.sync())["committed"]
    if len(committed) != n:
        raise RuntimeError(f"node B committed {len(committed)} messages, not {n}")
    return [c - t for c, t in zip(committed, sent, strict=True)], receipts


def _reached(delivery: Delivery, target: int) -> bool:
    return delivery.delivered >= target


def _p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[98]


def _ms(value: float) -> float:
    return round(value * 1000, 3)


@dataclass
class Plan:
    repeats: int
    messages: int
    latency_messages: int
    warmup: int
    head_nodes: int
    head_rounds: int


#: The full run warms up until the receiver's conversation remembers as many
#: message ids as it ever will (``MAX_SEEN_IDS``), so that every repeat runs
#: with the state size of a long-lived conversation.
FULL = Plan(
    repeats=5,
    messages=1000,
    latency_messages=200,
    warmup=MAX_SEEN_IDS,
    head_nodes=20,
    head_rounds=5,
)
QUICK = Plan(repeats=2, messages=40, latency_messages=10, warmup=5, head_nodes=8, head_rounds=2)


async def _two_nodes(plan: Plan, workdir: Path) -> dict[str, object]:
    keys = _Keys(PrivateIdentity.generate(os.urandom), PrivateIdentity.generate(os.urandom))
    blocks = 3 * plan.repeats + plan.warmup // 1000 + 3
    deadline_s = START_TIMEOUT_S + BLOCK_TIMEOUT_S * blocks
    node_b = _NodeB(keys, workdir / "bob.db", deadline_s)
    try:
        address = node_b.wait_ready()
        _log(f"node B (pid {node_b.proc.pid}) at {address}")
        async with (
            await _open_store(workdir / "alice.db") as store,
            running_host(create_new_key_pair(), LOOPBACK) as host,
            _session(host, address, keys, store) as s,
        ):
            _log(f"warm-up: {plan.warmup} messages")
            for done in range(0, plan.warmup, 1000):  # each block is bounded in time
                await _e2e_block(s, min(1000, plan.warmup - done))
            size = store.envelope_size
            await _raw_block(s, plan.warmup, size)
            raw, e2e, receipts, ratios = [], [], [], []
            p50, p99, r50, r99 = [], [], [], []
            for r in range(plan.repeats):
                raw.append(await _raw_block(s, plan.messages, size))
                committed, receipt_rate = await _e2e_block(s, plan.messages)
                e2e.append(committed)
                receipts.append(receipt_rate)
                ratios.append(committed / raw[-1])
                lat, rlat = await _latency_block(s, plan.latency_messages)
                p50.append(statistics.median(lat))
                p99.append(_p99(lat))
                r50.append(statistics.median(rlat))
                r99.append(_p99(rlat))
                _log(
                    f"repeat {r}: raw {raw[-1]:.0f}/s, e2e {committed:.0f}/s"
                    f" (receipts {receipt_rate:.0f}/s), ratio {ratios[-1]:.2f},"
                    f" latency p50 {_ms(p50[-1])} ms p99 {_ms(p99[-1])} ms"
                )
    finally:
        node_b.stop()
    ratio = median(ratios)
    p50_med = median(p50)
    return {
        "envelope_bytes": size,
        "throughput": {
            "committed_per_s": round(median(e2e), 1),
            "receipts_per_s": round(median(receipts), 1),
            "raw_stream_per_s": round(median(raw), 1),
            "ratio": round(ratio, 3),
            "target_ratio": TARGET_RATIO,
            "target_met": ratio >= TARGET_RATIO,
        },
        "latency": {
            "p50_ms": _ms(p50_med),
            "p99_ms": _ms(median(p99)),
            "receipt_p50_ms": _ms(median(r50)),
            "receipt_p99_ms": _ms(median(r99)),
            "target_p50_ms": TARGET_P50_MS,
            "target_met": p50_med * 1000 <= TARGET_P50_MS,
        },
        "samples": {
            "committed_per_s": [round(x, 1) for x in e2e],
            "receipts_per_s": [round(x, 1) for x in receipts],
            "raw_stream_per_s": [round(x, 1) for x in raw],
            "ratio": [round(x, 3) for x in ratios],
            "p50_ms": [_ms(x) for x in p50],
            "p99_ms": [_ms(x) for x in p99],
        },
    }


async def run(plan: Plan) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="bench_node-") as tmp:
        nodes = await _two_nodes(plan, Path(tmp))
    _log(f"head propagation: {plan.head_nodes} nodes, {plan.head_rounds} rounds")
    heads = await bench_heads.run(plan.head_nodes, plan.head_rounds)
    heads_ms = heads["head_to_all_nodes_ms"]
    assert isinstance(heads_ms, float)
    throughput = nodes["throughput"]
    latency = nodes["latency"]
    assert isinstance(throughput, dict)
    assert isinstance(latency, dict)
    targets = {
        "ratio": throughput["target_met"],
        "p50": latency["target_met"],
        "heads": heads_ms <= TARGET_HEADS_S * 1000,
    }
    return {
        "benchmark": "bench_node",
        "metadata": {
            "python": platform.python_version(),
            "libp2p": version("libp2p"),
            "sqlite": __import__("sqlite3").sqlite_version,
            "machine": platform.machine(),
            "cpu_count": os.cpu_count(),
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "processes": "two: node A (this process, sender) and node B (a child process)",
            "transport": "TCP + Noise + Yamux on 127.0.0.1, one connection",
            "store": "SQLite file per node in a temporary directory, WAL, synchronous=FULL",
            "plan": {
                "repeats": plan.repeats,
                "messages_per_repeat": plan.messages,
                "latency_messages_per_repeat": plan.latency_messages,
                "warmup_messages": plan.warmup,
                "text_bytes": TEXT_BYTES,
                "envelope_bytes": nodes["envelope_bytes"],
                "head_nodes": plan.head_nodes,
                "head_rounds": plan.head_rounds,
            },
            "baseline": (
                "raw libp2p stream on the same connection: the same number of"
                " length-framed messages of the envelope's size, one write each"
            ),
            "clock": "time.monotonic (CLOCK_MONOTONIC, shared by both processes)",
        },
        "throughput": throughput,
        "latency": latency,
        "heads": {
            "nodes": plan.head_nodes,
            "head_to_all_nodes_ms": heads_ms,
            "one_hop_ms": heads["one_hop_ms"],
            "mesh_formed_s": heads["mesh_formed_s"],
            "target_all_nodes_s": TARGET_HEADS_S,
            "target_met": targets["heads"],
            "samples": heads["samples"],
        },
        "samples": nodes["samples"],
        "targets_met": targets,
        "all_targets_met": all(targets.values()),
    }


# --------------------------------------------------------------------------- idle RSS

TARGET_IDLE_RSS_MB = 120.0


def idle_rss_mb(cmd: list[str]) -> float:
    """Resident memory (MiB) of ``cmd`` once idle.

    Starts ``cmd``, waits until it prints a line containing "ready" (on stdout
    or stderr) or 10 s have passed, sleeps 3 s, reads VmRSS from
    ``/proc/PID/status``, then stops it by PID: SIGTERM, then SIGKILL after 5 s.
    """
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        _wait_for_line(proc, b"ready", 10.0)
        time.sleep(3.0)
        status = ""
        if proc.poll() is None:
            with contextlib.suppress(OSError):
                status = Path(f"/proc/{proc.pid}/status").read_text()
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError(f"{cmd[0]} exited before its memory could be read")
    finally:
        _stop_pid(proc, 0.0, 5.0)


#: A bare py-libp2p host (TCP, Noise, Yamux) idling: the baseline for the daemon's RSS.
_BARE_HOST = """
import trio
from libp2p.crypto.ed25519 import create_new_key_pair
from node.p2p import running_host
async def main():
    async with running_host(create_new_key_pair(), ["/ip4/127.0.0.1/tcp/0"]):
        print("ready", flush=True)
        await trio.sleep(60)
trio.run(main)
"""


def measure_idle_rss() -> dict[str, object]:
    """Idle RSS of `chhaya run` (fresh data dir, loopback) and of a bare host."""
    with tempfile.TemporaryDirectory(prefix="chhaya-rss-") as tmp:
        daemon = idle_rss_mb([
            sys.executable, "-m", "node.cli", "run", "--data-dir", str(Path(tmp) / "node"),
            "--listen", "/ip4/127.0.0.1/tcp/0",
        ])  # fmt: skip
    bare = idle_rss_mb([sys.executable, "-c", _BARE_HOST])
    return {
        "daemon_mb": round(daemon, 1),
        "bare_libp2p_host_mb": round(bare, 1),
        "ratio_to_bare_host": round(daemon / bare, 2),
        "target_mb": TARGET_IDLE_RSS_MB,
        "target_met": daemon <= TARGET_IDLE_RSS_MB,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="smoke test: 2 short repeats, 8 nodes")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--deadline-s", type=float, default=600.0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        keys = _Keys.decode(os.environ["CHHAYA_BENCH_KEYS"])
        trio.run(_serve, keys, args.db, args.deadline_s)
        return
    plan = QUICK if args.quick else FULL
    if args.repeats is not None:
        plan = Plan(**{**plan.__dict__, "repeats": args.repeats})
    started = time.perf_counter()
    result = trio.run(run, plan)
    rss = measure_idle_rss()
    targets = result["targets_met"]
    assert isinstance(targets, dict)
    targets["idle_rss"] = rss["target_met"]
    result["idle_rss"] = rss
    result["all_targets_met"] = all(targets.values())
    result["elapsed_s"] = round(time.perf_counter() - started, 2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
