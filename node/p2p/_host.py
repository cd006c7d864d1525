"""The node's py-libp2p host: TCP (Noise, Yamux) and opt-in QUIC, no dialing on its own.

py-libp2p's defaults are unsafe for Chhaya (see ``libp2p-notes.md``):

- the default security list includes ``/plaintext/2.0.0``, so we pass a
  Noise-only ``sec_opt`` and check after construction that nothing else slipped in;
  the transports are checked too: TCP, plus QUIC only when asked for;
- without ``max_connections_per_peer=1`` every dial waits ~250 ms;
- the swarm's auto-connector dials every peer in the peerstore (up to 200 at
  a time) every 10-30 s, which leaks who we know; we replace it by one that
  never dials. Chhaya decides which peers to connect to.

Identify and ping stay on (they are BasicHost's default protocols), so other
libp2p implementations can identify and ping a Chhaya node.

QUIC (``/ip4|ip6/.../udp/PORT/quic-v1``, opt-in with ``enable_quic=True``)
does not go through the connection upgrader, so it has neither Noise nor
Yamux: it brings its own TLS 1.3 handshake and stream multiplexing. That TLS
is the libp2p TLS handshake (``/tls/1.0.0``-style certificates): each side
presents a self-signed certificate carrying its libp2p public key, signed by
that key, and py-libp2p derives the peer ID from it, rejecting an inbound
connection without a certificate and an outbound one whose peer ID is not the
one dialed. It is encrypted and authenticates the peer ID just as Noise does,
so it is not the plaintext that the Noise-only check is about; the TCP path
stays Noise-only. Only QUIC v1 is accepted (draft-29 and ``/quic`` are off).

QUIC is opt-in because py-libp2p 0.8.1's QUIC is much slower than TCP
(about 1.5 MiB/s against 55-70 MiB/s) and, unlike TCP, closes both directions
on ``stream.close()`` (trap 8; :class:`~node.p2p.Libp2pStream` half-closes
with ``close_write()``). Without ``enable_quic`` a QUIC listen address is
refused with :class:`TransportError`, as before.

The libp2p key pair is the *node* identity behind the peer ID. It is not the
user's Chhaya identity key; the directory binds one to the other.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager

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
from libp2p.transport.quic.config import QUICTransportConfig
from libp2p.transport.quic.exceptions import QUICError
from libp2p.transport.quic.transport import QUICTransport
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
#: The only QUIC address shapes accepted: an IP literal, a UDP port, QUIC v1.
_QUIC_SHAPES = (["ip4", "udp", "quic-v1"], ["ip6", "udp", "quic-v1"])


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


def _is_quic(maddr: multiaddr.Multiaddr) -> bool:
    return "udp" in {p.name for p in maddr.protocols()}


def _parse_listen_addrs(
    addrs: Sequence[str], *, enable_quic: bool = False
) -> list[multiaddr.Multiaddr]:
    parsed: list[multiaddr.Multiaddr] = []
    for text in addrs:
        try:
            maddr = multiaddr.Multiaddr(text)
            names = [p.name for p in maddr.protocols()]
        except Exception as exc:  # multiaddr raises several unrelated types
            raise TransportError(f"invalid listen address {text!r}: {exc}") from None
        if names in _QUIC_SHAPES:
            if not enable_quic:
                raise TransportError(
                    f"unsupported listen address {text!r}: QUIC is off (enable_quic=False)"
                )
        elif "tcp" not in names or not set(names) <= _TCP_PROTOCOLS:
            what = "TCP or /ip4|ip6/.../udp/PORT/quic-v1" if enable_quic else "TCP"
            raise TransportError(f"unsupported listen address {text!r}: only {what}")
        parsed.append(maddr)
    return parsed


def _check_port_free(maddr: multiaddr.Multiaddr) -> None:
    """Refuse a fixed TCP or UDP port that something already listens on.

    py-libp2p binds its listeners with SO_REUSEPORT (for hole punching), so a
    second node on the same port would silently share, and split, the
    incoming connections (or, for QUIC, the datagrams). A probe bind without
    SO_REUSEPORT fails instead. The UDP probe also leaves SO_REUSEADDR off:
    on UDP it would let two sockets share a port.
    """
    names = {p.name for p in maddr.protocols()}
    family = socket.AF_INET if "ip4" in names else socket.AF_INET6 if "ip6" in names else None
    udp = "udp" in names
    port = int(maddr.value_for_protocol("udp" if udp else "tcp"))
    if family is None or port == 0:
        return  # DNS names are resolved by libp2p; port 0 is always free
    ip = maddr.value_for_protocol("ip4" if family == socket.AF_INET else "ip6")
    with socket.socket(family, socket.SOCK_DGRAM if udp else socket.SOCK_STREAM) as probe:
        if not udp:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((ip, port))
        except OSError as exc:
            raise TransportError(f"cannot listen on {maddr}: {exc.strerror or exc}") from None


def _quic_transport(key_pair: KeyPair) -> QUICTransport:
    # QUIC v1 only; everything else as py-libp2p's defaults.
    return QUICTransport(key_pair.private_key, config=QUICTransportConfig(enable_draft29=False))


def _check_security(swarm: Swarm, *, enable_quic: bool) -> None:
    """Never plaintext, whatever ``new_host`` did: Noise on TCP, TLS 1.3 on QUIC."""
    security = list(swarm.upgrader.security_multistream.transports)
    if security != [NOISE_PROTOCOL_ID]:
        raise RuntimeError(f"libp2p host offers {security}, expected Noise only")
    allowed: tuple[type, ...] = (TCP, QUICTransport) if enable_quic else (TCP,)
    transports = swarm.transport_manager.get_transports()
    if not transports or any(type(t) not in allowed for t in transports):
        names = [type(t).__name__ for t in transports]
        raise RuntimeError(f"libp2p host uses transports {names}, expected only TCP/QUIC")
    for transport in transports:
        if isinstance(transport, QUICTransport) and transport.protocols() != ["quic-v1"]:
            raise RuntimeError(f"QUIC transport offers {transport.protocols()}, expected v1")


def build_host(
    key_pair: KeyPair,
    listen_addrs: Sequence[str] = (),
    *,
    connection_config: ConnectionConfig | None = None,
    enable_quic: bool = False,
) -> IHost:
    """Create (but do not start) a TCP + Noise + Yamux host for ``key_pair``.

    With ``enable_quic`` the host also listens on and dials QUIC v1 addresses
    (see the module docstring). ``listen_addrs`` are only validated here;
    :func:`running_host` binds them.
    """
    _parse_listen_addrs(listen_addrs, enable_quic=enable_quic)
    noise = NoiseTransport(key_pair, noise_privkey=create_x25519_key_pair().private_key)
    host = new_host(
        key_pair=key_pair,
        sec_opt={TProtocol(NOISE_PROTOCOL_ID): noise},
        muxer_opt={TProtocol(YAMUX_PROTOCOL_ID): Yamux},
        transports=[TCP(), _quic_transport(key_pair)] if enable_quic else [TCP()],
        connection_config=connection_config or ConnectionConfig(max_connections_per_peer=1),
        enable_mDNS=False,
        enable_upnp=False,
        bootstrap=None,
    )
    swarm = host.get_network()
    if not isinstance(swarm, Swarm):  # pragma: no cover - new_host always builds a Swarm
        raise TypeError(f"unexpected libp2p network {type(swarm).__name__}")
    _check_security(swarm, enable_quic=enable_quic)
    swarm.auto_connector = _NoAutoConnector(
        swarm, auto_connect_interval=swarm.connection_config.auto_connect_interval
    )
    return host


def listen_addrs(host: IHost) -> list[str]:
    """The addresses actually bound (port 0 resolved), ending in ``/p2p/<peer id>``.

    Unlike ``host.get_addrs()`` this leaves out addresses that peers observed
    through identify. A wildcard (``0.0.0.0``) stays a wildcard. Each address
    appears once (py-libp2p can report a QUIC listener twice).
    """
    out = [f"{addr}/p2p/{host.get_id()}" for addr in host.get_transport_addrs()]
    return list(dict.fromkeys(out))


def _quic_listen_errors(exc: BaseException) -> list[QUICError] | None:
    """The QUICErrors that ``exc`` consists of, or None if it holds anything else."""
    if isinstance(exc, QUICError):
        return [exc]
    if isinstance(exc, BaseExceptionGroup):
        found: list[QUICError] = []
        for inner in exc.exceptions:
            errors = _quic_listen_errors(inner)
            if errors is None:
                return None
            found.extend(errors)
        return found
    return None


@asynccontextmanager
async def _run_host(host: IHost, maddrs: list[multiaddr.Multiaddr]) -> AsyncIterator[None]:
    """``host.run()``, with a QUIC listen failure reported as TransportError.

    The swarm turns a failed TCP bind into a missing listener, but lets a QUIC
    listener's ``QUICListenError`` escape from ``host.run()`` inside exception
    groups. Only errors while starting are translated, not the block's own.
    """
    async with AsyncExitStack() as stack:
        try:
            await stack.enter_async_context(host.run(listen_addrs=maddrs))
        except BaseException as exc:
            errors = _quic_listen_errors(exc)
            if errors is None:
                raise
            targets = ", ".join(str(m) for m in maddrs if _is_quic(m))
            detail = "; ".join(str(e) for e in errors)
            raise TransportError(f"cannot listen on {targets}: {detail}") from None
        yield


@asynccontextmanager
async def running_host(
    identity_key_pair: KeyPair,
    listen: Sequence[str],
    *,
    connection_config: ConnectionConfig | None = None,
    enable_quic: bool = False,
) -> AsyncIterator[IHost]:
    """Run a host listening on ``listen`` for the duration of the block.

    Port 0 binds a free port; :func:`listen_addrs` gives the bound addresses.
    Raises :class:`TransportError` if any address cannot be bound (py-libp2p's
    ``BasicHost.run`` ignores listen failures). On exit every connection,
    listener and background identify task is closed. ``enable_quic`` allows
    QUIC v1 listen addresses and dialing QUIC addresses (see :func:`build_host`).
    """
    maddrs = _parse_listen_addrs(listen, enable_quic=enable_quic)
    for maddr in maddrs:
        _check_port_free(maddr)
    host = build_host(
        identity_key_pair, listen, connection_config=connection_config, enable_quic=enable_quic
    )
    async with _run_host(host, maddrs):
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
