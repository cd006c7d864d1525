"""The node's py-libp2p host: TCP, Noise only, Yamux only, no dialing on its own.

py-libp2p's defaults are unsafe for Chhaya (see ``libp2p-notes.md``):

- the default security list includes ``/plaintext/2.0.0``, so we pass a
  Noise-only ``sec_opt`` and check after construction that nothing else slipped in;
- without ``max_connections_per_peer=1`` every dial waits ~250 ms;
- the swarm's auto-connector dials every peer in the peerstore (up to 200 at
  a time) every 10-30 s, which leaks who we know; we replace it by one that
  never dials. Chhaya decides which peers to connect to.

Identify and ping stay on (they are BasicHost's default protocols), so other
libp2p implementations can identify and ping a Chhaya node.

The libp2p key pair is the *node* identity behind the peer ID. It is not the
user's Chhaya identity key; the directory binds one to the other.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import libp2p  # noqa: F401  (first: its import resets the "libp2p" logger, trap 10)
import multiaddr
import trio
from libp2p import new_host
from libp2p.abc import IHost
from libp2p.crypto.keys import KeyPair
from libp2p.crypto.x25519 import create_new_key_pair as create_x25519_key_pair
from libp2p.custom_types import TProtocol
from libp2p.network.auto_connector import AutoConnector
from libp2p.network.config import ConnectionConfig
from libp2p.network.swarm import Swarm
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_PROTOCOL_ID
from libp2p.stream_muxer.yamux.yamux import Yamux
from libp2p.transport.tcp.tcp import TCP

from chhaya import TransportError

__all__ = [
    "NOISE_PROTOCOL_ID",
    "YAMUX_PROTOCOL_ID",
    "build_host",
    "configure_libp2p_logging",
    "listen_addrs",
    "running_host",
]

log = logging.getLogger("chhaya.p2p")

#: Bound on shutting a host down (closing connections, listeners, identify tasks).
HOST_CLOSE_TIMEOUT_S = 5.0

_TCP_PROTOCOLS = {"ip4", "ip6", "dns", "dns4", "dns6", "tcp"}


def configure_libp2p_logging(level: int = logging.WARNING) -> None:
    """Route py-libp2p's log records into the application's logging tree.

    ``import libp2p`` detaches the ``libp2p`` logger (no handlers, no
    propagation), and ``libp2p.network.auto_connector`` pins itself to INFO.
    Unless ``LIBP2P_DEBUG`` asks for libp2p's own logging setup, make the
    ``libp2p`` tree propagate at ``level`` like any other library.
    """
    if os.environ.get("LIBP2P_DEBUG"):
        return
    root = logging.getLogger("libp2p")
    root.propagate = True
    root.setLevel(level)
    logging.getLogger("libp2p.network.auto_connector").setLevel(logging.NOTSET)


configure_libp2p_logging()


class _NoAutoConnector(AutoConnector):
    """An auto-connector that never dials: Chhaya chooses whom to connect to."""

    async def start(self) -> None:
        return None

    async def run_background_task(self, nursery: trio.Nursery) -> None:
        return None

    async def maybe_connect(self) -> None:
        return None


def _parse_tcp_addrs(addrs: Sequence[str]) -> list[multiaddr.Multiaddr]:
    parsed: list[multiaddr.Multiaddr] = []
    for text in addrs:
        try:
            maddr = multiaddr.Multiaddr(text)
            names = [p.name for p in maddr.protocols()]
        except Exception as exc:  # multiaddr raises several unrelated types
            raise TransportError(f"invalid listen address {text!r}: {exc}") from None
        if "tcp" not in names or not set(names) <= _TCP_PROTOCOLS:
            raise TransportError(f"unsupported listen address {text!r}: only TCP for now")
        parsed.append(maddr)
    return parsed


def _check_port_free(maddr: multiaddr.Multiaddr) -> None:
    """Refuse a fixed TCP port that something already listens on.

    py-libp2p binds its listeners with SO_REUSEPORT (for hole punching), so a
    second node on the same port would silently share, and split, the
    incoming connections. A probe bind without SO_REUSEPORT fails instead.
    """
    names = {p.name for p in maddr.protocols()}
    family = socket.AF_INET if "ip4" in names else socket.AF_INET6 if "ip6" in names else None
    port = int(maddr.value_for_protocol("tcp"))
    if family is None or port == 0:
        return  # DNS names are resolved by libp2p; port 0 is always free
    ip = maddr.value_for_protocol("ip4" if family == socket.AF_INET else "ip6")
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((ip, port))
        except OSError as exc:
            raise TransportError(f"cannot listen on {maddr}: {exc.strerror or exc}") from None


def build_host(
    key_pair: KeyPair,
    listen_addrs: Sequence[str] = (),
    *,
    connection_config: ConnectionConfig | None = None,
) -> IHost:
    """Create (but do not start) a TCP + Noise + Yamux host for ``key_pair``.

    ``listen_addrs`` are only validated here; :func:`running_host` binds them.
    """
    _parse_tcp_addrs(listen_addrs)
    noise = NoiseTransport(key_pair, noise_privkey=create_x25519_key_pair().private_key)
    host = new_host(
        key_pair=key_pair,
        sec_opt={TProtocol(NOISE_PROTOCOL_ID): noise},
        muxer_opt={TProtocol(YAMUX_PROTOCOL_ID): Yamux},
        transports=[TCP()],
        connection_config=connection_config or ConnectionConfig(max_connections_per_peer=1),
        enable_mDNS=False,
        enable_upnp=False,
        bootstrap=None,
    )
    swarm = host.get_network()
    if not isinstance(swarm, Swarm):  # pragma: no cover - new_host always builds a Swarm
        raise TypeError(f"unexpected libp2p network {type(swarm).__name__}")
    security = list(swarm.upgrader.security_multistream.transports)
    if security != [NOISE_PROTOCOL_ID]:  # never plaintext, whatever new_host did
        raise RuntimeError(f"libp2p host offers {security}, expected Noise only")
    swarm.auto_connector = _NoAutoConnector(
        swarm, auto_connect_interval=swarm.connection_config.auto_connect_interval
    )
    return host


def listen_addrs(host: IHost) -> list[str]:
    """The addresses actually bound (port 0 resolved), ending in ``/p2p/<peer id>``.

    Unlike ``host.get_addrs()`` this leaves out addresses that peers observed
    through identify. A wildcard (``0.0.0.0``) stays a wildcard.
    """
    return [f"{addr}/p2p/{host.get_id()}" for addr in host.get_transport_addrs()]


@asynccontextmanager
async def running_host(
    identity_key_pair: KeyPair,
    listen: Sequence[str],
    *,
    connection_config: ConnectionConfig | None = None,
) -> AsyncIterator[IHost]:
    """Run a host listening on ``listen`` for the duration of the block.

    Port 0 binds a free port; :func:`listen_addrs` gives the bound addresses.
    Raises :class:`TransportError` if any address cannot be bound (py-libp2p's
    ``BasicHost.run`` ignores listen failures). On exit every connection,
    listener and background identify task is closed.
    """
    maddrs = _parse_tcp_addrs(listen)
    for maddr in maddrs:
        _check_port_free(maddr)
    host = build_host(identity_key_pair, listen, connection_config=connection_config)
    async with host.run(listen_addrs=maddrs):
        try:
            bound = host.get_network().listeners
            failed = [str(m) for m in maddrs if str(m) not in bound]
            if failed:
                raise TransportError(f"cannot listen on {', '.join(failed)}")
            log.debug("libp2p host %s listening on %s", host.get_id(), listen_addrs(host))
            yield host
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(HOST_CLOSE_TIMEOUT_S):
                await host.close()
