"""Prometheus metrics of one node, served only with ``--metrics HOST:PORT``.

Each node has its own registry (not the process-wide default), so tests can
run several nodes in one process. Labels are bounded: a failure reason is a
short check name from :class:`~chhaya.VerificationError` or an exception
class name, never peer-controlled text.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from chhaya import TransportError

__all__ = ["NodeMetrics", "parse_host_port", "serve_metrics"]

_LATENCY_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class NodeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.peers = Gauge("chhaya_peers", "Connected libp2p peers.", registry=r)
        self.channels = Gauge("chhaya_channels", "Open Chhaya channels.", registry=r)
        self.messages_sent = Counter(
            "chhaya_messages_sent", "Texts committed and sent (first sends).", registry=r
        )
        self.messages_delivered = Counter(
            "chhaya_messages_delivered", "Sent texts the peer acknowledged.", registry=r
        )
        self.messages_received = Counter(
            "chhaya_messages_received", "Texts received and stored.", registry=r
        )
        self.messages_failed = Counter(
            "chhaya_messages_failed", "Texts that could not be sent.", ["reason"], registry=r
        )
        self.handshake_failures = Counter(
            "chhaya_handshake_failures",
            "Channel handshakes or introductions that failed.",
            ["reason"],
            registry=r,
        )
        self.proofs_verified = Counter(
            "chhaya_proofs_verified", "Directory proofs that verified.", registry=r
        )
        self.proof_failures = Counter(
            "chhaya_proof_verification_failures",
            "Directory proofs refused.",
            ["reason"],
            registry=r,
        )
        self.delivery_latency = Histogram(
            "chhaya_delivery_latency_seconds",
            "From send to the peer's delivery receipt.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.lookup_latency = Histogram(
            "chhaya_lookup_latency_seconds",
            "Fetching and verifying one directory lookup.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.cover_sent = Counter(
            "chhaya_cover_envelopes_sent", "Cover envelopes sent.", registry=r
        )
        self.epochs_certified = Counter(
            "chhaya_epochs_certified", "Epochs certified (directory) or heads accepted.", registry=r
        )


def parse_host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise TransportError(f"invalid metrics address {text!r}: use HOST:PORT")
    return host.strip("[]"), int(port)


@contextlib.contextmanager
def serve_metrics(metrics: NodeMetrics, address: str) -> Iterator[tuple[str, int]]:
    """Serve ``/metrics`` on ``address`` (HOST:PORT, port 0 picks one) for the block.

    prometheus-client serves from its own thread; it only reads the registry.
    Yields the bound (host, port).
    """
    host, port = parse_host_port(address)
    try:
        server, thread = start_http_server(port, addr=host, registry=metrics.registry)
    except OSError as exc:
        raise TransportError(f"cannot serve metrics on {address}: {exc.strerror or exc}") from None
    try:
        yield host, server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        if isinstance(thread, threading.Thread):
            thread.join(timeout=5)
