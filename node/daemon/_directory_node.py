"""`chhaya directory serve`: the key directory as a libp2p node.

How it works
------------
The node serves lookups and histories (``/chhaya/vkd/1.0.0``) from the
newest certified epoch, and registrations (``/chhaya/vkd/register/1.0.0``),
which it queues. It is also a DHT server, so user nodes can bootstrap from
it. Every ``epoch_interval_s`` the epoch loop:

1. certifies any published but uncertified epoch, oldest first, by asking
   the witnesses over ``/chhaya/witness/1.0.0`` (:func:`collect_certificate`
   checks every partial signature and stops at the threshold);
2. publishes a new epoch when registrations are queued, or when the newest
   certified head is older than :data:`HEARTBEAT_MS` (so clients' freshness
   checks keep passing), and certifies it;
3. gossips each newly certified head on ``/chhaya/vkd/heads/1``.

An epoch that the quorum does not certify stays uncertified and unserved:
lookups keep answering from the last certified epoch, and the loop tries
again on its next turn. The directory never serves a head the quorum did not
sign, and clients would refuse one anyway.

Registration policy: first come, first served. A handle already bound to
another identity is refused; the same identity may update its bundle (new
devices or prekeys).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Final

import trio
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.peer.id import ID

from chhaya import ChhayaError, VerificationError
from chhaya.crypto import Rng
from quorum import CertificateVerifier, HeadTracker, QuorumCertificate, WitnessSet
from quorum.bls import BlsBackend
from vkd import DirectoryValue

from ..clock import system_rng, wall_ms
from ..directory_files import OpenedDirectory
from ..p2p import (
    ChhayaDht,
    HeadGossip,
    Registration,
    RegistrationService,
    VkdService,
    collect_certificate,
    listen_addrs,
    running_host,
)
from ._metrics import NodeMetrics

if TYPE_CHECKING:
    from libp2p.abc import IHost
    from trio_typing import TaskStatus

__all__ = ["HEARTBEAT_MS", "DirectoryNode"]

log = logging.getLogger("chhaya.directory")

#: Publish an (empty) epoch when the newest certified head is this old.
HEARTBEAT_MS: Final = 20 * 60 * 1000
#: Bound on queued registrations waiting for the next epoch.
MAX_PENDING: Final = 10_000


class DirectoryNode:
    def __init__(
        self,
        opened: OpenedDirectory,
        node_seed: bytes,
        listen: Sequence[str],
        witness_set: WitnessSet,
        backend: BlsBackend,
        witness_addrs: Sequence[str],
        metrics: NodeMetrics,
        *,
        epoch_interval_s: float = 1.0,
        say: Callable[[str], None] = print,
        rng: Rng = system_rng,
        clock: Callable[[], int] = wall_ms,
    ) -> None:
        self.opened = opened
        self.key_pair = create_new_key_pair(node_seed)
        self.peer_id = ID.from_pubkey(self.key_pair.public_key)
        self._listen = list(listen)
        self._witness_set = witness_set
        self._backend = backend
        self._witness_addrs = list(witness_addrs)
        self.metrics = metrics
        self._epoch_interval_s = epoch_interval_s
        self._say = say
        self._rng = rng
        self._clock = clock
        self._verifier = CertificateVerifier(witness_set, backend)
        directory = opened.directory
        self.tracker = HeadTracker(
            self._verifier, directory.directory_key, directory.vrf_public_key
        )
        self._host: IHost | None = None
        self._gossip: HeadGossip | None = None
        self._wake = trio.Event()
        self._stopping = trio.Event()
        #: Epochs certified while this node ran.
        self.epochs_certified = 0

    @property
    def host(self) -> IHost:
        assert self._host is not None
        return self._host

    def addresses(self) -> list[str]:
        return listen_addrs(self.host)

    def stop(self) -> None:
        self._stopping.set()

    # ------------------------------------------------------------------ registrations

    def _queue(self, registration: Registration, peer_id: ID) -> None:
        """Queue a verified registration (RegistrationService calls this)."""
        records = self.opened.records
        handle = registration.handle
        if len(records.pending()) >= MAX_PENDING:
            raise VerificationError("registration-busy", "too many queued registrations")
        version = records.latest_version(handle)
        if version:
            record = records.get_version(handle, version)
            if record is not None:
                value = DirectoryValue.decode_untrusted(record.value)
                if value.bundle is None:
                    raise VerificationError("handle-revoked", f"{handle!r} was revoked")
                if value.bundle.identity != registration.bundle.identity:
                    raise VerificationError("handle-taken", f"{handle!r} is taken")
        for pending in records.pending():
            if pending.handle == handle:
                pending_value = DirectoryValue.decode_untrusted(pending.value)
                if (
                    pending_value.bundle is None
                    or pending_value.bundle.identity != registration.bundle.identity
                ):
                    raise VerificationError("handle-taken", f"{handle!r} is being registered")
        self.opened.directory.add(handle, DirectoryValue(registration.bundle))
        log.info("queued %r from %s", handle, peer_id)
        self._wake.set()

    # ------------------------------------------------------------------ epochs

    async def _certify(self, epoch: int) -> QuorumCertificate | None:
        directory = self.opened.directory
        head = directory.head(epoch)
        audit = b"" if epoch == 0 else directory.audit(epoch).encode()
        try:
            cert = await collect_certificate(
                self.host, self._witness_addrs, head, audit, self._witness_set, self._backend
            )
        except ChhayaError as exc:
            log.warning("epoch %d not certified: %s", epoch, exc)
            return None
        directory.attach_certificate(epoch, cert)
        self.epochs_certified += 1
        self.metrics.epochs_certified.inc()
        self.tracker.accept(head, cert)
        signers = sum(bin(byte).count("1") for byte in cert.signers)
        self._say(f"epoch {epoch} certified by {signers} of {len(self._witness_set.members)}")
        if self._gossip is not None:
            try:
                await self._gossip.publish(head, cert)
            except ChhayaError as exc:
                log.warning("could not gossip epoch %d: %s", epoch, exc)
        return cert

    async def _certify_backlog(self) -> bool:
        """Certify published epochs in order; False if one could not be."""
        records = self.opened.records
        latest = records.latest_epoch()
        if latest is None:
            return True
        certified = records.latest_certified_epoch()
        for epoch in range(0 if certified is None else certified + 1, latest + 1):
            if await self._certify(epoch) is None:
                return False
        return True

    def _heartbeat_due(self) -> bool:
        records = self.opened.records
        certified = records.latest_certified_epoch()
        if certified is None:
            return False
        head = self.opened.directory.head(certified)
        return self._clock() - head.head.time_ms >= HEARTBEAT_MS

    async def _epoch_loop(self) -> None:
        while True:
            try:
                if await self._certify_backlog() and (
                    self.opened.records.pending() or self._heartbeat_due()
                ):
                    signed, _ = self.opened.publish(self._clock(), self._rng)
                    log.info("published epoch %d", signed.head.epoch)
                    await self._certify(signed.head.epoch)
            except ChhayaError as exc:
                log.error("epoch loop: %s", exc)
            with trio.move_on_after(self._epoch_interval_s):
                await self._wake.wait()
            if self._wake.is_set():
                await trio.sleep(min(0.05, self._epoch_interval_s))  # gather a small batch
                self._wake = trio.Event()

    # ------------------------------------------------------------------ run

    async def run(
        self, *, task_status: TaskStatus[DirectoryNode] = trio.TASK_STATUS_IGNORED
    ) -> None:
        directory = self.opened.directory
        directory_id = self.opened.public.directory_id
        async with running_host(self.key_pair, self._listen) as host:
            self._host = host
            vkd_service = VkdService(host, directory)
            registrations = RegistrationService(host, directory_id, self._queue, self._clock)
            async with (
                ChhayaDht(host),
                HeadGossip(host, self.tracker) as gossip,
                trio.open_nursery() as nursery,
            ):
                self._gossip = gossip
                with vkd_service, registrations:
                    nursery.start_soon(self._epoch_loop)
                    task_status.started(self)
                    await self._stopping.wait()
                    nursery.cancel_scope.cancel()
