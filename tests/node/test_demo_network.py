"""``chhaya demo``: the whole network as processes on 127.0.0.1 (the README's main job)."""

from __future__ import annotations

import json

import pytest

from .conftest import run_cli

pytestmark = pytest.mark.slow


def test_demo_json_delivers_every_message() -> None:
    r = run_cli("demo", "--json")
    assert r.rc == 0, r
    summary = json.loads(r.out.strip().splitlines()[-1])
    for key in ("nodes", "messages_sent", "messages_delivered", "proofs_verified",
                "epochs_certified", "elapsed_s"):  # fmt: skip
        assert key in summary
    assert summary["nodes"] == 8  # 4 witnesses, the directory, 3 users
    assert summary["messages_sent"] == 6
    assert summary["messages_delivered"] == summary["messages_sent"]
    assert summary["messages_received"] == summary["messages_sent"]
    assert summary["proofs_verified"] >= summary["messages_sent"]
    assert summary["epochs_certified"] >= 2  # genesis and the registrations
    assert summary["clean_exits"] == summary["nodes"]
    # The transcript went to stderr, so stdout is only the JSON line.
    assert len(r.out.strip().splitlines()) == 1
    assert "registered alice" in r.err


def test_demo_human_transcript_with_four_users() -> None:
    r = run_cli("demo", "--nodes", "4")
    assert r.rc == 0, r
    assert "12/12 messages delivered" in r.out
    assert "alice -> dave: delivered" in r.out
    assert "stopping every process (SIGTERM by PID)" in r.out
