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

Witness catch-up: a witness only signs the epoch after the last one it
signed, and :func:`collect_certificate` stops at the threshold, so a slow
witness, or one that was down, is left behind and would refuse every new
head. After an epoch is certified, a background task (one at a time; it never
holds up certification) brings every witness missing from that certificate
up to it: it first offers the witness the newest head (a witness one epoch
behind, or already there, signs it); failing that it finds the newest epoch
the witness is known to have signed, from the certificates' signer bitmaps
and from its own earlier catch-ups, and sends the following heads with their
audit proofs in order, stopping at the first refusal. It looks back at most
:data:`MAX_CATCH_UP_EPOCHS` epochs. Which address is which witness is learnt
from validly signed answers; an address not yet known is probed with the
next head of each missing witness whose address is not known.

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
from quorum import (
    CertificateVerifier,
    HeadTracker,
    QuorumCertificate,
    SignedHead,
    WitnessSet,
    signers_from_bitmap,
)
from quorum.bls import BlsBackend
from vkd import DirectoryValue

from ..clock import system_rng, wall_ms
from ..directory_files import OpenedDirectory
from ..mailbox_db import MailboxStore
from ..p2p import (
    ChhayaDht,
    HeadGossip,
    MailboxService,
    ReachConfig,
    Registration,
    RegistrationService,
    VkdService,
    collect_certificate,
    listen_addrs,
    request_cosignature,
    run_reach,
    running_host,
)
from ._config import MAILBOX_FILE
from ._metrics import NodeMetrics

if TYPE_CHECKING:
    from libp2p.abc import IHost
    from trio_typing import TaskStatus

__all__ = ["HEARTBEAT_MS", "MAX_CATCH_UP_EPOCHS", "DirectoryNode"]

log = logging.getLogger("chhaya.directory")

