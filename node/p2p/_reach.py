"""Reach: bootstrap peers, mDNS, AutoNAT and circuit relay v2 for a running host.

``reach = await nursery.start(run_reach, host, ReachConfig(...))`` starts the
services and returns a :class:`Reach`; cancelling the nursery stops them
(bounded in time). Every background task logs its failures and carries on.

All wire protocols are py-libp2p's own, so go/rust/js libp2p interoperate:
``/libp2p/circuit/relay/0.2.0/{hop,stop}`` and ``/libp2p/autonat/1.0.0``.
Where py-libp2p 0.8.1 misbehaves we subclass it and change only local
behaviour, never the wire format:

- **Relay hop.** :class:`RelayLimits` maps onto py-libp2p's limits
  (reservation count and TTL, circuit duration and bytes). py-libp2p counts
  concurrent circuits per *reservation* only; ``max_circuits`` is also
  enforced relay-wide here. py-libp2p also books a reservation for whatever
  peer id the RESERVE message names (the spec's RESERVE carries none), so
  anyone could reserve, or refresh, a slot in another peer's name; we
  reserve for the authenticated remote peer only.
- **Relay client.** ``host.connect`` to a ``/p2p-circuit`` address fails
  (no transport registered for it), so :meth:`Reach.dial_via_relay` calls
  ``CircuitV2Transport.dial`` itself, with a config that does not book a
  reservation on the relay before each dial (py-libp2p's client role does).
  Reservations are refreshed by our own loop: py-libp2p's refresher spins
  without sleeping when a relay grants a TTL under 30 s.
- **AutoNAT.** py-libp2p's server "dials back" with ``host.connect``, which
  returns at once on the connection the request came in on, so every
  requester is told it is public. Our server dials a *fresh* TCP connection
  and completes the Noise handshake (proving the peer id) before answering.
  As client, only OK and E_DIAL_ERROR count as verdicts (a peer that does
  not speak AutoNAT or refuses the request is not evidence that we are
  private); ``autonat_confirmations`` agreeing verdicts flip the status.
- **mDNS.** py-libp2p's ``MDNSDiscovery`` binds zeroconf on every interface,
  finds the address it advertises by a UDP "connect" to 8.8.8.8, reports
  discoveries through a process-wide singleton, and only fills the
  peerstore. We assemble the same broadcaster and listener (spec TXT
  ``dnsaddr`` records) on a zeroconf bound to the interfaces of the host's
  listen addresses, advertise those addresses (wildcards expanded), take
  discoveries from our own listener and connect to the peers found.
"""

from __future__ import annotations

import ipaddress
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextlib import AsyncExitStack, suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import ifaddr  # zeroconf's own dependency: interface addresses
import trio
from libp2p.abc import IHost, INetStream
from libp2p.crypto.ed25519 import create_new_key_pair as create_ed25519_key_pair
from libp2p.crypto.x25519 import create_new_key_pair as create_x25519_key_pair
from libp2p.custom_types import TProtocol
from libp2p.discovery.mdns.broadcaster import PeerBroadcaster
from libp2p.discovery.mdns.listener import PeerListener
from libp2p.discovery.mdns.mdns import SERVICE_TYPE
from libp2p.discovery.mdns.utils import stringGen
from libp2p.host.autonat.autonat import AUTONAT_PROTOCOL_ID, AutoNATService, AutoNATStatus
from libp2p.host.autonat.pb.autonat_pb2 import Message as AutoNATMessage
from libp2p.host.basic_host import BasicHost
from libp2p.network.swarm import Swarm
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo, info_from_p2p_addr
from libp2p.relay.circuit_v2.config import RelayConfig, RelayRole
from libp2p.relay.circuit_v2.pb.circuit_pb2 import HopMessage
from libp2p.relay.circuit_v2.protocol import PROTOCOL_ID as HOP_PROTOCOL_ID
from libp2p.relay.circuit_v2.protocol import CircuitV2Protocol
from libp2p.relay.circuit_v2.protocol_buffer import StatusCode
from libp2p.relay.circuit_v2.resources import RelayLimits as Libp2pRelayLimits
from libp2p.relay.circuit_v2.transport import CircuitV2Transport
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_PROTOCOL_ID
from libp2p.stream_muxer.yamux.yamux import Yamux
from libp2p.tools.anyio_service import background_trio_service
from libp2p.transport.upgrader import TransportUpgrader
from multiaddr import Multiaddr
from multiaddr.protocols import P_P2P
from zeroconf import InterfaceChoice, IPVersion, ServiceInfo, Zeroconf

