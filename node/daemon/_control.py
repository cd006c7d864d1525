"""The control API: JSON lines over a UNIX socket in the node's data directory.

How it works
------------
A client connects to ``DIR/control.sock`` (mode 0600, in a 0700 directory:
only the node's user can talk to it) and writes one request per line::

    {"id": 1, "op": "send", "args": {"handle": "bob", "text": "hi"}}

The node answers each request with exactly one final line::

    {"id": 1, "ok": true, "result": {...}}
    {"id": 1, "ok": false, "error": "one line saying what went wrong"}

A streaming request (``"inbox"`` with ``"follow": true``) first sends any
number of ``{"id": 1, "event": {...}}`` lines and ends when the client
disconnects. Requests on one connection are answered in order.

Lines are bounded (:data:`MAX_LINE`); a longer line, invalid JSON or an
unknown op gets an error answer, never a crash. The client side
(:func:`call`, :func:`stream`) is synchronous, for short-lived CLI commands.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import trio

from chhaya import ChhayaError, TransportError

if TYPE_CHECKING:
    from trio_typing import TaskStatus

__all__ = [
    "MAX_LINE",
    "ControlServer",
    "Emit",
    "Handler",
    "call",
    "stream",
]

log = logging.getLogger("chhaya.control")

#: Longest request or answer line, newline included.
MAX_LINE: Final = 256 * 1024
#: Connections served at once.
MAX_CLIENTS: Final = 32

#: ``emit(event)`` sends one event line of a streaming request.
Emit = Callable[[dict[str, Any]], Awaitable[None]]
#: ``handler(op, args, emit)`` returns the result object or raises ChhayaError.
Handler = Callable[[str, dict[str, Any], Emit], Awaitable[dict[str, Any]]]


class _LineTooLong(Exception):
    pass


async def _lines(stream: trio.SocketStream) -> AsyncIterator[bytes]:
    buf = bytearray()
    while True:
        newline = buf.find(b"\n")
        if newline >= 0:
            line = bytes(buf[:newline])
            del buf[: newline + 1]
            yield line
            continue
        if len(buf) >= MAX_LINE:
            raise _LineTooLong
        chunk = await stream.receive_some(65536)
        if not chunk:
            return
        buf += chunk


def _encode(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode() + b"\n"


class ControlServer:
    """Serves the control API on ``path`` with ``handler``.

    Start with ``await nursery.start(server.serve)``; cancel to stop. The
    socket file is removed on exit.
    """

    def __init__(self, path: Path, handler: Handler) -> None:
        self._path = path
        self._handler = handler
        self._clients = 0

    async def serve(self, *, task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        if self._path.exists():
            if _is_live(self._path):
                raise TransportError(f"{self._path}: another node is serving this data directory")
            self._path.unlink()  # left over from a node that was killed
        sock = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
        old_umask = os.umask(0o177)  # the socket file is created 0600
        try:
            await sock.bind(str(self._path))
        except OSError as exc:
            sock.close()
            raise TransportError(f"{self._path}: cannot bind control socket: {exc}") from None
        finally:
            os.umask(old_umask)
        try:
            os.chmod(self._path, 0o600)
            sock.listen(MAX_CLIENTS)
            listener = trio.SocketListener(sock)
            async with trio.open_nursery() as nursery:
                task_status.started()
                while True:
                    client = await listener.accept()
                    if self._clients >= MAX_CLIENTS:
                        await client.aclose()
                        continue
                    nursery.start_soon(self._serve_client, client)
        finally:
            sock.close()
            with contextlib.suppress(OSError):
                self._path.unlink()

    async def _serve_client(self, client: trio.SocketStream) -> None:
        self._clients += 1
        try:
            async with client:
                try:
                    async for line in _lines(client):
                        if not await self._answer(client, line):
                            return
                except _LineTooLong:
                    answer = {"id": None, "ok": False, "error": "line too long"}
                    await client.send_all(_encode(answer))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            self._clients -= 1

    async def _answer(self, client: trio.SocketStream, line: bytes) -> bool:
        """Answer one request; False when the client went away."""
        request_id: Any = None
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise ValueError("a request is a JSON object")
            request_id = request.get("id")
            op, args = request.get("op"), request.get("args", {})
            if not isinstance(op, str) or not isinstance(args, dict):
                raise ValueError("a request needs a string 'op' and an object 'args'")
        except (ValueError, UnicodeDecodeError) as exc:
            await client.send_all(_encode({"id": request_id, "ok": False, "error": str(exc)}))
            return True

        async def emit(event: dict[str, Any]) -> None:
            await client.send_all(_encode({"id": request_id, "event": event}))

        try:
            result = await self._handler(op, args, emit)
        except ChhayaError as exc:
            answer = {"id": request_id, "ok": False, "error": str(exc)}
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return False
        except Exception as exc:  # a bug in one request must not stop the node
            log.exception("control request %r failed", op)
            answer = {"id": request_id, "ok": False, "error": f"internal error: {exc}"}
        else:
            answer = {"id": request_id, "ok": True, "result": result}
        await client.send_all(_encode(answer))
        return True


def _is_live(path: Path) -> bool:
    """True if something accepts connections on the UNIX socket at ``path``."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


# ------------------------------------------------------------------ client


def _connect(path: Path, timeout_s: float | None) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout_s)
    try:
        sock.connect(str(path))
    except OSError as exc:
        sock.close()
        if exc.errno in (errno.ENOENT, errno.ECONNREFUSED):
            raise TransportError(
                f"no node is running in {path.parent} (start one with "
                f"`chhaya run --data-dir {path.parent}`)"
            ) from None
        raise TransportError(f"cannot reach the node at {path}: {exc.strerror or exc}") from None
    return sock


def _read_lines(sock: socket.socket) -> Iterator[dict[str, Any]]:
    buf = bytearray()
    while True:
        newline = buf.find(b"\n")
        if newline >= 0:
            line = bytes(buf[:newline])
            del buf[: newline + 1]
            try:
                doc = json.loads(line)
            except ValueError:
                raise TransportError("the node answered something that is not JSON") from None
            if not isinstance(doc, dict):
                raise TransportError("the node answered something that is not a JSON object")
            yield doc
            continue
        if len(buf) > MAX_LINE:
            raise TransportError("the node's answer is too long")
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            raise TransportError("the node did not answer in time") from None
        except OSError as exc:
            raise TransportError(f"lost the node: {exc.strerror or exc}") from None
        if not chunk:
            raise TransportError("the node closed the control connection")
        buf += chunk


def _final(doc: dict[str, Any]) -> dict[str, Any]:
    if doc.get("ok") is True and isinstance(doc.get("result"), dict):
        result: dict[str, Any] = doc["result"]
        return result
    error = doc.get("error")
    raise TransportError(str(error) if error else "the node refused the request")


def call(
    path: Path, op: str, args: dict[str, Any] | None = None, timeout_s: float | None = 60.0
) -> dict[str, Any]:
    """Send one request and return its result; TransportError with the node's error."""
    with _connect(path, timeout_s) as sock:
        sock.sendall(_encode({"id": 1, "op": op, "args": args or {}}))
        for doc in _read_lines(sock):
            if "event" in doc:
                continue
            return _final(doc)
    raise TransportError("the node closed the control connection")  # pragma: no cover


def stream(path: Path, op: str, args: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
    """Send a streaming request and yield its events until the node ends it."""
    with _connect(path, None) as sock:
        sock.sendall(_encode({"id": 1, "op": op, "args": args or {}}))
        for doc in _read_lines(sock):
            event = doc.get("event")
            if isinstance(event, dict):
                yield event
                continue
            _final(doc)
            return
