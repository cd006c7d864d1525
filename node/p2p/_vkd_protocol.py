"""``/chhaya/vkd/1.0.0``: directory lookups and key history over libp2p streams.

One request per stream. Every message is framed with a 4-byte big-endian
length, checked against a bound before anything is read::

    frame    = length u32 || message
    request  = "CVQ1" || kind u8 (1 lookup, 2 history) || handle var16 (<= MAX_HANDLE_LEN)
    response = "CVR1" || status u8 (0 ok, 1 not available) || proof var32

``proof`` is a ``LookupProof`` / ``HistoryProof`` encoding when the status is
0, and empty when it is 1. The dialer half-closes after its request; the
listener answers, half-closes, and resets the stream on a malformed request
without saying why.

Any node can serve this protocol (the directory itself or a caching peer),
because the proofs verify themselves. **Fetching makes nothing trusted**:
:func:`fetch_lookup` and :func:`fetch_history` only decode the answer with
the untrusted decoders; the caller must pass the proof to
:func:`vkd.verify_vkd_proof` before using anything in it.
"""

from __future__ import annotations

import logging
from typing import Final, Protocol

import trio
from libp2p.abc import IHost
from libp2p.custom_types import TProtocol
from libp2p.exceptions import BaseLibp2pError
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo

from chhaya import ChhayaError, DecodeError, LocalProtocolError, TransportError
from chhaya.wire import Reader, Writer
from vkd import MAX_HANDLE_LEN, MAX_LOOKUP_PROOF_SIZE, HistoryProof, LookupProof, valid_handle

from ._channel_protocol import _peer_info
from ._framing import STREAM_ERRORS, frame, receive_frame
from ._service import StreamService
from ._stream import Libp2pStream

__all__ = [
    "MAX_HISTORY_PROOF_SIZE",
    "VKD_PROTOCOL",
    "ProofSource",
    "ProofUnavailable",
    "VkdKind",
    "VkdRequest",
    "VkdResponse",
    "VkdService",
    "fetch_history",
    "fetch_lookup",
]

log = logging.getLogger("chhaya.p2p.vkd")

VKD_PROTOCOL: Final = TProtocol("/chhaya/vkd/1.0.0")

#: Bound on an encoded history proof served or accepted over the wire.
MAX_HISTORY_PROOF_SIZE: Final = 1 << 20
#: Default bound on a whole exchange (connect, request, response).
FETCH_TIMEOUT_S: Final = 10.0
#: How long the listener waits for a complete request.
REQUEST_TIMEOUT_S: Final = 10.0
#: Requests a service answers at once; further streams are reset on arrival.
MAX_REQUESTS: Final = 64
#: How long a side that has answered waits for the peer to close its half.
LINGER_S: Final = 2.0

_REQUEST_MAGIC: Final = b"CVQ1"
_RESPONSE_MAGIC: Final = b"CVR1"
_STATUS_OK: Final = 0
_STATUS_UNAVAILABLE: Final = 1
#: A request is tiny: magic, kind, handle var16.
MAX_REQUEST_SIZE: Final = 4 + 1 + 2 + MAX_HANDLE_LEN

_DIAL_ERRORS = (BaseLibp2pError, OSError, ValueError, trio.BrokenResourceError)


class VkdKind:
    """Request kinds."""

    LOOKUP: Final = 1
    HISTORY: Final = 2


def _max_proof(kind: int) -> int:
    return MAX_LOOKUP_PROOF_SIZE if kind == VkdKind.LOOKUP else MAX_HISTORY_PROOF_SIZE


def _max_response(kind: int) -> int:
    return 4 + 1 + 4 + _max_proof(kind)


class ProofUnavailable(TransportError):
    """The peer answered, but has no proof for that handle (status 1): try another peer."""


class ProofSource(Protocol):
    """Where a service gets its proofs: a ``vkd.Directory``, or a caching node's store.

    Raising any exception means "not available"; the requester learns nothing more.
    """

    def lookup(self, handle: str) -> LookupProof: ...

    def history(self, handle: str) -> HistoryProof: ...


