"""``/chhaya/witness/1.0.0``: the directory asks its witnesses to co-sign a head.

One request per stream, framed like ``/chhaya/vkd/1.0.0`` (a 4-byte
big-endian length, checked against a bound before anything is read)::

    frame    = length u32 || message
    request  = "CWQ1" || SignedHead || audit proof var32 (<= MAX_AUDIT_WIRE_SIZE)
    response = "CWR1" || status u8 (0 signed, 1 refused) || witness id var16
               || BLS signature (96, only when signed)

The audit proof is empty for the genesis head. The directory half-closes
after its request; the witness answers, half-closes, and resets the stream
on a malformed request, a late one, or one from a peer it does not accept.

A refusal says nothing about why. When the refusal is because the witness
caught the directory equivocating or breaking the append-only rule, the
witness keeps the evidence in :attr:`WitnessService.evidence`, to gossip it.

:func:`collect_certificate` asks every witness at once, checks each partial
signature against the witness set, and stops as soon as the threshold is met.
:func:`request_cosignature` asks one witness and checks its answer the same
way; the directory uses it to walk a witness that fell behind through the
epochs it missed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Final

import trio
from libp2p.abc import IHost
from libp2p.custom_types import TProtocol
from libp2p.exceptions import BaseLibp2pError
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo

from chhaya import ChhayaError, DecodeError, LocalProtocolError, TransportError, VerificationError
from chhaya.wire import Reader, Writer
from quorum import (
    MAX_WITNESS_ID_LEN,
    SIGNED_HEAD_SIZE,
    EquivocationDetected,
    EquivocationEvidence,
    QuorumCertificate,
    SignedHead,
    SignedKind,
    Witness,
    WitnessSet,
    assemble_certificate,
    signing_message,
    valid_witness_id,
)
from quorum.bls import BLS_SIGNATURE_SIZE, BlsBackend
from vkd import AppendOnlyViolation, AppendOnlyViolationDetected

from ..clock import wall_ms
from ._channel_protocol import _peer_info
from ._framing import STREAM_ERRORS, frame, receive_frame
from ._service import StreamService
from ._stream import Libp2pStream

__all__ = [
    "MAX_AUDIT_WIRE_SIZE",
    "WITNESS_PROTOCOL",
    "CosignRequest",
    "CosignResponse",
    "CosignStatus",
    "DirectoryPeerAllowed",
    "WitnessEvidence",
    "WitnessService",
    "allow_any_directory",
    "collect_certificate",
    "request_cosignature",
]

log = logging.getLogger("chhaya.p2p.witness")

WITNESS_PROTOCOL: Final = TProtocol("/chhaya/witness/1.0.0")

#: Bound on the audit proof carried by a request (the tree's own bound is far larger).
MAX_AUDIT_WIRE_SIZE: Final = 64 << 20
#: Default bound on the whole collection of a certificate.
COLLECT_TIMEOUT_S: Final = 10.0
#: Default bound on one witness's answer to :func:`request_cosignature`.
COSIGN_TIMEOUT_S: Final = 10.0
#: How long the witness waits for a complete request (it may be large).
REQUEST_TIMEOUT_S: Final = 10.0
#: Requests a witness serves at once; each may hold up to MAX_AUDIT_WIRE_SIZE.
MAX_REQUESTS: Final = 4
#: How long a side that has answered waits for the peer to close its half.
LINGER_S: Final = 2.0

_REQUEST_MAGIC: Final = b"CWQ1"
_RESPONSE_MAGIC: Final = b"CWR1"
MAX_REQUEST_SIZE: Final = 4 + SIGNED_HEAD_SIZE + 4 + MAX_AUDIT_WIRE_SIZE
MAX_RESPONSE_SIZE: Final = 4 + 1 + 2 + MAX_WITNESS_ID_LEN + BLS_SIGNATURE_SIZE

_DIAL_ERRORS = (BaseLibp2pError, OSError, ValueError, trio.BrokenResourceError)

#: What a witness keeps when it catches the directory misbehaving.
WitnessEvidence = EquivocationEvidence | AppendOnlyViolation
#: Decides which peers may ask this witness to co-sign (the directory's peer IDs).
DirectoryPeerAllowed = Callable[[ID], bool]


def allow_any_directory(peer_id: ID) -> bool:
    """Accept co-signing requests from any peer (the witness checks the head anyway)."""
    return True


class CosignStatus:
    """Response statuses."""

    SIGNED: Final = 0
    REFUSED: Final = 1


class CosignRequest:
    """``"CWQ1" || SignedHead || audit proof var32``."""

    __slots__ = ("audit", "head")

    def __init__(self, head: SignedHead, audit: bytes = b"") -> None:
        self.head = head
        self.audit = audit

    def encode(self) -> bytes:
        if len(self.audit) > MAX_AUDIT_WIRE_SIZE:
            raise LocalProtocolError("audit proof exceeds the wire bound")
        w = Writer().raw(_REQUEST_MAGIC).raw(self.head.encode())
        return w.var32(self.audit, MAX_AUDIT_WIRE_SIZE).getvalue()

    @classmethod
    def decode_untrusted(cls, data: bytes) -> CosignRequest:
        """Parse peer bytes; raises only :class:`DecodeError`."""
        if len(data) > MAX_REQUEST_SIZE:
            raise DecodeError("co-sign request too large")
        r = Reader(data)
        r.expect(_REQUEST_MAGIC, "co-sign request magic")
        head = SignedHead.decode_untrusted(r.fixed(SIGNED_HEAD_SIZE, "signed head"))
        audit = r.var32(MAX_AUDIT_WIRE_SIZE, "audit proof")
        r.finish()
        return cls(head, audit)


class CosignResponse:
    """``"CWR1" || status u8 || witness id var16 || signature (96) if signed``."""

    __slots__ = ("signature", "status", "witness_id")

    def __init__(self, status: int, witness_id: str, signature: bytes = b"") -> None:
        self.status = status
        self.witness_id = witness_id
        self.signature = signature

    def encode(self) -> bytes:
        if not valid_witness_id(self.witness_id):
            raise LocalProtocolError(f"invalid witness id {self.witness_id!r}")
        if self.status == CosignStatus.SIGNED:
            if len(self.signature) != BLS_SIGNATURE_SIZE:
                raise LocalProtocolError("a signed answer carries a 96-byte signature")
        elif self.status == CosignStatus.REFUSED:
            if self.signature:
                raise LocalProtocolError("a refusal carries no signature")
        else:
            raise LocalProtocolError(f"unknown co-sign status {self.status}")
        w = Writer().raw(_RESPONSE_MAGIC).u8(self.status)
        return w.utf8(self.witness_id, MAX_WITNESS_ID_LEN).raw(self.signature).getvalue()

    @classmethod
    def decode_untrusted(cls, data: bytes) -> CosignResponse:
        """Parse peer bytes; raises only :class:`DecodeError`."""
        if len(data) > MAX_RESPONSE_SIZE:
            raise DecodeError("co-sign response too large")
        r = Reader(data)
        r.expect(_RESPONSE_MAGIC, "co-sign response magic")
        status = r.u8("co-sign status")
        if status not in (CosignStatus.SIGNED, CosignStatus.REFUSED):
            raise DecodeError("unknown co-sign status")
        witness_id = r.utf8(MAX_WITNESS_ID_LEN, "witness id")
        if not valid_witness_id(witness_id):
            raise DecodeError("invalid witness id")
        signature = b""
        if status == CosignStatus.SIGNED:
            signature = r.fixed(BLS_SIGNATURE_SIZE, "partial signature")
        r.finish()
        return cls(status, witness_id, signature)


# ------------------------------------------------------------------ witness side


class WitnessService(StreamService):
    """Serves ``/chhaya/witness/1.0.0`` for one :class:`quorum.Witness`.

    Requests from peers ``peer_allowed`` rejects, malformed or late requests
    are answered by a reset. Every well-formed request gets a signature or a
    bare refusal; evidence of directory misbehaviour is kept in
    :attr:`evidence`.
    """

    protocol = WITNESS_PROTOCOL

    def __init__(
        self,
        host: IHost,
        witness: Witness,
        witness_id: str,
        clock: Callable[[], int] = wall_ms,
        *,
        peer_allowed: DirectoryPeerAllowed = allow_any_directory,
        max_requests: int = MAX_REQUESTS,
        request_timeout_s: float = REQUEST_TIMEOUT_S,
        linger_s: float = LINGER_S,
    ) -> None:
        if not valid_witness_id(witness_id):
            raise LocalProtocolError(f"invalid witness id {witness_id!r}")
        super().__init__(host, max_requests)
        self._witness = witness
        self._witness_id = witness_id
        self._clock = clock
        self._peer_allowed = peer_allowed
        self._request_timeout_s = request_timeout_s
        self._linger_s = linger_s
        #: Heads signed (including idempotent re-signs).
        self.signed = 0
        #: Well-formed requests refused.
        self.refused = 0
        #: Equivocation and append-only evidence caught, oldest first.
        self.evidence: list[WitnessEvidence] = []

    async def _serve(self, stream: Libp2pStream) -> None:
        peer_id = stream.remote_peer_id
        try:
            if not self._peer_allowed(peer_id):
                raise VerificationError("peer-not-allowed", f"{peer_id} may not ask to co-sign")
            with trio.fail_after(self._request_timeout_s):
                raw = await receive_frame(stream, MAX_REQUEST_SIZE)
            request = CosignRequest.decode_untrusted(raw)
        except (DecodeError, VerificationError, trio.TooSlowError, *STREAM_ERRORS) as exc:
            self.rejected += 1
            log.info("dropped a co-sign request from %s: %s", peer_id, str(exc) or type(exc))
            await stream.reset()
            return
        response = self._answer(request)
        try:
            await stream.send_all(frame(response.encode()))
            await stream.send_eof()
        except STREAM_ERRORS as exc:
            log.info("could not answer %s: %s", peer_id, exc)
            return
        await stream.aclose_lingering(self._linger_s)

    def _answer(self, request: CosignRequest) -> CosignResponse:
        epoch = request.head.head.epoch
        try:
            signature = self._witness.sign_head(request.head, request.audit, self._clock())
        except (EquivocationDetected, AppendOnlyViolationDetected) as exc:
            self.evidence.append(exc.evidence)
            log.warning("directory misbehaved at epoch %d: %s", epoch, exc)
        except ChhayaError as exc:
            log.info("refused to co-sign epoch %d: %s", epoch, exc)
        except Exception:  # a failing witness must not take the service down
            log.exception("witness failed on epoch %d", epoch)
        else:
            self.signed += 1
            return CosignResponse(CosignStatus.SIGNED, self._witness_id, signature)
        self.refused += 1
        return CosignResponse(CosignStatus.REFUSED, self._witness_id)


# ------------------------------------------------------------------ directory side


async def _ask(host: IHost, peer: PeerInfo | ID | str, request: bytes) -> CosignResponse:
    info = _peer_info(peer)
    peer_id = info.peer_id
    stream: Libp2pStream | None = None
    try:
        try:
            await host.connect(info)
            stream = Libp2pStream(await host.new_stream(peer_id, [WITNESS_PROTOCOL]))
        except _DIAL_ERRORS as exc:
            raise TransportError(f"cannot reach witness {peer_id}: {exc}") from None
        try:
            await stream.send_all(request)
            await stream.send_eof()
            raw = await receive_frame(stream, MAX_RESPONSE_SIZE)
        except STREAM_ERRORS as exc:
            raise TransportError(f"co-sign stream to {peer_id} failed: {exc}") from None
        response = CosignResponse.decode_untrusted(raw)
    except BaseException:
        if stream is not None:
            await stream.reset()
        raise
    await stream.aclose_lingering(LINGER_S, max_discard=0)
    return response


async def _checked_cosignature(
    host: IHost,
    peer: PeerInfo | ID | str,
    request: bytes,
    message: bytes,
    epoch: int,
    witness_set: WitnessSet,
    backend: BlsBackend,
) -> tuple[str, bytes] | None:
    """Ask one witness (``request`` is the framed request); None unless it signed validly."""
    try:
        response = await _ask(host, peer, request)
    except (ChhayaError, *_DIAL_ERRORS, *STREAM_ERRORS) as exc:
        log.info("no co-signature from %s: %s", peer, exc)
        return None
    if response.status != CosignStatus.SIGNED:
        log.info("witness %s refused epoch %d", response.witness_id, epoch)
        return None
    try:
        member = witness_set.members[witness_set.index_of(response.witness_id)]
    except KeyError:
        log.info("%s answered as unknown witness %r", peer, response.witness_id)
        return None
    if not backend.verify(member.public_key, message, response.signature):
        log.warning("bad partial signature from witness %s", response.witness_id)
        return None
    return response.witness_id, response.signature


async def request_cosignature(
    host: IHost,
    peer: PeerInfo | ID | str,
    signed_head: SignedHead,
    audit_bytes: bytes,
    witness_set: WitnessSet,
    backend: BlsBackend,
    timeout_s: float = COSIGN_TIMEOUT_S,
) -> tuple[str, bytes] | None:
    """Ask the one witness at ``peer`` to co-sign ``signed_head``.

    Returns ``(witness id, partial signature)``, the signature checked against
    the member of ``witness_set`` the witness names. Returns None, and logs
    why, when the witness refuses, is unreachable, does not answer within
    ``timeout_s``, names an unknown witness or signs badly: a peer's fault
    never raises. Raises :class:`LocalProtocolError` only for an audit proof
    over the wire bound.
    """
    request = frame(CosignRequest(signed_head, audit_bytes).encode())
    message = signing_message(SignedKind.EPOCH_HEAD, witness_set.set_id, signed_head.head.head_hash)
    epoch = signed_head.head.epoch
    got: tuple[str, bytes] | None = None
    with trio.move_on_after(timeout_s) as scope:
        got = await _checked_cosignature(host, peer, request, message, epoch, witness_set, backend)
    if scope.cancelled_caught:
        log.info("no co-signature from %s for epoch %d: timed out", peer, epoch)
    return got


async def collect_certificate(
    host: IHost,
    witness_peers: Sequence[PeerInfo | ID | str],
    signed_head: SignedHead,
    audit_bytes: bytes,
    witness_set: WitnessSet,
    backend: BlsBackend,
    timeout_s: float = COLLECT_TIMEOUT_S,
) -> QuorumCertificate:
    """Ask every witness in ``witness_peers`` at once to co-sign ``signed_head``.

    Each answer's partial signature is checked against the member of
    ``witness_set`` it names; a witness that is unreachable, slow, refuses,
    answers garbage or signs badly is skipped. Collection stops once the
    threshold is met, or when everyone answered or ``timeout_s`` passed.

    Raises :class:`VerificationError` (check ``certificate-threshold``) when
    too few valid signatures came back, :class:`LocalProtocolError` for an
    audit proof over the wire bound.
    """
    request = frame(CosignRequest(signed_head, audit_bytes).encode())
    message = signing_message(SignedKind.EPOCH_HEAD, witness_set.set_id, signed_head.head.head_hash)
    partials: dict[str, bytes] = {}
    peers = list(witness_peers)
    pending = len(peers)

    async def ask_one(peer: PeerInfo | ID | str, scope: trio.CancelScope) -> None:
        nonlocal pending
        try:
            await _collect_one(peer)
        finally:
            pending -= 1
            if pending == 0 or len(partials) >= witness_set.threshold:
                scope.cancel()

    async def _collect_one(peer: PeerInfo | ID | str) -> None:
        got = await _checked_cosignature(
            host, peer, request, message, signed_head.head.epoch, witness_set, backend
        )
        if got is not None:
            partials[got[0]] = got[1]

    with trio.move_on_after(timeout_s):
        async with trio.open_nursery() as nursery:
            for peer in peers:
                nursery.start_soon(ask_one, peer, nursery.cancel_scope)
    return assemble_certificate(
        witness_set, backend, SignedKind.EPOCH_HEAD, signed_head.head.head_hash, partials
    )
