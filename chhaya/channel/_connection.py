"""The channel state machine: a three-message handshake, then records.

How it works
------------
A dialer and a listener each hold a :class:`ChannelConnection`. The driver
feeds it bytes with ``receive_data(data, now)``, pulls events with
``next_event()`` until it returns None, writes out ``data_to_send()``, and
calls ``handle_timer(now)`` when ``get_timer()`` expires.

    dialer                                      listener
    IDLE --start()--> EXPECT_SYN_ACK            EXPECT_SYN
          Syn  ------------------------------>  checks, then
                                                EXPECT_ACK
          <------------------------------  SynAck
    checks, key confirmation
    ESTABLISHED
          Ack  ------------------------------>  key confirmation
                                                ESTABLISHED
          <========== DATA / CLOSE records ==========>

Every check failure, malformed frame or timeout moves the machine to FAILED:
the keys are dropped, the error is raised to the driver for its local log,
and nothing is queued for the peer. The driver then closes the stream, so
the peer learns only that the stream ended. Transitions are listed in
``_TRANSITIONS``; any frame type not listed for a state is fatal.
"""

from __future__ import annotations

import struct
from enum import Enum

from ..crypto import AEAD_TAG_SIZE, DhKeyPair, KemKeyPair, Rng
from ..identity import PrivateIdentity
from ..safety import (
    ChhayaError,
    CryptoError,
    DecodeError,
    LocalProtocolError,
    RemoteProtocolError,
    Secret,
    VerificationError,
    ct_equal,
)
from ._config import ChannelConfig, Resolver
from ._constants import (
    FRAME_CLOSE,
    FRAME_DATA,
    MAX_FRAME_BODY,
    MAX_RECORD_PLAINTEXT,
    MSG_ACK,
    MSG_SYN,
    MSG_SYN_ACK,
)
from ._events import ConnectionClosed, DataReceived, Event, HandshakeComplete
from ._keyschedule import (
    SIG_CONTEXT_SYN,
    SIG_CONTEXT_SYN_ACK,
    Exporter,
    SessionKeys,
    continuation_tag,
    derive_session_keys,
    syn_digest,
    synack_signed_digest,
)
from ._messages import Ack, Syn, SynAck
from ._record import RecordReceiver, RecordSender
from ._replay import SynReplayCache

__all__ = ["ChannelConnection", "ChannelState", "Role", "StreamEnded"]

_LEN = struct.Struct(">I")
_COMPACT_AT = 1 << 20
_MIN_RECORD_BODY = 1 + AEAD_TAG_SIZE


class StreamEnded(RemoteProtocolError):
    """The peer ended the stream at a frame boundary without a close frame."""


class Role(Enum):
    DIALER = "dialer"
    LISTENER = "listener"


class ChannelState(Enum):
    IDLE = "idle"
    EXPECT_SYN = "expect-syn"
    EXPECT_SYN_ACK = "expect-syn-ack"
    EXPECT_ACK = "expect-ack"
    ESTABLISHED = "established"
    CLOSED = "closed"
    FAILED = "failed"


# (state, frame type received) -> handler name. Anything else is fatal.
_TRANSITIONS: dict[tuple[ChannelState, int], str] = {
    (ChannelState.EXPECT_SYN, MSG_SYN): "_on_syn",
    (ChannelState.EXPECT_SYN_ACK, MSG_SYN_ACK): "_on_syn_ack",
    (ChannelState.EXPECT_ACK, MSG_ACK): "_on_ack",
    (ChannelState.ESTABLISHED, FRAME_DATA): "_on_data",
    (ChannelState.ESTABLISHED, FRAME_CLOSE): "_on_close",
}


