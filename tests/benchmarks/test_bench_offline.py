"""``python -m benchmarks.bench_offline --quick`` runs end to end and prints its JSON.

Only the shape of the output and exactly-once delivery are checked, never a
timing: the machine is shared.
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

ROOT = Path(__file__).resolve().parents[2]
#: The quick run (a whole LocalNetwork, 50 messages) takes about 20 s on 2 vCPUs.
RUN_TIMEOUT_S = 90

pytestmark = pytest.mark.slow


def _run_quick() -> dict[str, object]:
    # A session of its own, so that the network's nodes (grandchildren) go with it.
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.bench_offline", "--quick"],
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


def test_quick_run_prints_every_figure_and_delivers_exactly_once() -> None:
    result = _run_quick()
    assert result["benchmark"] == "bench_offline"
    for key in ("metadata", "messages", "deposit", "catch_up", "exactly_once", "baseline",
                "samples", "targets_met", "all_targets_met"):  # fmt: skip
        assert key in result
    n = result["messages"]
    assert n == 50
    catch_up = result["catch_up"]
    assert isinstance(catch_up, dict)
    for key in ("start_to_ready_s", "start_to_all_s", "ready_to_all_s", "start_to_all_1000_s",
                "target_1000_s", "target_met"):  # fmt: skip
        assert key in catch_up
    deposit = result["deposit"]
    assert isinstance(deposit, dict)
    assert "deposit_s" in deposit
    baseline = result["baseline"]
    assert isinstance(baseline, dict)
    for key in ("fetch_ack_s", "ratio_start_to_all", "ratio_ready_to_all"):
        assert key in baseline
    once = result["exactly_once"]
    assert isinstance(once, dict)
    assert once["received"] == [n]
    assert once["duplicates"] == 0
    assert once["ok"] is True
    samples = result["samples"]
    assert isinstance(samples, dict)
    assert samples["via_mailbox"][0] + samples["via_channel"][0] == n
    assert isinstance(result["all_targets_met"], bool)
