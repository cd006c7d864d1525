"""A user's chat node: identity, directory trust, channels, delivery, control API.

How it works
------------
``UserNode.run`` starts a libp2p host (Noise only) with the Kademlia DHT,
the ``/chhaya/channel/1.0.0`` service and the control socket, then follows
the directory: it looks a handle up until a proof verifies (which fixes the
directory under the trusted witness set), and from then on also takes
certified heads from gossip (``/chhaya/vkd/heads/1``).

**Links.** At most one live channel (a :class:`_Link`) is kept per peer
identity. Sending to a handle:

1. look the handle up; only a proof that :func:`vkd.verify_vkd_proof`
   accepts is used, and a contact's pinned identity must match it;
2. find a device of the entry (its libp2p peer ID) through the signed
   presence record in the DHT, dial it and run the channel handshake, which
   must prove the entry's identity key from one of the entry's peer IDs;
3. send ``Intro`` (our handle, the id of a stored conversation); the
   listener answers ``Welcome`` (continue it, or start a new one from this
   handshake, whose session hello follows);
4. hand the channel to :class:`~node.delivery.Delivery`, which commits each
   ratchet state before its ciphertext leaves and retries until a receipt.

An incoming channel is accepted for any identity at the handshake (its
handle is not known yet), but nothing is delivered until its ``Intro``
handle has been looked up and verified: the entry must hold the channel's
identity key and list the libp2p peer ID the channel came from. A failure
closes the channel and tells the peer nothing.

When both sides dial each other at once, the channel dialled by the side
with the smaller identity key wins, on both sides.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import trio
from libp2p.abc import IHost
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo
from libp2p.relay.circuit_v2.protocol import PROTOCOL_ID as HOP_PROTOCOL_ID
from libp2p.utils.address_validation import expand_wildcard_address
from multiaddr import Multiaddr

from chhaya import (
    ChhayaError,
    DecodeError,
    LocalProtocolError,
    TransportError,
    VerificationError,
)
from chhaya.crypto import Rng
from chhaya.identity import PrivateIdentity, PublicIdentity, fingerprint
from chhaya.prekeys import PrekeyStore
from chhaya.safety import ct_equal
from chhaya.sealed import SenderCertificate, issue_certificate
from chhaya.session import MESSAGE_ID_SIZE, Conversation
from quorum import CertificateVerifier
from vkd import IdentityBundle, VerifiedBinding, valid_handle

from ..clock import system_rng, wall_ms
from ..delivery import Delivery, peer_name
from ..drivers import SecureChannel
from ..mailbox_db import MailboxStore
from ..p2p import (
    ChannelService,
    ChhayaDht,
    HeadGossip,
    MailboxService,
    Reach,
    ReachConfig,
    RecordKind,
    Registration,
    RelayLimits,
    listen_addrs,
    open_channel,
    register_handle,
    run_reach,
    running_host,
)
from ..prekey_db import SqlitePrekeyStorage
from ..store import Contact, ContactBook, LogStore, incoming_after, message_status
from ._config import (
    LOGSTORE_FILE,
    MAILBOX_FILE,
    PREKEYS_FILE,
    ConfigError,
    NodeConfig,
    socket_path,
)
from ._control import ControlServer, Emit
from ._cover import CoverTraffic, poisson_delay_s
from ._lookup import DirectoryClient, reason_of
from ._metrics import NodeMetrics
from ._offline import MailboxChannel, OfflineDelivery, mailbox_upkeep
from ._wire import MAX_ADDRS, Intro, Presence, Welcome

if TYPE_CHECKING:
    from trio_typing import TaskStatus

__all__ = ["UserNode"]

log = logging.getLogger("chhaya.node")

#: Bound on the Intro/Welcome exchange after a handshake.
INTRO_TIMEOUT_S: Final = 10.0
#: How long an identity bundle we register stays valid.
BUNDLE_LIFETIME_MS: Final = 30 * 24 * 3600 * 1000
#: How long a sender certificate stays valid.
CERTIFICATE_LIFETIME_MS: Final = 7 * 24 * 3600 * 1000
#: Presence records live this long and are refreshed at a third of it.
PRESENCE_LIFETIME_MS: Final = 3600 * 1000
#: How often the node retries following the directory until a proof verifies.
FOLLOW_RETRY_S: Final = 1.0
#: A responder conversation can send once the initiator's first message came.
CAN_SEND_TIMEOUT_S: Final = 10.0
#: Bound on a control request waiting for a registration to be certified.
MAX_REGISTER_WAIT_S: Final = 120.0
#: How often the outbox is checked for peers without a channel.
REDIAL_POLL_S: Final = 2.0
#: The longest wait before trying an unreachable peer with queued messages again.
REDIAL_MAX_S: Final = 300.0
#: AutoNAT verdicts that must agree before reachability changes, and the wait
#: between rounds while it is unknown.
AUTONAT_CONFIRMATIONS: Final = 2
AUTONAT_RETRY_S: Final = 5.0
#: How often a node without --relay-via checks whether AutoNAT says it needs a relay.
AUTO_RELAY_CHECK_S: Final = 2.0
#: Channels tried for one send before it fails (when nothing was committed).
SEND_ATTEMPTS: Final = 3
#: Bound on `send --wait`.
MAX_SEND_WAIT_S: Final = 60.0


@dataclass(frozen=True, slots=True)
class PinnedPeer:
    """A contact pinned from a contact card, trusted without the directory
    because the user compared its fingerprint: its identity and devices."""

    handle: str
    bundle: IdentityBundle


#: What a handle resolves to: a verified directory entry, or a card-pinned contact.
Resolved = VerifiedBinding | PinnedPeer
#: A card-pinned contact's bundle never expires by itself (the user unpins it).
_PINNED_EXPIRY_MS: Final = 2**62
CARD_FORMAT: Final = "chhaya-contact-card-v1"


@dataclass(eq=False)
class _Link:
    peer: PublicIdentity
    handle: str
    channel: SecureChannel
    delivery: Delivery
    dialer: bool
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    ended: trio.Event = field(default_factory=trio.Event)


class UserNode:
    def __init__(
        self,
        data_dir: Path,
        config: NodeConfig,
        identity: PrivateIdentity,
        node_seed: bytes,
        verifier: CertificateVerifier | None,
        metrics: NodeMetrics,
        *,
        say: Callable[[str], None] = print,
        rng: Rng = system_rng,
        clock: Callable[[], int] = wall_ms,
    ) -> None:
        self.data_dir = data_dir
        self.config = config
        self.identity = identity
        self.key_pair = create_new_key_pair(node_seed)
        self.peer_id = ID.from_pubkey(self.key_pair.public_key)
        self._verifier = verifier
        self.metrics = metrics
        self._say = say
        self._rng = rng
        self._clock = clock
        self.handle: str | None = config.handle
        self._certificate: SenderCertificate | None = None
        self._links: dict[bytes, _Link] = {}
        self._dial_locks: dict[bytes, trio.Lock] = {}
        self._conv_locks: dict[bytes, trio.Lock] = {}
        self._link_generations: dict[bytes, int] = {}
        self._changed = trio.Event()
        self._host: IHost | None = None
        self._store: LogStore | None = None
        self._contacts: ContactBook | None = None
        self._dht: ChhayaDht | None = None
        self._directory: DirectoryClient | None = None
        self._gossip: HeadGossip | None = None
        self._prekeys: PrekeyStore | None = None
        self._reach: Reach | None = None
        self._cover: CoverTraffic | None = None
        self._cover_contacts: list[PublicIdentity] = []
        self._offline: OfflineDelivery | None = None
        self._mailbox_store: MailboxStore | None = None
        self._presence_changed = trio.Event()
        self._nursery: trio.Nursery | None = None
        self._stopping = trio.Event()
        self._on_config_change: Callable[[NodeConfig], None] | None = None

    # ------------------------------------------------------------------ plumbing

    @property
    def host(self) -> IHost:
        if self._host is None:
            raise LocalProtocolError("the node is not running")
        return self._host

    @property
    def store(self) -> LogStore:
        if self._store is None:
            raise LocalProtocolError("the node is not running")
        return self._store

    @property
    def contacts(self) -> ContactBook:
        if self._contacts is None:
            raise LocalProtocolError("the node is not running")
        return self._contacts

    @property
    def directory(self) -> DirectoryClient:
        if self._directory is None:
            raise TransportError("no directory configured: start the node with --directory")
        return self._directory

    @property
    def dht(self) -> ChhayaDht:
        if self._dht is None:
            raise LocalProtocolError("the node is not running")
        return self._dht

    @property
    def prekeys(self) -> PrekeyStore:
        if self._prekeys is None:
            raise LocalProtocolError("the node is not running")
        return self._prekeys

    @property
    def clock(self) -> Callable[[], int]:
        return self._clock

    @property
    def rng(self) -> Rng:
        return self._rng

    def conversation_lock(self, identity_key: bytes) -> trio.Lock:
        """Held while a conversation with this peer is loaded into a Delivery
        outside a channel (mailboxes), and while a channel's Delivery is set up
        and installed: only one in-memory copy of a conversation may encrypt."""
        return self._conv_locks.setdefault(identity_key, trio.Lock())

    def link_generation(self, identity_key: bytes) -> int:
        """Changes whenever a channel to this peer starts or ends (and may have
        moved the stored conversation on)."""
        return self._link_generations.get(identity_key, 0)

    def _bump_generation(self, identity_key: bytes) -> None:
        self._link_generations[identity_key] = self.link_generation(identity_key) + 1

    def live_link(self, identity_key: bytes) -> _Link | None:
        link = self._links.get(identity_key)
        return None if link is None or link.ended.is_set() else link

    def message_arrived(self) -> None:
        """A text was stored outside a channel (from a mailbox)."""
        self.metrics.messages_received.inc()
        self._notify()

    async def resolve(self, handle: str) -> Resolved:
        """The verified, unexpired, pin-checked directory entry of ``handle``."""
        return await self._resolve(handle)

    def on_config_change(self, callback: Callable[[NodeConfig], None]) -> None:
        self._on_config_change = callback

    def stop(self) -> None:
        self._stopping.set()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    # ------------------------------------------------------------------ run

    async def run(self, *, task_status: TaskStatus[UserNode] = trio.TASK_STATUS_IGNORED) -> None:
        """Run until :meth:`stop` or cancellation; then close everything."""
        store = await LogStore.open(self.data_dir / LOGSTORE_FILE)
        prekey_storage = SqlitePrekeyStorage(self.data_dir / PREKEYS_FILE)
        try:
            mailboxes = MailboxStore(self.data_dir / MAILBOX_FILE, check_same_thread=False)
        except BaseException:
            prekey_storage.close()
            await store.close()
            raise
        self._mailbox_store = mailboxes
        try:
            self._store = store
            self._contacts = ContactBook(store)
            self._prekeys = PrekeyStore(self.identity, prekey_storage)
            quic = any("/quic-v1" in addr for addr in self.config.listen)
            async with running_host(self.key_pair, self.config.listen, enable_quic=quic) as host:
                self._host = host
                await self._run_on_host(host, task_status)
        finally:
            self._host = None
            with trio.CancelScope(shield=True):
                await store.close()
            prekey_storage.close()
            mailboxes.close()

    async def _run_on_host(self, host: IHost, task_status: TaskStatus[UserNode]) -> None:
        bootstrap = list(self.config.bootstrap)
        if self.config.directory:
            bootstrap.insert(0, self.config.directory)
        if self.config.directory and self._verifier is not None:
            pinned = bytes.fromhex(self.config.directory_key) if self.config.directory_key else None
            self._directory = DirectoryClient(
                host,
                self.config.directory,
                self._verifier,
                self.metrics,
                self._clock,
                pinned_directory_key=pinned,
            )
        service = ChannelService(
            host,
            self.identity,
            lambda identity_key: identity_key,  # bound to the directory after the Intro
            handler=self._accept,
            rng=self._rng,
            clock=self._clock,
        )
        dht_server = not self.config.relay_only  # a relay-only node must not be dialled
        async with (
            ChhayaDht(host, bootstrap=bootstrap, server=dht_server) as dht,
            trio.open_nursery() as nursery,
        ):
            self._dht = dht
            self._nursery = nursery
            assert self._mailbox_store is not None  # opened by run()
            mailbox_service = MailboxService(host, self._mailbox_store, self._clock, self._rng)
            with service, mailbox_service:
                if self.handle is not None:
                    self._certificate = self._issue_certificate(self.handle)
                await nursery.start(ControlServer(socket_path(self.data_dir), self._control).serve)
                self._reach = await nursery.start(run_reach, host, self._reach_config(bootstrap))
                if self.config.relay_via:
                    nursery.start_soon(self._reserve_relays)
                else:
                    nursery.start_soon(self._relay_when_private)
                nursery.start_soon(mailbox_upkeep, self._mailbox_store, self._clock)
                if self.config.cover_traffic > 0:
                    self._cover = CoverTraffic(
                        self.config.cover_traffic, self._cover_targets, self._rng
                    )
                    nursery.start_soon(self._run_cover, self._cover)
                nursery.start_soon(self._publish_presence)
                nursery.start_soon(self._count_peers)
                nursery.start_soon(self._redial_for_outbox)
                if self._directory is not None:
                    nursery.start_soon(self._follow_directory)
                task_status.started(self)
                await self._stopping.wait()
                nursery.cancel_scope.cancel()

    def _reach_config(self, bootstrap: list[str]) -> ReachConfig:
        try:
            limits = RelayLimits(**self.config.relay_limits)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"relay limits: {exc}") from None
        return ReachConfig(
            bootstrap=tuple(bootstrap),
            mdns=self.config.mdns,
            relay_hop=self.config.relay,
            relay_limits=limits,
            # A chat node knows few peers: two agreeing dial-backs settle it.
            autonat_confirmations=AUTONAT_CONFIRMATIONS,
            autonat_retry_s=AUTONAT_RETRY_S,
        )

    def addresses(self) -> list[str]:
        """Our dialable multiaddrs, ending in /p2p/<peer id>."""
        return listen_addrs(self.host)

    def _advertised(self) -> tuple[str, ...]:
        """Addresses to publish: each interface for a wildcard listen address, and
        our circuit through each relay we hold a slot on. With ``relay_only`` only
        the circuits: contacts then reach us through the relay. (The DHT still
        shows our addresses to the DHT peers we talk to; hiding them from
        everyone needs a relay-only DHT presence, not done.)"""
        out: list[str] = []
        if not self.config.relay_only:
            for addr in self.host.get_transport_addrs():
                for concrete in expand_wildcard_address(addr):
                    out.append(str(concrete))
        if self._reach is not None:
            for circuit in self._reach.reservations.values():
                out.append(circuit.rsplit("/p2p/", 1)[0])  # the peer ID is a field of its own
        return tuple(dict.fromkeys(out))[:MAX_ADDRS]

    async def _publish_presence(self) -> None:
        """Keep a signed presence record (peer ID and addresses) in the DHT."""
        assert self._dht is not None
        while True:
            self._presence_changed = trio.Event()
            now = self._clock()
            addrs = self._advertised()
            if addrs:
                presence = Presence(self.peer_id.to_bytes(), addrs)
                try:
                    with trio.move_on_after(30):
                        await self._dht.put_record(
                            self.identity,
                            RecordKind.PRESENCE,
                            presence.encode(),
                            sequence=now,
                            expires_ms=now + PRESENCE_LIFETIME_MS,
                        )
                except ChhayaError as exc:
                    log.warning("could not publish presence: %s", exc)
                except Exception as exc:  # py-libp2p's DHT raises several unrelated types
                    log.warning("could not publish presence: %s: %s", type(exc).__name__, exc)
            with trio.move_on_after(PRESENCE_LIFETIME_MS / 3000):
                await self._presence_changed.wait()

    def _cover_targets(self) -> Sequence[tuple[bytes, Callable[[bytes], Awaitable[None]]]]:
        """Live channels to contacts; with none, the mailboxes of contacts."""
        live: list[tuple[bytes, Callable[[bytes], Awaitable[None]]]] = [
                (link.peer.agreement_key, link.channel.send)
                for link in self._links.values() if not link.ended.is_set()]  # fmt: skip
        if live or self._offline is None:
            return live
        offline = self._offline
        return [
            (identity.agreement_key, MailboxChannel(offline, identity).send)
            for identity in self._cover_contacts
        ]

    async def _run_cover(self, cover: CoverTraffic) -> None:
        while True:
            await trio.sleep(poisson_delay_s(self.config.cover_traffic, self._rng))
            try:
                self._cover_contacts = [c.identity for c in await self.contacts.all()]
            except ChhayaError as exc:
                log.info("cover traffic: cannot read contacts: %s", exc)
            if await cover.send_one():
                self.metrics.cover_sent.inc()

    async def _redial_for_outbox(self) -> None:
        """Open a channel to each peer that has due outbox entries but no live link.

        The link's own retry loop then re-sends them. This is what delivers,
        after a restart, messages that were committed but not acknowledged.
        A peer that cannot be reached is tried again after a backoff.
        """
        next_try: dict[str, float] = {}
        failures: dict[str, int] = {}
        while True:
            await trio.sleep(REDIAL_POLL_S)
            try:
                due = await self.store.pending_outbox(self._clock(), 100)
            except ChhayaError as exc:
                log.warning("cannot read the outbox: %s", exc)
                continue
            linked = {peer_name(link.peer) for link in self._links.values()
                      if not link.ended.is_set()}  # fmt: skip
            for peer in sorted({entry.peer for entry in due} - linked):
                if next_try.get(peer, 0.0) > trio.current_time():
                    continue
                try:
                    contact = await self.contacts.by_peer(peer)
                    if contact is None:
                        raise LocalProtocolError("no contact for this peer")
                    binding = await self._resolve(contact.handle)
                    await self._dial(contact.handle, binding)
                    failures.pop(peer, None)
                except (ChhayaError, trio.TooSlowError) as exc:
                    failures[peer] = failures.get(peer, 0) + 1
                    delay = min(REDIAL_MAX_S, REDIAL_POLL_S * 2 ** failures[peer])
                    next_try[peer] = trio.current_time() + delay
                    log.info("cannot reach %s for queued messages (retry in %.0f s): %s",
                             peer[:16], delay, exc)  # fmt: skip

    async def _count_peers(self) -> None:
        while True:
            self.metrics.peers.set(len(self.host.get_connected_peers()))
            self.metrics.channels.set(len(self._links))
            await trio.sleep(1)

    async def _follow_directory(self) -> None:
        """Verify a first proof (fixing the directory), then follow gossiped heads."""
        directory = self.directory
        probe = self.handle or "chhaya-probe"
        while directory.tracker is None:
            try:
                await directory.lookup(probe, fresh=True)
            except ChhayaError as exc:
                log.info("directory not followed yet: %s", exc)
                await trio.sleep(FOLLOW_RETRY_S)
        assert directory.tracker is not None
        head = directory.latest_head
        assert head is not None
        log.info("following directory %s at epoch %d", head.head.directory_id.hex()[:16],
                 head.head.epoch)  # fmt: skip
        async with HeadGossip(self.host, directory.tracker) as gossip, trio.open_nursery() as tasks:
            self._gossip = gossip
            self._offline = OfflineDelivery(self)
            tasks.start_soon(self._offline.run, self.config.mailbox_poll_s)

    # ------------------------------------------------------------------ identity

    def _issue_certificate(self, handle: str) -> SenderCertificate:
        expires = self._clock() + CERTIFICATE_LIFETIME_MS
        return issue_certificate(self.identity, handle, self.peer_id.to_bytes(), expires)

    def certificate_for_sending(self) -> SenderCertificate:
        if self.handle is None:
            raise LocalProtocolError("register a handle first: chhaya register HANDLE")
        cert = self._certificate
        if cert is None or cert.expires_ms - self._clock() < CERTIFICATE_LIFETIME_MS // 2:
            cert = self._certificate = self._issue_certificate(self.handle)
        return cert

    def _bundle(self) -> IdentityBundle:
        prekeys = self._prekeys
        assert prekeys is not None
        now = self._clock()
        try:
            published = prekeys.bundle_for_publication()
        except LocalProtocolError:  # first registration: make the long-lived prekeys
            prekeys.rotate_signed_prekey(self._rng, now)
            prekeys.rotate_last_resort_kem_prekey(self._rng, now)
            published = prekeys.bundle_for_publication()
        return IdentityBundle(
            self.identity.public, (self.peer_id.to_bytes(),), published, now + BUNDLE_LIFETIME_MS
        )

    async def register(self, handle: str, timeout_s: float) -> VerifiedBinding:
        """Publish our identity under ``handle`` and wait until a verified proof shows it."""
        if not valid_handle(handle):
            raise LocalProtocolError(f"invalid handle {handle!r}")
        directory = self.directory
        existing = await directory.lookup(handle, fresh=True)
        if existing is not None and existing.bundle.identity != self.identity.public:
            raise VerificationError("handle-taken", f"{handle!r} belongs to another identity")
        directory_id = directory.directory_id
        assert directory_id is not None  # a verified lookup fixed the directory
        registration = Registration.sign(
            self.identity, directory_id, handle, self._bundle(), self._clock()
        )
        if not await register_handle(self.host, directory.directory_addr, registration):
            raise VerificationError("registration-refused", "the directory refused the handle")
        with trio.move_on_after(timeout_s):
            while True:
                binding = await directory.lookup(handle, fresh=True)
                if binding is not None and binding.bundle == registration.bundle:
                    self._set_handle(handle)
                    return binding
                await trio.sleep(0.2)
        raise TransportError(
            f"the directory queued {handle!r} but no certified epoch showed it "
            f"within {timeout_s:g} s"
        )

    def _set_handle(self, handle: str) -> None:
        self.handle = handle
        self._certificate = self._issue_certificate(handle)
        self.config = self.config.merged(handle=handle)
        if self._on_config_change is not None:
            self._on_config_change(self.config)

    # ------------------------------------------------------------------ contacts

    async def _check_pinned(self, handle: str, binding: VerifiedBinding) -> None:
        """Refuse a handle whose verified identity differs from the pinned one."""
        contact = await self.contacts.get(handle)
        identity = binding.bundle.identity
        if contact is None:
            await self.contacts.put(handle, identity, peer_name(identity), False, self._clock())
        elif contact.identity != identity:
            self.metrics.proof_failures.labels("key-changed").inc()
            raise VerificationError(
                "key-changed",
                f"{handle}'s identity key changed since you added it; compare fingerprints, "
                f"then run `chhaya contacts add {handle} --accept-new-key`",
            )

    def _pinned(self, contact: Contact | None) -> PinnedPeer | None:
        """The card-pinned peer of ``contact``, if it is one and was verified."""
        if contact is None or contact.devices is None or not contact.verified:
            return None
        devices = tuple(ID.from_base58(d).to_bytes() for d in contact.devices)
        return PinnedPeer(
            contact.handle, IdentityBundle(contact.identity, devices, None, _PINNED_EXPIRY_MS)
        )

    async def pinned_by_identity(self, identity_key: bytes) -> PinnedPeer | None:
        """The card-pinned contact with this identity (its name is ours, not its own)."""
        return self._pinned(await self.contacts.by_peer(identity_key.hex()))

    async def _resolve(self, handle: str) -> Resolved:
        """A card-pinned contact of that name, else the verified directory entry."""
        pinned = self._pinned(await self.contacts.get(handle))
        if pinned is not None:
            return pinned
        binding = await self.directory.lookup(handle)
        if binding is None:
            raise VerificationError("not-registered", f"{handle!r} is not in the directory")
        binding.bundle.check(self._clock())
        await self._check_pinned(handle, binding)
        return binding

    # ------------------------------------------------------------------ links

    def _keep(self, link: _Link) -> bool:
        """Install ``link`` unless a channel that wins the tie-break is live."""
        key = link.peer.signing_key
        current = self._links.get(key)
        if current is not None and not current.ended.is_set():
            ours_wins = self.identity.public.signing_key < key
            current_is_ours = current.dialer
            if current_is_ours == ours_wins and link.dialer != ours_wins:
                return False
            current.scope.cancel()
        self._links[key] = link
        self._bump_generation(key)
        self.metrics.channels.set(len(self._links))
        return True

    async def _serve_link(self, link: _Link) -> None:
        """Receive on a link until it ends; retries run beside it."""
        delivery = link.delivery
        try:
            with link.scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(delivery.run_retries)
                    while (data := await link.channel.receive()) is not None:
                        received, delivered = delivery.received, delivery.delivered
                        await delivery.handle(data)
                        if delivery.received > received:
                            self.metrics.messages_received.inc(delivery.received - received)
                        if delivery.delivered > delivered:
                            self.metrics.messages_delivered.inc(delivery.delivered - delivered)
                        self._notify()
                    nursery.cancel_scope.cancel()
        except* ChhayaError as group:  # the nursery wraps the failure in a group
            log.info("link with %s ended: %s", link.handle, _first_error(group))
        finally:
            link.ended.set()
            self._bump_generation(link.peer.signing_key)
            if self._links.get(link.peer.signing_key) is link:
                del self._links[link.peer.signing_key]
            self._notify()

    async def _find_device(self, binding: Resolved) -> PeerInfo:
        """A device of the entry we can dial: connected already, or from its presence record."""
        devices = [ID(d) for d in binding.bundle.devices]
        connected = set(self.host.get_connected_peers())
        for device in devices:
            if device in connected:
                return PeerInfo(device, [])
        assert self._dht is not None
        identity_key = binding.bundle.identity.signing_key
        record = None
        with trio.move_on_after(15):
            try:
                record = await self._dht.get_record(identity_key, RecordKind.PRESENCE)
            except ChhayaError as exc:
                log.info("presence lookup failed: %s", exc)
            except Exception as exc:  # py-libp2p's DHT raises several unrelated types
                log.info("presence lookup failed: %s: %s", type(exc).__name__, exc)
        if record is not None:
            try:
                presence = Presence.decode_untrusted(record.payload)
                device = ID(presence.peer_id)
                if device in devices:
                    return PeerInfo(device, [Multiaddr(a) for a in presence.addrs])
            except (DecodeError, ValueError) as exc:  # multiaddr raises ValueError subclasses
                log.info("unusable presence record: %s", exc)
        raise TransportError("no reachable device (no presence record, not connected)")

    async def _open_channel(self, binding: Resolved, devices: set[bytes]) -> SecureChannel:
        """Dial a device of ``binding``: directly, else through a relay it advertises.

        Circuit addresses (``<relay>/p2p-circuit``) are dialled by hand through
        :meth:`Reach.dial_via_relay` (py-libp2p's ``connect`` cannot), after
        which the channel stream runs over the relayed connection.
        """
        info = await self._find_device(binding)
        direct = [a for a in info.addrs if "/p2p-circuit" not in str(a)]
        circuits = [str(a) for a in info.addrs if "/p2p-circuit" in str(a)]
        attempts: list[Callable[[], Awaitable[None]]] = []
        if direct or not circuits:
            attempts.append(_noop)
        attempts += [functools.partial(self._via_relay, c, info.peer_id) for c in circuits]
        failure: ChhayaError = TransportError("no address to dial")
        for attempt in attempts:
            try:
                await attempt()
                target = PeerInfo(info.peer_id, direct if attempt is _noop else [])
                log.info("dialling %s %s", info.peer_id,
                         "directly" if attempt is _noop else "through a relay")  # fmt: skip
                return await open_channel(
                    self.host,
                    target,
                    self.identity,
                    binding.bundle.identity.signing_key,
                    peer_allowed=lambda peer_id, _key: peer_id.to_bytes() in devices,
                    rng=self._rng,
                    clock=self._clock,
                )
            except TransportError as exc:
                log.info("cannot reach %s this way: %s", info.peer_id, exc)
                failure = exc
        raise failure

    async def _via_relay(self, circuit: str, peer_id: ID) -> None:
        if self._reach is None:
            raise TransportError("relays are not available")
        relay = circuit.split("/p2p-circuit", 1)[0]
        await self._reach.dial_via_relay(relay, peer_id)

    async def _relay_when_private(self) -> None:
        """When AutoNAT says nobody can dial us, hold a slot on a relay we know.

        Candidates are connected peers that serve the circuit relay v2 hop
        protocol (learned through identify). Our circuit through the first
        one that grants a reservation goes into the presence record.
        """
        assert self._reach is not None
        reach = self._reach
        while True:
            await trio.sleep(AUTO_RELAY_CHECK_S)
            if reach.reachability != "private" or reach.reservations:
                continue
            peerstore = self.host.get_peerstore()
            for peer in self.host.get_connected_peers():
                try:
                    serves_hop = HOP_PROTOCOL_ID in (peerstore.get_protocols(peer) or [])
                    addrs = [a for a in peerstore.addrs(peer) if "/p2p-circuit" not in str(a)]
                except Exception as exc:  # py-libp2p's peerstore raises for unknown peers
                    log.debug("no relay candidate %s: %s", peer, exc)
                    continue
                if not serves_hop or not addrs:
                    continue
                try:
                    base = str(addrs[0]).split("/p2p/", 1)[0]  # the peerstore may add /p2p/
                    circuit = await reach.reserve(f"{base}/p2p/{peer}")
                except ChhayaError as exc:
                    log.info("relay %s refused a reservation: %s", peer, exc)
                    continue
                log.info("AutoNAT says private: reachable through relay %s", circuit)
                self._presence_changed.set()
                break

    async def _reserve_relays(self) -> None:
        """Hold a slot on each ``--relay-via`` relay and advertise our circuit through it."""
        assert self._reach is not None
        pending = list(self.config.relay_via)
        delay = 1.0
        while pending:
            for relay in list(pending):
                try:
                    circuit = await self._reach.reserve(relay)
                except ChhayaError as exc:
                    log.warning("no reservation on relay %s yet: %s", relay, exc)
                    continue
                log.info("reachable through relay: %s", circuit)
                pending.remove(relay)
                self._presence_changed.set()
            if pending:
                await trio.sleep(delay)
                delay = min(60.0, delay * 2)

    async def _dial(self, handle: str, binding: Resolved) -> _Link:
        peer = binding.bundle.identity
        key = peer.signing_key
        lock = self._dial_locks.setdefault(key, trio.Lock())
        async with lock:
            current = self._links.get(key)
            if current is not None and not current.ended.is_set():
                return current
            devices = set(binding.bundle.devices)
            try:
                channel = await self._open_channel(binding, devices)
            except ChhayaError as exc:
                self.metrics.handshake_failures.labels(reason_of(exc)).inc()
                raise
            try:
                link = await self._introduce(channel, handle, peer)
            except BaseException as exc:
                if isinstance(exc, ChhayaError):
                    self.metrics.handshake_failures.labels(reason_of(exc)).inc()
                with trio.CancelScope(shield=True), trio.move_on_after(5):
                    await channel.aclose()
                raise
            assert self._nursery is not None
            self._nursery.start_soon(self._serve_closing, link)
            return link

    async def _serve_closing(self, link: _Link) -> None:
        try:
            await self._serve_link(link)
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(5):
                await link.channel.aclose()

    async def _stored_conversation_id(self, peer: PublicIdentity) -> bytes:
        state = await self.store.load_session(peer_name(peer))
        if state is None:
            return b""
        try:
            return Conversation.decode_untrusted(state).conversation_id
        except DecodeError:
            log.warning("stored conversation with %s is unreadable; starting a new one",
                        peer_name(peer)[:16])  # fmt: skip
            return b""

    async def _introduce(self, channel: SecureChannel, handle: str, peer: PublicIdentity) -> _Link:
        """Dialer side of Intro/Welcome, then the conversation; installs the link.

        Everything that waits for the peer happens before the conversation
        lock is taken: holding it while waiting could deadlock two nodes that
        dial each other at once. Raises TransportError if a simultaneous
        channel of the peer's won.
        """
        cert = self.certificate_for_sending()
        assert self.handle is not None
        conversation_id = await self._stored_conversation_id(peer)
        hello: bytes | None = None
        with trio.fail_after(INTRO_TIMEOUT_S):
            await channel.send(Intro(self.handle, conversation_id).encode())
            raw = await channel.receive()
            if raw is None:
                raise TransportError("the peer closed the channel during the introduction")
            welcome = Welcome.decode_untrusted(raw)
            if welcome.resume and not conversation_id:
                raise DecodeError("the peer resumed a conversation we do not hold")
            if not welcome.resume:
                hello = await channel.receive()
                if hello is None:
                    raise TransportError("the peer closed the channel before its session hello")
        async with self.conversation_lock(peer.signing_key):
            if welcome.resume:
                if await self._stored_conversation_id(peer) != conversation_id:
                    raise TransportError("the stored conversation changed during the introduction")
                delivery = await Delivery.resume(
                    channel, self.store, self.identity, cert, peer, rng=self._rng,
                    clock=self._clock,
                )  # fmt: skip
            else:
                delivery = await Delivery.establish(
                    channel, self.store, self.identity, cert, peer, dialer=True, hello=hello,
                    rng=self._rng, clock=self._clock,
                )  # fmt: skip
            link = _Link(peer, handle, channel, delivery, dialer=True)
            if not self._keep(link):
                raise TransportError("a simultaneous channel from the peer won")
        return link

    async def _accept(self, channel: SecureChannel, peer_id: ID) -> None:
        """Listener side: verify the Intro against the directory, then serve the link."""
        try:
            link = await self._welcome(channel, peer_id)
        except (ChhayaError, trio.TooSlowError) as exc:
            self.metrics.handshake_failures.labels(reason_of(exc)).inc()
            log.info("refused a channel from %s: %s", peer_id, exc)
            return  # the service closes the channel; the peer learns nothing more
        if link is None:
            return
        await self._serve_link(link)

    async def _welcome(self, channel: SecureChannel, peer_id: ID) -> _Link | None:
        """Verify the Intro, set up the conversation and install the link
        (None if a simultaneous channel of the peer's won)."""
        cert = self.certificate_for_sending()
        with trio.fail_after(INTRO_TIMEOUT_S):
            raw = await channel.receive()
            if raw is None:
                raise TransportError("the peer closed the channel before its introduction")
            intro = Intro.decode_untrusted(raw)
            # A card-pinned contact is known by its identity (its name here is ours).
            binding: Resolved | None = await self.pinned_by_identity(channel.peer_identity)
            if binding is None:
                binding = await self._resolve(intro.handle)
            peer = binding.bundle.identity
            if not ct_equal(peer.signing_key, channel.peer_identity):
                raise VerificationError("intro-identity", "the handle names another identity")
            if peer_id.to_bytes() not in binding.bundle.devices:
                raise VerificationError("intro-device", "the peer ID is not a device of the handle")
            async with self.conversation_lock(peer.signing_key):
                stored = await self._stored_conversation_id(peer)
                resume = (
                    bool(stored) and bool(intro.conversation_id) and stored == intro.conversation_id
                )
                await channel.send(Welcome(resume).encode())
                if resume:
                    delivery = await Delivery.resume(
                        channel, self.store, self.identity, cert, peer, rng=self._rng,
                        clock=self._clock,
                    )  # fmt: skip
                else:
                    delivery = await Delivery.establish(
                        channel, self.store, self.identity, cert, peer, dialer=False,
                        rng=self._rng, clock=self._clock,
                    )  # fmt: skip
                link = _Link(peer, binding.handle, channel, delivery, dialer=False)
                return link if self._keep(link) else None

    # ------------------------------------------------------------------ messaging

    async def send(self, handle: str, text: str, *, wait: bool, timeout_s: float) -> dict[str, Any]:
        """Send ``text`` to ``handle``; with ``wait``, until its receipt (or the timeout).

        The message id is chosen first, so when a channel fails under a send
        the store tells whether the text was committed (it then stays in the
        outbox and is retried on whichever channel to the peer lives) or not
        (it is sent again on a new channel, at most :data:`SEND_ATTEMPTS` times).
        """
        body = text.encode()
        binding = await self._resolve(handle)
        key = binding.bundle.identity.signing_key
        message_id = self._rng(MESSAGE_ID_SIZE)
        started = time.perf_counter()
        via_mailbox = False
        for attempt in range(SEND_ATTEMPTS):
            try:
                link = self._links.get(key)
                if link is None or link.ended.is_set():
                    try:
                        link = await self._dial(handle, binding)
                    except TransportError as exc:
                        raced = self.live_link(key)  # the peer's own channel won a race
                        if raced is not None:
                            link = raced
                        elif self._offline is None:
                            raise
                        else:
                            log.info("%s is not reachable (%s): using mailboxes", handle, exc)
                            await self._offline.send(binding, body, message_id)
                            via_mailbox = True
                            break
                conversation = link.delivery.conversation
                if not conversation.can_send:
                    with trio.fail_after(CAN_SEND_TIMEOUT_S):
                        await link.delivery.wait_until(functools.partial(_can_send, conversation))
                await link.delivery.send_text(body, message_id)
                if self._cover is not None:
                    self._cover.observe_real(link.delivery.last_envelope_size)
                break
            except (ChhayaError, trio.TooSlowError) as exc:
                if await message_status(self.store, message_id) is not None:
                    log.info("send to %s will be retried: %s", handle, exc)
                    break  # committed: the outbox retries it
                if attempt + 1 == SEND_ATTEMPTS or not isinstance(exc, TransportError):
                    self.metrics.messages_failed.labels(reason_of(exc)).inc()
                    raise TransportError(f"not sent to {handle}: {exc or 'timed out'}") from None
                await trio.sleep(0.05 * (attempt + 1))
        self.metrics.messages_sent.inc()
        status: str = "sent"
        via = "mailbox" if via_mailbox else "channel"
        if wait:
            with trio.move_on_after(timeout_s):
                while status == "sent":
                    status = await message_status(self.store, message_id) or "sent"
                    if status == "sent":
                        await self._wait_changed(1.0)
                self.metrics.delivery_latency.observe(time.perf_counter() - started)
        return {"message_id": message_id.hex(), "handle": handle, "status": status, "via": via}

    async def _wait_changed(self, timeout_s: float) -> None:
        with trio.move_on_after(timeout_s):
            await self._changed.wait()

    async def _handle_of(self, peer: str) -> str:
        contact = await self.contacts.by_peer(peer)
        return contact.handle if contact is not None else peer[:16]

    async def inbox(self, since: int, follow: bool, emit: Emit) -> dict[str, Any]:
        cursor = since
        messages: list[dict[str, Any]] = []
        while True:
            entries = await incoming_after(self.store, cursor)
            for item in entries:
                cursor = item.cursor
                doc = {
                    "cursor": item.cursor,
                    "from": await self._handle_of(item.entry.peer),
                    "message_id": item.entry.message_id.hex(),
                    "sent_ms": item.entry.sent_ms,
                    "received_ms": item.entry.created_ms,
                    "text": item.entry.body.decode("utf-8", "replace"),
                }
                if follow:
                    await emit(doc)
                else:
                    messages.append(doc)
            if not follow:
                return {"messages": messages, "cursor": cursor}
            if not entries:
                await self._wait_changed(1.0)

    async def history(self, handle: str, limit: int) -> dict[str, Any]:
        contact = await self.contacts.get(handle)
        if contact is None:
            return {"handle": handle, "messages": []}
        entries = await self.store.history(contact.peer, limit)
        return {
            "handle": handle,
            "messages": [
                {
                    "message_id": e.message_id.hex(),
                    "direction": e.direction,
                    "text": e.body.decode("utf-8", "replace"),
                    "sent_ms": e.sent_ms,
                    "status": e.status,
                }
                for e in entries
            ],
        }

    # ------------------------------------------------------------------ control API

    def status(self) -> dict[str, Any]:
        head = self._directory.latest_head if self._directory is not None else None
        return {
            "peer_id": str(self.peer_id),
            "handle": self.handle,
            "addresses": self.addresses(),
            "fingerprint": fingerprint(self.identity.public),
            "directory_epoch": None if head is None else head.head.epoch,
            "peers": len(self.host.get_connected_peers()),
            "connected": self._connection_kinds(),
            "advertised": list(self._advertised()),
            "channels": len(self._links),
            "proofs_verified": 0 if self._directory is None else self._directory.proofs_verified,
            "cover_sent": 0 if self._cover is None else self._cover.sent,
            "mailboxes": None
            if self._offline is None
            else {
                "deposited": self._offline.deposited,
                "fetched": self._offline.fetched,
                "dropped": self._offline.dropped,
            },
        }

    def _connection_kinds(self) -> dict[str, str]:
        """Each connected peer ID: "relayed" if every connection to it goes through
        a circuit relay, else "direct"."""
        out: dict[str, str] = {}
        network = self.host.get_network()
        for peer in self.host.get_connected_peers():
            try:
                addrs = [str(a) for c in network.get_connections(peer)
                         for a in c.get_transport_addresses()]  # fmt: skip
            except Exception:  # py-libp2p connection internals vary by transport
                addrs = []
            relayed = bool(addrs) and all("/p2p-circuit" in a for a in addrs)
            out[str(peer)] = "relayed" if relayed else "direct"
        return out

    async def _contact_doc(self, handle: str) -> dict[str, Any]:
        contact = await self.contacts.get(handle)
        if contact is None:
            raise LocalProtocolError(f"{handle!r} is not a contact")
        return {
            "handle": contact.handle,
            "fingerprint": fingerprint(contact.identity),
            "verified": contact.verified,
        }

    async def add_contact(
        self, handle: str, expected_fingerprint: str | None, accept_new_key: bool
    ) -> dict[str, Any]:
        binding = await self.directory.lookup(handle, fresh=True)
        if binding is None:
            raise VerificationError("not-registered", f"{handle!r} is not in the directory")
        identity = binding.bundle.identity
        contact = await self.contacts.get(handle)
        if contact is not None and contact.identity != identity and not accept_new_key:
            raise VerificationError(
                "key-changed",
                f"{handle}'s identity key changed; compare fingerprints, then add --accept-new-key",
            )
        verified = contact is not None and contact.identity == identity and contact.verified
        if expected_fingerprint is not None:
            verified = _fingerprint_matches(identity, expected_fingerprint)
            if not verified:
                raise VerificationError(
                    "fingerprint", f"the fingerprint of {handle} does not match"
                )
        await self.contacts.put(handle, identity, peer_name(identity), verified, self._clock())
        return await self._contact_doc(handle)

    def card(self) -> dict[str, Any]:
        """This node's contact card: what another node pins to chat without a directory."""
        return {
            "format": CARD_FORMAT,
            "name": self.handle,
            "identity": self.identity.public.encode().hex(),
            "peer_id": str(self.peer_id),
            "fingerprint": fingerprint(self.identity.public),
        }

    def set_name(self, name: str) -> dict[str, Any]:
        """Name this node (the name its contact card and sender certificate carry)
        when there is no directory to register with."""
        if not valid_handle(name):
            raise LocalProtocolError(f"invalid name {name!r}")
        if self._directory is not None:
            raise LocalProtocolError("this node uses a directory: chhaya register NAME")
        self._set_handle(name)
        return self.card()

    async def add_card(
        self, name: str, card: dict[str, Any], expected_fingerprint: str
    ) -> dict[str, Any]:
        """Pin a contact from its card, once its fingerprint matches the one the
        user compared (read aloud, say): chat then needs no directory."""
        if not valid_handle(name):
            raise LocalProtocolError(f"invalid name {name!r}")
        try:
            if card.get("format") != CARD_FORMAT:
                raise ValueError("not a chhaya contact card")
            identity = PublicIdentity.decode_untrusted(bytes.fromhex(str(card["identity"])))
            peer_id = ID.from_base58(str(card["peer_id"]))
        except (KeyError, ValueError, DecodeError) as exc:
            raise LocalProtocolError(f"unusable contact card: {exc}") from None
        except Exception as exc:  # base58 and multihash raise several unrelated types
            raise LocalProtocolError(f"unusable contact card: {type(exc).__name__}") from None
        if not _fingerprint_matches(identity, expected_fingerprint):
            raise VerificationError("fingerprint", "the card's fingerprint does not match")
        await self.contacts.put(
            name, identity, peer_name(identity), True, self._clock(), (peer_id.to_base58(),)
        )
        return await self._contact_doc(name)

    async def verify_contact(self, handle: str, expected_fingerprint: str) -> dict[str, Any]:
        contact = await self.contacts.get(handle)
        if contact is None:
            raise LocalProtocolError(f"{handle!r} is not a contact: chhaya contacts add {handle}")
        if not _fingerprint_matches(contact.identity, expected_fingerprint):
            raise VerificationError("fingerprint", f"the fingerprint of {handle} does not match")
        await self.contacts.put(
            handle, contact.identity, contact.peer, True, self._clock(), contact.devices
        )
        return await self._contact_doc(handle)

    async def _control(self, op: str, args: dict[str, Any], emit: Emit) -> dict[str, Any]:
        def arg_str(name: str) -> str:
            value = args.get(name)
            if not isinstance(value, str):
                raise LocalProtocolError(f"missing or non-string argument {name!r}")
            return value

        def arg_float(name: str, default: float, upper: float) -> float:
            value = args.get(name, default)
            if not isinstance(value, int | float) or not 0 <= value <= upper:
                raise LocalProtocolError(f"argument {name!r} must be a number in 0..{upper:g}")
            return float(value)

        if op == "status":
            return self.status()
        if op == "register":
            timeout = arg_float("timeout_s", 60.0, MAX_REGISTER_WAIT_S)
            binding = await self.register(arg_str("handle"), timeout)
            return {"handle": binding.handle, "epoch": binding.epoch, "version": binding.version,
                    "peer_id": str(self.peer_id)}  # fmt: skip
        if op == "send":
            wait = bool(args.get("wait", False))
            timeout = arg_float("timeout_s", 30.0, MAX_SEND_WAIT_S)
            return await self.send(arg_str("handle"), arg_str("text"), wait=wait, timeout_s=timeout)
        if op == "inbox":
            since = args.get("since", 0)
            if not isinstance(since, int) or since < 0:
                raise LocalProtocolError("argument 'since' must be a non-negative integer")
            return await self.inbox(since, bool(args.get("follow", False)), emit)
        if op == "history":
            limit = args.get("limit", 50)
            if not isinstance(limit, int) or not 1 <= limit <= 1000:
                raise LocalProtocolError("argument 'limit' must be in 1..1000")
            return await self.history(arg_str("handle"), limit)
        if op == "contacts.add":
            fp = args.get("fingerprint")
            if fp is not None and not isinstance(fp, str):
                raise LocalProtocolError("argument 'fingerprint' must be a string")
            card = args.get("card")
            if card is not None:
                if not isinstance(card, dict) or fp is None:
                    raise LocalProtocolError("a card needs the fingerprint you compared")
                return await self.add_card(arg_str("handle"), card, fp)
            return await self.add_contact(arg_str("handle"), fp, bool(args.get("accept_new_key")))
        if op == "card":
            return self.card()
        if op == "name":
            return self.set_name(arg_str("name"))
        if op == "contacts.list":
            contacts = await self.contacts.all()
            return {"contacts": [
                {"handle": c.handle, "fingerprint": fingerprint(c.identity), "verified": c.verified}
                for c in contacts
            ]}  # fmt: skip
        if op == "contacts.verify":
            return await self.verify_contact(arg_str("handle"), arg_str("fingerprint"))
        if op == "lookup":
            handle = arg_str("handle")
            found = await self.directory.lookup(handle, fresh=True)
            if found is None:
                return {"handle": handle, "registered": False}
            return {"handle": handle, "registered": True, "epoch": found.epoch,
                    "version": found.version,
                    "fingerprint": fingerprint(found.bundle.identity)}  # fmt: skip
        if op == "stop":
            self.stop()
            return {"stopping": True}
        raise LocalProtocolError(f"unknown control operation {op!r}")


def _first_error(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


async def _noop() -> None:
    """The direct attempt needs no preparation (a relay attempt dials the relay first)."""


def _can_send(conversation: Conversation) -> bool:
    return conversation.can_send


def _fingerprint_matches(identity: PublicIdentity, text: str) -> bool:
    expected = "".join(ch for ch in text if ch.isdigit()).encode()
    actual = "".join(ch for ch in fingerprint(identity) if ch.isdigit()).encode()
    return len(expected) == len(actual) and ct_equal(expected, actual)