class ChannelConnection:
    """One end of a channel. Sans-IO: no sockets, clocks or randomness."""

    def __init__(
        self,
        role: Role,
        identity: PrivateIdentity,
        config: ChannelConfig,
        rng: Rng,
        *,
        expected_peer: bytes | None = None,
        resolver: Resolver | None = None,
        replay_cache: SynReplayCache | None = None,
    ) -> None:
        if role is Role.DIALER and expected_peer is None:
            raise LocalProtocolError("a dialer must name the identity it expects")
        if role is Role.LISTENER and resolver is None:
            raise LocalProtocolError("a listener needs a resolver to accept identities")
        self.role = role
        self._identity = identity
        self._config = config
        self._rng = rng
        self._expected_peer = expected_peer
        self._resolver = resolver
        # ``is None``, not ``or``: an empty shared cache is falsy (it has __len__).
        self._replay_cache = (
            replay_cache if replay_cache is not None else SynReplayCache(config.replay_window_ms)
        )
        self._state = ChannelState.IDLE if role is Role.DIALER else ChannelState.EXPECT_SYN
        self._now = 0
        self._deadline: int | None = None
        self._inbuf: bytes | bytearray = b""
        self._inpos = 0
        self._eof = False
        self._out: list[bytes] = []
        self._failure: ChhayaError | None = None
        # Handshake secrets, dropped as soon as the handshake ends.
        self._eph_dh: DhKeyPair | None = None
        self._eph_kem: KemKeyPair | None = None
        self._syn_encoded = b""
        self._keys: SessionKeys | None = None
        self._listener_mac = b""
        self._peer_identity = b""
        self._peer_info: object = None
        # Established record layer.
        self._sender: RecordSender | None = None
        self._receiver: RecordReceiver | None = None

    # ----------------------------------------------------------------- public

    @property
    def state(self) -> ChannelState:
        return self._state

    @property
    def failure(self) -> ChhayaError | None:
        """Why the channel failed, for local logs only."""
        return self._failure

    def start(self, now: int) -> None:
        """Arm the handshake timer; a dialer also queues its Syn."""
        self._check_usable()
        self._now = now
        self._deadline = now + self._config.handshake_timeout_ms
        if self.role is Role.LISTENER:
            return
        if self._state is not ChannelState.IDLE:
            raise LocalProtocolError("start() called twice")
        suite = self._config.suite
        self._eph_dh = suite.dh.generate(self._rng)
        self._eph_kem = suite.kem.generate(self._rng)
        assert self._expected_peer is not None
        unsigned = Syn(
            namespace_digest=self._config.namespace_digest,
            expected_listener=self._expected_peer,
            dialer=self._identity.public.signing_key,
            ephemeral_x25519=self._eph_dh.public_key,
            ephemeral_kem=self._eph_kem.public_key,
            timestamp_ms=now,
            signature=b"",
        ).unsigned_bytes()
        signature = self._identity.sign(SIG_CONTEXT_SYN + syn_digest(unsigned))
        self._syn_encoded = unsigned + signature
        self._queue(self._syn_encoded)
        self._state = ChannelState.EXPECT_SYN_ACK

    def receive_data(self, data: bytes, now: int) -> None:
        """Buffer bytes from the peer; ``b""`` means the peer closed its side."""
        if self._state is ChannelState.FAILED:
            raise LocalProtocolError("channel has failed")
        self._now = now
        if type(data) is not bytes:
            data = bytes(data)  # never keep a reference to a mutable buffer
        if not data:
            self._eof = True
        elif self._inpos == len(self._inbuf):
            self._inbuf = data  # nothing pending: no copy
            self._inpos = 0
        else:
            if not isinstance(self._inbuf, bytearray):
                self._inbuf = bytearray(self._inbuf[self._inpos :])
                self._inpos = 0
            self._inbuf += data

    def next_event(self) -> Event | None:
        """Process one frame. Returns None when more bytes are needed."""
        if self._state is ChannelState.FAILED:
            raise LocalProtocolError("channel has failed")
        try:
            return self._next_event()
        except ChhayaError as exc:
            self._fail(exc)
            raise

    def send_data(self, data: bytes) -> None:
        """Encrypt one message as one record."""
        sender = self._sender
        if self._state is not ChannelState.ESTABLISHED or sender is None:
            self._check_usable()
            raise LocalProtocolError(f"cannot send in state {self._state.value}")
        if len(data) > MAX_RECORD_PLAINTEXT:
            raise LocalProtocolError(f"message larger than {MAX_RECORD_PLAINTEXT} bytes")
        try:
            self._out.append(sender.seal(FRAME_DATA, data))
        except LocalProtocolError as exc:
            self._fail(exc)
            raise

    def close(self) -> None:
        """Queue an authenticated close; further sends are refused."""
        try:
            if self._state is ChannelState.ESTABLISHED and self._sender is not None:
                self._out.append(self._sender.seal(FRAME_CLOSE, b""))
        finally:
            # Even if the close frame cannot be sealed, the channel ends here.
            if self._state is not ChannelState.FAILED:
                self._state = ChannelState.CLOSED
            self._wipe()

    def data_to_send(self) -> bytes:
        out = self._out
        data = out[0] if len(out) == 1 else b"".join(out)  # one frame: no copy
        out.clear()
        return data

    def get_timer(self) -> int | None:
        """When ``handle_timer`` must next be called, if at all."""
        if self._state in (ChannelState.ESTABLISHED, ChannelState.CLOSED, ChannelState.FAILED):
            return None
        return self._deadline

    def handle_timer(self, now: int) -> None:
        self._now = now
        deadline = self.get_timer()
        if deadline is not None and now >= deadline:
            exc = VerificationError("handshake-timeout", "handshake did not complete in time")
            self._fail(exc)
            raise exc

    # --------------------------------------------------------------- internal

    def _check_usable(self) -> None:
        if self._state is ChannelState.FAILED:
            raise LocalProtocolError("channel has failed")

    def _queue(self, body: bytes) -> None:
        self._out.append(_LEN.pack(len(body)) + body)

    def _fail(self, exc: ChhayaError) -> None:
        self._state = ChannelState.FAILED
        self._failure = exc
        self._out.clear()
        self._wipe()

    def _wipe(self) -> None:
        self._eph_dh = None
        self._eph_kem = None
        self._keys = None
        self._inbuf = b""
        self._inpos = 0
        if self._sender is not None:
            self._sender.wipe()
        if self._receiver is not None:
            self._receiver.wipe()

    def _next_event(self) -> Event | None:
        buf = self._inbuf
        pos = self._inpos
        available = len(buf) - pos
        # Fast path: a whole DATA record on an established channel.
        if available > 4 and buf[pos + 4] == FRAME_DATA:
            receiver = self._receiver
            if receiver is not None and self._state is ChannelState.ESTABLISHED:
                (body_len,) = _LEN.unpack_from(buf, pos)
                end = pos + 4 + body_len
                if _MIN_RECORD_BODY <= body_len <= MAX_FRAME_BODY and end <= len(buf):
                    if type(buf) is bytes:  # immutable: the view needs no release
                        plaintext = receiver.open(
                            buf[pos : pos + 5], memoryview(buf)[pos + 5 : end]
                        )
                        if end == len(buf):  # the common case, inlined: all consumed
                            self._inbuf = b""
                            self._inpos = 0
                            return DataReceived(plaintext)
                    else:
                        with memoryview(buf) as view:
                            plaintext = receiver.open(view[pos : pos + 5], view[pos + 5 : end])
                    self._consume(end)
                    return DataReceived(plaintext)
        return self._next_event_slow(buf, pos, available)

    def _consume(self, end: int) -> None:
        """Drop one frame from the input buffer; compact it now and then."""
        if end == len(self._inbuf):
            self._inbuf = b""
            self._inpos = 0
        elif end > _COMPACT_AT and isinstance(self._inbuf, bytearray):
            del self._inbuf[:end]
            self._inpos = 0
        else:
            self._inpos = end

    def _next_event_slow(self, buf: bytes | bytearray, pos: int, available: int) -> Event | None:
        if self._state is ChannelState.CLOSED:
            return None
        if available < 4:
            self._check_eof(available)
            return None
        (body_len,) = _LEN.unpack_from(buf, pos)
        if body_len == 0 or body_len > MAX_FRAME_BODY:
            raise DecodeError(f"frame length {body_len} out of bounds")
        if available < 4 + body_len:
            self._check_eof(available)
            return None
        start = pos + 4
        end = start + body_len
        frame_type = buf[start]
        handler = _TRANSITIONS.get((self._state, frame_type))
        if handler is None:
            raise RemoteProtocolError(
                f"unexpected frame type {frame_type:#x} in state {self._state.value}"
            )
        if frame_type == FRAME_DATA:
            event: Event | None = self._on_data(buf, pos, end)
        else:
            event = getattr(self, handler)(bytes(buf[start:end]))
        self._consume(end)
        return event

    def _check_eof(self, available: int) -> None:
        if self._eof:
            if available:
                raise DecodeError("stream ended inside a frame (truncated)")
            raise StreamEnded("stream ended without an authenticated close")

    # ---------------------------------------------------------- transitions

    def _check_time(self, timestamp_ms: int) -> None:
        cfg = self._config
        if timestamp_ms > self._now + cfg.synchrony_bound_ms:
            raise VerificationError("timestamp-future", "peer clock is too far ahead")
        if timestamp_ms < self._now - cfg.max_handshake_age_ms:
            raise VerificationError("timestamp-stale", "handshake message is too old")

    def _resolve(self, identity: bytes) -> object:
        info = self._resolver(identity) if self._resolver is not None else True
        if info is None:
            raise VerificationError("identity-not-allowed", "peer identity is not accepted")
        return info

    def _on_syn(self, body: bytes) -> None:
        syn = Syn.decode_untrusted(body)
        cfg = self._config
        suite = cfg.suite
        if not ct_equal(syn.namespace_digest, cfg.namespace_digest):
            raise VerificationError("namespace", "peer is in another namespace")
        if not ct_equal(syn.expected_listener, self._identity.public.signing_key):
            raise VerificationError("expected-identity", "dialer expects another identity")
        self._check_time(syn.timestamp_ms)
        self._peer_info = self._resolve(syn.dialer)
        unsigned = body[: len(body) - len(syn.signature)]
        digest = syn_digest(unsigned)
        try:
            suite.sig.verify(syn.dialer, SIG_CONTEXT_SYN + digest, syn.signature)
        except CryptoError:
            raise VerificationError("signature", "Syn signature is invalid") from None
        if not self._replay_cache.check_and_remember(digest, syn.timestamp_ms, self._now):
            raise VerificationError("replayed-syn", "Syn was seen before")
        eph = suite.dh.generate(self._rng)
        dh_secret = eph.exchange(syn.ephemeral_x25519)
        kem_secret, kem_ct = suite.kem.encapsulate(syn.ephemeral_kem, self._rng)
        ack_unsigned = SynAck(
            listener=self._identity.public.signing_key,
            ephemeral_x25519=eph.public_key,
            kem_ciphertext=kem_ct,
            timestamp_ms=self._now,
            continuation=continuation_tag(body),
            signature=b"",
            confirmation=b"",
        ).unsigned_bytes()
        signature = self._identity.sign(
            SIG_CONTEXT_SYN_ACK + synack_signed_digest(body, ack_unsigned)
        )
        keys = derive_session_keys(
            cfg.namespace_digest, dh_secret, kem_secret, body, ack_unsigned, signature
        )
        self._keys = keys
        self._listener_mac = keys.listener_confirmation()
        self._peer_identity = syn.dialer
        self._queue(ack_unsigned + signature + self._listener_mac)
        self._state = ChannelState.EXPECT_ACK

    def _on_syn_ack(self, body: bytes) -> HandshakeComplete:
        ack = SynAck.decode_untrusted(body)
        cfg = self._config
        assert self._expected_peer is not None
        assert self._eph_dh is not None
        assert self._eph_kem is not None
        if not ct_equal(ack.listener, self._expected_peer):
            raise VerificationError("expected-identity", "listener is not the expected identity")
        if not ct_equal(ack.continuation, continuation_tag(self._syn_encoded)):
            raise VerificationError("continuation", "SynAck does not continue our Syn")
        self._check_time(ack.timestamp_ms)
        self._peer_info = self._resolve(ack.listener)
        unsigned_len = len(body) - len(ack.signature) - len(ack.confirmation)
        unsigned = body[:unsigned_len]
        try:
            cfg.suite.sig.verify(
                ack.listener,
                SIG_CONTEXT_SYN_ACK + synack_signed_digest(self._syn_encoded, unsigned),
                ack.signature,
            )
        except CryptoError:
            raise VerificationError("signature", "SynAck signature is invalid") from None
        dh_secret = self._eph_dh.exchange(ack.ephemeral_x25519)
        kem_secret = self._eph_kem.decapsulate(ack.kem_ciphertext)
        keys = derive_session_keys(
            cfg.namespace_digest, dh_secret, kem_secret, self._syn_encoded, unsigned, ack.signature
        )
        if not ct_equal(ack.confirmation, keys.listener_confirmation()):
            raise VerificationError("key-confirmation", "listener key confirmation failed")
        dialer_mac = keys.dialer_confirmation(ack.confirmation)
        self._queue(Ack(dialer_mac).encode())
        self._peer_identity = ack.listener
        return self._establish(keys, ack.confirmation, dialer_mac)

    def _on_ack(self, body: bytes) -> HandshakeComplete:
        ack = Ack.decode_untrusted(body)
        keys = self._keys
        assert keys is not None
        if not ct_equal(ack.confirmation, keys.dialer_confirmation(self._listener_mac)):
            raise VerificationError("key-confirmation", "dialer key confirmation failed")
        return self._establish(keys, self._listener_mac, ack.confirmation)

    def _establish(
        self, keys: SessionKeys, listener_mac: bytes, dialer_mac: bytes
    ) -> HandshakeComplete:
        cfg = self._config
        if self.role is Role.DIALER:
            send_key, recv_key = keys.key_d2l, keys.key_l2d
        else:
            send_key, recv_key = keys.key_l2d, keys.key_d2l
        self._sender = RecordSender(send_key, cfg.rekey_interval, cfg.max_frames)
        self._receiver = RecordReceiver(recv_key, cfg.rekey_interval, cfg.max_frames)
        event = HandshakeComplete(
            peer_identity=self._peer_identity,
            peer_info=self._peer_info,
            transcript_hash=keys.transcript_hash(listener_mac, dialer_mac),
            ratchet_root=Secret(keys.ratchet_root),
            exporter=Exporter(keys.exporter_secret),
        )
        self._eph_dh = None
        self._eph_kem = None
        self._keys = None
        self._syn_encoded = b""
        self._state = ChannelState.ESTABLISHED
        return event

    def _on_data(self, buf: bytes | bytearray, pos: int, end: int) -> DataReceived:
        assert self._receiver is not None
        header = bytes(buf[pos : pos + 5])
        with memoryview(buf) as view:
            plaintext = self._receiver.open(header, view[pos + 5 : end])
        return DataReceived(plaintext)

    def _on_close(self, body: bytes) -> ConnectionClosed:
        assert self._receiver is not None
        header = _LEN.pack(len(body)) + body[:1]
        self._receiver.open(header, body[1:])
        self._state = ChannelState.CLOSED
        self._wipe()
        return ConnectionClosed()