from chhaya import TransportError

if TYPE_CHECKING:  # trio-typing's stubs (pulled in by libp2p) shadow trio's own types
    from trio_typing import TaskStatus

__all__ = ["Reach", "ReachConfig", "RelayLimits", "run_reach"]

log = logging.getLogger("chhaya.p2p.reach")

#: Bound on one dial (bootstrap peer, mDNS peer, relay).
DIAL_TIMEOUT_S: Final = 10.0
#: Bound on a dial through a relay (relay dial, HOP CONNECT, STOP, Noise, Yamux).
RELAY_DIAL_TIMEOUT_S: Final = 20.0
#: Bound on one reservation request.
RESERVE_TIMEOUT_S: Final = 20.0
#: Bound on an AutoNAT server's dial-back to one address.
DIALBACK_TIMEOUT_S: Final = 10.0
#: At most this many of a requester's addresses are dialled back.
MAX_DIALBACK_ADDRS: Final = 4
#: Concurrent dial-backs an AutoNAT server runs.
MAX_CONCURRENT_DIALBACKS: Final = 8
#: Bound on one AutoNAT query (py-libp2p's default is 30 s).
AUTONAT_QUERY_TIMEOUT_S: Final = 15.0
#: Peers asked per AutoNAT round.
AUTONAT_PEERS_PER_ROUND: Final = 8
#: Bound on stopping mDNS (zeroconf sends goodbyes and joins its threads).
MDNS_STOP_TIMEOUT_S: Final = 5.0
#: Discovered peers waiting to be connected; more are dropped (and found again later).
MDNS_QUEUE_SIZE: Final = 64
#: Delay before a crashed background task is restarted.
TASK_RESTART_DELAY_S: Final = 1.0
#: A reservation is refreshed halfway through its TTL, within these bounds.
MIN_RESERVATION_REFRESH_S: Final = 5.0
MAX_RESERVATION_REFRESH_S: Final = 1800.0

_WILDCARDS: Final = frozenset({"0.0.0.0", "::"})  # noqa: S104 (recognised, not bound)


@dataclass(frozen=True, slots=True)
class RelayLimits:
    """Limits of the relay hop service (circuit relay v2)."""

    #: Reservations held at once.
    max_reservations: int = 128
    #: Concurrent relayed circuits, relay-wide (and per reservation).
    max_circuits: int = 16
    #: Lifetime of a reservation unless refreshed.
    reservation_ttl_s: int = 3600
    #: A circuit is reset after this long (0: unlimited).
    circuit_duration_s: int = 120
    #: A circuit is reset after relaying this many bytes, both directions together (0: unlimited).
    circuit_data_bytes: int = 1 << 20

    def __post_init__(self) -> None:
        for name in ("max_reservations", "max_circuits", "reservation_ttl_s"):
            if getattr(self, name) < 1:
                raise ValueError(f"RelayLimits.{name} must be positive")
        if self.circuit_duration_s < 0 or self.circuit_data_bytes < 0:
            raise ValueError("RelayLimits circuit limits must not be negative")

    def to_libp2p(self) -> Libp2pRelayLimits:
        return Libp2pRelayLimits(
            duration=self.circuit_duration_s,
            data=self.circuit_data_bytes,
            max_circuit_conns=self.max_circuits,
            max_reservations=self.max_reservations,
            reservation_ttl=self.reservation_ttl_s,
        )


