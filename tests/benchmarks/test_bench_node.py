"""``python -m benchmarks.bench_node --quick`` runs end to end and prints its JSON.

Only the shape of the output is checked, never a timing: the machine is shared.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: The quick run takes about 10 s on 2 vCPUs (importing libp2p twice included).
RUN_TIMEOUT_S = 45


def _run_quick() -> dict[str, object]:
    # A session of its own, so that node B (a grandchild) can be stopped with it.
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.bench_node", "--quick"],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=RUN_TIMEOUT_S)
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate(timeout=10)
    assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
    result = json.loads(out)
    assert isinstance(result, dict)
    return result


def test_quick_run_prints_every_figure() -> None:
    result = _run_quick()
    assert result["benchmark"] == "bench_node"
    for key in ("metadata", "throughput", "latency", "heads", "samples", "targets_met"):
        assert key in result
    throughput = result["throughput"]
    assert isinstance(throughput, dict)
    for key in ("committed_per_s", "receipts_per_s", "raw_stream_per_s", "ratio", "target_met"):
        assert key in throughput
    latency = result["latency"]
    assert isinstance(latency, dict)
    for key in ("p50_ms", "p99_ms", "receipt_p50_ms", "receipt_p99_ms", "target_met"):
        assert key in latency
    heads = result["heads"]
    assert isinstance(heads, dict)
    for key in ("head_to_all_nodes_ms", "one_hop_ms", "target_met"):
        assert key in heads
    rss = result["idle_rss"]
    assert isinstance(rss, dict)
    for key in ("daemon_mb", "bare_libp2p_host_mb", "ratio_to_bare_host", "target_met"):
        assert key in rss
    assert rss["daemon_mb"] > 0
    assert isinstance(result["all_targets_met"], bool)
    metadata = result["metadata"]
    assert isinstance(metadata, dict)
    assert "two" in str(metadata["processes"])
