"""Mailboxes: deposit and fetch rates over ``/chhaya/mailbox/1.0.0``, against a raw stream.

Run as ``python -m benchmarks.bench_mailbox [--quick] [--repeats R]``.
One JSON object goes to stdout; progress goes to stderr.

Two :func:`node.p2p.running_host` hosts (TCP + Noise + Yamux) on 127.0.0.1 in
this process, one connection between them. The server runs a
:class:`~node.p2p.MailboxService` over a :class:`~node.mailbox_db.MailboxStore`
(a real SQLite file in a temporary directory, WAL, ``synchronous=FULL``).
Envelopes are 1 KiB, the smallest padded bucket, so the figures show the
per-envelope cost rather than bulk transfer.

Each repeat runs, in this order:

1. **baseline**: ``n`` request/response exchanges on a bare libp2p protocol,
   one new stream each, exactly as a deposit uses them: the client sends one
   framed 1 KiB message and half-closes, the server reads it, answers five
   bytes and closes. No store, no parsing beyond the frame.
2. **deposit**: ``n`` calls of :func:`node.p2p.deposit`, back to back, into
   one mailbox. Rate = n / elapsed.
3. **fetch**: one :func:`node.p2p.fetch` of those ``n`` pending envelopes,
   acknowledging every batch (``MAX_FETCH`` = 256 envelopes a batch, so four
   signed rounds for 1,000). ``fetch_ack_s`` is its elapsed time; the target
   is at most 5 s for 1,000.

The baseline is the raw stream exchange rather than the bare store: opening
a Yamux stream and negotiating its protocol dominates a deposit, so the
meaningful question is how much the mailbox adds to that. The bare store
rates (``MailboxStore.put`` and ``fetch`` + ``delete`` of the same
envelopes, same file settings) are reported too, under ``store``.

``deposit_ratio`` is the median of the per-repeat (deposit / baseline)
ratios; rates are medians over the repeats; the raw per-repeat values are
under ``samples``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import trio
from libp2p.abc import IHost, INetStream
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.custom_types import TProtocol
from libp2p.peer.peerinfo import info_from_p2p_addr
from multiaddr import Multiaddr

from benchmarks._common import median, rounded, version
from chhaya.identity import PrivateIdentity
from node.mailbox_db import MailboxStore
from node.p2p import (
    MAX_FETCH,
    Libp2pStream,
    MailboxService,
    deposit,
    fetch,
    listen_addrs,
    mailbox_id_for,
    running_host,
)
from node.p2p._framing import frame, receive_frame

__all__ = ["main", "run"]

BASELINE_PROTOCOL: Final = TProtocol("/chhaya/bench/mailbox-baseline/1.0.0")
LOOPBACK = ["/ip4/127.0.0.1/tcp/0"]
ENVELOPE_BYTES = 1024
TARGET_FETCH_1000_S = 5.0
#: Bound on one measured block.
BLOCK_TIMEOUT_S = 120.0


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@dataclass
class Plan:
    repeats: int
    envelopes: int


FULL = Plan(repeats=5, envelopes=1000)
QUICK = Plan(repeats=2, envelopes=100)


async def _baseline_handler(net_stream: INetStream) -> None:
    stream = Libp2pStream(net_stream)
    try:
        await receive_frame(stream, 1 << 20)
        await stream.send_all(frame(b"CMR1\x00"))
        await stream.send_eof()
        await stream.aclose_lingering(2.0)
    except Exception:  # a benchmark peer: nothing to recover
        await stream.reset()


async def _baseline_block(client: IHost, server: IHost, n: int, message: bytes) -> float:
    framed = frame(message)
    start = time.perf_counter()
    for _ in range(n):
        stream = Libp2pStream(await client.new_stream(server.get_id(), [BASELINE_PROTOCOL]))
        await stream.send_all(framed)
        await stream.send_eof()
        await receive_frame(stream, 16)
        await stream.aclose_lingering(2.0, max_discard=0)
    return time.perf_counter() - start


async def _deposit_block(
    client: IHost, server: IHost, mailbox: bytes, envelopes: Sequence[bytes]
) -> float:
    peer = server.get_id()
    start = time.perf_counter()
    for e in envelopes:
        if not await deposit(client, peer, mailbox, e):
            raise RuntimeError("the mailbox peer refused a deposit")
    return time.perf_counter() - start


async def _fetch_block(
    client: IHost, server: IHost, identity: PrivateIdentity, n: int
) -> tuple[float, int]:
    rounds = 0

    async def ack_all(batch: list[tuple[bytes, bytes]]) -> list[bytes]:
        nonlocal rounds
        rounds += 1
        return [i for i, _ in batch]

    start = time.perf_counter()
    got = await fetch(client, server.get_id(), identity, ack_all, max=MAX_FETCH)
    elapsed = time.perf_counter() - start
    if got != n:
        raise RuntimeError(f"fetched {got} envelopes, expected {n}")
    return elapsed, rounds


def _store_rates(workdir: Path, n: int, envelopes: Sequence[bytes]) -> tuple[float, float]:
    """Bare MailboxStore: puts per second, then fetch+delete per second."""
    with MailboxStore(workdir / "bare.sqlite") as store:
        mailbox = b"\x42" * 32
        now = int(time.time() * 1000)
        start = time.perf_counter()
        for e in envelopes:
            store.put(mailbox, e, now)
        put_s = time.perf_counter() - start
        start = time.perf_counter()
        done = 0
        while done < n:
            batch = store.fetch(mailbox, MAX_FETCH, now)
            done += store.delete(mailbox, [i for i, _ in batch])
        fetch_s = time.perf_counter() - start
    (workdir / "bare.sqlite").unlink()
    return n / put_s, n / fetch_s


async def _measure(plan: Plan, workdir: Path) -> dict[str, object]:
    identity = PrivateIdentity.generate(os.urandom)
    mailbox = mailbox_id_for(identity.public.signing_key)
    n = plan.envelopes
    baseline_rates: list[float] = []
    deposit_rates: list[float] = []
    ratios: list[float] = []
    fetch_s: list[float] = []
    fetch_rates: list[float] = []
    rounds: list[int] = []
    store_put: list[float] = []
    store_fetch: list[float] = []
    async with (
        running_host(create_new_key_pair(), LOOPBACK) as client,
        running_host(create_new_key_pair(), LOOPBACK) as server,
    ):
        server.set_stream_handler(BASELINE_PROTOCOL, _baseline_handler)
        with (
            MailboxStore(workdir / "mailboxes.sqlite", check_same_thread=False) as store,
            MailboxService(server, store),
        ):
            await client.connect(info_from_p2p_addr(Multiaddr(listen_addrs(server)[0])))
            warm = [os.urandom(ENVELOPE_BYTES) for _ in range(10)]
            await _deposit_block(client, server, mailbox, warm)
            await _fetch_block(client, server, identity, len(warm))
            await _baseline_block(client, server, 10, warm[0])
            for repeat in range(plan.repeats):
                envelopes = [os.urandom(ENVELOPE_BYTES) for _ in range(n)]
                with trio.fail_after(BLOCK_TIMEOUT_S):
                    base = await _baseline_block(client, server, n, envelopes[0])
                with trio.fail_after(BLOCK_TIMEOUT_S):
                    dep = await _deposit_block(client, server, mailbox, envelopes)
                with trio.fail_after(BLOCK_TIMEOUT_S):
                    took, batches = await _fetch_block(client, server, identity, n)
                baseline_rates.append(n / base)
                deposit_rates.append(n / dep)
                ratios.append(base / dep)
                fetch_s.append(took)
                fetch_rates.append(n / took)
                rounds.append(batches)
                put_rate, fetch_rate = _store_rates(workdir, n, envelopes)
                store_put.append(put_rate)
                store_fetch.append(fetch_rate)
                _log(
                    f"repeat {repeat + 1}/{plan.repeats}: baseline {n / base:.0f}/s,"
                    f" deposit {n / dep:.0f}/s, fetch+ack {n} in {took:.3f} s"
                )
    fetch_1000 = median(fetch_s) * 1000 / n
    return {
        "deposit": {
            "envelopes_per_s": round(median(deposit_rates), 1),
            "baseline_exchanges_per_s": round(median(baseline_rates), 1),
            "deposit_ratio": round(median(ratios), 3),
        },
        "fetch": {
            "envelopes_per_s": round(median(fetch_rates), 1),
            "fetch_ack_s": round(median(fetch_s), 4),
            "batches": rounds[0] if rounds else 0,
            "fetch_ack_1000_s": round(fetch_1000, 4),
            "target_1000_s": TARGET_FETCH_1000_S,
            "target_met": fetch_1000 <= TARGET_FETCH_1000_S,
            "extrapolated": n != 1000,
        },
        "store": {
            "put_per_s": round(median(store_put), 1),
            "fetch_delete_per_s": round(median(store_fetch), 1),
        },
        "samples": {
            "baseline_exchanges_per_s": rounded(baseline_rates, 1),
            "deposit_per_s": rounded(deposit_rates, 1),
            "deposit_ratio": rounded(ratios, 3),
            "fetch_ack_s": rounded(fetch_s, 4),
            "store_put_per_s": rounded(store_put, 1),
            "store_fetch_delete_per_s": rounded(store_fetch, 1),
        },
    }


async def run(plan: Plan) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="bench_mailbox-") as tmp:
        results = await _measure(plan, Path(tmp))
    fetch_part = results["fetch"]
    assert isinstance(fetch_part, dict)
    return {
        "benchmark": "bench_mailbox",
        "metadata": {
            "python": platform.python_version(),
            "libp2p": version("libp2p"),
            "sqlite": sqlite3.sqlite_version,
            "machine": platform.machine(),
            "cpu_count": os.cpu_count(),
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "processes": "one: both hosts in this process, one trio loop",
            "transport": "TCP + Noise + Yamux on 127.0.0.1, one connection",
            "store": "SQLite file in a temporary directory, WAL, synchronous=FULL",
            "plan": {
                "repeats": plan.repeats,
                "envelopes_per_repeat": plan.envelopes,
                "envelope_bytes": ENVELOPE_BYTES,
                "max_fetch": MAX_FETCH,
            },
            "baseline": (
                "bare libp2p protocol on the same connection: one new stream per"
                " 1 KiB framed request and 5-byte answer, as a deposit uses them"
            ),
        },
        **results,
        "targets_met": {"fetch_ack_1000": fetch_part["target_met"]},
        "all_targets_met": bool(fetch_part["target_met"]),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="smoke test: 2 repeats of 100")
    ap.add_argument("--repeats", type=int, default=None)
    args = ap.parse_args()
    plan = QUICK if args.quick else FULL
    if args.repeats is not None:
        plan = Plan(repeats=args.repeats, envelopes=plan.envelopes)
    started = time.perf_counter()
    result = trio.run(run, plan)
    result["elapsed_s"] = round(time.perf_counter() - started, 2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