@dataclass(frozen=True, slots=True)
class ReachConfig:
    """What :func:`run_reach` runs."""

    #: Multiaddrs ending in ``/p2p/<id>``, dialled at start and re-dialled when disconnected.
    bootstrap: tuple[str, ...] = ()
    #: Discover peers on the LAN and connect to them.
    mdns: bool = False
    #: Serve circuit relay v2 hop (``--relay``).
    relay_hop: bool = False
    relay_limits: RelayLimits = field(default_factory=RelayLimits)
    #: Serve ``/libp2p/autonat/1.0.0`` and ask connected peers about our reachability.
    autonat: bool = True
    #: Agreeing AutoNAT verdicts needed to flip the status (the spec asks for more than 3).
    autonat_confirmations: int = 4
    #: Delay between AutoNAT rounds while the status is unknown, and once known.
    autonat_retry_s: float = 15.0
    autonat_interval_s: float = 300.0
    #: How often a connected bootstrap peer is checked.
    bootstrap_check_s: float = 1.0
    #: Re-dial backoff for bootstrap peers and relays: doubles from min to max (with jitter).
    backoff_min_s: float = 1.0
    backoff_max_s: float = 60.0
    #: Addresses to advertise on mDNS (default: the host's listen addresses, wildcards expanded).
    mdns_advertise: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.autonat_confirmations < 1:
            raise ValueError("autonat_confirmations must be positive")
        if not 0 < self.backoff_min_s <= self.backoff_max_s:
            raise ValueError("need 0 < backoff_min_s <= backoff_max_s")
        if min(self.autonat_retry_s, self.autonat_interval_s, self.bootstrap_check_s) <= 0:
            raise ValueError("intervals must be positive")


# -- helpers -------------------------------------------------------------------------


def _parse_peer_addr(address: str) -> PeerInfo:
    """A ``.../p2p/<id>`` multiaddr as PeerInfo; TransportError if malformed."""
    try:
        return info_from_p2p_addr(Multiaddr(address))
    except Exception as exc:  # multiaddr and py-libp2p raise several unrelated types
        raise TransportError(f"invalid peer address {address!r}: {exc}") from None


def _is_connected(host: IHost, peer_id: ID) -> bool:
    return bool(host.get_network().connections.get(peer_id))


def _ip_of(maddr: Multiaddr) -> str | None:
    for proto in maddr.protocols():
        if proto.name in ("ip4", "ip6"):
            return str(maddr.value_for_protocol(proto.name))
    return None


def _interface_ips(ipv6: bool) -> list[str]:
    """This machine's interface addresses (what a wildcard listen address covers)."""
    found: list[str] = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if isinstance(ip.ip, tuple) == ipv6:
                found.append(ip.ip[0] if isinstance(ip.ip, tuple) else ip.ip)
    return found


def concrete_addrs(host: IHost) -> list[Multiaddr]:
    """The host's transport addresses, each wildcard replaced by the interface addresses."""
    result: list[Multiaddr] = []
    for addr in host.get_transport_addrs():
        ip = _ip_of(addr)
        if ip not in _WILDCARDS:
            result.append(addr)
            continue
        proto = "ip6" if ip == "::" else "ip4"
        rest = str(addr).split("/", 3)[3]  # after "/ip4/0.0.0.0/"
        for iface_ip in _interface_ips(proto == "ip6"):
            result.append(Multiaddr(f"/{proto}/{iface_ip}/{rest}"))
    return result


async def _supervise(name: str, fn: Callable[[], Awaitable[None]]) -> None:
    """Run ``fn`` until cancelled, restarting it (after a delay) if it raises."""
    while True:
        try:
            await fn()
            return
        except Exception:
            log.exception("reach task %s failed; restarting", name)
        await trio.sleep(TASK_RESTART_DELAY_S)