#: Publish an (empty) epoch when the newest certified head is this old.
HEARTBEAT_MS: Final = 20 * 60 * 1000
#: Bound on queued registrations waiting for the next epoch.
MAX_PENDING: Final = 10_000
#: How far back witness catch-up looks for the last epoch a witness signed.
MAX_CATCH_UP_EPOCHS: Final = 1_000
#: Bound on one co-sign request during catch-up.
CATCH_UP_REQUEST_TIMEOUT_S: Final = 5.0
#: Bound on one catch-up run (all lagging witnesses, in parallel).
CATCH_UP_RUN_TIMEOUT_S: Final = 600.0


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
        # Witness catch-up: which address answered as which witness (learnt
        # from validly signed answers), the newest epoch each witness is known
        # to have signed, and the newest certified epoch to catch up to.
        self._peer_witness: dict[str, str] = {}
        self._signed_through: dict[str, int] = {}
        self._catch_up_target: int | None = None
        self._catch_up_wake = trio.Event()
        #: Co-signatures witnesses gave during catch-up while this node ran.
        self.catch_up_signatures = 0

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
        queued = records.pending()
        if len(queued) >= MAX_PENDING:
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
        for pending in queued:
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
        if signers < self._witness_set.size:
            self._catch_up_target = max(epoch, self._catch_up_target or 0)
            self._catch_up_wake.set()
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

    # ------------------------------------------------------------------ witness catch-up

    def _head_and_audit(self, epoch: int) -> tuple[SignedHead, bytes]:
        directory = self.opened.directory
        return directory.head(epoch), b"" if epoch == 0 else directory.audit(epoch).encode()

    def _signers(self, epoch: int) -> list[int]:
        try:
            cert = self.opened.directory.certificate(epoch)
        except ChhayaError:  # not certified, or a corrupt record: shows no signer
            return []
        return signers_from_bitmap(cert.signers, self._witness_set.size)

    async def _offer(self, addr: str, epoch: int) -> str | None:
        """Ask the witness at ``addr`` to co-sign ``epoch``; its id if it did."""
        head, audit = self._head_and_audit(epoch)
        got = await request_cosignature(
            self.host,
            addr,
            head,
            audit,
            self._witness_set,
            self._backend,
            timeout_s=CATCH_UP_REQUEST_TIMEOUT_S,
        )
        if got is None:
            return None
        witness_id = got[0]
        self.catch_up_signatures += 1
        if self._peer_witness.get(addr) != witness_id:
            log.info("witness %s answers at %s", witness_id, addr)
            self._peer_witness[addr] = witness_id
        self._signed_through[witness_id] = max(epoch, self._signed_through.get(witness_id, 0))
        return witness_id

    def _next_epoch(self, index: int, latest: int) -> int | None:
        """The epoch after the newest one witness ``index`` is known to have signed.

        None when it is not known to have signed anything in the last
        :data:`MAX_CATCH_UP_EPOCHS` epochs (and those do not reach genesis).
        """
        known = self._signed_through.get(self._witness_set.members[index].witness_id)
        floor = max(0, latest - MAX_CATCH_UP_EPOCHS)
        for epoch in range(latest - 1, floor - 1, -1):
            if known is not None and known >= epoch:
                return known + 1
            if index in self._signers(epoch):
                return epoch + 1
        return 0 if floor == 0 else None

    async def _catch_up_witness(self, addr: str, latest: int, lagging: list[int]) -> None:
        if await self._offer(addr, latest) is not None:
            return  # it was at most one epoch behind
        witness_id = self._peer_witness.get(addr)
        if witness_id is None:
            # Unknown address: try the next head of each lagging witness whose
            # address is unknown; the one it signs tells who it is.
            known = set(self._peer_witness.values())
            members = self._witness_set.members
            candidates = sorted(
                {
                    epoch
                    for i in lagging
                    if members[i].witness_id not in known
                    and (epoch := self._next_epoch(i, latest)) is not None
                    and epoch < latest
                }
            )
            for epoch in candidates:
                witness_id = await self._offer(addr, epoch)
                if witness_id is not None:
                    break
            else:
                log.info("witness at %s signed none of epochs %s", addr, [*candidates, latest])
                return
        index = self._witness_set.index_of(witness_id)
        start = self._next_epoch(index, latest)
        if start is None:
            log.warning(
                "witness %s signed none of the last %d epochs; not catching it up",
                witness_id,
                MAX_CATCH_UP_EPOCHS,
            )
            return
        if start >= latest:
            return  # it refused the newest head, which it should have signed
        log.info("catching witness %s up from epoch %d to %d", witness_id, start, latest)
        for epoch in range(start, latest + 1):
            if await self._offer(addr, epoch) is None:
                log.warning("witness %s refused epoch %d during catch-up", witness_id, epoch)
                return
        log.info("witness %s caught up to epoch %d", witness_id, latest)

    async def _catch_up(self, latest: int) -> None:
        """Bring each witness missing from ``latest``'s certificate up to it."""
        signed = set(self._signers(latest))
        lagging = [i for i in range(self._witness_set.size) if i not in signed]
        members = self._witness_set.members
        addrs = [
            addr
            for addr in self._witness_addrs
            if (witness_id := self._peer_witness.get(addr)) is None
            or self._witness_set.index_of(witness_id) in lagging
        ]
        if not lagging or not addrs:
            return
        log.info(
            "epoch %d: catching up %s",
            latest,
            ", ".join(members[i].witness_id for i in lagging),
        )
        async with trio.open_nursery() as nursery:
            for addr in addrs:
                nursery.start_soon(self._catch_up_witness, addr, latest, lagging)

    async def _catch_up_loop(self) -> None:
        while True:
            await self._catch_up_wake.wait()
            self._catch_up_wake = trio.Event()
            target = self._catch_up_target
            if target is None:
                continue
            with trio.move_on_after(CATCH_UP_RUN_TIMEOUT_S) as scope:
                try:
                    await self._catch_up(target)
                except ChhayaError as exc:
                    log.error("witness catch-up to epoch %d: %s", target, exc)
            if scope.cancelled_caught:
                log.warning("witness catch-up to epoch %d timed out", target)

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
                # AutoNAT (and bootstrap upkeep) for the nodes that bootstrap from us.
                await nursery.start(run_reach, host, ReachConfig())
                self._gossip = gossip
                # A DHT server is a mailbox peer for the users whose mailbox ids are near it.
                mailbox_store = MailboxStore(
                    self.opened.data_dir / MAILBOX_FILE, check_same_thread=False
                )
                mailboxes = MailboxService(host, mailbox_store, self._clock, self._rng)
                with mailbox_store, vkd_service, registrations, mailboxes:
                    nursery.start_soon(self._epoch_loop)
                    nursery.start_soon(self._catch_up_loop)
                    task_status.started(self)
                    await self._stopping.wait()
                    nursery.cancel_scope.cancel()
