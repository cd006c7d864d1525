"""``python -m benchmarks.bench_cover --quick`` runs and prints its JSON (no timing checked)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_quick_run_prints_the_cover_cost() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_cover", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert result["benchmark"] == "bench_cover"
    # Cover and real envelopes are the same size; so is their cost on the wire.
    assert result["envelope_bytes"]["cover"] == result["envelope_bytes"]["real"]
    assert result["cover_wire_bytes_per_envelope"] > result["envelope_bytes"]["cover"]
    assert result["envelopes_received"] == 2 * 20 * 2
    for key in ("bytes_per_minute", "kib_per_hour", "mib_per_day"):
        assert key in result["cost_at_default_rate"]