class _Backoff:
    """Exponential backoff with jitter, from ``low`` up to ``high`` seconds."""

    def __init__(self, low: float, high: float) -> None:
        self._low, self._high = low, high
        self._next = low

    def reset(self) -> None:
        self._next = self._low

    async def wait(self) -> None:
        await trio.sleep(self._next * random.uniform(0.75, 1.25))
        self._next = min(self._next * 2, self._high)


# -- relay ---------------------------------------------------------------------------


class _ChhayaRelayProtocol(CircuitV2Protocol):
    """py-libp2p's relay v2 protocol with a relay-wide circuit cap and self-only reservations."""

    def __init__(self, host: IHost, limits: RelayLimits, allow_hop: bool) -> None:
        super().__init__(host, limits.to_libp2p(), allow_hop=allow_hop)
        self.max_circuits = limits.max_circuits
        self.active_circuits = 0

    async def _handle_reserve(self, stream: INetStream, msg: HopMessage) -> None:
        # The spec's RESERVE has no peer field; py-libp2p would reserve for the peer
        # it names. Reserve for the authenticated remote peer only.
        msg.ClearField("peer")
        await super()._handle_reserve(stream, msg)

    async def _handle_connect(self, stream: INetStream, msg: HopMessage) -> None:
        if self.active_circuits >= self.max_circuits:
            log.info("relay: refused a circuit, %d already open", self.active_circuits)
            await self._send_status(
                stream, StatusCode.RESOURCE_LIMIT_EXCEEDED, "too many relayed circuits"
            )
            await stream.reset()
            return
        self.active_circuits += 1
        try:
            await super()._handle_connect(stream, msg)
        finally:
            self.active_circuits -= 1


# -- AutoNAT -------------------------------------------------------------------------


class _DialBackAutoNAT(AutoNATService):
    """py-libp2p's AutoNAT v1, dialling back on a fresh connection (see the module doc)."""

    def __init__(self, host: BasicHost, serve: bool, confirmations: int) -> None:
        super().__init__(host, serve=serve, confirmations=confirmations)
        self._dialbacks = trio.CapacityLimiter(MAX_CONCURRENT_DIALBACKS)
        # Dial back under a throwaway key: the requester then sees a connection
        # from an unknown peer, not a second connection from us, which its swarm
        # (one connection per peer) would trade for the one it already has.
        dialback_key = create_ed25519_key_pair()
        noise = NoiseTransport(dialback_key, noise_privkey=create_x25519_key_pair().private_key)
        self._dialback_upgrader = TransportUpgrader(
            {TProtocol(NOISE_PROTOCOL_ID): noise}, {TProtocol(YAMUX_PROTOCOL_ID): Yamux}
        )

    async def _try_dial(self, peer_id: ID, addrs: list[bytes]) -> bytes | None:
        swarm = self.host.get_network()
        if not isinstance(swarm, Swarm):  # pragma: no cover - BasicHost always has a Swarm
            return None
        async with self._dialbacks:
            for raw in addrs[:MAX_DIALBACK_ADDRS]:
                try:
                    maddr = Multiaddr(raw)
                    if any(p.name == "p2p" for p in maddr.protocols()):
                        maddr = maddr.decapsulate_code(P_P2P)
                    transport = swarm.transport_manager.transport_for_dialing(maddr)
                    if transport is None:
                        continue
                    with trio.fail_after(DIALBACK_TIMEOUT_S):
                        conn = await transport.dial(maddr)
                        try:
                            upgrader = self._dialback_upgrader
                            secured = await upgrader.upgrade_security(conn, True, peer_id)
                            await secured.close()
                        finally:
                            await conn.close()
                    return bytes(raw)
                except Exception as exc:  # dial failures come in many types
                    log.debug("AutoNAT dial-back to %s failed: %s", peer_id, exc)
        return None


# -- mDNS ----------------------------------------------------------------------------


