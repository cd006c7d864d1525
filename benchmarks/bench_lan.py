"""mDNS on a LAN of network namespaces: from a node's start to a working chat.

Run as root: ``python -m benchmarks.bench_lan [--quick] [--repeats R]``.
One JSON object goes to stdout; progress goes to stderr. Where network
namespaces cannot be made (not root, no iproute2), the object is
``{"benchmark": "bench_lan", "skipped": REASON}`` and the exit status is 0.

The hosts are namespaces on one bridge (``tests.netns._netns.lan``): "infra",
"a" and "b", each with ``10.<n>.0.<i>/24`` and nothing else. Every Chhaya
process is a ``python -m node.cli ... --json`` started inside its namespace
and stopped by its PID; every namespace is deleted at the end.

Two scenarios, each run as **mdns** (the subject) and **baseline** (A is
given B's address: ``--bootstrap B_ADDR``, no ``--mdns``), alternating
baseline, mdns, baseline, mdns, ... within each repeat:

1. ``with_directory``: a 3-of-4 witness quorum and the directory on "infra";
   user B (``--mdns``) on "b" is started and registered once. Per measurement
   a fresh user A (new identity and handle) is registered beforehand (started
   plainly, registered, stopped), then started again on "a" with ``--mdns``
   (or ``--bootstrap B_ADDR``). Clock from A's process start (``Popen``) and
   from A's JSON ready line until (1) A's ``status`` shows B connected
   (direct) and then (2) A's ``send`` to B with ``wait`` returns "delivered".
   Both nodes also know the directory, so A could find B through the DHT;
   scenario 2 shows that discovery works by mDNS alone.
2. ``mdns_only``: no quorum, no directory, no bootstrap. B, then A, both with
   ``--mdns`` (baseline: neither has ``--mdns``; A gets ``--bootstrap
   B_ADDR``). Fresh data directories each time. Clock until A shows B
   connected and until B shows A connected.

``status`` is polled over each node's control socket every
``POLL_INTERVAL_S``, so the times are late by at most that much (plus one
call). Figures are medians over the repeats; a measurement that times out
counts as a failure (``failures``) and is left out of the median.

The target (≤ 3 s) is judged **from A's process start**: a node started with
``--mdns`` finds its peer while it is starting (zeroconf registration is part
of start-up), before its ready line, so the "from ready" figures are near
zero and would hide the cost of mDNS. ``mdns_startup_cost_s`` is how much
later the ready line comes with ``--mdns`` than with ``--bootstrap``.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from benchmarks._common import median, version
from chhaya import ChhayaError
from node.daemon import call, socket_path
from node.demo_network import LocalNetwork
from node.procs import NodeProcess, ProcessGroup
from tests.netns._netns import (
    Host,
    Lan,
    lan,
    netns_unavailable,
    session_tag,
    start_infra,
    start_user,
    sweep_leftovers,
    unregister,
)

__all__ = ["main", "run"]

now = time.monotonic

TARGET_S: Final = 3.0
#: How often ``status`` is polled while waiting for a connection.
POLL_INTERVAL_S: Final = 0.02
#: Bound on discovery (either way) before the measurement counts as failed.
DISCOVERY_TIMEOUT_S: Final = 30.0
#: Bound the node itself puts on the delivery wait of ``send``.
SEND_WAIT_S: Final = 30.0
HANDLE_B: Final = "bob"
KINDS: Final = ("baseline", "mdns")


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _status(data_dir: Path) -> dict[str, Any]:
    return call(socket_path(data_dir), "status", {}, 10.0)


def _connected(data_dir: Path, peer_id: str) -> bool:
    try:
        return bool(_status(data_dir)["connected"].get(peer_id) == "direct")
    except (ChhayaError, OSError):
        return False  # still starting


def _wait(check: Callable[[], bool], timeout_s: float = DISCOVERY_TIMEOUT_S) -> float | None:
    """The moment ``check`` first held, or None after ``timeout_s``."""
    deadline = now() + timeout_s
    while now() < deadline:
        if check():
            return now()
        time.sleep(POLL_INTERVAL_S)
    return None


def _since(end: float | None, start: float) -> float | None:
    return None if end is None else round(end - start, 4)


@dataclass(frozen=True)
class Plan:
    repeats: int


FULL = Plan(repeats=5)
QUICK = Plan(repeats=1)


# --------------------------------------------------------------------------- scenario 1


def _with_directory(net: Lan, root: Path, plan: Plan) -> dict[str, list[dict[str, Any]]]:
    samples: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
    chhaya = LocalNetwork(root, _log)
    with chhaya.group.running():
        start_infra(chhaya, net["infra"])
        bob = start_user(chhaya, HANDLE_B, net["b"], ["--mdns"])
        bob_id, bob_addr = str(bob.ready["peer_id"]), bob.address
        chhaya.register([HANDLE_B])
        for r in range(plan.repeats):
            for kind in KINDS:
                handle = f"alice{r}{kind[0]}"
                # Registered beforehand, so that the clock covers reach and chat only.
                start_user(chhaya, handle, net["a"])
                chhaya.register([handle])
                chhaya.users[handle].stop()
                extra = ["--mdns"] if kind == "mdns" else ["--bootstrap", bob_addr]
                started = now()
                node = start_user(chhaya, handle, net["a"], extra)
                ready = now()
                found = _wait(functools.partial(_connected, chhaya.user_dir(handle), bob_id))
                status = None
                delivered = None
                if found is not None:
                    result = chhaya.call(handle, "send", {
                        "handle": HANDLE_B, "text": f"over the LAN ({kind}, {r})",
                        "wait": True, "timeout_s": SEND_WAIT_S,
                    }, SEND_WAIT_S + 30)  # fmt: skip
                    status = str(result["status"])
                    if status in ("delivered", "read"):
                        delivered = now()
                code = node.stop()
                sample = {
                    "ready_s": _since(ready, started),
                    "connected_from_start_s": _since(found, started),
                    "connected_from_ready_s": _since(found, ready),
                    "delivered_from_start_s": _since(delivered, started),
                    "delivered_from_ready_s": _since(delivered, ready),
                    "send_status": status,
                    "exit_code": code,
                }
                samples[kind].append(sample)
                _log(f"with_directory {kind} repeat {r + 1}: {sample}")
    return samples


# --------------------------------------------------------------------------- scenario 2


def _both_connected(watch: list[tuple[str, Path, str]], seen: dict[str, float]) -> bool:
    """Note in ``seen`` when each node first shows the other connected; True once both do."""
    for who, data_dir, other in watch:
        if who not in seen and _connected(data_dir, other):
            seen[who] = now()
    return len(seen) == len(watch)


def _run_args(data_dir: Path, host: Host, extra: Sequence[str]) -> list[str]:
    return ["run", "--data-dir", str(data_dir), "--listen", host.listen(), "--json", *extra]


def _mdns_only(net: Lan, root: Path, plan: Plan) -> dict[str, list[dict[str, Any]]]:
    samples: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
    group = ProcessGroup(log_dir=root)
    with group.running():
        for r in range(plan.repeats):
            for kind in KINDS:
                a_dir, b_dir = root / f"{kind}{r}" / "a", root / f"{kind}{r}" / "b"
                mdns = ["--mdns"] if kind == "mdns" else []
                b = group.start(f"b-{kind}{r}", _run_args(b_dir, net["b"], mdns),
                                prefix=net["b"].prefix)  # fmt: skip
                extra = mdns or ["--bootstrap", b.address]
                started = now()
                a: NodeProcess = group.start(f"a-{kind}{r}", _run_args(a_dir, net["a"], extra),
                                             prefix=net["a"].prefix)  # fmt: skip
                ready = now()
                a_id, b_id = str(a.ready["peer_id"]), str(b.ready["peer_id"])
                seen: dict[str, float] = {}
                watch = [("a", a_dir, b_id), ("b", b_dir, a_id)]
                _wait(functools.partial(_both_connected, watch, seen))
                codes = [a.stop(), b.stop()]
                both_at = max(seen.values()) if len(seen) == 2 else None
                sample = {
                    "ready_s": _since(ready, started),
                    "a_sees_b_from_start_s": _since(seen.get("a"), started),
                    "a_sees_b_from_ready_s": _since(seen.get("a"), ready),
                    "b_sees_a_from_ready_s": _since(seen.get("b"), ready),
                    "both_from_start_s": _since(both_at, started),
                    "both_from_ready_s": _since(both_at, ready),
                    "exit_codes": codes,
                }
                samples[kind].append(sample)
                _log(f"mdns_only {kind} repeat {r + 1}: {sample}")
    return samples


# --------------------------------------------------------------------------- summary


def _summary(samples: list[dict[str, Any]], keys: Sequence[str], done: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in keys:
        values = [float(s[key]) for s in samples if s[key] is not None]
        out[key] = round(median(values), 4) if values else None
    out["failures"] = sum(1 for s in samples if s[done] is None)
    return out


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else round(a / b, 2)


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(a - b, 4)


_DIR_KEYS: Final = ("ready_s", "connected_from_start_s", "connected_from_ready_s",
                    "delivered_from_start_s", "delivered_from_ready_s")  # fmt: skip
_ONLY_KEYS: Final = ("ready_s", "a_sees_b_from_start_s", "a_sees_b_from_ready_s",
                     "b_sees_a_from_ready_s", "both_from_start_s", "both_from_ready_s")  # fmt: skip


def _ours_left() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    tag = f"chn-{session_tag()}-"
    return [line.split()[0] for line in out.stdout.splitlines() if line.startswith(tag)]


def run(plan: Plan) -> dict[str, Any]:
    sweep_leftovers()
    try:
        with tempfile.TemporaryDirectory(prefix="chhaya-bench-lan-") as tmp:
            root = Path(tmp)
            with lan(["infra", "a", "b"]) as net:
                hosts = {name: host.ip for name, host in net.hosts.items()}
                _log("scenario with_directory (quorum + directory on infra)")
                with_dir = _with_directory(net, root / "with_directory", plan)
                _log("scenario mdns_only (no directory, no bootstrap)")
                (root / "mdns_only").mkdir()
                only = _mdns_only(net, root / "mdns_only", plan)
    finally:
        sweep_leftovers()
        unregister()
    d_mdns = _summary(with_dir["mdns"], _DIR_KEYS, "delivered_from_ready_s")
    d_base = _summary(with_dir["baseline"], _DIR_KEYS, "delivered_from_ready_s")
    o_mdns = _summary(only["mdns"], _ONLY_KEYS, "both_from_ready_s")
    o_base = _summary(only["baseline"], _ONLY_KEYS, "both_from_ready_s")
    # Judged from A's process start: with --mdns the node finds B while starting,
    # before its ready line, so "from ready" would hide the mDNS start-up.
    chat = d_mdns["delivered_from_start_s"]
    discovery = o_mdns["both_from_start_s"]
    targets = {
        "chat_from_start": chat is not None and chat <= TARGET_S and d_mdns["failures"] == 0,
        "discovery_from_start": discovery is not None and discovery <= TARGET_S
        and o_mdns["failures"] == 0,
    }  # fmt: skip
    return {
        "benchmark": "bench_lan",
        "metadata": {
            "python": platform.python_version(),
            "libp2p": version("libp2p"),
            "zeroconf": version("zeroconf"),
            "kernel": platform.release(),
            "machine": platform.machine(),
            "cpu_count": os.cpu_count(),
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "hosts": hosts,
            "network": "one Linux bridge, one network namespace per host, no impairment",
            "processes": "python -m node.cli ... --json inside `ip netns exec`, stopped by PID",
            "clock": "time.monotonic; from A's Popen (from_start) or A's JSON ready line "
            "(from_ready)",
            "poll_interval_s": POLL_INTERVAL_S,
            "plan": {"repeats": plan.repeats, "order": "baseline, mdns per repeat"},
        },
        "with_directory": {
            "mdns": d_mdns,
            "baseline_bootstrap": d_base,
            "ratio_delivered_from_start": _ratio(chat, d_base["delivered_from_start_s"]),
            "mdns_startup_cost_s": _diff(d_mdns["ready_s"], d_base["ready_s"]),
            "target_s": TARGET_S,
            "target_met": targets["chat_from_start"],
        },
        "mdns_only": {
            "mdns": o_mdns,
            "baseline_bootstrap": o_base,
            "ratio_both_from_start": _ratio(discovery, o_base["both_from_start_s"]),
            "mdns_startup_cost_s": _diff(o_mdns["ready_s"], o_base["ready_s"]),
            "target_s": TARGET_S,
            "target_met": targets["discovery_from_start"],
        },
        "samples": {"with_directory": with_dir, "mdns_only": only},
        "targets_met": targets,
        "all_targets_met": all(targets.values()),
        "namespaces_left": _ours_left(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="smoke test: 1 repeat")
    ap.add_argument("--repeats", type=int, default=None)
    args = ap.parse_args()
    reason = netns_unavailable()
    if reason is not None:
        print(json.dumps({"benchmark": "bench_lan", "skipped": reason}, indent=2))
        return
    plan = QUICK if args.quick else FULL
    if args.repeats is not None:
        plan = Plan(repeats=args.repeats)
    started = time.perf_counter()
    result = run(plan)
    result["elapsed_s"] = round(time.perf_counter() - started, 2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
