"""Offline delivery end to end: a node that comes online with N messages waiting.

Run as ``python -m benchmarks.bench_offline [--quick] [--repeats R]``.
One JSON object goes to stdout; progress goes to stderr.

A :class:`node.demo_network.LocalNetwork` in a temporary directory: a 3-of-4
witness quorum, a directory and four user nodes (``chhaya run`` processes on
127.0.0.1, ``--mailbox-poll 1``): the sender ``ava``, the recipient ``bea``
and ``cyd``/``dax``, which only add DHT servers (mailbox peers). All four
register; ava sends bea a first message over a channel, so they share a
conversation. Then each repeat:

1. **down**: bea is stopped by its PID (SIGTERM).
2. **deposit**: ava is asked (control op ``send``, no ``wait``) to send
   ``n`` distinct texts to bea, from several threads at once. Each one is
   committed, sealed and deposited with bea's mailbox peers (first, ava's
   ``status`` must show its channel to bea gone; a send that still says
   ``"via": "channel"`` is counted in ``sent_via_mailbox``'s complement and
   reaches bea through ava's outbox). ``deposit_s`` is the wall time of those
   sends.
3. **catch-up**: bea's ``chhaya run`` is started again with the same data
   directory. ``start_to_all_s`` runs from just before the process is spawned
   until its inbox (control op ``inbox``, read incrementally by cursor every
   50 ms) holds all ``n`` texts; ``ready_to_all_s`` from its JSON ready line
   (when :meth:`ProcessGroup.start` returns) until then. The target is at most
   5 s for 1,000.
4. **exactly once**: after a few more fetch rounds and outbox retries
   (``SETTLE_S``), every text must be in bea's inbox exactly once; the run
   fails otherwise.

How the messages came in is read from bea's log (``ROOT/bea.log``): the node
logs ``took N messages from mailboxes`` after each fetch round; whatever is
left over came in over the channel ava's outbox re-opens (the retry of the
same message ids).

The baseline, in the same run, is :func:`benchmarks.bench_mailbox.run`'s
fetch+ack of the same number of envelopes: one mailbox peer, both hosts in one
process, no decryption, no directory look-ups, no commits. Values are medians
over the repeats; raw per-repeat values are under ``samples``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import trio

from benchmarks import bench_mailbox
from benchmarks._common import median, rounded, version
from node.demo_network import LocalNetwork

__all__ = ["main", "run"]

SENDER: Final = "ava"
RECIPIENT: Final = "bea"
EXTRA: Final = ("cyd", "dax")
POLL: Final = ["--mailbox-poll", "1"]
TARGET_1000_S: Final = 5.0
#: Threads driving ava's control API during the deposit phase.
SEND_THREADS: Final = 8
#: Bound on the catch-up of one repeat (a bound, not a target).
CATCH_UP_TIMEOUT_S: Final = 300.0
#: Bound on ava noticing that its channel to the stopped bea is gone.
LINK_GONE_TIMEOUT_S: Final = 15.0
#: Time left for duplicates to show up once all n have arrived.
SETTLE_S: Final = 4.0
TOOK_RE: Final = re.compile(r"took (\d+) messages from mailboxes")


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@dataclass
class Plan:
    repeats: int
    messages: int


FULL = Plan(repeats=3, messages=1000)
QUICK = Plan(repeats=1, messages=50)


def _send_all(net: LocalNetwork, texts: list[str]) -> list[dict[str, Any]]:
    """ava sends each text to bea (no ``wait``), from ``SEND_THREADS`` threads."""
    results: list[dict[str, Any]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker(chunk: list[str]) -> None:
        for text in chunk:
            try:
                r = net.call(SENDER, "send", {"handle": RECIPIENT, "text": text}, 120)
            except BaseException as exc:
                with lock:
                    errors.append(exc)
                return
            with lock:
                results.append(r)

    threads = [
        threading.Thread(target=worker, args=(texts[i::SEND_THREADS],)) for i in range(SEND_THREADS)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


def _inbox_after(net: LocalNetwork, cursor: int) -> list[dict[str, Any]]:
    """Every incoming message after ``cursor`` (the op answers a page at a time)."""
    out: list[dict[str, Any]] = []
    while True:
        page: list[dict[str, Any]] = net.call(RECIPIENT, "inbox", {"since": cursor}, 60)["messages"]
        if not page:
            return out
        out.extend(page)
        cursor = max(int(m["cursor"]) for m in page)


def _last_cursor(net: LocalNetwork) -> int:
    inbox = _inbox_after(net, 0)
    return max((int(m["cursor"]) for m in inbox), default=0)


def _took_from_log(log: Path, offset: int) -> tuple[int, int]:
    """(messages taken from mailboxes, fetch rounds that took any) logged after ``offset``."""
    with log.open("rb") as f:
        f.seek(offset)
        text = f.read().decode(errors="replace")
    counts = [int(m.group(1)) for m in TOOK_RE.finditer(text)]
    return sum(counts), len(counts)


def _repeat(net: LocalNetwork, repeat: int, n: int) -> dict[str, Any]:
    bea_log = net.root / f"{RECIPIENT}.log"
    cursor = _last_cursor(net)
    assert net.users[RECIPIENT].stop() == 0, "bea did not exit cleanly"
    # Let ava notice the channel is gone, or its first sends still go out on it.
    deadline = time.monotonic() + LINK_GONE_TIMEOUT_S
    while net.call(SENDER, "status")["channels"] and time.monotonic() < deadline:
        time.sleep(0.05)
    texts = [f"r{repeat} offline message {i}" for i in range(n)]
    start = time.perf_counter()
    sent = _send_all(net, texts)
    deposit_s = time.perf_counter() - start
    sent_via_mailbox = sum(1 for r in sent if r["via"] == "mailbox")

    log_offset = bea_log.stat().st_size
    wanted = set(texts)
    got: list[str] = []
    seen: set[str] = set()
    spawned = time.perf_counter()
    net.start_user(RECIPIENT, POLL)
    ready = time.perf_counter()
    read_cursor = cursor
    deadline = ready + CATCH_UP_TIMEOUT_S
    while True:
        for m in _inbox_after(net, read_cursor):
            read_cursor = max(read_cursor, int(m["cursor"]))
            got.append(str(m["text"]))
            seen.add(str(m["text"]))
        if wanted <= seen:
            break
        if time.perf_counter() > deadline:
            raise RuntimeError(f"only {len(wanted & seen)} of {n} messages arrived in time")
        time.sleep(0.05)
    done = time.perf_counter()

    time.sleep(SETTLE_S)
    final = [str(m["text"]) for m in _inbox_after(net, cursor)]
    counts = {t: 0 for t in texts}
    for t in final:
        if t not in counts:
            raise RuntimeError(f"an unexpected text in bea's inbox: {t!r}")
        counts[t] += 1
    duplicates = sum(c - 1 for c in counts.values() if c > 1)
    missing = sum(1 for c in counts.values() if c == 0)
    if duplicates or missing:
        raise RuntimeError(f"not exactly once: {duplicates} duplicates, {missing} missing")
    via_mailbox, rounds = _took_from_log(bea_log, log_offset)
    result = {
        "deposit_s": deposit_s,
        "sent_via_mailbox": sent_via_mailbox,
        "start_to_ready_s": ready - spawned,
        "start_to_all_s": done - spawned,
        "ready_to_all_s": done - ready,
        "received": len(final),
        "duplicates": duplicates,
        "via_mailbox": via_mailbox,
        "via_channel": max(0, n - via_mailbox),
        "fetch_rounds_with_messages": rounds,
    }
    _log(
        f"repeat {repeat + 1}: deposit {n} in {deposit_s:.2f} s; bea start->all"
        f" {done - spawned:.2f} s (ready {ready - spawned:.2f} s); via mailbox {via_mailbox}"
    )
    return result


def _measure(plan: Plan, root: Path) -> dict[str, Any]:
    net = LocalNetwork(root, _log)
    samples: list[dict[str, Any]] = []
    with net.group.running():
        net.start_witnesses()
        net.start_directory()
        handles = [SENDER, RECIPIENT, *EXTRA]
        for h in handles:
            net.start_user(h, POLL)
        net.register(handles)
        first = net.call(SENDER, "send", {"handle": RECIPIENT, "text": "hello", "wait": True})
        if first["status"] not in ("delivered", "read"):
            raise RuntimeError(f"the first message was not delivered: {first}")
        for repeat in range(plan.repeats):
            samples.append(_repeat(net, repeat, plan.messages))
    codes = [p.process.returncode for p in net.group.processes]
    if any(c != 0 for c in codes):
        raise RuntimeError(f"processes did not exit cleanly: {codes}")

    def col(key: str) -> list[float]:
        return [float(s[key]) for s in samples]

    return {
        "medians": {
            key: round(median(col(key)), 3)
            for key in ("deposit_s", "start_to_ready_s", "start_to_all_s", "ready_to_all_s")
        },
        "samples": {
            key: rounded(col(key), 3)
            for key in ("deposit_s", "start_to_ready_s", "start_to_all_s", "ready_to_all_s")
        }
        | {
            key: [int(s[key]) for s in samples]
            for key in (
                "sent_via_mailbox",
                "via_mailbox",
                "via_channel",
                "fetch_rounds_with_messages",
            )
        },
        "received": [int(s["received"]) for s in samples],
        "duplicates": sum(int(s["duplicates"]) for s in samples),
    }


def run(plan: Plan, root: Path | None = None) -> dict[str, Any]:
    """``root``: keep the network's files (logs included) there instead of a temp dir."""
    n = plan.messages
    if root is None:
        with tempfile.TemporaryDirectory(prefix="bench_offline-") as tmp:
            measured = _measure(plan, Path(tmp))
    else:
        root.mkdir(parents=True, exist_ok=False)
        measured = _measure(plan, root)
    _log(f"baseline: bench_mailbox fetch+ack of {n} envelopes, {plan.repeats} repeat(s)")
    baseline = trio.run(bench_mailbox.run, bench_mailbox.Plan(plan.repeats, n))
    fetch_part = baseline["fetch"]
    assert isinstance(fetch_part, dict)
    base_s = float(fetch_part["fetch_ack_s"])
    med = measured["medians"]
    start_to_all = float(med["start_to_all_s"])
    per_1000 = start_to_all * 1000 / n
    return {
        "benchmark": "bench_offline",
        "metadata": {
            "python": platform.python_version(),
            "libp2p": version("libp2p"),
            "machine": platform.machine(),
            "cpu_count": os.cpu_count(),
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "processes": (
                "LocalNetwork: 4 witnesses, 1 directory, 4 user nodes (ava sends, bea"
                " receives, cyd and dax add mailbox peers), each its own process"
            ),
            "transport": "TCP + Noise + Yamux on 127.0.0.1",
            "plan": {
                "repeats": plan.repeats,
                "messages_per_repeat": n,
                "send_threads": SEND_THREADS,
                "mailbox_poll_s": 1,
                "settle_s": SETTLE_S,
            },
            "baseline": (
                "benchmarks.bench_mailbox: protocol-level fetch+ack of the same number"
                " of 1 KiB envelopes from one mailbox peer, both hosts in one process"
            ),
        },
        "messages": n,
        "deposit": {
            "deposit_s": med["deposit_s"],
            "messages_per_s": round(n / float(med["deposit_s"]), 1),
        },
        "catch_up": {
            "start_to_ready_s": med["start_to_ready_s"],
            "start_to_all_s": start_to_all,
            "ready_to_all_s": med["ready_to_all_s"],
            "messages_per_s_after_ready": round(n / max(float(med["ready_to_all_s"]), 1e-9), 1),
            "start_to_all_1000_s": round(per_1000, 3),
            "target_1000_s": TARGET_1000_S,
            "target_met": per_1000 <= TARGET_1000_S,
            "extrapolated": n != 1000,
        },
        "exactly_once": {
            "received": measured["received"],
            "duplicates": measured["duplicates"],
            "ok": measured["duplicates"] == 0 and all(r == n for r in measured["received"]),
        },
        "baseline": {
            "fetch_ack_s": base_s,
            "ratio_start_to_all": round(start_to_all / base_s, 2) if base_s else None,
            "ratio_ready_to_all": round(float(med["ready_to_all_s"]) / base_s, 2)
            if base_s
            else None,
        },
        "samples": measured["samples"] | {"baseline_fetch_ack_s": fetch_part["fetch_ack_s"]},
        "targets_met": {"start_to_all_1000": per_1000 <= TARGET_1000_S},
        "all_targets_met": per_1000 <= TARGET_1000_S,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="smoke test: 1 repeat of 50")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--messages", type=int, default=None)
    ap.add_argument("--keep", type=Path, default=None, help="run in this new directory, kept")
    args = ap.parse_args()
    plan = QUICK if args.quick else FULL
    plan = Plan(
        repeats=plan.repeats if args.repeats is None else args.repeats,
        messages=plan.messages if args.messages is None else args.messages,
    )
    started = time.perf_counter()
    result = run(plan, args.keep)
    result["elapsed_s"] = round(time.perf_counter() - started, 2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