class _Broadcaster(PeerBroadcaster):
    """py-libp2p's mDNS broadcaster, advertising given addresses instead of guessed ones."""

    def __init__(self, zc: Zeroconf, name: str, peer_id: ID, ips: list[str], addrs: list[str]):
        self._fixed_ips = ips  # read by _build_service_info from super().__init__
        self._fixed_addrs = addrs
        port = int(Multiaddr(addrs[0]).value_for_protocol("tcp")) if addrs else 4001
        super().__init__(zc, SERVICE_TYPE, name, str(peer_id), port, addrs)

    def _get_local_ips(self) -> list[str]:
        return list(self._fixed_ips)

    def _resolve_host_addrs(self) -> list[str]:
        return list(self._fixed_addrs)


class _Listener(PeerListener):
    """py-libp2p's mDNS listener, also reporting each peer it parses to ``on_peer``.

    Runs in zeroconf's thread; ``on_peer`` must be thread-safe.
    """

    def __init__(
        self, zc: Zeroconf, name: str, peerstore: Any, on_peer: Callable[[PeerInfo], None]
    ):
        self._on_peer = on_peer  # ServiceBrowser may call back before __init__ returns
        super().__init__(peerstore, zc, SERVICE_TYPE, name)

    def _extract_peer_info(self, info: ServiceInfo) -> PeerInfo | None:
        peer = super()._extract_peer_info(info)
        if peer is not None:
            self._on_peer(peer)
        return peer


class _Mdns:
    """Zeroconf, broadcaster and listener; blocking calls run in threads."""

    def __init__(self, host: IHost, advertise: Sequence[str], on_peer: Callable[[PeerInfo], None]):
        self._host = host
        self._advertise = list(advertise)
        self._on_peer = on_peer
        self._zc: Zeroconf | None = None
        self._broadcaster: _Broadcaster | None = None
        self._listener: _Listener | None = None
        self._advertised: list[str] = []
        self._registered = False

    def _addresses(self) -> tuple[list[str], list[str]]:
        addrs = [Multiaddr(a) for a in self._advertise] or concrete_addrs(self._host)
        ips: list[str] = []
        for addr in addrs:
            ip = _ip_of(addr)
            if ip is not None and ip not in ips:
                ips.append(ip)
        return ips, [str(a) for a in addrs]

    def _start_blocking(self) -> None:
        ips, addrs = self._addresses()
        if not ips:
            raise TransportError("mDNS: no IP address to advertise")
        v6 = any(ipaddress.ip_address(ip).version == 6 for ip in ips)
        v4 = any(ipaddress.ip_address(ip).version == 4 for ip in ips)
        version = IPVersion.All if v4 and v6 else IPVersion.V6Only if v6 else IPVersion.V4Only
        name = f"{stringGen(32)}.{SERVICE_TYPE}"
        zc = Zeroconf(interfaces=ips if ips else InterfaceChoice.All, ip_version=version)
        self._zc = zc
        self._broadcaster = _Broadcaster(zc, name, self._host.get_id(), ips, addrs)
        self._listener = _Listener(zc, name, self._host.get_peerstore(), self._on_peer)
        self._advertised = addrs

    def _register_blocking(self) -> None:
        # Registering probes the name first (about a second): it runs after
        # start-up, so the node is listening and discovering meanwhile.
        if self._broadcaster is not None:
            self._broadcaster.register()
            self._registered = True
            log.info("mDNS advertising %s", self._advertised)

    def _stop_blocking(self) -> None:
        if self._broadcaster is not None and self._registered:
            self._broadcaster.unregister()
        if self._listener is not None:
            self._listener.stop()
        if self._zc is not None:
            self._zc.close()

    async def start(self) -> None:
        await trio.to_thread.run_sync(self._start_blocking, abandon_on_cancel=True)  # type: ignore[call-arg]

    async def register(self) -> None:
        await trio.to_thread.run_sync(self._register_blocking, abandon_on_cancel=True)  # type: ignore[call-arg]

    async def stop(self) -> None:
        with trio.CancelScope(shield=True), trio.move_on_after(MDNS_STOP_TIMEOUT_S):
            await trio.to_thread.run_sync(self._stop_blocking, abandon_on_cancel=True)  # type: ignore[call-arg]


