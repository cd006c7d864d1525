"""Delivery of sealed-sender messages over one established channel.

How it works
------------
One :class:`Delivery` serves one :class:`~node.drivers.SecureChannel` between
two users whose identities are pinned. A fresh conversation is set up from
the channel handshake: the listener makes the responder side and sends the
session hello as the first channel message; the dialer waits for it and
makes the initiator side (:meth:`Delivery.establish`). A conversation stored
earlier continues over a new channel with :meth:`Delivery.resume`.

Every ratchet message travels inside a sealed envelope addressed to the
peer's identity agreement key and carrying our sender certificate.

The logstore rule: a ratchet state is committed before any ciphertext made
with it leaves the node. ``send_text`` commits the new state, the message
and its envelope (``commit_outgoing``) and only then sends. On receipt of a
text, the state that decrypted it is committed with the message, and the
state after encrypting the DELIVERED receipt as the next version, in one
transaction (``commit_incoming_and_reply``, which drops duplicate messages by
id); only then does the receipt leave. A receipt marks our messages delivered,
in one transaction with the state that decrypted it (``commit_receipts``).
Changes to the conversation and the commit of the resulting state happen
under one lock, so stored versions follow the order in which the state
changed.

Retries: :meth:`Delivery.run_retries` (run it beside :meth:`Delivery.run`)
re-sends every outbox entry for this peer when it falls due, under the same
message id but re-encrypted as a new ratchet message, with exponential
backoff (:func:`~node.store.retry_delay_ms`). A DELIVERED receipt removes the
entry from the outbox, which ends its retries. After ``max_attempts`` sends
an entry is given up: it stays in the outbox (a late receipt still marks it
delivered; its history status stays 'sent') but is rescheduled to
:data:`NEVER` and logged, so it is not sent again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Literal, Protocol

import trio

from chhaya import ChhayaError, DecodeError, TransportError, VerificationError
from chhaya.crypto import Rng
from chhaya.identity import PrivateIdentity, PublicIdentity
from chhaya.sealed import CertificateCache, SenderCertificate, open_envelope_untrusted, seal
from chhaya.session import (
    MAX_RECEIPT_IDS,
    Conversation,
    ReceiptReceived,
    ReceiptStatus,
    TextReceived,
    initiator_from_channel,
    responder_from_channel,
)

from .clock import system_rng, wall_ms
from .store import LogStore, retry_delay_ms

if TYPE_CHECKING:
    from chhaya.channel import HandshakeComplete

__all__ = ["DEFAULT_MAX_ATTEMPTS", "NEVER", "Delivery", "MessageChannel", "peer_name"]

log = logging.getLogger("chhaya.delivery")

#: Sends of one message (the first one included) before its retries stop.
DEFAULT_MAX_ATTEMPTS = 8
#: The ``next_attempt_ms`` of an outbox entry whose retries were given up.
NEVER = 2**63 - 1


class MessageChannel(Protocol):
    """What Delivery needs from a transport: a :class:`~node.drivers.SecureChannel`,
    or a mailbox (sends deposit envelopes, nothing is received, no handshake)."""

    @property
    def handshake(self) -> HandshakeComplete | None: ...

    @property
    def peer_identity(self) -> bytes: ...

    async def send(self, data: bytes) -> None: ...

    async def receive(self) -> bytes | None: ...


def peer_name(peer: PublicIdentity) -> str:
    """The logstore's name for a peer: the hex of its identity signing key."""
    return peer.signing_key.hex()


