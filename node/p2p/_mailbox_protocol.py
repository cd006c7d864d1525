"""``/chhaya/mailbox/1.0.0``: offline delivery through mailbox peers.

When a recipient is unreachable, the sender deposits the sealed envelope
with mailbox peers: the K closest DHT server peers to the recipient's
mailbox id::

    mailbox id = SHA-256("chhaya/mailbox/v1" || identity signing key (32))

Every message is one frame (``length u32 || message``, see ``_framing``).
The first frame of a stream says which exchange it is::

    deposit   C->S  "CMD1" || mailbox id (32) || envelope var32
                    (len(envelope) is one of chhaya.sealed.PADDING_BUCKETS)
              S->C  "CMR1" || status u8 (0 stored, 1 refused)

    fetch     C->S  "CMF1" || identity signing key (32) || max u16 (1..MAX_FETCH)
              S->C  "CMC1" || nonce (32, fresh random)
              C->S  "CMS1" || signature (64)
              S->C  "CML1" || count u16 || count x (envelope id (16) || envelope var32)
              C->S  "CMA1" || count u16 || count x envelope id (16) || signature (64)
              S->C  "CMK1" || deleted u16

The fetch signature is Ed25519 by the identity key over
``"chhaya/mailbox/fetch/v1" || var16(server peer id) || nonce || max u16``,
the ack signature over ``"chhaya/mailbox/ack/v1" || var16(server peer id) ||
nonce || count u16 || ids``. Both name the server and this stream's nonce,
so neither can be replayed to another mailbox peer or on another stream.

The server checks the fetch signature before it looks anything up, so an
unauthenticated requester learns nothing about which mailboxes exist; an
authenticated requester whose mailbox is empty or unknown gets count 0. It
deletes only ids of that requester's mailbox, and only on a valid ack of
this stream. A refusal says nothing about why. A malformed or late message,
or a bad signature, gets a stream reset and nothing else.

A list carries at most :data:`MAX_FETCH` envelopes and at most
:data:`MAX_BATCH_BYTES` of entries; :func:`fetch` asks again, on a new
stream, until a batch comes back empty.

Store calls run in a worker thread (one at a time): the store commits with
``synchronous=FULL``, and an fsync on the trio thread would stall every
connection of the host for its duration.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final, TypeVar

import trio
from libp2p.abc import IHost
from libp2p.custom_types import TProtocol
from libp2p.exceptions import BaseLibp2pError
from libp2p.kad_dht.common import PROTOCOL_ID as KAD_PROTOCOL_ID
from libp2p.kad_dht.utils import sort_peer_ids_by_distance
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo

from chhaya import (
    ChhayaError,
    CryptoError,
    DecodeError,
    LocalProtocolError,
    StorageError,
    TransportError,
)
from chhaya.crypto import FAST, CryptoSuite
from chhaya.identity import PrivateIdentity
from chhaya.sealed import PADDING_BUCKETS
from chhaya.wire import Reader, Writer

from ..clock import system_rng, wall_ms
from ..mailbox_db import ENVELOPE_ID_SIZE, MAILBOX_ID_SIZE, MailboxStore
from ._channel_protocol import _peer_info
from ._dht import ChhayaDht
from ._framing import STREAM_ERRORS, frame, receive_frame
from ._service import StreamService
from ._stream import Libp2pStream

__all__ = [
    "MAILBOX_PROTOCOL",
    "MAX_BATCH_BYTES",
    "MAX_FETCH",
    "AckResult",
    "BatchHandler",
    "DepositRequest",
    "DepositResponse",
    "FetchAck",
    "FetchChallenge",
    "FetchList",
    "FetchProof",
    "FetchRequest",
    "MailboxService",
    "ack_signing_message",
    "closest_mailbox_peers",
    "deposit",
    "fetch",
    "fetch_signing_message",
    "mailbox_id_for",
]

log = logging.getLogger("chhaya.p2p.mailbox")

MAILBOX_PROTOCOL: Final = TProtocol("/chhaya/mailbox/1.0.0")

#: Most envelopes one list carries (and one ack names).
MAX_FETCH: Final = 256
#: Bound on the entries of one list (16 + 4 + envelope bytes each).
MAX_BATCH_BYTES: Final = 1 << 20
#: Bound on the fetch rounds of one :func:`fetch` call.
MAX_FETCH_ROUNDS: Final = 64
#: Bound on one exchange (one deposit, or one fetch round) for a client.
REQUEST_TIMEOUT_S: Final = 10.0
#: How long the server waits for each client message.
MESSAGE_TIMEOUT_S: Final = 10.0
#: Streams a mailbox peer serves at once.
MAX_STREAMS: Final = 32
#: How long a side that has answered waits for the peer to close its half.
LINGER_S: Final = 2.0
#: How long :func:`closest_mailbox_peers` walks the DHT before using what it has.
LOOKUP_TIMEOUT_S: Final = 10.0

_MAILBOX_DOMAIN: Final = b"chhaya/mailbox/v1"
_FETCH_DOMAIN: Final = b"chhaya/mailbox/fetch/v1"
_ACK_DOMAIN: Final = b"chhaya/mailbox/ack/v1"
_KEY_SIZE: Final = 32
_NONCE_SIZE: Final = 32
_SIGNATURE_SIZE: Final = 64
_MAX_PEER_ID_SIZE: Final = 128
_BUCKETS: Final = frozenset(PADDING_BUCKETS)
_MAX_ENVELOPE: Final = max(PADDING_BUCKETS)
_ENTRY_OVERHEAD: Final = ENVELOPE_ID_SIZE + 4

_DEPOSIT_MAGIC: Final = b"CMD1"
_DEPOSIT_RESPONSE_MAGIC: Final = b"CMR1"
_FETCH_MAGIC: Final = b"CMF1"
_CHALLENGE_MAGIC: Final = b"CMC1"
_PROOF_MAGIC: Final = b"CMS1"
_LIST_MAGIC: Final = b"CML1"
_ACK_MAGIC: Final = b"CMA1"
_ACK_RESULT_MAGIC: Final = b"CMK1"

MAX_DEPOSIT_SIZE: Final = 4 + MAILBOX_ID_SIZE + 4 + _MAX_ENVELOPE
DEPOSIT_RESPONSE_SIZE: Final = 5
FETCH_REQUEST_SIZE: Final = 4 + _KEY_SIZE + 2
CHALLENGE_SIZE: Final = 4 + _NONCE_SIZE
PROOF_SIZE: Final = 4 + _SIGNATURE_SIZE
MAX_LIST_SIZE: Final = 4 + 2 + MAX_BATCH_BYTES
MAX_ACK_SIZE: Final = 4 + 2 + MAX_FETCH * ENVELOPE_ID_SIZE + _SIGNATURE_SIZE
ACK_RESULT_SIZE: Final = 6
#: The first frame of a stream is a deposit or a fetch request.
_MAX_FIRST_SIZE: Final = max(MAX_DEPOSIT_SIZE, FETCH_REQUEST_SIZE)

_STORED: Final = 0
_REFUSED: Final = 1

_T = TypeVar("_T")

_DIAL_ERRORS = (BaseLibp2pError, OSError, ValueError, trio.BrokenResourceError)

#: ``handle_batch(entries)`` processes ``(envelope id, envelope)`` pairs and
#: returns the ids it has durably committed, to be acknowledged (deleted).
BatchHandler = Callable[[list[tuple[bytes, bytes]]], Awaitable[Sequence[bytes]]]


def mailbox_id_for(identity_key: bytes) -> bytes:
    """``SHA-256("chhaya/mailbox/v1" || identity signing key)``."""
    if len(identity_key) != _KEY_SIZE:
        raise ValueError("identity signing key must be 32 bytes")
    return hashlib.sha256(_MAILBOX_DOMAIN + bytes(identity_key)).digest()


def _peer_id_field(server_peer_id: bytes) -> bytes:
    return Writer().var16(server_peer_id, _MAX_PEER_ID_SIZE).getvalue()


def fetch_signing_message(server_peer_id: bytes, nonce: bytes, max_count: int) -> bytes:
    """What the identity signs to open a fetch on one stream."""
    w = Writer().raw(_FETCH_DOMAIN).raw(_peer_id_field(server_peer_id))
    return w.fixed(nonce, _NONCE_SIZE).u16(max_count).getvalue()


def ack_signing_message(server_peer_id: bytes, nonce: bytes, ids: Sequence[bytes]) -> bytes:
    """What the identity signs to delete ``ids`` on one stream."""
    w = Writer().raw(_ACK_DOMAIN).raw(_peer_id_field(server_peer_id))
    w.fixed(nonce, _NONCE_SIZE).u16(len(ids))
    for envelope_id in ids:
        w.fixed(envelope_id, ENVELOPE_ID_SIZE)
    return w.getvalue()


def _check_envelope(envelope: bytes) -> None:
    if len(envelope) not in _BUCKETS:
        raise LocalProtocolError("an envelope must be one of the padded bucket sizes")


def _read_envelope(r: Reader) -> bytes:
    envelope = r.var32(_MAX_ENVELOPE, "envelope")
    if len(envelope) not in _BUCKETS:
        raise DecodeError("envelope is not one of the padded bucket sizes")
    return envelope


def _reader(data: bytes, max_size: int, what: str) -> Reader:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DecodeError(f"{what} is not bytes")
    if len(data) > max_size:
        raise DecodeError(f"{what} too large")
    return Reader(data)


# ------------------------------------------------------------------ wire types


@dataclass(frozen=True, slots=True)
class DepositRequest:
    """``"CMD1" || mailbox id (32) || envelope var32``."""

    mailbox_id: bytes
    envelope: bytes

    def encode(self) -> bytes:
        if len(self.mailbox_id) != MAILBOX_ID_SIZE:
            raise LocalProtocolError("mailbox id must be 32 bytes")
        _check_envelope(self.envelope)
        w = Writer().raw(_DEPOSIT_MAGIC).fixed(self.mailbox_id, MAILBOX_ID_SIZE)
        return w.var32(self.envelope, _MAX_ENVELOPE).getvalue()

    @classmethod
    def decode_untrusted(cls, data: bytes) -> DepositRequest:
        """Parse peer bytes; raises only :class:`DecodeError`."""
        r = _reader(data, MAX_DEPOSIT_SIZE, "deposit")
        r.expect(_DEPOSIT_MAGIC, "deposit magic")
        mailbox_id = r.fixed(MAILBOX_ID_SIZE, "mailbox id")
        envelope = _read_envelope(r)
        r.finish()
        return cls(mailbox_id, envelope)


@dataclass(frozen=True, slots=True)
class DepositResponse:
    """``"CMR1" || status u8 (0 stored, 1 refused)``."""

    stored: bool

    def encode(self) -> bytes:
        return _DEPOSIT_RESPONSE_MAGIC + bytes((_STORED if self.stored else _REFUSED,))

    @classmethod
    def decode_untrusted(cls, data: bytes) -> DepositResponse:
        """Parse peer bytes; raises only :class:`DecodeError`."""
        r = _reader(data, DEPOSIT_RESPONSE_SIZE, "deposit response")
        r.expect(_DEPOSIT_RESPONSE_MAGIC, "deposit response magic")
        status = r.u8("deposit status")
        r.finish()
        if status not in (_STORED, _REFUSED):
            raise DecodeError("unknown deposit status")
        return cls(status == _STORED)


@dataclass(frozen=True, slots=True)
class FetchRequest:
    """``"CMF1" || identity signing key (32) || max u16 (1..MAX_FETCH)``."""

    identity_key: bytes
    max_count: int

    def encode(self) -> bytes:
        if len(self.identity_key) != _KEY_SIZE:
            raise LocalProtocolError("identity signing key must be 32 bytes")
        if not 1 <= self.max_count <= MAX_FETCH:
            raise LocalProtocolError(f"max must be 1..{MAX_FETCH}")
        w = Writer().raw(_FETCH_MAGIC).fixed(self.identity_key, _KEY_SIZE)
        return w.u16(self.max_count).getvalue()

    @classmethod
    def decode_untrusted(cls, data: bytes) -> FetchRequest:
        """Parse peer bytes; raises only :class:`DecodeError`."""
        r = _reader(data, FETCH_REQUEST_SIZE, "fetch request")
        r.expect(_FETCH_MAGIC, "fetch request magic")
        identity_key = r.fixed(_KEY_SIZE, "identity key")
        max_count = r.u16("max")
        r.finish()
        if not 1 <= max_count <= MAX_FETCH:
            raise DecodeError("fetch max out of range")
        return cls(identity_key, max_count)


@dataclass(frozen=True, slots=True)
class FetchChallenge:
    """``"CMC1" || nonce (32)``."""

    nonce: bytes

    def encode(self) -> bytes:
        if len(self.nonce) != _NONCE_SIZE:
            raise LocalProtocolError("nonce must be 32 bytes")
        return _CHALLENGE_MAGIC + self.nonce

    @classmethod
    def decode_untrusted(cls, data: bytes) -> FetchChallenge:
        """Parse peer bytes; raises only :class:`DecodeError`."""
        r = _reader(data, CHALLENGE_SIZE, "challenge")
        r.expect(_CHALLENGE_MAGIC, "challenge magic")
        nonce = r.fixed(_NONCE_SIZE, "nonce")
        r.finish()
        return cls(nonce)


@dataclass(frozen=True, slots=True)
class FetchProof:
    """``"CMS1" || signature (64)``."""

    signature: bytes

    def encode(self) -> bytes:
        if len(self.signature) != _SIGNATURE_SIZE:
            raise LocalProtocolError("signature must be 64 bytes")
        return _PROOF_MAGIC + self.signature

    @classmethod
    def decode_untrusted(cls, data: bytes) -> FetchProof:
        """Parse peer bytes; raises only :class:`DecodeError`."""
        r = _reader(data, PROOF_SIZE, "fetch proof")
        r.expect(_PROOF_MAGIC, "fetch proof magic")
        signature = r.fixed(_SIGNATURE_SIZE, "signature")
        r.finish()
        return cls(signature)


@dataclass(frozen=True, slots=True)
class FetchList:
    """``"CML1" || count u16 || count x (envelope id (16) || envelope var32)``.

    At most :data:`MAX_FETCH` entries and :data:`MAX_BATCH_BYTES` of them;
    ids are distinct.
    """

    entries: tuple[tuple[bytes, bytes], ...]

    def encode(self) -> bytes:
        if len(self.entries) > MAX_FETCH:
            raise LocalProtocolError(f"a list carries at most {MAX_FETCH} envelopes")
        if len({i for i, _ in self.entries}) != len(self.entries):
            raise LocalProtocolError("envelope ids in a list must be distinct")
        w = Writer().raw(_LIST_MAGIC).u16(len(self.entries))
        for envelope_id, envelope in self.entries:
            _check_envelope(envelope)
            w.fixed(envelope_id, ENVELOPE_ID_SIZE).var32(envelope, _MAX_ENVELOPE)
        out = w.getvalue()
        if len(out) > MAX_LIST_SIZE:
            raise LocalProtocolError("list exceeds MAX_BATCH_BYTES")
        return out

    @classmethod
    def decode_untrusted(cls, data: bytes) -> FetchList:
        """Parse peer bytes; raises only :class:`DecodeError`."""
        r = _reader(data, MAX_LIST_SIZE, "list")
        r.expect(_LIST_MAGIC, "list magic")
        count = r.u16("list count")
        if count > MAX_FETCH:
            raise DecodeError("list too long")
        entries = []
        for _ in range(count):
            envelope_id = r.fixed(ENVELOPE_ID_SIZE, "envelope id")
            entries.append((envelope_id, _read_envelope(r)))
        r.finish()
        if len({i for i, _ in entries}) != count:
            raise DecodeError("duplicate envelope id in a list")
        return cls(tuple(entries))


@dataclass(frozen=True, slots=True)
class FetchAck:
    """``"CMA1" || count u16 || count x envelope id (16) || signature (64)``."""

    ids: tuple[bytes, ...]
    signature: bytes

    def encode(self) -> bytes:
        if len(self.ids) > MAX_FETCH:
            raise LocalProtocolError(f"an ack names at most {MAX_FETCH} envelopes")
        if len(self.signature) != _SIGNATURE_SIZE:
            raise LocalProtocolError("signature must be 64 bytes")
        w = Writer().raw(_ACK_MAGIC).u16(len(self.ids))
        for envelope_id in self.ids:
            w.fixed(envelope_id, ENVELOPE_ID_SIZE)
        return w.raw(self.signature).getvalue()

    @classmethod
    def decode_untrusted(cls, data: bytes) -> FetchAck:
        """Parse peer bytes; raises only :class:`DecodeError`. Checks no signature."""
        r = _reader(data, MAX_ACK_SIZE, "ack")
        r.expect(_ACK_MAGIC, "ack magic")
        count = r.u16("ack count")
        if count > MAX_FETCH:
            raise DecodeError("ack too long")
        ids = tuple(r.fixed(ENVELOPE_ID_SIZE, "envelope id") for _ in range(count))
        signature = r.fixed(_SIGNATURE_SIZE, "signature")
        r.finish()
        return cls(ids, signature)


@dataclass(frozen=True, slots=True)
class AckResult:
    """``"CMK1" || deleted u16``."""

    deleted: int

    def encode(self) -> bytes:
        if not 0 <= self.deleted <= MAX_FETCH:
            raise LocalProtocolError("deleted count out of range")
        return Writer().raw(_ACK_RESULT_MAGIC).u16(self.deleted).getvalue()

    @classmethod
    def decode_untrusted(cls, data: bytes) -> AckResult:
        """Parse peer bytes; raises only :class:`DecodeError`."""
        r = _reader(data, ACK_RESULT_SIZE, "ack result")
        r.expect(_ACK_RESULT_MAGIC, "ack result magic")
        deleted = r.u16("deleted")
        r.finish()
        if deleted > MAX_FETCH:
            raise DecodeError("deleted count out of range")
        return cls(deleted)


# ------------------------------------------------------------------ mailbox peer


class _Refused(Exception):
    """The stream gets a reset (bad input, bad signature, timeout)."""


class MailboxService(StreamService):
    """Serves ``/chhaya/mailbox/1.0.0`` from a :class:`~node.mailbox_db.MailboxStore`.

    The store is used from worker threads, one call at a time: open it with
    ``check_same_thread=False``. ``clock()`` is wall time in milliseconds;
    ``rng(n)`` makes the challenge nonces.
    """

    protocol = MAILBOX_PROTOCOL

    def __init__(
        self,
        host: IHost,
        store: MailboxStore,
        clock: Callable[[], int] = wall_ms,
        rng: Callable[[int], bytes] = system_rng,
        *,
        suite: CryptoSuite = FAST,
        max_streams: int = MAX_STREAMS,
        message_timeout_s: float = MESSAGE_TIMEOUT_S,
        linger_s: float = LINGER_S,
    ) -> None:
        super().__init__(host, max_streams)
        self._store = store
        self._clock = clock
        self._rng = rng
        self._suite = suite
        self._message_timeout_s = message_timeout_s
        self._linger_s = linger_s
        self._db_limiter = trio.CapacityLimiter(1)
        self._peer_id_bytes = host.get_id().to_bytes()
        #: Envelopes stored.
        self.stored = 0
        #: Well-formed deposits refused (quota, total cap, storage failure).
        self.refused = 0
        #: Envelopes handed over in lists.
        self.handed_over = 0
        #: Envelopes deleted on an acknowledgement.
        self.deleted = 0

    async def _db(self, fn: Callable[[], _T]) -> _T:
        return await trio.to_thread.run_sync(fn, limiter=self._db_limiter)

    async def _receive(self, stream: Libp2pStream, max_size: int) -> bytes:
        with trio.fail_after(self._message_timeout_s):
            return await receive_frame(stream, max_size)

    async def _serve(self, stream: Libp2pStream) -> None:
        peer_id = stream.remote_peer_id
        try:
            first = await self._receive(stream, _MAX_FIRST_SIZE)
            if first[:4] == _DEPOSIT_MAGIC:
                await self._deposit(stream, DepositRequest.decode_untrusted(first))
            else:
                await self._fetch(stream, FetchRequest.decode_untrusted(first))
        except (_Refused, DecodeError, trio.TooSlowError, *STREAM_ERRORS) as exc:
            self.rejected += 1
            log.info("reset a mailbox stream from %s: %s", peer_id, str(exc) or type(exc))
            await stream.reset()

    async def _finish(self, stream: Libp2pStream, message: bytes) -> None:
        await stream.send_all(frame(message))
        await stream.send_eof()
        await stream.aclose_lingering(self._linger_s)

    async def _deposit(self, stream: Libp2pStream, request: DepositRequest) -> None:
        store, now = self._store, self._clock()
        try:
            envelope_id = await self._db(
                lambda: store.put(request.mailbox_id, request.envelope, now)
            )
        except (StorageError, ValueError) as exc:
            log.warning("could not store an envelope: %s", exc)
            envelope_id = None
        if envelope_id is None:
            self.refused += 1
        else:
            self.stored += 1
        await self._finish(stream, DepositResponse(envelope_id is not None).encode())

    def _verify(self, identity_key: bytes, message: bytes, signature: bytes) -> None:
        try:
            self._suite.sig.verify(identity_key, message, signature)
        except CryptoError:
            raise _Refused("bad signature") from None

    async def _fetch(self, stream: Libp2pStream, request: FetchRequest) -> None:
        nonce = bytes(self._rng(_NONCE_SIZE))
        await stream.send_all(frame(FetchChallenge(nonce).encode()))
        proof = FetchProof.decode_untrusted(await self._receive(stream, PROOF_SIZE))
        # The signature is checked before the store is touched: an
        # unauthenticated requester learns nothing about the mailbox.
        message = fetch_signing_message(self._peer_id_bytes, nonce, request.max_count)
        self._verify(request.identity_key, message, proof.signature)
        mailbox_id = mailbox_id_for(request.identity_key)
        store, now = self._store, self._clock()
        try:
            entries = await self._db(lambda: store.fetch(mailbox_id, request.max_count, now))
        except StorageError as exc:
            log.warning("could not read a mailbox: %s", exc)
            raise _Refused("storage failure") from None
        batch: list[tuple[bytes, bytes]] = []
        size = 0
        for envelope_id, envelope in entries:
            size += _ENTRY_OVERHEAD + len(envelope)
            if size > MAX_BATCH_BYTES or len(envelope) not in _BUCKETS:
                break
            batch.append((envelope_id, envelope))
        await stream.send_all(frame(FetchList(tuple(batch)).encode()))
        self.handed_over += len(batch)
        ack = FetchAck.decode_untrusted(await self._receive(stream, MAX_ACK_SIZE))
        message = ack_signing_message(self._peer_id_bytes, nonce, ack.ids)
        self._verify(request.identity_key, message, ack.signature)
        deleted = 0
        if ack.ids:
            try:
                deleted = await self._db(lambda: store.delete(mailbox_id, ack.ids))
            except StorageError as exc:
                log.warning("could not delete acknowledged envelopes: %s", exc)
        self.deleted += deleted
        await self._finish(stream, AckResult(min(deleted, MAX_FETCH)).encode())


# ------------------------------------------------------------------ clients


async def _open(host: IHost, info: PeerInfo) -> Libp2pStream:
    try:
        await host.connect(info)
        return Libp2pStream(await host.new_stream(info.peer_id, [MAILBOX_PROTOCOL]))
    except _DIAL_ERRORS as exc:
        raise TransportError(f"cannot reach mailbox peer {info.peer_id}: {exc}") from None


async def deposit(
    host: IHost,
    peer: PeerInfo | ID | str,
    mailbox_id: bytes,
    envelope: bytes,
    timeout_s: float = REQUEST_TIMEOUT_S,
) -> bool:
    """Leave ``envelope`` in mailbox ``mailbox_id`` at ``peer``; True if it stored it.

    False is a refusal (quota, capacity: the peer does not say which).
    Raises :class:`TransportError` when the peer cannot be reached, resets,
    answers garbage or not within ``timeout_s``; :class:`LocalProtocolError`
    for an envelope that is not one of the padded bucket sizes.
    """
    request = frame(DepositRequest(mailbox_id, envelope).encode())
    info = _peer_info(peer)
    stream: Libp2pStream | None = None
    try:
        with trio.fail_after(timeout_s):
            stream = await _open(host, info)
            try:
                await stream.send_all(request)
                await stream.send_eof()
                raw = await receive_frame(stream, DEPOSIT_RESPONSE_SIZE)
                stored = DepositResponse.decode_untrusted(raw).stored
            except STREAM_ERRORS as exc:
                raise TransportError(f"deposit to {info.peer_id} failed: {exc}") from None
            except DecodeError as exc:
                raise TransportError(
                    f"mailbox peer {info.peer_id} answered garbage: {exc}"
                ) from None
    except trio.TooSlowError:
        if stream is not None:
            await stream.reset()
        raise TransportError(
            f"no answer from mailbox peer {info.peer_id} in {timeout_s:g} s"
        ) from None
    except BaseException:
        if stream is not None:
            await stream.reset()
        raise
    await stream.aclose_lingering(LINGER_S, max_discard=0)
    return stored


async def _fetch_round(
    host: IHost,
    info: PeerInfo,
    identity: PrivateIdentity,
    handle_batch: BatchHandler,
    max_count: int,
    timeout_s: float,
) -> tuple[int, int]:
    """One stream: ``(envelopes received, envelopes acknowledged)``."""
    server = info.peer_id.to_bytes()
    stream: Libp2pStream | None = None
    try:
        try:
            with trio.fail_after(timeout_s):
                stream = await _open(host, info)
                request = FetchRequest(identity.public.signing_key, max_count)
                await stream.send_all(frame(request.encode()))
                challenge = FetchChallenge.decode_untrusted(
                    await receive_frame(stream, CHALLENGE_SIZE)
                )
                nonce = challenge.nonce
                signature = identity.sign(fetch_signing_message(server, nonce, max_count))
                await stream.send_all(frame(FetchProof(signature).encode()))
                listed = FetchList.decode_untrusted(await receive_frame(stream, MAX_LIST_SIZE))
            if len(listed.entries) > max_count:
                raise DecodeError("more envelopes than asked for")
            entries = list(listed.entries)
            # Not under the timeout: the caller commits durably here. The
            # mailbox peer waits MESSAGE_TIMEOUT_S for the ack.
            acked = await handle_batch(entries) if entries else []
            sent = {i for i, _ in entries}
            ids = tuple(dict.fromkeys(bytes(i) for i in acked))
            if not set(ids) <= sent:
                raise LocalProtocolError("handle_batch acknowledged an id it was not given")
            with trio.fail_after(timeout_s):
                signature = identity.sign(ack_signing_message(server, nonce, ids))
                await stream.send_all(frame(FetchAck(ids, signature).encode()))
                await stream.send_eof()
                AckResult.decode_untrusted(await receive_frame(stream, ACK_RESULT_SIZE))
        except STREAM_ERRORS as exc:
            raise TransportError(f"fetch from {info.peer_id} failed: {exc}") from None
        except DecodeError as exc:
            raise TransportError(f"mailbox peer {info.peer_id} answered garbage: {exc}") from None
        except trio.TooSlowError:
            raise TransportError(
                f"no answer from mailbox peer {info.peer_id} in {timeout_s:g} s"
            ) from None
    except BaseException:
        if stream is not None:
            await stream.reset()
        raise
    await stream.aclose_lingering(LINGER_S, max_discard=0)
    return len(entries), len(ids)


async def fetch(
    host: IHost,
    peer: PeerInfo | ID | str,
    identity: PrivateIdentity,
    handle_batch: BatchHandler,
    *,
    max: int = MAX_FETCH,  # the wire field's name
    timeout_s: float = REQUEST_TIMEOUT_S,
    max_rounds: int = MAX_FETCH_ROUNDS,
) -> int:
    """Collect ``identity``'s envelopes from the mailbox peer at ``peer``.

    Each round opens a stream, proves the identity, receives up to ``max``
    envelopes (oldest first), hands them to ``handle_batch`` and acknowledges
    the ids it returns, which the peer then deletes. Rounds go on until a
    batch is empty, ``handle_batch`` leaves part of a batch unacknowledged
    (the rest would come straight back), or ``max_rounds`` rounds ran.
    ``timeout_s`` bounds each round's network part; ``handle_batch`` itself
    must return within the peer's :data:`MESSAGE_TIMEOUT_S`.

    Returns the number of envelopes acknowledged. Raises
    :class:`TransportError` when the peer cannot be reached, resets (which it
    does for a bad signature), answers garbage or is too slow; what earlier
    rounds acknowledged stays acknowledged. An envelope that was handled but
    whose ack was lost comes again on the next fetch: callers dedup by
    message id. Exceptions from ``handle_batch`` propagate.
    """
    if not 1 <= max <= MAX_FETCH:
        raise LocalProtocolError(f"max must be 1..{MAX_FETCH}")
    info = _peer_info(peer)
    total = 0
    for _ in range(max_rounds):
        received, acked = await _fetch_round(host, info, identity, handle_batch, max, timeout_s)
        total += acked
        if received == 0 or acked < received:
            break
    return total


# ------------------------------------------------------------------ placement


def _may_serve_mailboxes(dht: ChhayaDht, peer_id: ID) -> bool:
    """False for a peer we know is a DHT client or does not run the mailbox protocol.

    Peers we never talked to (learned from other servers' answers) have no
    protocols in the peerstore; they came from routing tables that keep only
    servers, so they count.
    """
    if peer_id in dht.routing_peers:
        return True
    try:
        protocols = set(dht.kad.host.get_peerstore().get_protocols(peer_id))
    except Exception:  # py-libp2p raises PeerStoreError (and others) for unknown peers
        return True
    if not protocols:
        return True
    return KAD_PROTOCOL_ID in protocols and MAILBOX_PROTOCOL in protocols


async def closest_mailbox_peers(
    dht: ChhayaDht,
    identity_key: bytes,
    k: int = 3,
    *,
    timeout_s: float = LOOKUP_TIMEOUT_S,
) -> list[ID]:
    """The ``k`` DHT server peers closest to ``identity_key``'s mailbox id.

    Walks the network with py-libp2p's iterative Kademlia lookup
    (``peer_routing.find_closest_peers_network``, XOR distance in the
    SHA-256 keyspace the DHT itself uses), bounded by ``timeout_s``, merged
    with our own routing table, so a failed or slow walk falls back to the
    local view. Peers known to be DHT clients, or known not to serve
    ``/chhaya/mailbox/1.0.0``, are left out.

    Our own peer id is never returned: a sender holding the envelope itself
    helps no more than its outbox while it is online, and a recipient does
    not fetch from itself. A node that is among the closest simply serves
    mailboxes to others through :class:`MailboxService`.
    """
    key = mailbox_id_for(identity_key)
    if k < 1:
        return []
    local = dht.kad.host.get_id()
    found: list[ID] = []
    with trio.move_on_after(timeout_s):
        try:
            found = await dht.kad.peer_routing.find_closest_peers_network(key, max(20, k))
        except (BaseLibp2pError, OSError, ValueError, ChhayaError) as exc:
            log.info("mailbox peer lookup failed, using the routing table: %s", exc)
    candidates = found + dht.kad.routing_table.find_local_closest_peers(key, max(20, k))
    unique = [p for p in dict.fromkeys(candidates) if p != local]
    servers = [p for p in unique if _may_serve_mailboxes(dht, p)]
    return sort_peer_ids_by_distance(key, servers)[:k]
