"""Offline delivery for the user node: depositing in and fetching from mailboxes.

How it works
------------
**Sending to a peer who cannot be reached.** The text still goes through
the logstore rule (state committed before the ciphertext leaves):

- with a stored conversation, :class:`~node.delivery.Delivery` runs over a
  :class:`MailboxChannel`, whose ``send`` deposits the sealed envelope with
  the peer's mailbox peers;
- without one, the first contact is asynchronous (PQXDH-style): the peer's
  prekey bundle from its verified directory entry seeds a new conversation,
  and the sealed envelope carries the InitialMessage with the first text.

Either way the envelope also stays in the outbox, so when a channel to the
peer opens later the text is re-sent under the same message id; the peer
keeps one copy whichever arrives first.

**Fetching.** On start and every ``poll_s`` the node proves its identity to
each of its mailbox peers (the K closest DHT servers to its mailbox id) and
takes its envelopes in batches. Each one is opened; the sender certificate's
handle is looked up and must verify as the certificate's identity. Then:

- an InitialMessage starts a conversation (one-time prekeys are burnt only
  now that it authenticated) and its text is committed;
- a ratchet message goes to the live channel's Delivery for that peer if
  there is one, else to a Delivery over a MailboxChannel (the receipt goes
  back to the sender's mailboxes).

An envelope is acknowledged (and so deleted by the mailbox peer) once it is
committed, or once it is known to be junk (cover, undecryptable, unknown
sender): a storage failure leaves it for the next fetch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Final

import trio
from libp2p.peer.id import ID

from chhaya import ChhayaError, StorageError, TransportError, VerificationError
from chhaya.identity import PublicIdentity
from chhaya.prekeys import INITIAL_MESSAGE_TAG, InitialMessage
from chhaya.sealed import open_envelope_untrusted, seal
from chhaya.session import initiator_from_bundle, responder_from_initial

from ..delivery import Delivery, peer_name
from ..mailbox_db import MailboxStore
from ..p2p import closest_mailbox_peers, deposit, fetch, mailbox_id_for

if TYPE_CHECKING:
    from chhaya.channel import HandshakeComplete

    from ._user import Resolved, UserNode

__all__ = ["MAILBOX_PEERS", "MailboxChannel", "OfflineDelivery", "mailbox_upkeep"]

log = logging.getLogger("chhaya.offline")

#: Mailbox peers an envelope is deposited with (the K closest to the mailbox id).
MAILBOX_PEERS: Final = 3
#: Envelopes fetched per round.
FETCH_BATCH: Final = 100
#: Receipts for mailbox messages are deposited in the background, this many at once.
DEPOSIT_WORKERS: Final = 8
#: Bound on receipts waiting to be deposited (more are dropped: the sender re-sends).
DEPOSIT_QUEUE: Final = 4096
#: How long a peer's mailbox peers, once looked up, are reused for deposits
#: (otherwise every envelope, receipts included, costs an iterative DHT walk).
PEERS_CACHE_S: Final = 30.0
#: Bound on the number of peers whose mailbox peers are remembered.
PEERS_CACHE_MAX: Final = 1024


class MailboxChannel:
    """A one-way "channel" to a peer's mailboxes, for :class:`Delivery`.

    With ``background`` a send only queues the envelope for depositing and
    returns: used for receipts of messages taken from mailboxes, whose state
    is already committed (a receipt that is lost only makes the sender
    re-send, and the copy is dropped by id).
    """

    def __init__(
        self, offline: OfflineDelivery, peer: PublicIdentity, *, background: bool = False
    ) -> None:
        self._offline = offline
        self._peer = peer
        self._background = background

    @property
    def handshake(self) -> HandshakeComplete | None:
        return None

    @property
    def peer_identity(self) -> bytes:
        return self._peer.signing_key

    async def send(self, data: bytes) -> None:
        if self._background:
            self._offline.deposit_later(self._peer.signing_key, data)
        else:
            await self._offline.deposit(self._peer.signing_key, data)

    async def receive(self) -> bytes | None:
        return None


class OfflineDelivery:
    def __init__(self, node: UserNode) -> None:
        self._node = node
        #: Envelopes deposited with at least one mailbox peer.
        self.deposited = 0
        #: Envelopes taken from our mailboxes and committed.
        self.fetched = 0
        #: Envelopes from mailboxes dropped (cover, junk, unverifiable sender).
        self.dropped = 0
        #: Deposits only: identity key -> (trio time of the lookup, its mailbox peers).
        self._peers_cache: dict[bytes, tuple[float, list[ID]]] = {}
        self._later_send, self._later_receive = trio.open_memory_channel[tuple[bytes, bytes]](
            DEPOSIT_QUEUE
        )

    # ------------------------------------------------------------------ depositing

    async def _mailbox_peers(self, identity_key: bytes) -> list[ID]:
        dht = self._node.dht
        with trio.move_on_after(15):
            return list(await closest_mailbox_peers(dht, identity_key, MAILBOX_PEERS))
        raise TransportError("no mailbox peers found in time")

    async def _deposit_peers(self, identity_key: bytes) -> list[ID]:
        """``_mailbox_peers``, reused for :data:`PEERS_CACHE_S` (fetching never reuses)."""
        now = trio.current_time()
        cached = self._peers_cache.get(identity_key)
        if cached is not None and now - cached[0] < PEERS_CACHE_S:
            return cached[1]
        peers = await self._mailbox_peers(identity_key)
        if peers:
            if len(self._peers_cache) >= PEERS_CACHE_MAX:
                self._peers_cache.clear()
            self._peers_cache[identity_key] = (now, peers)
        return peers

    async def deposit(self, identity_key: bytes, envelope: bytes) -> None:
        """Leave ``envelope`` with the mailbox peers of ``identity_key`` (at least one)."""
        mailbox_id = mailbox_id_for(identity_key)
        stored = 0

        async def deposit_with(peer: ID) -> None:
            nonlocal stored
            try:
                stored += await deposit(self._node.host, peer, mailbox_id, envelope)
            except ChhayaError as exc:
                log.info("mailbox peer %s did not take an envelope: %s", peer, exc)

        async with trio.open_nursery() as nursery:  # with every mailbox peer at once
            for peer in await self._deposit_peers(identity_key):
                nursery.start_soon(deposit_with, peer)
        if not stored:
            self._peers_cache.pop(identity_key, None)  # look them up afresh next time
            raise TransportError("no mailbox peer took the envelope")
        self.deposited += 1

    async def send(self, binding: Resolved, body: bytes, message_id: bytes) -> None:
        """Commit ``body`` for the peer of ``binding``, then deposit it (see the module doc).

        Runs under the peer's conversation lock, so that no other copy of the
        conversation is in use meanwhile (two copies would encrypt with the
        same message keys).
        """
        node = self._node
        peer = binding.bundle.identity
        async with node.conversation_lock(peer.signing_key):
            link = node.live_link(peer.signing_key)
            if link is not None:  # a channel opened meanwhile: it owns the conversation
                await link.delivery.send_text(body, message_id)
                return
            await self._send_locked(binding, body, message_id)

    async def _send_locked(self, binding: Resolved, body: bytes, message_id: bytes) -> None:
        node = self._node
        peer = binding.bundle.identity
        name = peer_name(peer)
        cert = node.certificate_for_sending()
        if await node.store.load_session(name) is not None:
            delivery = await Delivery.resume(
                MailboxChannel(self, peer), node.store, node.identity, cert, peer,
                rng=node.rng, clock=node.clock,
            )  # fmt: skip
            await delivery.send_text(body, message_id)
            return
        if binding.bundle.prekeys is None:
            raise TransportError("the peer is offline and publishes no prekeys")
        now = node.clock()
        conversation, mid, initial = initiator_from_bundle(
            node.identity, binding.bundle.prekeys, body, now, node.rng, message_id
        )
        envelope = seal(peer.agreement_key, cert, initial.encode(), node.rng)
        await node.store.commit_outgoing(name, conversation.encode(), mid, body, envelope, now)
        await self.deposit(peer.signing_key, envelope)

    def deposit_later(self, identity_key: bytes, envelope: bytes) -> None:
        """Queue ``envelope`` for depositing in the background (dropped if the queue is full)."""
        try:
            self._later_send.send_nowait((identity_key, envelope))
        except trio.WouldBlock:
            log.info("deposit queue full: an envelope was not deposited")

    async def _deposit_worker(self) -> None:
        async for identity_key, envelope in self._later_receive:
            try:
                await self.deposit(identity_key, envelope)
            except ChhayaError as exc:
                log.info("background deposit failed: %s", exc)

    # ------------------------------------------------------------------ fetching

    async def fetch_all(self) -> int:
        """Fetch and process everything waiting in our mailboxes; the number committed."""
        node = self._node
        own_key = node.identity.public.signing_key
        before = self.fetched
        for peer in await self._mailbox_peers(own_key):
            try:
                await fetch(node.host, peer, node.identity, self._handle_batch, max=FETCH_BATCH)
            except ChhayaError as exc:
                log.info("fetch from mailbox peer %s failed: %s", peer, exc)
        return self.fetched - before

    async def run(self, poll_s: float) -> None:
        """Fetch on start, then every ``poll_s`` seconds; deposit queued receipts."""
        async with trio.open_nursery() as nursery:
            for _ in range(DEPOSIT_WORKERS):
                nursery.start_soon(self._deposit_worker)
            while True:
                try:
                    got = await self.fetch_all()
                    if got:
                        log.info("took %d messages from mailboxes", got)
                except ChhayaError as exc:
                    log.info("mailbox fetch: %s", exc)
                await trio.sleep(poll_s)

    async def _handle_batch(self, items: Sequence[tuple[bytes, bytes]]) -> list[bytes]:
        """Process one fetched batch; the ids to acknowledge.

        Envelopes are opened and their senders verified one by one; each
        sender's ratchet messages are then committed together (one
        transaction, one receipt per 256 ids: :meth:`Delivery.handle_many`),
        in the order they came. A first contact is handled on its own, after
        the messages of that sender that came before it.
        """
        done: list[bytes] = []
        bindings: dict[str, Resolved] = {}
        runs: dict[bytes, tuple[PublicIdentity, list[tuple[bytes, bytes]]]] = {}
        deliveries: dict[bytes, tuple[int, Delivery]] = {}

        async def flush(key: bytes) -> None:
            peer, run = runs.pop(key)
            try:
                await self._handle_run(peer, [envelope for _, envelope in run], deliveries)
            except (StorageError, TransportError) as exc:
                log.warning("mailbox envelopes kept for later: %s", exc)
                return
            except ChhayaError as exc:  # e.g. no conversation to continue: unreadable
                self.dropped += len(run)
                log.info("dropped %d mailbox envelopes: %s", len(run), exc)
            done.extend(envelope_id for envelope_id, _ in run)

        for envelope_id, envelope in items:
            try:
                sender = await self._classify(envelope, bindings)
            except (StorageError, TransportError) as exc:
                # Our own trouble (the store, the directory unreachable): not the
                # envelope's fault, so keep it at the mailbox for the next fetch.
                log.warning("mailbox envelope kept for later: %s", exc)
                continue
            except (ChhayaError, trio.TooSlowError) as exc:
                self.dropped += 1
                log.info("dropped a mailbox envelope: %s", exc)
                done.append(envelope_id)
                continue
            if sender is None:  # cover
                self.dropped += 1
                done.append(envelope_id)
                continue
            peer, initial = sender
            key = peer.signing_key
            if initial is None:
                runs.setdefault(key, (peer, []))[1].append((envelope_id, envelope))
                continue
            if key in runs:
                await flush(key)
            try:
                async with self._node.conversation_lock(key):
                    await self._first_contact(peer, initial)
            except (StorageError, TransportError) as exc:
                log.warning("mailbox envelope kept for later: %s", exc)
                continue
            except ChhayaError as exc:
                self.dropped += 1
                log.info("dropped a mailbox envelope: %s", exc)
            done.append(envelope_id)
        for key in list(runs):
            await flush(key)
        return done

    async def _classify(
        self, envelope: bytes, bindings: dict[str, Resolved]
    ) -> tuple[PublicIdentity, InitialMessage | None] | None:
        """Open ``envelope`` and verify its sender: None for cover, else the
        sender and, for a first contact, its InitialMessage."""
        node = self._node
        opened = open_envelope_untrusted(node.identity, envelope, node.clock())
        if opened is None:
            return None
        cert = opened.certificate
        binding = bindings.get(cert.handle)
        if binding is None:
            pinned = await node.pinned_by_identity(cert.identity_key)
            binding = pinned if pinned is not None else await node.resolve(cert.handle)
            bindings[cert.handle] = binding
        peer = binding.bundle.identity
        if peer.signing_key != cert.identity_key or peer.agreement_key != cert.agreement_key:
            raise VerificationError("sender", "the certificate's handle names another identity")
        if opened.content.startswith(INITIAL_MESSAGE_TAG):
            return peer, InitialMessage.decode_untrusted(opened.content)
        return peer, None

    async def _handle_run(
        self,
        peer: PublicIdentity,
        envelopes: Sequence[bytes],
        deliveries: dict[bytes, tuple[int, Delivery]],
    ) -> None:
        """Commit one sender's ratchet messages, under its conversation lock."""
        node = self._node
        key = peer.signing_key
        async with node.conversation_lock(key):
            link = node.live_link(key)
            if link is not None:  # the channel's Delivery owns the conversation
                before = link.delivery.received
                await link.delivery.handle_many(envelopes)
                self.fetched += link.delivery.received - before
                return
            generation = node.link_generation(key)
            cached = deliveries.get(key)
            delivery = cached[1] if cached is not None and cached[0] == generation else None
            if delivery is None:  # (re)load: a channel may have moved the conversation on
                delivery = await Delivery.resume(
                    MailboxChannel(self, peer, background=True), node.store, node.identity,
                    node.certificate_for_sending(), peer, rng=node.rng, clock=node.clock,
                )  # fmt: skip
                deliveries[key] = (generation, delivery)
            before = delivery.received
            await delivery.handle_many(envelopes)
            self.fetched += delivery.received - before

    async def _first_contact(self, peer: PublicIdentity, initial: InitialMessage) -> None:
        node = self._node
        if initial.initiator_identity != peer:
            raise VerificationError("sender", "the initial message names another identity")
        prekeys = node.prekeys
        conversation, text, _ = responder_from_initial(node.identity, prekeys, initial, node.rng)
        now = node.clock()
        if await node.store.commit_incoming(
            peer_name(peer), conversation.encode(), text.message_id, text.text,
            text.sent_at_ms, now,
        ):  # fmt: skip
            self.fetched += 1
            node.message_arrived()


#: How often expired envelopes are purged from the mailbox store.
PURGE_INTERVAL_S: Final = 600.0


async def mailbox_upkeep(store: MailboxStore | None, clock: Callable[[], int]) -> None:
    """Purge expired envelopes from the envelopes this node keeps for others."""
    if store is None:
        return
    while True:
        try:
            purged = await trio.to_thread.run_sync(store.purge_expired, clock())
            if purged:
                log.info("purged %d expired mailbox envelopes", purged)
        except ChhayaError as exc:
            log.warning("mailbox purge failed: %s", exc)
        await trio.sleep(PURGE_INTERVAL_S)