class VkdRequest:
    """``"CVQ1" || kind u8 || handle var16``."""

    __slots__ = ("handle", "kind")

    def __init__(self, kind: int, handle: str) -> None:
        self.kind = kind
        self.handle = handle

    def encode(self) -> bytes:
        if self.kind not in (VkdKind.LOOKUP, VkdKind.HISTORY):
            raise LocalProtocolError(f"unknown vkd request kind {self.kind}")
        if not valid_handle(self.handle):
            raise LocalProtocolError(f"invalid handle {self.handle!r}")
        w = Writer().raw(_REQUEST_MAGIC).u8(self.kind).utf8(self.handle, MAX_HANDLE_LEN)
        return w.getvalue()

    @classmethod
    def decode_untrusted(cls, data: bytes) -> VkdRequest:
        """Parse peer bytes; raises only :class:`DecodeError`."""
        if len(data) > MAX_REQUEST_SIZE:
            raise DecodeError("vkd request too large")
        r = Reader(data)
        r.expect(_REQUEST_MAGIC, "vkd request magic")
        kind = r.u8("vkd request kind")
        if kind not in (VkdKind.LOOKUP, VkdKind.HISTORY):
            raise DecodeError("unknown vkd request kind")
        handle = r.utf8(MAX_HANDLE_LEN, "handle")
        if not valid_handle(handle):
            raise DecodeError("invalid handle")
        r.finish()
        return cls(kind, handle)


class VkdResponse:
    """``"CVR1" || status u8 || proof var32``; the proof is empty unless status is 0."""

    __slots__ = ("proof", "status")

    def __init__(self, status: int, proof: bytes = b"") -> None:
        self.status = status
        self.proof = proof

    def encode(self, kind: int) -> bytes:
        w = Writer().raw(_RESPONSE_MAGIC).u8(self.status)
        return w.var32(self.proof, _max_proof(kind)).getvalue()

    @classmethod
    def decode_untrusted(cls, data: bytes, kind: int) -> VkdResponse:
        """Parse peer bytes for a request of ``kind``; raises only :class:`DecodeError`."""
        if len(data) > _max_response(kind):
            raise DecodeError("vkd response too large")
        r = Reader(data)
        r.expect(_RESPONSE_MAGIC, "vkd response magic")
        status = r.u8("vkd response status")
        proof = r.var32(_max_proof(kind), "proof")
        r.finish()
        if status not in (_STATUS_OK, _STATUS_UNAVAILABLE):
            raise DecodeError("unknown vkd response status")
        if status == _STATUS_UNAVAILABLE and proof:
            raise DecodeError("an unavailable answer carries no proof")
        return cls(status, proof)


# ------------------------------------------------------------------ listener


class VkdService(StreamService):
    """Answers ``/chhaya/vkd/1.0.0`` from ``source``.

    A malformed or late request is answered by a stream reset and nothing
    else; a handle the source cannot serve gets status 1. Nothing raised
    while serving reaches libp2p's connection nursery.
    """

    protocol = VKD_PROTOCOL

    def __init__(
        self,
        host: IHost,
        source: ProofSource,
        *,
        max_requests: int = MAX_REQUESTS,
        request_timeout_s: float = REQUEST_TIMEOUT_S,
        linger_s: float = LINGER_S,
    ) -> None:
        super().__init__(host, max_requests)
        self._source = source
        self._request_timeout_s = request_timeout_s
        self._linger_s = linger_s
        #: Requests answered with a proof.
        self.served = 0
        #: Well-formed requests answered with status 1.
        self.unavailable = 0

    async def _serve(self, stream: Libp2pStream) -> None:
        peer_id = stream.remote_peer_id
        try:
            with trio.fail_after(self._request_timeout_s):
                raw = await receive_frame(stream, MAX_REQUEST_SIZE)
            request = VkdRequest.decode_untrusted(raw)
        except (DecodeError, trio.TooSlowError, *STREAM_ERRORS) as exc:
            self.rejected += 1
            log.info("dropped a vkd request from %s: %s", peer_id, str(exc) or type(exc).__name__)
            await stream.reset()
            return
        response = self._answer(request)
        try:
            await stream.send_all(frame(response.encode(request.kind)))
            await stream.send_eof()  # a half-close, also on QUIC (trap 8)
        except STREAM_ERRORS as exc:
            log.info("could not answer %s: %s", peer_id, exc)
            return
        await stream.aclose_lingering(self._linger_s)

    def _answer(self, request: VkdRequest) -> VkdResponse:
        try:
            proof: LookupProof | HistoryProof
            if request.kind == VkdKind.LOOKUP:
                proof = self._source.lookup(request.handle)
            else:
                proof = self._source.history(request.handle)
            encoded = proof.encode()
        except ChhayaError as exc:
            log.info("no vkd proof for %r: %s", request.handle, exc)
        except Exception:  # a failing source must not take the service down
            log.exception("vkd proof source failed for %r", request.handle)
        else:
            if len(encoded) <= _max_proof(request.kind):
                self.served += 1
                return VkdResponse(_STATUS_OK, encoded)
            log.warning("vkd proof for %r exceeds the wire bound", request.handle)
        self.unavailable += 1
        return VkdResponse(_STATUS_UNAVAILABLE)


