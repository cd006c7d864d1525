"""Certified directory heads gossiped on ``/chhaya/vkd/heads/1`` (gossipsub v1.1).

A message is ``"CHD1" || SignedHead || var16(QuorumCertificate)``. Gossip is
only a transport: every node checks each head itself with its
:class:`~quorum.HeadTracker` (directory signature, quorum certificate,
rollback, equivocation) before keeping it.

The check runs as a py-libp2p *topic validator*, so a head that fails it is
neither delivered nor forwarded to other peers. A head that verifies but is
not newer than the one we hold (a repeat of our latest epoch) is also not
forwarded: only news travels. Rejections are counted by reason in
:attr:`HeadGossip.rejected`.

py-libp2p's gossipsub defaults are unfit (``libp2p-notes.md`` trap 4): the
heartbeat is 120 s and spam protection drops more than 10 messages/s per
forwarding peer and topic. :class:`HeadGossip` uses a 1 s heartbeat and a
limit of :data:`MAX_MESSAGES_PER_TOPIC_PER_S`.

One :class:`HeadGossip` owns the host's only ``Pubsub``; other topics can be
joined through :attr:`HeadGossip.pubsub`.
"""

from __future__ import annotations

import logging
from collections import Counter
from contextlib import AsyncExitStack
from dataclasses import dataclass
from types import TracebackType
from typing import Final

import trio
from libp2p.abc import IHost, ISubscriptionAPI
from libp2p.peer.id import ID
from libp2p.pubsub.gossipsub import PROTOCOL_ID_V11, GossipSub
from libp2p.pubsub.pb import rpc_pb2
from libp2p.pubsub.pubsub import Pubsub
from libp2p.tools.anyio_service import background_trio_service

from chhaya import ChhayaError, DecodeError, LocalProtocolError
from chhaya.wire import Reader, Writer
from quorum import (
    MAX_WITNESSES,
    SIGNED_HEAD_SIZE,
    EquivocationEvidence,
    HeadTracker,
    QuorumCertificate,
    SignedHead,
)

__all__ = [
    "CERTIFIED_HEAD_MAGIC",
    "HEADS_TOPIC",
    "MAX_CERTIFIED_HEAD_SIZE",
    "CertifiedHead",
    "HeadGossip",
]

log = logging.getLogger("chhaya.p2p.heads")

HEADS_TOPIC: Final = "/chhaya/vkd/heads/1"
CERTIFIED_HEAD_MAGIC: Final = b"CHD1"

#: Largest encoded QuorumCertificate: magic, set id, var16 bitmap, BLS signature.
MAX_CERTIFICATE_SIZE: Final = 4 + 32 + 2 + (MAX_WITNESSES + 7) // 8 + 96
MAX_CERTIFIED_HEAD_SIZE: Final = 4 + SIGNED_HEAD_SIZE + 2 + MAX_CERTIFICATE_SIZE

#: Gossipsub mesh degree (D, D_low, D_high) and heartbeat.
DEGREE, DEGREE_LOW, DEGREE_HIGH = 6, 4, 12
HEARTBEAT_INTERVAL_S: Final = 1
#: Per forwarding peer and topic; py-libp2p's default of 10 is too low for chat.
MAX_MESSAGES_PER_TOPIC_PER_S: Final = 1000.0