class Delivery:
    """Sends and receives messages with one peer over one channel.

    Build it with :meth:`establish` (new conversation) or :meth:`resume`
    (stored conversation); run :meth:`run` in a task to receive.
    """

    def __init__(
        self,
        channel: MessageChannel,
        store: LogStore,
        identity: PrivateIdentity,
        certificate: SenderCertificate,
        peer: PublicIdentity,
        conversation: Conversation,
        *,
        rng: Rng = system_rng,
        clock: Callable[[], int] = wall_ms,
    ) -> None:
        if channel.handshake is not None and channel.peer_identity != peer.signing_key:
            raise VerificationError("peer-mismatch", "the channel's peer is not the pinned peer")
        self._channel = channel
        self._store = store
        self._identity = identity
        self._certificate = certificate
        self._peer = peer
        self._name = peer_name(peer)
        self._conversation = conversation
        self._rng = rng
        self._clock = clock
        self._lock = trio.Lock()
        self._changed = trio.Event()
        # The peer seals everything under one certificate (a few, across
        # renewals): verify its signature once, not on every envelope. The
        # expiry is still checked on every envelope.
        self._certificates = CertificateCache(max_entries=4)
        #: Texts newly stored (duplicates not counted).
        self.received = 0
        #: Texts that were duplicates of stored ones.
        self.duplicates = 0
        #: Outgoing messages newly marked delivered.
        self.delivered = 0
        #: Channel messages dropped: bad envelope, wrong sender, rejected by the ratchet.
        self.rejected = 0
        #: Outbox entries re-sent by :meth:`run_retries`.
        self.retried = 0
        #: Outbox entries whose retries were given up after the maximum attempts.
        self.given_up = 0
        #: Size of the last text envelope sent (cover traffic copies real sizes).
        self.last_envelope_size = 0

    # ------------------------------------------------------------- set-up

    @classmethod
    async def establish(
        cls,
        channel: MessageChannel,
        store: LogStore,
        identity: PrivateIdentity,
        certificate: SenderCertificate,
        peer: PublicIdentity,
        *,
        dialer: bool,
        hello: bytes | None = None,
        rng: Rng = system_rng,
        clock: Callable[[], int] = wall_ms,
    ) -> Delivery:
        """Start a new conversation on a fresh channel and commit its first state.

        The listener (``dialer=False``) sends the session hello; the dialer
        waits for it (or uses ``hello``, if the caller already received it).
        Raises TransportError if the channel ends first, DecodeError for a
        malformed hello. The first state is saved before the hello leaves.
        """
        handshake = channel.handshake
        if handshake is None:
            raise VerificationError("no-handshake", "the channel is not established")
        if handshake.peer_identity != peer.signing_key:
            raise VerificationError("peer-mismatch", "the channel's peer is not the pinned peer")
        own_key = identity.public.signing_key
        name = peer_name(peer)
        if dialer:
            if hello is None:
                hello = await channel.receive()
            if hello is None:
                raise TransportError("channel closed before the session hello")
            conversation = initiator_from_channel(
                handshake.ratchet_root, handshake.transcript_hash, own_key, peer.signing_key,
                hello, rng,
            )  # fmt: skip
            await store.save_session(name, conversation.encode(), clock())
        else:
            conversation, hello = responder_from_channel(
                handshake.ratchet_root, handshake.transcript_hash, peer.signing_key, own_key, rng
            )
            await store.save_session(name, conversation.encode(), clock())
            await channel.send(hello)
        return cls(channel, store, identity, certificate, peer, conversation, rng=rng, clock=clock)

    @classmethod
    async def resume(
        cls,
        channel: MessageChannel,
        store: LogStore,
        identity: PrivateIdentity,
        certificate: SenderCertificate,
        peer: PublicIdentity,
        *,
        rng: Rng = system_rng,
        clock: Callable[[], int] = wall_ms,
    ) -> Delivery:
        """Continue the conversation stored for ``peer`` over ``channel``.

        Raises DecodeError if nothing is stored (or the state is corrupt).
        """
        state = await store.load_session(peer_name(peer))
        if state is None:
            raise DecodeError("no stored conversation with this peer")
        conversation = Conversation.decode_untrusted(state)
        return cls(channel, store, identity, certificate, peer, conversation, rng=rng, clock=clock)

    # ------------------------------------------------------------- properties

    @property
    def peer(self) -> str:
        """The peer's logstore name."""
        return self._name

    @property
    def conversation(self) -> Conversation:
        return self._conversation

    def _seal(self, ratchet_message: bytes) -> bytes:
        return seal(self._peer.agreement_key, self._certificate, ratchet_message, self._rng)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    def _can_send(self) -> bool:
        return self._conversation.can_send

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Wait until ``predicate()`` holds, checking after each received message."""
        while not predicate():
            await self._changed.wait()

    # ------------------------------------------------------------- sending

    async def send_text(self, text: bytes, message_id: bytes | None = None) -> bytes:
        """Commit, then send, a new text; return its message id.

        ``message_id`` (random if not given) lets a caller that sees the send
        fail find out from the store whether the text was committed (and so
        will be retried) before it tries again.
        """
        async with self._lock:
            now = self._clock()
            mid, ratchet_message = self._conversation.send_text(text, now, self._rng, message_id)
            envelope = self._seal(ratchet_message)
            self.last_envelope_size = len(envelope)
            await self._store.commit_outgoing(
                self._name, self._conversation.encode(), mid, text, envelope, now
            )
        await self._channel.send(envelope)
        return mid

    async def resend(self, message_id: bytes, text: bytes, next_attempt_ms: int) -> bool:
        """Re-encrypt a message still in the outbox under its id, commit, then send.

        Returns False, sending nothing, if it is no longer in the outbox.
        """
        async with self._lock:
            now = self._clock()
            _, ratchet_message = self._conversation.send_text(text, now, self._rng, message_id)
            envelope = self._seal(ratchet_message)
            if not await self._store.commit_resend(
                self._name, self._conversation.encode(), message_id, envelope, now, next_attempt_ms
            ):
                return False
        await self._channel.send(envelope)
        return True

    async def run_retries(
        self,
        *,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        delay_ms: Callable[[int], int] = retry_delay_ms,
        poll_s: float = 1.0,
        batch: int = 100,
    ) -> None:
        """Re-send this peer's due outbox entries until the channel fails.

        Sleeps until the earliest outbox entry is due, at most ``poll_s`` at a
        time so that new entries are noticed. Each due entry of this peer is
        re-sent with :meth:`resend` and rescheduled ``delay_ms(attempts)``
        after now, ``attempts`` counting the sends so far (the new one
        included). The send that reaches ``max_attempts`` is the last one:
        the entry is then rescheduled to :data:`NEVER`, logged and counted in
        ``given_up``. The first pass on a channel re-sends every waiting entry
        of this peer, due or not. A conversation that may not send yet (a
        responder before the initiator's first message) waits. Returns when
        sending fails with TransportError (the entries stay in the outbox for
        the next channel); cancel it otherwise.
        """
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        first = True
        while True:
            if not self._conversation.can_send:
                # A responder may send only after the initiator's first message.
                await self.wait_until(self._can_send)
                continue
            now = self._clock()
            # On a new channel everything waiting goes out at once: the last
            # channel may have lost it, and the backoff was for that channel.
            horizon = NEVER - 1 if first else now
            first = False
            due = [
                e for e in await self._store.pending_outbox(horizon, batch) if e.peer == self._name
            ]
            for entry in due:
                try:
                    await self._retry(entry.message_id, entry.attempts, max_attempts, delay_ms)
                except TransportError as exc:
                    log.info("retries to %s stopped: %s", self._name[:16], exc)
                    return
            if due:
                await trio.sleep(0)  # more may be due at once
                continue
            next_due = await self._store.next_due_ms()
            now = self._clock()
            if next_due is None or next_due <= now:
                # Empty, or only other peers' entries are due: poll.
                await trio.sleep(poll_s)
            else:
                await trio.sleep(min(poll_s, (next_due - now) / 1000))

    async def _retry(
        self,
        message_id: bytes,
        attempts: int,
        max_attempts: int,
        delay_ms: Callable[[int], int],
    ) -> None:
        """Re-send one due outbox entry that has been sent ``attempts`` times."""
        if attempts >= max_attempts:
            # Given up earlier with a higher limit, or never rescheduled: stop now.
            if await self._store.reschedule(message_id, NEVER):
                self._give_up(message_id, attempts)
            return
        text = await self._store.get_message_body(message_id)
        if text is None:
            log.warning("outbox entry %s has no stored message", message_id.hex())
            await self._store.reschedule(message_id, NEVER)
            return
        sent = attempts + 1
        last = sent >= max_attempts
        next_attempt = NEVER if last else min(NEVER, self._clock() + delay_ms(sent))
        if not await self.resend(message_id, text, next_attempt):
            return  # delivered meanwhile
        self.retried += 1
        if last:
            self._give_up(message_id, sent)
        self._notify()

    def _give_up(self, message_id: bytes, attempts: int) -> None:
        log.warning(
            "giving up on message %s to %s after %d sends; it stays in the outbox",
            message_id.hex(),
            self._name[:16],
            attempts,
        )
        self.given_up += 1
        self._notify()

    # ------------------------------------------------------------- receiving

    async def run(self) -> None:
        """Receive until the peer closes the channel.

        Messages that fail to open, come from another sender, or are rejected
        by the ratchet are counted in ``rejected`` and dropped.
        """
        while (data := await self._channel.receive()) is not None:
            await self.handle(data)

    async def handle(self, data: bytes) -> None:
        """Process one envelope received on the channel."""
        try:
            opened = open_envelope_untrusted(
                self._identity, data, self._clock(), cache=self._certificates
            )
        except ChhayaError as exc:
            self._reject(f"bad envelope: {exc}")
            return
        if opened is None:  # cover traffic
            return
        cert = opened.certificate
        if (cert.identity_key, cert.agreement_key) != (
            self._peer.signing_key,
            self._peer.agreement_key,
        ):
            self._reject("envelope from another sender")
            return
        receipt: bytes | None = None
        async with self._lock:
            try:
                event = self._conversation.receive(opened.content, self._rng)
            except ChhayaError as exc:
                self._reject(f"ratchet rejected a message: {exc}")
                return
            now = self._clock()
            if isinstance(event, TextReceived):
                text_state = self._conversation.encode()
                # Acknowledge duplicates too: the first receipt may have been lost.
                ratchet_message = self._conversation.send_receipt(
                    ReceiptStatus.DELIVERED, [event.message_id], now, self._rng
                )
                receipt = self._seal(ratchet_message)
                # One transaction: the message with the state that decrypted it,
                # then the state after the receipt, before the receipt leaves.
                if await self._store.commit_incoming_and_reply(
                    self._name,
                    text_state,
                    event.message_id,
                    event.text,
                    event.sent_at_ms,
                    now,
                    self._conversation.encode(),
                ):
                    self.received += 1
                else:
                    self.duplicates += 1
            else:
                assert isinstance(event, ReceiptReceived)
                status: Literal["delivered", "read"] = (
                    "delivered" if event.status is ReceiptStatus.DELIVERED else "read"
                )
                self.delivered += await self._store.commit_receipts(
                    self._name, self._conversation.encode(), event.message_ids, status, now
                )
        if receipt is not None:
            await self._channel.send(receipt)
        self._notify()

    async def handle_many(self, envelopes: Sequence[bytes]) -> None:
        """Process envelopes of this peer taken in one go (from a mailbox).

        Like :meth:`handle` for each, but the texts are committed together,
        each with the state that decrypted it, in one transaction, and
        acknowledged by one receipt per :data:`MAX_RECEIPT_IDS` ids instead of
        one each. Texts are always committed before any other state (a
        receipt in the middle of the batch), since their message keys are
        spent once decrypted.
        """
        receipts: list[bytes] = []
        async with self._lock:
            pending: list[tuple[bytes, TextReceived]] = []
            for data in envelopes:
                try:
                    opened = open_envelope_untrusted(
                        self._identity, data, self._clock(), cache=self._certificates
                    )
                except ChhayaError as exc:
                    self._reject(f"bad envelope: {exc}")
                    continue
                if opened is None:  # cover traffic
                    continue
                cert = opened.certificate
                if (cert.identity_key, cert.agreement_key) != (
                    self._peer.signing_key,
                    self._peer.agreement_key,
                ):
                    self._reject("envelope from another sender")
                    continue
                try:
                    event = self._conversation.receive(opened.content, self._rng)
                except ChhayaError as exc:
                    self._reject(f"ratchet rejected a message: {exc}")
                    continue
                if isinstance(event, TextReceived):
                    pending.append((self._conversation.encode(), event))
                    continue
                assert isinstance(event, ReceiptReceived)
                receipts += await self._commit_texts(pending)
                pending = []
                status: Literal["delivered", "read"] = (
                    "delivered" if event.status is ReceiptStatus.DELIVERED else "read"
                )
                self.delivered += await self._store.commit_receipts(
                    self._name, self._conversation.encode(), event.message_ids, status,
                    self._clock(),
                )  # fmt: skip
            receipts += await self._commit_texts(pending)
        for receipt in receipts:
            await self._channel.send(receipt)
        self._notify()

    async def _commit_texts(self, pending: Sequence[tuple[bytes, TextReceived]]) -> list[bytes]:
        """Commit decrypted texts and the receipts for them; the sealed receipts to send."""
        if not pending:
            return []
        now = self._clock()
        ids = [event.message_id for _, event in pending]
        receipts = [
            self._seal(
                self._conversation.send_receipt(
                    ReceiptStatus.DELIVERED, ids[i : i + MAX_RECEIPT_IDS], now, self._rng
                )
            )
            for i in range(0, len(ids), MAX_RECEIPT_IDS)
        ]
        new = await self._store.commit_incoming_batch(
            self._name,
            [(state, e.message_id, e.text, e.sent_at_ms) for state, e in pending],
            now,
            self._conversation.encode(),
        )
        self.received += sum(new)
        self.duplicates += len(new) - sum(new)
        return receipts

    def _reject(self, why: str) -> None:
        log.info("dropped a message from %s: %s", self._name[:16], why)
        self.rejected += 1
        self._notify()