# ------------------------------------------------------------------ dialer


async def _fetch(
    host: IHost, peer: PeerInfo | ID | str, kind: int, handle: str, timeout_s: float
) -> bytes:
    request = frame(VkdRequest(kind, handle).encode())  # LocalProtocolError if invalid
    info = _peer_info(peer)
    peer_id = info.peer_id
    if peer_id == host.get_id():
        raise TransportError("cannot fetch a proof from this node itself")
    stream: Libp2pStream | None = None
    try:
        with trio.fail_after(timeout_s):
            try:
                await host.connect(info)
                stream = Libp2pStream(await host.new_stream(peer_id, [VKD_PROTOCOL]))
            except _DIAL_ERRORS as exc:
                raise TransportError(f"cannot reach {peer_id} for vkd: {exc}") from None
            try:
                await stream.send_all(request)
                await stream.send_eof()
                raw = await receive_frame(stream, _max_response(kind))
            except STREAM_ERRORS as exc:
                raise TransportError(f"vkd stream to {peer_id} failed: {exc}") from None
        response = VkdResponse.decode_untrusted(raw, kind)
    except BaseException as exc:
        if stream is not None:
            await stream.reset()
        if isinstance(exc, trio.TooSlowError):
            raise TransportError(f"no vkd answer from {peer_id} within {timeout_s:g} s") from None
        raise
    # The listener half-closed after its answer; anything more is discarded.
    assert stream is not None
    await stream.aclose_lingering(LINGER_S, max_discard=0)
    if response.status != _STATUS_OK:
        raise ProofUnavailable(f"{peer_id} has no proof for {handle!r}")
    return response.proof


async def fetch_lookup(
    host: IHost, peer: PeerInfo | ID | str, handle: str, timeout_s: float = FETCH_TIMEOUT_S
) -> LookupProof:
    """Ask ``peer`` (the directory or any caching node) for a lookup proof of ``handle``.

    The result is **untrusted**: it is only decoded. Pass it to
    :func:`vkd.verify_vkd_proof` before using anything in it; a proof for a
    handle that was never published verifies as :class:`vkd.NotRegistered`.

    Raises :class:`TransportError` when the peer cannot be reached, fails or
    is too slow; :class:`ProofUnavailable` (a TransportError) when it has no
    proof; :class:`DecodeError` when its answer is malformed or is for another
    handle; :class:`LocalProtocolError` for an invalid ``handle``.
    """
    proof = LookupProof.decode_untrusted(
        await _fetch(host, peer, VkdKind.LOOKUP, handle, timeout_s)
    )
    if proof.handle != handle:
        raise DecodeError("lookup proof is for another handle")
    return proof


async def fetch_history(
    host: IHost, peer: PeerInfo | ID | str, handle: str, timeout_s: float = FETCH_TIMEOUT_S
) -> HistoryProof:
    """Ask ``peer`` for the key history of ``handle``.

    Like :func:`fetch_lookup`, the result is **untrusted** until
    :func:`vkd.verify_vkd_proof` accepts it. Raises the same errors.
    """
    proof = HistoryProof.decode_untrusted(
        await _fetch(host, peer, VkdKind.HISTORY, handle, timeout_s)
    )
    if proof.handle != handle:
        raise DecodeError("history proof is for another handle")
    return proof