@dataclass(frozen=True)
class CertifiedHead:
    """A directory-signed head with its quorum certificate."""

    signed: SignedHead
    certificate: QuorumCertificate

    def encode(self) -> bytes:
        return (
            Writer()
            .raw(CERTIFIED_HEAD_MAGIC)
            .raw(self.signed.encode())
            .var16(self.certificate.encode(), MAX_CERTIFICATE_SIZE)
            .getvalue()
        )

    @classmethod
    def decode_untrusted(cls, data: bytes) -> CertifiedHead:
        """Parse peer bytes; raises only :class:`DecodeError`. Checks nothing else."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise DecodeError("input is not bytes")
        if len(data) > MAX_CERTIFIED_HEAD_SIZE:
            raise DecodeError(f"certified head too long ({len(data)} bytes)")
        r = Reader(data)
        r.expect(CERTIFIED_HEAD_MAGIC, "certified head magic")
        signed = SignedHead.decode_untrusted(r.fixed(SIGNED_HEAD_SIZE, "signed head"))
        certificate = QuorumCertificate.decode_untrusted(
            r.var16(MAX_CERTIFICATE_SIZE, "quorum certificate")
        )
        r.finish()
        return cls(signed, certificate)


class HeadGossip:
    """Gossip certified heads over a running host; keep those ``tracker`` accepts.

    Use as ``async with HeadGossip(host, tracker) as gossip:``. Start it before
    connecting to peers, or wait for :attr:`mesh_peers` to fill: gossipsub
    grafts new peers into the mesh on its next heartbeat.
    """

    def __init__(
        self,
        host: IHost,
        tracker: HeadTracker,
        *,
        heartbeat_interval: int = HEARTBEAT_INTERVAL_S,
        max_messages_per_topic_per_s: float = MAX_MESSAGES_PER_TOPIC_PER_S,
    ) -> None:
        self._host = host
        self._tracker = tracker
        self.router = GossipSub(
            protocols=[PROTOCOL_ID_V11],
            degree=DEGREE,
            degree_low=DEGREE_LOW,
            degree_high=DEGREE_HIGH,
            heartbeat_interval=heartbeat_interval,
            spam_protection_enabled=True,
            max_messages_per_topic_per_second=max_messages_per_topic_per_s,
        )
        self.pubsub = Pubsub(host, self.router)
        #: Messages refused, by reason ("decode", a VerificationError check, "stale").
        self.rejected: Counter[str] = Counter()
        #: Heads accepted from peers as a new latest.
        self.accepted = 0
        self._changed = trio.Event()
        self._stack: AsyncExitStack | None = None

    # -- lifecycle -------------------------------------------------------------

    async def __aenter__(self) -> HeadGossip:
        if self._stack is not None:
            raise LocalProtocolError("HeadGossip is already running")
        async with AsyncExitStack() as stack:
            await stack.enter_async_context(background_trio_service(self.pubsub))
            await stack.enter_async_context(background_trio_service(self.router))
            await self.pubsub.wait_until_ready()
            self.pubsub.set_topic_validator(HEADS_TOPIC, self._validate, False)
            subscription = await self.pubsub.subscribe(HEADS_TOPIC)
            nursery = await stack.enter_async_context(trio.open_nursery())
            nursery.start_soon(self._drain, subscription)
            stack.callback(nursery.cancel_scope.cancel)
            self._stack = stack.pop_all()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        stack, self._stack = self._stack, None
        if stack is None:
            return False
        # No cancel scope of our own around this: the stack holds nurseries
        # opened in __aenter__, and trio requires them to close in order.
        return bool(await stack.__aexit__(exc_type, exc, tb))

    @staticmethod
    async def _drain(subscription: ISubscriptionAPI) -> None:
        # The validator has done the work; empty the queue so it never fills.
        while True:
            await subscription.get()

    # -- state -----------------------------------------------------------------

    @property
    def latest(self) -> SignedHead | None:
        """The newest head the tracker accepted, from gossip or :meth:`publish`."""
        return self._tracker.latest

    @property
    def evidence(self) -> EquivocationEvidence | None:
        """Proof that the directory signed two heads for one epoch, once seen."""
        return self._tracker.evidence

    @property
    def mesh_peers(self) -> frozenset[ID]:
        """Peers in our gossipsub mesh for the heads topic."""
        return frozenset(self.router.mesh.get(HEADS_TOPIC, ()))

    @property
    def topic_peers(self) -> frozenset[ID]:
        """Peers known to be subscribed to the heads topic."""
        return frozenset(self.pubsub.peer_topics.get(HEADS_TOPIC, ()))

    async def wait_for_epoch(self, epoch: int, timeout: float) -> SignedHead:
        """Wait for an accepted head of ``epoch`` or later; TimeoutError after ``timeout`` s."""
        with trio.move_on_after(timeout):
            while True:
                latest = self._tracker.latest
                if latest is not None and latest.head.epoch >= epoch:
                    return latest
                await self._changed.wait()
        raise TimeoutError(f"no certified head of epoch {epoch} within {timeout} s")

    # -- publishing and receiving ------------------------------------------------

    async def publish(self, signed: SignedHead, certificate: QuorumCertificate) -> None:
        """Check a certified head locally, keep it, and gossip it.

        Raises :class:`~chhaya.VerificationError` (and sends nothing) if our
        own tracker refuses it.
        """
        if self._stack is None:
            raise LocalProtocolError("HeadGossip is not running")
        self._accept(signed, certificate)
        await self.pubsub.publish(HEADS_TOPIC, CertifiedHead(signed, certificate).encode())

    def _accept(self, signed: SignedHead, certificate: QuorumCertificate) -> bool:
        """Accept into the tracker; True if it is a new latest epoch."""
        before = self._tracker.latest
        self._tracker.accept(signed, certificate)
        newer = before is None or signed.head.epoch > before.head.epoch
        if newer:
            self._changed.set()
            self._changed = trio.Event()
        return newer

    def _validate(self, forwarder: ID, msg: rpc_pb2.Message) -> bool:
        """py-libp2p topic validator: False drops the message (not delivered, not forwarded)."""
        if forwarder == self._host.get_id():
            return True  # our own publish(), already accepted
        try:
            head = CertifiedHead.decode_untrusted(msg.data)
        except DecodeError:
            self.rejected["decode"] += 1
            log.info("undecodable certified head from %s", forwarder)
            return False
        try:
            newer = self._accept(head.signed, head.certificate)
        except ChhayaError as exc:
            reason = getattr(exc, "check", type(exc).__name__)
            self.rejected[reason] += 1
            log.info("certified head from %s refused: %s", forwarder, exc)
            return False
        if not newer:
            self.rejected["stale"] += 1
            return False
        self.accepted += 1
        return True
