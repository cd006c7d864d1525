"""Looking handles up in the key directory, and trusting only what verifies.

How it works
------------
The node trusts one witness set (``--witness-set SET.json``), and optionally
pins the directory's signing key. It fetches lookup proofs over
``/chhaya/vkd/1.0.0`` from the directory (or any caching peer) and passes
every proof to :func:`vkd.verify_vkd_proof`, with the newest head it has
seen so that an older epoch is refused (rollback). Nothing else here turns
directory bytes into trust.

The first proof that verifies fixes which directory this node follows (its
signing and VRF keys, certified by the quorum); from then on a
:class:`quorum.HeadTracker` checks every head, from proofs and from gossip,
and turns two different certified heads for one epoch into equivocation
evidence, after which the directory is refused.

Verified bindings are cached for :data:`BINDING_TTL_MS`, by handle and by
identity key, so that the channel resolver can answer synchronously.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import trio
from libp2p.abc import IHost

from chhaya import DecodeError, TransportError, VerificationError
from quorum import CertificateVerifier, HeadTracker, QuorumCertificate, SignedHead
from vkd import DirectoryTrust, LookupProof, NotRegistered, VerifiedBinding, verify_vkd_proof

from ..p2p import ProofUnavailable, fetch_lookup
from ._metrics import NodeMetrics

__all__ = ["BINDING_TTL_MS", "DirectoryClient", "reason_of"]

log = logging.getLogger("chhaya.lookup")

#: How long a verified binding is reused before the directory is asked again.
BINDING_TTL_MS: Final = 60_000
_MAX_CACHED: Final = 4096
#: Pause before the one retry of a lookup whose connection failed.
LOOKUP_RETRY_DELAY_S: Final = 0.2


def reason_of(exc: BaseException) -> str:
    """A short, bounded label for metrics and logs."""
    if isinstance(exc, VerificationError):
        return exc.check
    return type(exc).__name__


@dataclass(frozen=True, slots=True)
class _Cached:
    binding: VerifiedBinding
    at_ms: int


class DirectoryClient:
    def __init__(
        self,
        host: IHost,
        directory_addr: str,
        verifier: CertificateVerifier,
        metrics: NodeMetrics,
        clock: Callable[[], int],
        *,
        pinned_directory_key: bytes | None = None,
    ) -> None:
        self._host = host
        self._directory_addr = directory_addr
        self._verifier = verifier
        self._metrics = metrics
        self._clock = clock
        self._pinned = pinned_directory_key
        self.tracker: HeadTracker | None = None
        self._by_handle: dict[str, _Cached] = {}
        self._by_identity: dict[bytes, _Cached] = {}
        #: Proofs that verified (lookups of registered and unregistered handles).
        self.proofs_verified = 0

    @property
    def directory_addr(self) -> str:
        return self._directory_addr

    @property
    def latest_head(self) -> SignedHead | None:
        return None if self.tracker is None else self.tracker.latest

    @property
    def directory_id(self) -> bytes | None:
        head = self.latest_head
        return None if head is None else head.head.directory_id

    def _trust(self) -> DirectoryTrust:
        key = self._pinned
        if key is None and self.tracker is not None and self.tracker.latest is not None:
            key = self.tracker.latest.directory_key
        return DirectoryTrust(self._verifier, directory_key=key)

    def accept_head(self, signed: SignedHead, certificate: QuorumCertificate) -> None:
        """Feed a certified head from a verified proof into the tracker."""
        if self.tracker is None:
            self.tracker = HeadTracker(self._verifier, signed.directory_key, signed.vrf_key)
        self.tracker.accept(signed, certificate)

    def _verify(self, proof: LookupProof) -> VerifiedBinding | None:
        """verify_vkd_proof; None when the proof shows the handle is not registered."""
        if self.tracker is not None:
            self.tracker.check_directory_trusted()
        try:
            result = verify_vkd_proof(proof, self._trust(), self.latest_head, self._clock())
        except NotRegistered:
            result = None
        except VerificationError as exc:
            self._metrics.proof_failures.labels(reason_of(exc)).inc()
            raise
        self._metrics.proofs_verified.inc()
        self.proofs_verified += 1
        self.accept_head(proof.head, proof.certificate)
        if result is not None and not isinstance(result, VerifiedBinding):  # pragma: no cover
            raise DecodeError("a lookup proof verified as something else")
        return result

    async def lookup(self, handle: str, *, fresh: bool = False) -> VerifiedBinding | None:
        """The verified binding of ``handle``, or None if it is not registered.

        Raises TransportError if the directory cannot be asked,
        VerificationError if its proof fails (counted by reason).
        """
        now = self._clock()
        cached = self._by_handle.get(handle)
        if not fresh and cached is not None and now - cached.at_ms < BINDING_TTL_MS:
            return cached.binding
        started = time.perf_counter()
        try:
            try:
                proof = await fetch_lookup(self._host, self._directory_addr, handle)
            except ProofUnavailable:
                raise
            except TransportError as exc:  # a dropped connection: one fresh attempt
                log.info("lookup of %r failed (%s); trying once more", handle, exc)
                await trio.sleep(LOOKUP_RETRY_DELAY_S)
                proof = await fetch_lookup(self._host, self._directory_addr, handle)
        except DecodeError as exc:
            self._metrics.proof_failures.labels("decode").inc()
            raise TransportError(f"the directory sent a malformed proof: {exc}") from None
        binding = self._verify(proof)
        self._metrics.lookup_latency.observe(time.perf_counter() - started)
        if binding is None:
            return None
        entry = _Cached(binding, now)
        if len(self._by_handle) >= _MAX_CACHED:
            self._by_handle.clear()
            self._by_identity.clear()
        self._by_handle[handle] = entry
        self._by_identity[binding.bundle.identity.signing_key] = entry
        return binding

    def cached_by_identity(self, identity_key: bytes) -> VerifiedBinding | None:
        cached = self._by_identity.get(identity_key)
        if cached is None or self._clock() - cached.at_ms >= BINDING_TTL_MS:
            return None
        return cached.binding

    async def certified_head(self, probe_handle: str) -> SignedHead:
        """Make sure we hold a verified head (looking ``probe_handle`` up if not)."""
        if self.latest_head is None:
            await self.lookup(probe_handle, fresh=True)
        head = self.latest_head
        if head is None:  # pragma: no cover - a verified lookup always sets it
            raise TransportError("no certified directory head yet")
        return head
