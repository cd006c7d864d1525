"""Running a node process: signals, metrics, the ready line.

Each role (user node, directory, witness) runs until SIGINT or SIGTERM, then
stops its services and closes its host and databases within a bound. Once
it listens it prints one "ready" line; with ``--json`` that line is a JSON
object (``{"event": "ready", "role": ..., "peer_id": ..., "addresses": [...]}``),
which the multi-process demo reads.
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Protocol

import trio

from ._metrics import NodeMetrics, serve_metrics

__all__ = ["Stoppable", "announce", "run_until_signal"]

log = logging.getLogger("chhaya.daemon")

#: Bound on a clean shutdown after a signal.
SHUTDOWN_TIMEOUT_S = 10.0


class Stoppable(Protocol):
    def stop(self) -> None: ...


def announce(say: Callable[[str], None], as_json: bool, doc: dict[str, Any], text: str) -> None:
    say(json.dumps({"event": "ready", **doc}) if as_json else text)


async def _watch_signals(node: Stoppable, cancel: trio.CancelScope) -> None:
    """Stop the node on the first SIGINT/SIGTERM; keep catching signals until exit.

    The receiver stays open while the node shuts down, so that a second
    signal does not kill the process half way through closing its databases;
    the shutdown is bounded by :data:`SHUTDOWN_TIMEOUT_S` instead.
    """
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            if cancel.deadline == float("inf"):
                log.info("received %s: stopping", signal.Signals(signum).name)
                node.stop()
                cancel.deadline = trio.current_time() + SHUTDOWN_TIMEOUT_S
            else:
                log.info("received %s again: already stopping", signal.Signals(signum).name)


@contextlib.contextmanager
def _maybe_metrics(metrics: NodeMetrics, address: str | None) -> Iterator[str | None]:
    if address is None:
        yield None
        return
    with serve_metrics(metrics, address) as (host, port):
        yield f"http://{host}:{port}/metrics"


async def run_until_signal(
    start: Callable[[trio.Nursery], Awaitable[Stoppable]],
    on_ready: Callable[[Stoppable, str | None], None],
    metrics: NodeMetrics,
    metrics_address: str | None,
) -> None:
    """Start a node with ``start(nursery)``; run it until a signal, then stop it."""
    with _maybe_metrics(metrics, metrics_address) as metrics_url, trio.CancelScope() as scope:
        async with trio.open_nursery() as nursery:
            node = await start(nursery)
            nursery.start_soon(_watch_signals, node, scope)
            on_ready(node, metrics_url)
            # The node's own task ends once it has stopped; then stop watching.
            await _wait_for_node(nursery)


async def _wait_for_node(nursery: trio.Nursery) -> None:
    # The nursery holds the node task and the signal watcher; when the node
    # task is the only one left to finish, cancel the watcher.
    while len(nursery.child_tasks) > 1:
        await trio.sleep(0.1)
    nursery.cancel_scope.cancel()
