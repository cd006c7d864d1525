"""The user node (`chhaya run`) under faults, with real processes on 127.0.0.1.

One quorum and directory serve the whole module; each test starts its own
user nodes (handles of its own) and stops them by PID. Processes are killed
with SIGKILL mid-conversation, databases are corrupted or locked, a second
daemon is started on the same data directory, and the CLI clients are run
as subprocesses against live and absent nodes.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chhaya import TransportError
from node.daemon import socket_path
from node.demo_network import LocalNetwork
from node.procs import LOOPBACK_LISTEN

from ._network import history, network, open_readonly, stop_users, wait_for
from .conftest import assert_one_line_error, run_cli

MESSAGES = 30


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNetwork]:
    yield from network(tmp_path_factory.mktemp("net"))


def _start_registered(net: LocalNetwork, *handles: str) -> None:
    for handle in handles:
        net.start_user(handle)
    net.register(handles)


def _send(net: LocalNetwork, sender: str, to: str, text: str, wait: bool = False) -> str:
    args = {"handle": to, "text": text, "wait": wait, "timeout_s": 30}
    result = net.call(sender, "send", args, 90)
    return str(result["message_id"])


def _all_delivered(net: LocalNetwork, sender: str, to: str, ids: set[str]) -> bool:
    status = {m["message_id"]: m["status"] for m in history(net, sender, to)}
    return all(status.get(i) in ("delivered", "read") for i in ids)


def _inbox_texts(net: LocalNetwork, handle: str) -> list[str]:
    return [str(m["text"]) for m in net.call(handle, "inbox")["messages"]]


def _check_logstore(path: Path) -> None:
    """Every message id once; per peer, session versions 1..n and each used by one message."""
    with open_readonly(path) as db:
        ids = [row[0] for row in db.execute("SELECT id FROM messages")]
        assert len(ids) == len(set(ids))
        for (peer,) in db.execute("SELECT DISTINCT peer FROM sessions").fetchall():
            rows = db.execute(
                "SELECT version, created_ms FROM sessions WHERE peer = ? ORDER BY version", (peer,)
            ).fetchall()
            assert [v for v, _ in rows] == list(range(1, len(rows) + 1))
            assert [t for _, t in rows] == sorted(t for _, t in rows)
            used = [
                row[0]
                for row in db.execute(
                    "SELECT session_version FROM messages WHERE peer = ? ORDER BY rowid", (peer,)
                )
            ]
            assert used == sorted(set(used)), "two messages committed under one session version"


# ------------------------------------------------------------------ SIGKILL


def test_sigkill_receiver_and_sender_mid_conversation(net: LocalNetwork) -> None:
    _start_registered(net, "kalice", "kbob")
    accepted: dict[str, str] = {}  # text -> message id
    failed: list[str] = []
    attempts = threading.Semaphore(0)

    def sender() -> None:  # sends without waiting while the main thread kills kbob
        for i in range(MESSAGES):
            text = f"message {i}"
            try:
                accepted[text] = _send(net, "kalice", "kbob", text)
            except TransportError:
                failed.append(text)
            attempts.release()

    thread = threading.Thread(target=sender)
    thread.start()
    try:
        for i in range(MESSAGES):
            assert attempts.acquire(timeout=60)
            if i == MESSAGES // 3:
                net.users["kbob"].kill()
            if i == MESSAGES // 2:
                net.start_user("kbob")  # same data directory
    finally:
        thread.join(60)
    assert not thread.is_alive()
    assert len(accepted) >= MESSAGES // 3

    def resumed() -> bool:  # the restarted receiver is reachable again (bounded)
        text = f"resumed {len(failed)}"
        try:
            accepted[text] = _send(net, "kalice", "kbob", text)
        except TransportError:
            failed.append(text)
            return False
        return True

    wait_for("the conversation to resume", resumed, 30)
    wait_for(
        "every accepted message to be delivered",
        lambda: _all_delivered(net, "kalice", "kbob", set(accepted.values())),
        60,
    )
    inbox = _inbox_texts(net, "kbob")
    for text in accepted:
        assert inbox.count(text) == 1, text
    for text in failed:
        assert inbox.count(text) <= 1, text

    # SIGKILL the sender right after a send returned: its outbox still delivers it once.
    last = _send(net, "kalice", "kbob", "after the sender died")
    net.users["kalice"].kill()
    net.start_user("kalice")
    wait_for("the outbox to deliver", lambda: _all_delivered(net, "kalice", "kbob", {last}), 60)
    assert _inbox_texts(net, "kbob").count("after the sender died") == 1

    # The same while the receiver is frozen (SIGSTOP), so that the ciphertext is
    # committed and on the wire but surely not acknowledged when the sender dies.
    bob = net.users["kbob"]
    os.kill(bob.pid, signal.SIGSTOP)
    try:
        frozen = _send(net, "kalice", "kbob", "while the receiver was frozen")
        net.users["kalice"].kill()
    finally:
        os.kill(bob.pid, signal.SIGCONT)
    net.start_user("kalice")
    wait_for("the outbox to deliver", lambda: _all_delivered(net, "kalice", "kbob", {frozen}), 60)
    assert _inbox_texts(net, "kbob").count("while the receiver was frozen") == 1

    stop_users(net, "kalice", "kbob")
    _check_logstore(net.user_dir("kbob") / "chhaya.sqlite")
    _check_logstore(net.user_dir("kalice") / "chhaya.sqlite")


# ------------------------------------------------------------------ databases


def test_corrupt_database_fails_in_one_line(tmp_path: Path) -> None:
    data = tmp_path / "node"
    data.mkdir(mode=0o700)
    garbage = bytes(range(256)) * 40
    db = data / "chhaya.sqlite"
    db.write_bytes(garbage)
    r = run_cli("run", "--data-dir", str(data), "--listen", LOOPBACK_LISTEN)
    assert_one_line_error(r, "chhaya.sqlite", "corrupt")
    assert db.read_bytes() == garbage


def test_locked_database(net: LocalNetwork) -> None:
    """Another process holds an EXCLUSIVE lock on a node's logstore.

    The node still starts (in WAL mode readers are not blocked), a write fails
    with a one-line "locked" error after the busy timeout instead of hanging,
    a message sent to it stays queued at the sender, and once the lock is
    released it is delivered exactly once."""
    _start_registered(net, "lalice", "lbob")
    _send(net, "lalice", "lbob", "before the lock", wait=True)
    _send(net, "lbob", "lalice", "reply before the lock", wait=True)
    stop_users(net, "lbob")
    locker = sqlite3.connect(net.user_dir("lbob") / "chhaya.sqlite", isolation_level=None)
    try:
        locker.execute("BEGIN EXCLUSIVE")
        net.start_user("lbob")
        with pytest.raises(TransportError, match="database is locked by another process") as exc:
            _send(net, "lbob", "lalice", "while locked")
        assert "\n" not in str(exc.value)
        pending = _send(net, "lalice", "lbob", "to a locked node")
        assert "to a locked node" not in _inbox_texts(net, "lbob")
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    wait_for("delivery after the lock", lambda: _all_delivered(net, "lalice", "lbob", {pending}))
    assert _inbox_texts(net, "lbob").count("to a locked node") == 1
    reply = _send(net, "lbob", "lalice", "unlocked now", wait=True)
    assert _all_delivered(net, "lbob", "lalice", {reply})
    assert "while locked" not in _inbox_texts(net, "lalice")
    stop_users(net, "lalice", "lbob")
    _check_logstore(net.user_dir("lbob") / "chhaya.sqlite")


def test_second_daemon_on_the_same_data_dir_is_refused(net: LocalNetwork) -> None:
    first = net.start_user("twice")
    r = run_cli(*net.user_args("twice"))
    assert_one_line_error(r, "another node is serving this data directory")
    assert first.process.poll() is None
    status = net.call("twice", "status")
    assert status["peer_id"] == first.ready["peer_id"]
    stop_users(net, "twice")


# ------------------------------------------------------------------ CLI clients


def _cli(net: LocalNetwork, handle: str, *args: str) -> Any:
    return run_cli(*args[:1], "--data-dir", str(net.user_dir(handle)), *args[1:])


def test_cli_clients(net: LocalNetwork, tmp_path: Path) -> None:
    r = run_cli("send", "--data-dir", str(tmp_path / "nobody"), "cbob", "hi")
    assert_one_line_error(r, "no node is running")

    _start_registered(net, "calice", "cbob")
    net.start_user("cthief")
    r = _cli(net, "cthief", "register", "calice")
    assert_one_line_error(r, "belongs to another identity")

    bob_fp = str(net.call("cbob", "status")["fingerprint"])
    wrong = "".join("1" if ch == "0" else "0" if ch.isdigit() else ch for ch in bob_fp)
    r = run_cli(
        "contacts", "add", "--data-dir", str(net.user_dir("calice")), "cbob", "--fingerprint", wrong
    )
    assert_one_line_error(r, "does not match")
    r = run_cli("contacts", "add", "--data-dir", str(net.user_dir("calice")), "cbob")
    assert r.rc == 0, r
    assert "cbob  (not verified)" in r.out
    r = run_cli("contacts", "verify", "--data-dir", str(net.user_dir("calice")), "cbob", wrong)
    assert_one_line_error(r, "does not match")
    r = run_cli("contacts", "verify", "--data-dir", str(net.user_dir("calice")), "cbob", bob_fp)
    assert r.rc == 0, r
    assert "cbob  (verified)" in r.out
    r = run_cli("contacts", "list", "--data-dir", str(net.user_dir("calice")), "--json")
    assert r.rc == 0, r
    assert '"verified": true' in r.out

    r = _cli(net, "calice", "send", "cbob", "hello over the cli", "--wait")
    assert r.rc == 0, r
    assert r.out.startswith("delivered: ")
    r = _cli(net, "cbob", "inbox", "--json")
    assert r.rc == 0, r
    docs = [json.loads(line) for line in r.out.splitlines()]
    assert [(d["from"], d["text"]) for d in docs] == [("calice", "hello over the cli")]
    stop_users(net, "calice", "cbob", "cthief")


# ------------------------------------------------------------------ shutdown


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_cleanly(net: LocalNetwork, sig: signal.Signals) -> None:
    handle = f"quit{sig.name.lower()}"
    node = net.start_user(handle)
    sock = socket_path(net.user_dir(handle))
    assert sock.exists()
    assert net.call(handle, "status")["peer_id"] == node.ready["peer_id"]
    assert node.stop(sig) == 0
    assert not sock.exists()