# -- Reach ---------------------------------------------------------------------------


class Reach:
    """The running reach services of one host; made by :func:`run_reach`."""

    def __init__(self, host: IHost, config: ReachConfig, nursery: trio.Nursery) -> None:
        self._host = host
        self._config = config
        self._nursery = nursery
        self.relay = _ChhayaRelayProtocol(host, config.relay_limits, allow_hop=config.relay_hop)
        # STOP only: CLIENT would book a reservation on the relay before every dial.
        self._transport = CircuitV2Transport(
            host,
            self.relay,
            RelayConfig(roles=RelayRole.STOP, limits=config.relay_limits.to_libp2p()),
        )
        self.autonat: _DialBackAutoNAT | None = None
        if config.autonat:
            if not isinstance(host, BasicHost):
                raise TypeError(f"AutoNAT needs a BasicHost, not {type(host).__name__}")
            self.autonat = _DialBackAutoNAT(host, True, config.autonat_confirmations)
        self._discovered: set[ID] = set()
        self._reserved: dict[ID, str] = {}  # relay -> our circuit address through it
        self._mdns_send, self._mdns_receive = trio.open_memory_channel[PeerInfo](MDNS_QUEUE_SIZE)
        self._token = trio.lowlevel.current_trio_token()

    @property
    def reachability(self) -> str:
        """``"public"``, ``"private"`` or ``"unknown"``, from AutoNAT."""
        status = self.autonat.get_status() if self.autonat is not None else AutoNATStatus.UNKNOWN
        if status == AutoNATStatus.PUBLIC:
            return "public"
        if status == AutoNATStatus.PRIVATE:
            return "private"
        return "unknown"

    @property
    def discovered(self) -> frozenset[ID]:
        """Peers found through mDNS."""
        return frozenset(self._discovered)

    @property
    def reservations(self) -> dict[ID, str]:
        """Relays we hold a reservation on, with our circuit address through each."""
        return dict(self._reserved)

    # -- relay client

    async def dial_via_relay(self, relay_addr: str, peer_id: ID) -> None:
        """Connect to ``peer_id`` through the relay at ``relay_addr`` (``.../p2p/<relay id>``).

        Afterwards ``host.new_stream(peer_id, ...)`` uses the relayed connection.
        Raises :class:`TransportError` if the relay or the peer refuses or cannot be reached.
        """
        relay = _parse_peer_addr(relay_addr)
        circuit = Multiaddr(f"{relay_addr}/p2p-circuit/p2p/{peer_id}")
        try:
            with trio.fail_after(RELAY_DIAL_TIMEOUT_S):
                await self._host.connect(relay)
                await self._transport.dial(circuit)
        except trio.TooSlowError:
            raise TransportError(f"dial to {peer_id} via {relay.peer_id} timed out") from None
        except Exception as exc:  # py-libp2p raises several unrelated types
            raise TransportError(f"dial to {peer_id} via {relay.peer_id} failed: {exc}") from None

    async def reserve(self, relay_addr: str) -> str:
        """Reserve a slot on the relay at ``relay_addr``; returns our circuit multiaddr.

        The reservation is refreshed (and the relay re-dialled) until Reach stops.
        Raises :class:`TransportError` if the relay refuses or cannot be reached.
        """
        relay = _parse_peer_addr(relay_addr)
        await self._reserve_once(relay)
        circuit = f"{relay_addr}/p2p-circuit/p2p/{self._host.get_id()}"
        if relay.peer_id not in self._reserved:
            self._reserved[relay.peer_id] = circuit
            self._nursery.start_soon(
                _supervise, f"reservation {relay.peer_id}", lambda: self._keep_reservation(relay)
            )
        return circuit

    async def _reserve_once(self, relay: PeerInfo) -> float:
        """Book or refresh the reservation; returns its expiry (Unix seconds)."""
        stream: INetStream | None = None
        try:
            with trio.fail_after(RESERVE_TIMEOUT_S):
                await self._host.connect(relay)
                stream = await self._host.new_stream(relay.peer_id, [HOP_PROTOCOL_ID])
                ok = await self._transport._make_reservation(stream, relay.peer_id)
        except trio.TooSlowError:
            raise TransportError(f"reservation on relay {relay.peer_id} timed out") from None
        except Exception as exc:  # no hop protocol, dial failure, ...
            raise TransportError(f"relay {relay.peer_id} refused: {exc}") from None
        finally:
            if stream is not None:
                with trio.CancelScope(shield=True), trio.move_on_after(1):
                    await stream.close()
        if not ok:
            raise TransportError(f"relay {relay.peer_id} refused the reservation")
        return float(self._transport._reservations.get(relay.peer_id, 0))

    async def _keep_reservation(self, relay: PeerInfo) -> None:
        backoff = _Backoff(self._config.backoff_min_s, self._config.backoff_max_s)
        expires = float(self._transport._reservations.get(relay.peer_id, 0))
        while True:
            half = (expires - time.time()) / 2
            refresh_in = min(max(half, MIN_RESERVATION_REFRESH_S), MAX_RESERVATION_REFRESH_S)
            with trio.move_on_after(refresh_in):
                # A reservation lapses with the connection: watch it meanwhile.
                while _is_connected(self._host, relay.peer_id):
                    await trio.sleep(self._config.bootstrap_check_s)
            try:
                expires = await self._reserve_once(relay)
                backoff.reset()
            except TransportError as exc:
                log.warning("relay reservation: %s", exc)
                expires = 0.0
                await backoff.wait()

    # -- bootstrap

    async def _keep_connected(self, peer: PeerInfo) -> None:
        backoff = _Backoff(self._config.backoff_min_s, self._config.backoff_max_s)
        while True:
            if _is_connected(self._host, peer.peer_id):
                await trio.sleep(self._config.bootstrap_check_s)
                if not _is_connected(self._host, peer.peer_id):
                    log.info("lost bootstrap peer %s", peer.peer_id)
                    # Not at once: py-libp2p's close_peer on the other side can drop
                    # a connection that arrives while it is still closing the old one.
                    await backoff.wait()
                continue
            try:
                with trio.fail_after(DIAL_TIMEOUT_S):
                    await self._host.connect(peer)
                log.info("connected to bootstrap peer %s", peer.peer_id)
                backoff.reset()
            except Exception as exc:  # py-libp2p and trio raise several unrelated types
                log.warning("bootstrap peer %s unreachable: %s", peer.peer_id, exc)
                await backoff.wait()

    # -- mDNS

    def _on_mdns_peer(self, peer: PeerInfo) -> None:
        """Thread-safe: queue a peer found by mDNS for :meth:`_connect_discovered`."""
        with suppress(trio.RunFinishedError):
            self._token.run_sync_soon(self._queue_discovered, peer)

    def _queue_discovered(self, peer: PeerInfo) -> None:
        try:
            self._mdns_send.send_nowait(peer)
        except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
            log.debug("mDNS queue full, dropped %s", peer.peer_id)

    async def _connect_discovered(self) -> None:
        async for peer in self._mdns_receive:
            if peer.peer_id == self._host.get_id():
                continue
            self._discovered.add(peer.peer_id)
            if _is_connected(self._host, peer.peer_id):
                continue
            try:
                with trio.fail_after(DIAL_TIMEOUT_S):
                    await self._host.connect(peer)
                log.info("connected to mDNS peer %s", peer.peer_id)
            except Exception as exc:  # py-libp2p and trio raise several unrelated types
                log.info("mDNS peer %s unreachable: %s", peer.peer_id, exc)

    # -- AutoNAT

    async def _autonat_rounds(self) -> None:
        autonat = self.autonat
        if autonat is None:
            return
        while True:
            await self.check_reachability()
            known = autonat.get_status() != AutoNATStatus.UNKNOWN
            await trio.sleep(
                self._config.autonat_interval_s if known else self._config.autonat_retry_s
            )

    async def check_reachability(
        self, peers: Iterable[ID] | None = None, addrs: Sequence[str] | None = None
    ) -> str:
        """Ask ``peers`` (default: directly connected peers) to dial us back; the new status.

        We advertise ``addrs`` (default: our listen addresses, wildcards expanded).
        """
        autonat = self.autonat
        if autonat is None:
            return "unknown"
        if peers is None:
            peers = [
                p
                for p, conns in self._host.get_network().connections.items()
                if conns and not any("/p2p-circuit" in str(a) for a in _conn_addrs(conns))
            ]
        maddrs = [Multiaddr(a) for a in addrs] if addrs is not None else concrete_addrs(self._host)
        advertised = [a.to_bytes() for a in maddrs]
        for peer in list(peers)[:AUTONAT_PEERS_PER_ROUND]:
            previous = autonat.dial_results.get(peer)
            try:
                status, _ = await autonat.query_server(peer, advertised, AUTONAT_QUERY_TIMEOUT_S)
            except Exception as exc:  # peer lacks the protocol, stream failure, timeout
                log.debug("AutoNAT query to %s failed: %s", peer, exc)
                continue
            if status not in (AutoNATMessage.OK, AutoNATMessage.E_DIAL_ERROR):
                # Refused or bad request: no verdict, keep the peer's previous one.
                if previous is None:
                    autonat.dial_results.pop(peer, None)
                else:
                    autonat.dial_results[peer] = previous
        autonat.update_status()
        return self.reachability


