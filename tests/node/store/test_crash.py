"""A real process committing messages is killed with SIGKILL at a random moment.

After each kill the database must be intact and consistent: every session
version present and contiguous, every message committed together with its
session version, 'sent' receipt and outbox row (or delivery receipt), and
every commit the child reported as done still there.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import trio

from node.store import LogStore

ROOT = Path(__file__).resolve().parents[3]
PEERS = ("alice", "bob", "carol")
ROUNDS = 5

CHILD = """
import hashlib, sys, trio
from node.store import LogStore

PEERS = ("alice", "bob", "carol")

def state(peer, version):
    seed = hashlib.sha256(f"{peer}/{version}".encode()).digest()
    return version.to_bytes(8, "big") + seed * 64

async def main(path, start):
    store = await LogStore.open(path)
    versions = {}
    for peer in PEERS:
        s = await store.load_session(peer)
        versions[peer] = 0 if s is None else int.from_bytes(s[:8], "big")
    print("ready", flush=True)
    i = start
    while True:
        peer = PEERS[i % len(PEERS)]
        v = versions[peer] + 1
        mid = hashlib.sha256(b"msg%d" % i).digest()[:16]
        await store.commit_outgoing(peer, state(peer, v), mid, b"body %d" % i, b"env %d" % i, i)
        versions[peer] = v
        sys.stdout.write(f"sent {i}\\n")
        sys.stdout.flush()
        if i % 4 == 0:
            await store.mark_delivered(mid, i)
            sys.stdout.write(f"delivered {i}\\n")
            sys.stdout.flush()
        i += 1

trio.run(main, sys.argv[1], int(sys.argv[2]))
"""


def expected_state(peer: str, version: int) -> bytes:
    seed = hashlib.sha256(f"{peer}/{version}".encode()).digest()
    return version.to_bytes(8, "big") + seed * 64


def message_id(i: int) -> bytes:
    return hashlib.sha256(b"msg%d" % i).digest()[:16]


async def run_and_kill(path: Path, start: int, delay_s: float) -> list[str]:
    """Run the child until ``delay_s`` after it is ready, SIGKILL it, return its whole lines."""
    proc = await trio.lowlevel.open_process(
        [sys.executable, "-c", CHILD, str(path), str(start)],
        stdout=subprocess.PIPE,
        cwd=ROOT,
    )
    output = bytearray()
    ready = trio.Event()
    try:
        assert proc.stdout is not None
        stdout = proc.stdout

        async def drain() -> None:
            while chunk := await stdout.receive_some():
                output.extend(chunk)
                if b"ready\n" in output:
                    ready.set()
            ready.set()  # EOF: the child died on its own

        async with trio.open_nursery() as nursery:
            nursery.start_soon(drain)
            await ready.wait()
            assert b"ready\n" in output, "the child exited before it was ready"
            await trio.sleep(delay_s)
            os.kill(proc.pid, signal.SIGKILL)
            await proc.wait()
    finally:
        if proc.returncode is None:
            os.kill(proc.pid, signal.SIGKILL)
            with trio.CancelScope(shield=True), trio.move_on_after(5):
                await proc.wait()
    assert proc.returncode == -signal.SIGKILL, output.decode()
    return output.decode().split("\n")[:-1]  # the last piece may be cut short


def check_database(path: Path, before: int, sent: set[int], delivered: set[int]) -> int:
    """Check every invariant; return how many messages are stored.

    ``before`` messages were stored before this round; ``sent`` and
    ``delivered`` are the commits every child reported as done.
    """
    db = sqlite3.connect(path, isolation_level=None)
    try:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
        total_versions = 0
        for peer in PEERS:
            rows = db.execute(
                "SELECT version, state FROM sessions WHERE peer = ? ORDER BY version", (peer,)
            ).fetchall()
            assert [v for v, _ in rows] == list(range(1, len(rows) + 1)), peer
            for version, state in rows:
                assert state == expected_state(peer, version), (peer, version)
            total_versions += len(rows)

        messages = db.execute(
            "SELECT id, peer, body, session_version FROM messages ORDER BY sent_ms"
        ).fetchall()
        n = len(messages)
        # One session version per message: none without the other.
        assert total_versions == n
        for i, (mid, peer, body, version) in enumerate(messages):
            assert mid == message_id(i)
            assert peer == PEERS[i % len(PEERS)]
            assert body == b"body %d" % i
            assert version == i // len(PEERS) + 1
        receipts = {(bytes(m), s) for m, s in db.execute("SELECT message_id, status FROM receipts")}
        outbox = {
            bytes(m): bytes(e) for m, e in db.execute("SELECT message_id, envelope FROM outbox")
        }
        for i in range(n):
            mid = message_id(i)
            assert (mid, "sent") in receipts, i
            if (mid, "delivered") in receipts:
                assert mid not in outbox, i
            else:
                assert outbox[mid] == b"env %d" % i, i
        # Nothing the child saw committed is lost; at most one commit was in flight.
        assert sent <= set(range(n))
        assert n <= len(sent | set(range(before))) + 1
        assert all((message_id(i), "delivered") in receipts for i in delivered)
        return n
    finally:
        db.close()


async def test_sigkill_mid_commit_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "node.db"
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    sent: set[int] = set()
    delivered: set[int] = set()
    stored = 0
    with trio.fail_after(25):
        for _ in range(ROUNDS):
            lines = await run_and_kill(path, stored, rng.uniform(0.05, 0.4))
            for line in lines:
                word, _, number = line.partition(" ")
                if word == "sent":
                    sent.add(int(number))
                elif word == "delivered":
                    delivered.add(int(number))
            stored = check_database(path, stored, sent, delivered)
        assert stored > 0, f"seed {seed}"
        async with await LogStore.open(path) as store:
            for peer in PEERS:
                state = await store.load_session(peer)
                assert state is not None
                assert state == expected_state(peer, int.from_bytes(state[:8], "big"))
            history = await store.history(PEERS[0], limit=10**6)
            assert len(history) == (stored + len(PEERS) - 1) // len(PEERS)
