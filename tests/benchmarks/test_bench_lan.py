"""``python -m benchmarks.bench_lan --quick`` runs in namespaces and prints its JSON.

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

import pytest

pytestmark = [pytest.mark.netns, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
#: The quick run takes about 35 s on 2 vCPUs (11 node processes, 4 registrations);
#: the whole test stays within pytest's 120 s timeout.
RUN_TIMEOUT_S = 100


def _run_quick() -> dict[str, object]:
    # A session of its own, so that the nodes (grandchildren) can be stopped with it.
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.bench_lan", "--quick"],
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
    assert result["benchmark"] == "bench_lan"
    if "skipped" in result:
        pytest.skip(str(result["skipped"]))
    for key in ("metadata", "with_directory", "mdns_only", "samples", "targets_met"):
        assert key in result
    with_dir = result["with_directory"]
    assert isinstance(with_dir, dict)
    for variant in ("mdns", "baseline_bootstrap"):
        for key in ("ready_s", "connected_from_start_s", "connected_from_ready_s",
                    "delivered_from_start_s", "delivered_from_ready_s", "failures"):  # fmt: skip
            assert key in with_dir[variant]
    for key in ("ratio_delivered_from_start", "mdns_startup_cost_s", "target_s", "target_met"):
        assert key in with_dir
    only = result["mdns_only"]
    assert isinstance(only, dict)
    for variant in ("mdns", "baseline_bootstrap"):
        for key in ("ready_s", "a_sees_b_from_start_s", "a_sees_b_from_ready_s",
                    "b_sees_a_from_ready_s", "both_from_start_s", "both_from_ready_s",
                    "failures"):  # fmt: skip
            assert key in only[variant]
    for key in ("ratio_both_from_start", "mdns_startup_cost_s", "target_s", "target_met"):
        assert key in only
    assert isinstance(result["all_targets_met"], bool)
    assert result["namespaces_left"] == []
