"""The control API server (``node.daemon.ControlServer``) over a real UNIX
socket, with a trivial handler and the synchronous client (``node.daemon.call``)
run in a worker thread."""

from __future__ import annotations

import json
import os
import socket
import stat
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio

from chhaya import ChhayaError, TransportError
from node.daemon import MAX_LINE, ControlServer, call
from node.daemon._control import Emit

TEST_TIMEOUT_S = 30


async def handler(op: str, args: dict[str, Any], emit: Emit) -> dict[str, Any]:
    if op == "refuse":
        raise ChhayaError("handle 'bob' is not registered")
    if op == "crash":
        raise RuntimeError("a bug")
    if op == "events":
        await emit({"n": 1})
        await emit({"n": 2})
    return {"op": op, "args": args}


@asynccontextmanager
async def serving(path: Path) -> AsyncIterator[None]:
    """A ControlServer on ``path`` for the body of the block, then cancelled."""
    with trio.fail_after(TEST_TIMEOUT_S):
        async with trio.open_nursery() as nursery:
            await nursery.start(ControlServer(path, handler).serve)
            yield
            nursery.cancel_scope.cancel()


async def call_async(path: Path, op: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
    return await trio.to_thread.run_sync(lambda: call(path, op, args, 10.0))


def _exchange(path: Path, data: bytes, answers: int) -> list[dict[str, Any]]:
    """Send ``data`` on one connection and read ``answers`` lines (fewer if closed)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10.0)
        sock.connect(str(path))
        sock.sendall(data)
        buf = b""
        while buf.count(b"\n") < answers:
            chunk = sock.recv(65536)
            if not chunk:
                break
            buf += chunk
    docs = [json.loads(line) for line in buf.splitlines()]
    assert all(isinstance(d, dict) for d in docs)
    return docs


async def exchange(path: Path, data: bytes, answers: int = 1) -> list[dict[str, Any]]:
    return await trio.to_thread.run_sync(lambda: _exchange(path, data, answers))


def sock_path(tmp_path: Path) -> Path:
    return tmp_path / "c.sock"


async def test_valid_request(tmp_path: Path) -> None:
    path = sock_path(tmp_path)
    async with serving(path):
        assert await call_async(path, "status", {"x": [1, "two"]}) == {
            "op": "status",
            "args": {"x": [1, "two"]},
        }
        [answer] = await exchange(path, b'{"id": 7, "op": "ping"}\n')
        assert answer == {"id": 7, "ok": True, "result": {"op": "ping", "args": {}}}
        # events come first, then the final answer, which is all `call` returns
        docs = await exchange(path, b'{"id": 8, "op": "events"}\n', answers=3)
        assert docs == [
            {"id": 8, "event": {"n": 1}},
            {"id": 8, "event": {"n": 2}},
            {"id": 8, "ok": True, "result": {"op": "events", "args": {}}},
        ]
        assert await call_async(path, "events") == {"op": "events", "args": {}}


@pytest.mark.parametrize(
    "line",
    [
        b"this is not json",
        b'{"id": 1, "op": "ping"',
        b"\xff\xfe",
        b"[1, 2, 3]",
        b'"a string"',
        b"42",
        b'{"id": 1}',
        b'{"id": 1, "op": 5}',
        b'{"id": 1, "op": "ping", "args": [1]}',
        b"",
    ],
)
async def test_malformed_request_gets_one_error_line(tmp_path: Path, line: bytes) -> None:
    path = sock_path(tmp_path)
    async with serving(path):
        # one error line, and the same connection still answers the next request
        docs = await exchange(path, line + b'\n{"id": 2, "op": "ping"}\n', answers=2)
        assert len(docs) == 2
        error, ok = docs
        assert error["ok"] is False
        assert isinstance(error["error"], str)
        assert error["error"]
        assert "result" not in error
        assert ok == {"id": 2, "ok": True, "result": {"op": "ping", "args": {}}}
        # and other clients are served
        assert await call_async(path, "ping") == {"op": "ping", "args": {}}


async def test_request_id_is_echoed_on_errors(tmp_path: Path) -> None:
    path = sock_path(tmp_path)
    async with serving(path):
        [answer] = await exchange(path, b'{"id": "abc", "op": 1}\n')
        assert answer["id"] == "abc"
        assert answer["ok"] is False


async def test_over_long_line_does_not_stop_the_server(tmp_path: Path) -> None:
    path = sock_path(tmp_path)
    async with serving(path):
        docs = await exchange(path, b"a" * MAX_LINE, answers=1)
        assert all(d.get("ok") is False for d in docs)  # the connection is closed
        long_request = b'{"id": 1, "op": "ping", "args": {"x": "' + b"y" * MAX_LINE
        await exchange(path, long_request[:MAX_LINE], answers=1)
        assert await call_async(path, "ping") == {"op": "ping", "args": {}}


# ControlServer._serve_client catches _LineTooLong outside ``async with client``,
# so the client is already closed when it tries to send the error line, and
# the ClosedResourceError that raises is suppressed: the client only sees EOF.
async def test_over_long_line_gets_an_error_line(tmp_path: Path) -> None:
    path = sock_path(tmp_path)
    async with serving(path):
        docs = await exchange(path, b"a" * MAX_LINE, answers=1)
        assert docs == [{"id": None, "ok": False, "error": "line too long"}]


async def test_a_line_just_under_the_limit_is_served(tmp_path: Path) -> None:
    path = sock_path(tmp_path)
    async with serving(path):
        prefix, suffix = b'{"id": 1, "op": "ping", "args": {"x": "', b'"}}'
        padding = MAX_LINE - 1 - len(prefix) - len(suffix)
        [answer] = await exchange(path, prefix + b"y" * padding + suffix + b"\n")
        assert answer["ok"] is True
        assert len(answer["result"]["args"]["x"]) == padding


async def test_handler_errors(tmp_path: Path) -> None:
    path = sock_path(tmp_path)
    async with serving(path):
        with pytest.raises(TransportError, match="handle 'bob' is not registered"):
            await call_async(path, "refuse")
        [answer] = await exchange(path, b'{"id": 3, "op": "refuse"}\n')
        assert answer == {"id": 3, "ok": False, "error": "handle 'bob' is not registered"}
        [answer] = await exchange(path, b'{"id": 4, "op": "crash"}\n')
        assert answer == {"id": 4, "ok": False, "error": "internal error: a bug"}
        assert await call_async(path, "ping") == {"op": "ping", "args": {}}


async def test_socket_mode_and_removal(tmp_path: Path) -> None:
    path = sock_path(tmp_path)
    async with serving(path):
        mode = path.stat().st_mode
        assert stat.S_ISSOCK(mode)
        assert stat.S_IMODE(mode) == 0o600
    assert not path.exists()
    with pytest.raises(TransportError, match="no node is running"):
        await call_async(path, "ping")


async def test_second_server_on_the_same_path_is_refused(tmp_path: Path) -> None:
    path = sock_path(tmp_path)
    async with serving(path):
        with pytest.raises(TransportError, match="another node"):
            await ControlServer(path, handler).serve()
        assert path.exists()
        assert await call_async(path, "ping") == {"op": "ping", "args": {}}


async def test_stale_socket_file_is_replaced(tmp_path: Path) -> None:
    path = sock_path(tmp_path)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()  # a node killed without cleaning up leaves the file behind
    assert path.exists()
    async with serving(path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert await call_async(path, "ping") == {"op": "ping", "args": {}}
    assert not path.exists()


async def test_umask_is_restored(tmp_path: Path) -> None:
    before = os.umask(0o022)
    os.umask(before)
    async with serving(sock_path(tmp_path)):
        now = os.umask(before)
        assert now == before