def _conn_addrs(conns: Any) -> list[Any]:
    addrs: list[Any] = []
    for conn in conns if isinstance(conns, list) else [conns]:
        get = getattr(conn, "get_transport_addresses", None)
        if callable(get):
            addrs.extend(get() or [])
    return addrs


async def run_reach(
    host: IHost,
    config: ReachConfig,
    *,
    task_status: TaskStatus[Reach] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the reach services of ``host`` until cancelled; reports the :class:`Reach`.

    Raises :class:`TransportError` before starting if a bootstrap address is
    malformed or mDNS cannot start.
    """
    bootstrap = [_parse_peer_addr(a) for a in config.bootstrap]
    async with AsyncExitStack() as stack:
        nursery = await stack.enter_async_context(trio.open_nursery())
        reach = Reach(host, config, nursery)
        await stack.enter_async_context(background_trio_service(reach.relay))
        await reach.relay.event_started.wait()
        if reach.autonat is not None:
            stack.callback(host.remove_stream_handler, AUTONAT_PROTOCOL_ID)
        for peer in bootstrap:
            nursery.start_soon(
                _supervise, f"bootstrap {peer.peer_id}", lambda p=peer: reach._keep_connected(p)
            )
        if config.mdns:
            mdns = _Mdns(host, config.mdns_advertise, reach._on_mdns_peer)
            stack.push_async_callback(mdns.stop)
            try:
                await mdns.start()
            except Exception as exc:  # zeroconf raises OSError and its own types
                raise TransportError(f"mDNS could not start: {exc}") from None
            nursery.start_soon(_supervise, "mdns", reach._connect_discovered)
            nursery.start_soon(_supervise, "mdns register", mdns.register)
        if reach.autonat is not None:
            nursery.start_soon(_supervise, "autonat", reach._autonat_rounds)
        log.info(
            "reach: %d bootstrap peers, mdns=%s, relay hop=%s, autonat=%s",
            len(bootstrap),
            config.mdns,
            config.relay_hop,
            config.autonat,
        )
        task_status.started(reach)
        await trio.sleep_forever()
