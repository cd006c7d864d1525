"""The channel handshake: success, every check, tampering, framing and timers."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest

from chhaya.channel import (
    MAX_FRAME_BODY,
    MSG_ACK,
    MSG_SYN,
    MSG_SYN_ACK,
    SYN_ACK_SIZE,
    SYN_SIZE,
    ChannelConfig,
    ChannelConnection,
    ChannelState,
    ConnectionClosed,
    DataReceived,
    HandshakeComplete,
    Role,
    Syn,
    SynAck,
    SynReplayCache,
)
from chhaya.channel._keyschedule import (
    SIG_CONTEXT_SYN_ACK,
    continuation_tag,
    derive_session_keys,
    synack_signed_digest,
)
from chhaya.crypto import FAST, REFERENCE, CryptoSuite
from chhaya.identity import PrivateIdentity
from chhaya.safety import (
    ChhayaError,
    DecodeError,
    LocalProtocolError,
    RemoteProtocolError,
    Secret,
    VerificationError,
)

from .conftest import (
    DEFAULT_CONFIG,
    NOW,
    REMOTE_FAULTS,
    Peers,
    allow,
    assert_failed_closed,
    det_rng,
    drain,
    feed_until_failure,
    frame,
    handshake,
    make_dialer,
    make_listener,
    pump,
    syn_bytes,
)

SYNC = DEFAULT_CONFIG.synchrony_bound_ms
MAX_AGE = DEFAULT_CONFIG.max_handshake_age_ms
TIMEOUT = DEFAULT_CONFIG.handshake_timeout_ms


def assert_protocol_fault(exc: BaseException) -> None:
    """A protocol violation by the peer that is not a parse error."""
    assert isinstance(exc, RemoteProtocolError), repr(exc)
    assert not isinstance(exc, DecodeError), repr(exc)


def forge_synack(
    syn_frame: bytes,
    signer: PrivateIdentity,
    *,
    timestamp_ms: int = NOW,
    continuation: bytes | None = None,
    seed: bytes = b"rng/forger",
) -> bytes:
    """A framed SynAck built by hand the way an honest listener would build it.

    It answers the given Syn with correct keys, signature and confirmation;
    only what the caller overrides (signer, timestamp, continuation) differs.
    """
    body = syn_frame[4:]
    syn = Syn.decode_untrusted(body)
    rng = det_rng(seed)
    eph = FAST.dh.generate(rng)
    kem_secret, kem_ct = FAST.kem.encapsulate(syn.ephemeral_kem, rng)
    unsigned = SynAck(
        listener=signer.public.signing_key,
        ephemeral_x25519=eph.public_key,
        kem_ciphertext=kem_ct,
        timestamp_ms=timestamp_ms,
        continuation=continuation if continuation is not None else continuation_tag(body),
        signature=b"",
        confirmation=b"",
    ).unsigned_bytes()
    signature = signer.sign(SIG_CONTEXT_SYN_ACK + synack_signed_digest(body, unsigned))
    keys = derive_session_keys(
        DEFAULT_CONFIG.namespace_digest,
        eph.exchange(syn.ephemeral_x25519),
        kem_secret,
        body,
        unsigned,
        signature,
    )
    return frame(unsigned + signature + keys.listener_confirmation())


# ------------------------------------------------------------------ success


def test_handshake_agrees_on_everything(peers: Peers) -> None:
    hs = handshake(peers, dialer_resolver=allow(peers.bob, names=("bob",)))
    d, lst = hs.dialer_event, hs.listener_event

    assert len(d.transcript_hash) == 32
    assert d.transcript_hash == lst.transcript_hash
    assert isinstance(d.ratchet_root, Secret)
    assert d.ratchet_root == lst.ratchet_root
    assert len(d.ratchet_root) == 32

    same_d = d.exporter.export(b"label", b"context", 48)
    same_l = lst.exporter.export(b"label", b"context", 48)
    assert same_d == same_l
    assert len(same_d) == 48
    assert d.exporter.export(b"other label", b"context", 48) != same_d
    assert d.exporter.export(b"label", b"other context", 48) != same_d
    assert lst.exporter.export(b"other label", b"context", 48) != same_l
    # The exporter and the ratchet root are independent outputs.
    assert d.exporter.export(b"label", b"context", 32) != d.ratchet_root.reveal()

    assert d.peer_identity == peers.bob.public.signing_key
    assert lst.peer_identity == peers.alice.public.signing_key
    assert d.peer_info == "bob"
    assert lst.peer_info == "alice"

    assert hs.dialer.get_timer() is None
    assert hs.listener.get_timer() is None
    assert hs.dialer.failure is None
    assert hs.listener.failure is None


def test_dialer_without_resolver_reports_true(peers: Peers) -> None:
    hs = handshake(peers)
    assert hs.dialer_event.peer_info is True


def test_falsy_resolver_value_is_not_a_refusal(peers: Peers) -> None:
    """Only None refuses; an empty name is still an answer."""
    dialer = make_dialer(peers)
    listener = make_listener(peers, resolver=lambda _key: "")
    dialer.start(NOW)
    pump(dialer, listener, NOW)
    pump(listener, dialer, NOW)
    (event,) = pump(dialer, listener, NOW)
    assert isinstance(event, HandshakeComplete)
    assert event.peer_info == ""


def test_two_handshakes_give_different_secrets(peers: Peers) -> None:
    a = handshake(peers)
    # Same identities and seeds, but the FAST KEM draws fresh randomness.
    b = handshake(peers)
    assert a.dialer_event.transcript_hash != b.dialer_event.transcript_hash
    assert a.dialer_event.ratchet_root != b.dialer_event.ratchet_root


def test_handshake_sizes(peers: Peers) -> None:
    dialer = make_dialer(peers)
    listener = make_listener(peers)
    dialer.start(NOW)
    syn = dialer.data_to_send()
    assert len(syn) == 4 + SYN_SIZE
    assert syn[4] == MSG_SYN
    listener.receive_data(syn, NOW)
    assert drain(listener) == []
    synack = listener.data_to_send()
    assert len(synack) == 4 + SYN_ACK_SIZE
    assert synack[4] == MSG_SYN_ACK
    dialer.receive_data(synack, NOW)
    drain(dialer)
    ack = dialer.data_to_send()
    assert len(ack) == 4 + 33
    assert ack[4] == MSG_ACK


def test_handshake_bytes_may_arrive_one_at_a_time(peers: Peers) -> None:
    dialer = make_dialer(peers)
    listener = make_listener(peers)
    dialer.start(NOW)
    events: dict[str, list[object]] = {"dialer": [], "listener": []}
    for src, dst, name in (
        (dialer, listener, "listener"),
        (listener, dialer, "dialer"),
        (dialer, listener, "listener"),
    ):
        data = src.data_to_send()
        for i in range(len(data)):
            dst.receive_data(data[i : i + 1], NOW)
            events[name] += drain(dst)
    assert [type(e) for e in events["dialer"]] == [HandshakeComplete]
    assert [type(e) for e in events["listener"]] == [HandshakeComplete]
    assert dialer.state is ChannelState.ESTABLISHED
    assert listener.state is ChannelState.ESTABLISHED


# ------------------------------------------------------------ bit flipping


def _flips(wire_len: int) -> Iterator[tuple[int, int]]:
    """(offset, xor mask) for every single-bit flip, length prefix included."""
    for offset in range(wire_len):
        for bit in range(8):
            yield offset, 1 << bit


def _mutate(wire: bytes, offset: int, mask: int) -> bytes:
    out = bytearray(wire)
    out[offset] ^= mask
    return bytes(out)


def _outcome(exc: ChhayaError) -> str:
    return exc.check if isinstance(exc, VerificationError) else type(exc).__name__


def test_every_bit_flip_in_syn_is_rejected(peers: Peers) -> None:
    syn = syn_bytes(peers)
    bad: list[str] = []
    outcomes: Counter[str] = Counter()
    for offset, mask in _flips(len(syn)):
        listener = make_listener(peers)
        listener.start(NOW)
        exc = feed_until_failure(listener, _mutate(syn, offset, mask), NOW)
        if (
            not isinstance(exc, REMOTE_FAULTS)
            or listener.state is not ChannelState.FAILED
            or listener.data_to_send() != b""
        ):
            bad.append(f"offset {offset} mask {mask:#04x}: {exc!r} {listener.state}")
            continue
        outcomes[_outcome(exc)] += 1
    assert bad == []
    # The flips reach every layer of checks, not just one.
    for expected in (
        "DecodeError",
        "namespace",
        "expected-identity",
        "identity-not-allowed",
        "timestamp-future",
        "timestamp-stale",
        "signature",
    ):
        assert outcomes[expected] > 0, (expected, outcomes)


def test_every_bit_flip_in_synack_is_rejected(peers: Peers) -> None:
    syn = syn_bytes(peers)
    listener = make_listener(peers)
    listener.receive_data(syn, NOW)
    assert drain(listener) == []
    synack = listener.data_to_send()

    # Control: the untouched SynAck completes a fresh, identical dialer.
    control = make_dialer(peers)
    control.start(NOW)
    assert control.data_to_send() == syn
    control.receive_data(synack, NOW)
    assert isinstance(control.next_event(), HandshakeComplete)

    bad: list[str] = []
    outcomes: Counter[str] = Counter()
    for offset, mask in _flips(len(synack)):
        dialer = make_dialer(peers)  # same seed and clock: the same Syn
        dialer.start(NOW)
        dialer.data_to_send()
        exc = feed_until_failure(dialer, _mutate(synack, offset, mask), NOW)
        if (
            not isinstance(exc, REMOTE_FAULTS)
            or dialer.state is not ChannelState.FAILED
            or dialer.data_to_send() != b""
        ):
            bad.append(f"offset {offset} mask {mask:#04x}: {exc!r} {dialer.state}")
            continue
        outcomes[_outcome(exc)] += 1
    assert bad == []
    for expected in (
        "DecodeError",
        "expected-identity",
        "continuation",
        "timestamp-future",
        "signature",
        "key-confirmation",
    ):
        assert outcomes[expected] > 0, (expected, outcomes)


def test_every_bit_flip_in_ack_is_rejected(peers: Peers) -> None:
    bad: list[str] = []
    outcomes: Counter[str] = Counter()
    wire_len = 4 + 33
    for offset, mask in _flips(wire_len):
        # The FAST KEM is randomised, so each Ack needs its own session.
        dialer = make_dialer(peers)
        listener = make_listener(peers)
        dialer.start(NOW)
        pump(dialer, listener, NOW)
        pump(listener, dialer, NOW)
        ack = dialer.data_to_send()
        assert len(ack) == wire_len
        exc = feed_until_failure(listener, _mutate(ack, offset, mask), NOW)
        if (
            not isinstance(exc, REMOTE_FAULTS)
            or listener.state is not ChannelState.FAILED
            or listener.data_to_send() != b""
        ):
            bad.append(f"offset {offset} mask {mask:#04x}: {exc!r} {listener.state}")
            continue
        outcomes[_outcome(exc)] += 1
    assert bad == []
    assert outcomes["key-confirmation"] > 0
    assert outcomes["DecodeError"] > 0


# ------------------------------------------------------------ identities


@pytest.mark.parametrize(
    ("expected_name", "listener_name"),
    [("carol", "bob"), ("bob", "carol")],
    ids=["dialer-expects-carol-bob-answers", "dialer-expects-bob-carol-answers"],
)
def test_listener_rejects_syn_for_another_identity(
    peers: Peers, expected_name: str, listener_name: str
) -> None:
    expected: PrivateIdentity = getattr(peers, expected_name)
    listener_id: PrivateIdentity = getattr(peers, listener_name)
    dialer = make_dialer(peers, expected=expected)
    listener = make_listener(peers, identity=listener_id)
    dialer.start(NOW)
    listener.start(NOW)
    with pytest.raises(VerificationError) as info:
        pump(dialer, listener, NOW)
    assert info.value.check == "expected-identity"
    assert_failed_closed(listener)


def test_dialer_rejects_a_perfect_synack_from_another_identity(peers: Peers) -> None:
    # Control: the forger's SynAck, signed by bob, is accepted.
    dialer = make_dialer(peers)
    dialer.start(NOW)
    syn = dialer.data_to_send()
    dialer.receive_data(forge_synack(syn, peers.bob), NOW)
    assert isinstance(dialer.next_event(), HandshakeComplete)

    # The same construction signed by carol: valid in every way but identity.
    dialer = make_dialer(peers)
    dialer.start(NOW)
    assert dialer.data_to_send() == syn
    dialer.receive_data(forge_synack(syn, peers.carol), NOW)
    with pytest.raises(VerificationError) as info:
        dialer.next_event()
    assert info.value.check == "expected-identity"
    assert_failed_closed(dialer)


def test_listener_resolver_refuses_dialer(peers: Peers) -> None:
    dialer = make_dialer(peers)
    listener = make_listener(peers, resolver=allow(peers.carol))
    dialer.start(NOW)
    with pytest.raises(VerificationError) as info:
        pump(dialer, listener, NOW)
    assert info.value.check == "identity-not-allowed"
    assert_failed_closed(listener)


def test_dialer_resolver_refuses_listener(peers: Peers) -> None:
    dialer = make_dialer(peers, resolver=allow(peers.carol))
    listener = make_listener(peers)
    dialer.start(NOW)
    pump(dialer, listener, NOW)
    with pytest.raises(VerificationError) as info:
        pump(listener, dialer, NOW)
    assert info.value.check == "identity-not-allowed"
    assert_failed_closed(dialer)
    # The listener never gets an Ack, so it never completes.
    assert listener.state is ChannelState.EXPECT_ACK


def test_synack_for_another_syn_fails_continuation(peers: Peers) -> None:
    """A genuine SynAck spliced onto a different dialer's session."""
    first = make_dialer(peers, seed=b"rng/first")
    second = make_dialer(peers, seed=b"rng/second")
    listener = make_listener(peers)
    first.start(NOW)
    second.start(NOW)
    second.data_to_send()
    pump(first, listener, NOW)
    second.receive_data(listener.data_to_send(), NOW)
    with pytest.raises(VerificationError) as info:
        second.next_event()
    assert info.value.check == "continuation"
    assert_failed_closed(second)


def test_forged_continuation_fails(peers: Peers) -> None:
    dialer = make_dialer(peers)
    dialer.start(NOW)
    syn = dialer.data_to_send()
    dialer.receive_data(forge_synack(syn, peers.bob, continuation=bytes(32)), NOW)
    with pytest.raises(VerificationError) as info:
        dialer.next_event()
    assert info.value.check == "continuation"


def test_synack_signature_and_confirmation_are_checked(peers: Peers) -> None:
    syn = syn_bytes(peers)
    good = forge_synack(syn, peers.bob)
    sig_at = 4 + SYN_ACK_SIZE - 64 - 32
    mac_at = 4 + SYN_ACK_SIZE - 32
    for offset, check in ((sig_at, "signature"), (mac_at, "key-confirmation")):
        dialer = make_dialer(peers)
        dialer.start(NOW)
        dialer.data_to_send()
        tampered = bytearray(good)
        tampered[offset] ^= 0x80
        dialer.receive_data(bytes(tampered), NOW)
        with pytest.raises(VerificationError) as info:
            dialer.next_event()
        assert info.value.check == check


def test_namespace_mismatch(peers: Peers) -> None:
    dialer = make_dialer(peers, config=ChannelConfig(namespace=b"chhaya/elsewhere"))
    listener = make_listener(peers)
    dialer.start(NOW)
    with pytest.raises(VerificationError) as info:
        pump(dialer, listener, NOW)
    assert info.value.check == "namespace"
    assert_failed_closed(listener)


# ----------------------------------------------------------------- replay


def test_replayed_syn_is_refused_by_a_shared_cache(peers: Peers) -> None:
    """One cache for all of bob's connections sees the Syn on the second stream."""
    cache = SynReplayCache(DEFAULT_CONFIG.replay_window_ms)
    syn = syn_bytes(peers)

    first = make_listener(peers, replay_cache=cache)
    first.receive_data(syn, NOW)
    assert drain(first) == []
    assert first.state is ChannelState.EXPECT_ACK
    assert len(cache) == 1, "the listener did not record the Syn in the cache it was given"

    second = make_listener(peers, replay_cache=cache)
    second.receive_data(syn, NOW + 1)
    with pytest.raises(VerificationError) as info:
        second.next_event()
    assert info.value.check == "replayed-syn"
    assert_failed_closed(second)


def test_replayed_syn_is_refused_by_a_shared_nonempty_cache(peers: Peers) -> None:
    """As above, with a cache that already holds an unrelated entry."""
    cache = SynReplayCache(DEFAULT_CONFIG.replay_window_ms)
    assert cache.check_and_remember(b"\x00" * 32, NOW, NOW)
    syn = syn_bytes(peers)

    first = make_listener(peers, replay_cache=cache)
    first.receive_data(syn, NOW)
    assert drain(first) == []
    assert len(cache) == 2

    second = make_listener(peers, replay_cache=cache)
    second.receive_data(syn, NOW + 1)
    with pytest.raises(VerificationError) as info:
        second.next_event()
    assert info.value.check == "replayed-syn"


def test_separate_caches_cannot_see_a_replay(peers: Peers) -> None:
    """Why the cache must be shared by every connection of a listener identity.

    Each ChannelConnection is one stream, and a replayed Syn always arrives on
    a new stream, so a per-connection cache never holds the original. Only a
    cache shared across all connections that answer as one identity (and
    for as long as the replay window) can refuse the replay.
    """
    syn = syn_bytes(peers)
    for _ in range(2):
        listener = make_listener(peers)  # a private cache each time
        listener.receive_data(syn, NOW)
        assert drain(listener) == []
        assert listener.state is ChannelState.EXPECT_ACK


def test_badly_signed_syn_does_not_poison_the_cache(peers: Peers) -> None:
    cache = SynReplayCache(DEFAULT_CONFIG.replay_window_ms)
    syn = syn_bytes(peers)
    forged = bytearray(syn)
    forged[-1] ^= 0x01  # last byte of the signature
    first = make_listener(peers, replay_cache=cache)
    first.receive_data(bytes(forged), NOW)
    with pytest.raises(VerificationError) as info:
        first.next_event()
    assert info.value.check == "signature"

    second = make_listener(peers, replay_cache=cache)
    second.receive_data(syn, NOW)
    assert drain(second) == []
    assert second.state is ChannelState.EXPECT_ACK


def test_replay_after_the_window_is_stale_not_remembered(peers: Peers) -> None:
    cache = SynReplayCache(DEFAULT_CONFIG.replay_window_ms)
    syn = syn_bytes(peers)
    first = make_listener(peers, replay_cache=cache)
    first.receive_data(syn, NOW)
    drain(first)
    late = make_listener(peers, replay_cache=cache)
    late.receive_data(syn, NOW + MAX_AGE + 1)
    with pytest.raises(VerificationError) as info:
        late.next_event()
    assert info.value.check == "timestamp-stale"


# ------------------------------------------------------------------- time

_CUSTOM_TIME = ChannelConfig(synchrony_bound_ms=100, max_handshake_age_ms=250)


def _time_cases() -> list[tuple[ChannelConfig, int, str | None]]:
    cases: list[tuple[ChannelConfig, int, str | None]] = []
    for cfg in (DEFAULT_CONFIG, _CUSTOM_TIME):
        age, sync = cfg.max_handshake_age_ms, cfg.synchrony_bound_ms
        cases += [
            (cfg, 0, None),
            (cfg, age, None),
            (cfg, age + 1, "timestamp-stale"),
            (cfg, -sync, None),
            (cfg, -sync - 1, "timestamp-future"),
        ]
    return cases


def _time_id(case: tuple[ChannelConfig, int, str | None]) -> str:
    cfg, delta, check = case
    return f"sync{cfg.synchrony_bound_ms}-age{cfg.max_handshake_age_ms}-delta{delta}-{check}"


_TIME_CASES = _time_cases()


@pytest.mark.parametrize("case", _TIME_CASES, ids=[_time_id(c) for c in _TIME_CASES])
def test_syn_timestamp_bounds(peers: Peers, case: tuple[ChannelConfig, int, str | None]) -> None:
    cfg, delta, check = case
    dialer = make_dialer(peers, config=cfg)
    listener = make_listener(peers, config=cfg)
    dialer.start(NOW)
    listener.start(NOW + delta)
    if check is None:
        assert pump(dialer, listener, NOW + delta) == []
        assert listener.state is ChannelState.EXPECT_ACK
        return
    with pytest.raises(VerificationError) as info:
        pump(dialer, listener, NOW + delta)
    assert info.value.check == check
    assert_failed_closed(listener)


@pytest.mark.parametrize("case", _TIME_CASES, ids=[_time_id(c) for c in _TIME_CASES])
def test_synack_timestamp_bounds(peers: Peers, case: tuple[ChannelConfig, int, str | None]) -> None:
    cfg, delta, check = case
    dialer = make_dialer(peers, config=cfg)
    listener = make_listener(peers, config=cfg)
    dialer.start(NOW)
    pump(dialer, listener, NOW)  # the SynAck carries timestamp NOW
    if check is None:
        (event,) = pump(listener, dialer, NOW + delta)
        assert isinstance(event, HandshakeComplete)
        return
    with pytest.raises(VerificationError) as info:
        pump(listener, dialer, NOW + delta)
    assert info.value.check == check
    assert_failed_closed(dialer)


# ----------------------------------------------------------------- timers


def test_dialer_handshake_timeout(peers: Peers) -> None:
    dialer = make_dialer(peers)
    assert dialer.get_timer() is None
    dialer.start(NOW)
    assert dialer.get_timer() == NOW + TIMEOUT
    dialer.handle_timer(NOW + TIMEOUT - 1)  # early: nothing happens
    assert dialer.state is ChannelState.EXPECT_SYN_ACK
    with pytest.raises(VerificationError) as info:
        dialer.handle_timer(NOW + TIMEOUT)
    assert info.value.check == "handshake-timeout"
    assert_failed_closed(dialer)  # the queued Syn is dropped too
    dialer.handle_timer(NOW + 10 * TIMEOUT)  # no timer any more: no-op


def test_listener_handshake_timeout_waiting_for_ack(peers: Peers) -> None:
    cfg = ChannelConfig(handshake_timeout_ms=500)
    dialer = make_dialer(peers, config=cfg)
    listener = make_listener(peers, config=cfg)
    dialer.start(NOW)
    listener.start(NOW)
    assert listener.get_timer() == NOW + 500
    pump(dialer, listener, NOW + 100)
    assert listener.state is ChannelState.EXPECT_ACK
    assert listener.get_timer() == NOW + 500
    with pytest.raises(VerificationError) as info:
        listener.handle_timer(NOW + 600)
    assert info.value.check == "handshake-timeout"
    assert_failed_closed(listener)  # the unsent SynAck is dropped


def test_no_timer_once_established(peers: Peers) -> None:
    hs = handshake(peers)
    for conn in (hs.dialer, hs.listener):
        assert conn.get_timer() is None
        conn.handle_timer(NOW + 100 * TIMEOUT)
        assert conn.state is ChannelState.ESTABLISHED
    hs.dialer.send_data(b"still fine")
    assert pump(hs.dialer, hs.listener, NOW + 100 * TIMEOUT) == [DataReceived(b"still fine")]


# ---------------------------------------------------------------- framing


@pytest.mark.parametrize("length", [0, MAX_FRAME_BODY + 1, 1 << 24, 0xFFFFFFFF])
def test_bad_frame_length_fails_before_the_body(peers: Peers, length: int) -> None:
    listener = make_listener(peers)
    listener.receive_data(length.to_bytes(4, "big"), NOW)
    with pytest.raises(DecodeError):
        listener.next_event()
    assert_failed_closed(listener)


@pytest.mark.parametrize("length", [0, MAX_FRAME_BODY + 1])
def test_bad_frame_length_when_established(peers: Peers, length: int) -> None:
    hs = handshake(peers)
    hs.listener.receive_data(length.to_bytes(4, "big"), NOW)
    with pytest.raises(DecodeError):
        hs.listener.next_event()
    assert_failed_closed(hs.listener)


def test_largest_frame_length_waits_for_the_body(peers: Peers) -> None:
    listener = make_listener(peers)
    listener.receive_data(MAX_FRAME_BODY.to_bytes(4, "big") + b"\x01", NOW)
    assert listener.next_event() is None
    assert listener.state is ChannelState.EXPECT_SYN


def test_partial_length_prefix_waits(peers: Peers) -> None:
    listener = make_listener(peers)
    listener.receive_data(b"\x00\x00\x06", NOW)
    assert listener.next_event() is None
    assert listener.state is ChannelState.EXPECT_SYN


def _stray(frame_type: int, size: int = 33) -> bytes:
    return frame(bytes([frame_type]) + bytes(size - 1))


@pytest.mark.parametrize("frame_type", [0x00, MSG_SYN_ACK, MSG_ACK, 0x10, 0x11, 0x12, 0xFF])
def test_unexpected_frame_at_fresh_listener(peers: Peers, frame_type: int) -> None:
    listener = make_listener(peers)
    listener.start(NOW)
    listener.receive_data(_stray(frame_type), NOW)
    with pytest.raises(RemoteProtocolError) as info:
        listener.next_event()
    assert_protocol_fault(info.value)
    assert_failed_closed(listener)


@pytest.mark.parametrize("frame_type", [MSG_SYN, MSG_ACK, 0x10, 0x11, 0xFF])
def test_unexpected_frame_at_dialer_awaiting_synack(peers: Peers, frame_type: int) -> None:
    dialer = make_dialer(peers)
    dialer.start(NOW)
    syn = dialer.data_to_send()
    stray = syn if frame_type == MSG_SYN else _stray(frame_type)  # a reflected Syn
    dialer.receive_data(stray, NOW)
    with pytest.raises(RemoteProtocolError) as info:
        dialer.next_event()
    assert_protocol_fault(info.value)
    assert_failed_closed(dialer)


def test_frame_before_start_is_unexpected(peers: Peers) -> None:
    dialer = make_dialer(peers)
    dialer.receive_data(forge_synack(syn_bytes(peers), peers.bob), NOW)
    with pytest.raises(RemoteProtocolError) as info:
        dialer.next_event()
    assert_protocol_fault(info.value)
    assert_failed_closed(dialer)


@pytest.mark.parametrize("frame_type", [MSG_SYN, MSG_SYN_ACK, 0x10, 0x11])
def test_unexpected_frame_at_listener_awaiting_ack(peers: Peers, frame_type: int) -> None:
    dialer = make_dialer(peers)
    listener = make_listener(peers)
    dialer.start(NOW)
    syn = dialer.data_to_send()
    listener.receive_data(syn, NOW)
    drain(listener)
    listener.receive_data(syn if frame_type == MSG_SYN else _stray(frame_type), NOW)
    with pytest.raises(RemoteProtocolError) as info:
        listener.next_event()
    assert_protocol_fault(info.value)
    assert_failed_closed(listener)


@pytest.mark.parametrize("frame_type", [MSG_SYN, MSG_SYN_ACK, MSG_ACK, 0x00, 0xFF])
@pytest.mark.parametrize("side", [Role.DIALER, Role.LISTENER])
def test_handshake_frames_after_established(peers: Peers, frame_type: int, side: Role) -> None:
    hs = handshake(peers)
    conn = hs.dialer if side is Role.DIALER else hs.listener
    stray = syn_bytes(peers) if frame_type == MSG_SYN else _stray(frame_type)
    conn.receive_data(stray, NOW)
    with pytest.raises(RemoteProtocolError) as info:
        conn.next_event()
    assert_protocol_fault(info.value)
    assert_failed_closed(conn)


# -------------------------------------------------------------------- EOF


@pytest.mark.parametrize("cut", [1, 3, 4, 5, 900, 4 + SYN_SIZE - 1])
def test_eof_inside_a_handshake_frame(peers: Peers, cut: int) -> None:
    listener = make_listener(peers)
    listener.receive_data(syn_bytes(peers)[:cut], NOW)
    assert listener.next_event() is None
    listener.receive_data(b"", NOW)
    with pytest.raises(DecodeError):
        listener.next_event()
    assert_failed_closed(listener)


def test_eof_before_any_frame(peers: Peers) -> None:
    listener = make_listener(peers)
    listener.receive_data(b"", NOW)
    with pytest.raises(RemoteProtocolError) as info:
        listener.next_event()
    assert_protocol_fault(info.value)
    assert_failed_closed(listener)


def test_eof_inside_a_record(peers: Peers) -> None:
    hs = handshake(peers)
    hs.dialer.send_data(b"hello")
    record = hs.dialer.data_to_send()
    hs.listener.receive_data(record[:-1], NOW)
    assert hs.listener.next_event() is None
    hs.listener.receive_data(b"", NOW)
    with pytest.raises(DecodeError):
        hs.listener.next_event()
    assert_failed_closed(hs.listener)


def test_eof_without_close_when_established(peers: Peers) -> None:
    hs = handshake(peers)
    hs.dialer.send_data(b"last words")
    hs.listener.receive_data(hs.dialer.data_to_send(), NOW)
    hs.listener.receive_data(b"", NOW)
    assert hs.listener.next_event() == DataReceived(b"last words")
    with pytest.raises(RemoteProtocolError) as info:
        hs.listener.next_event()
    assert_protocol_fault(info.value)
    assert_failed_closed(hs.listener)


@pytest.mark.parametrize("closer", [Role.DIALER, Role.LISTENER])
def test_authenticated_close(peers: Peers, closer: Role) -> None:
    hs = handshake(peers)
    src, dst = (hs.dialer, hs.listener) if closer is Role.DIALER else (hs.listener, hs.dialer)
    src.send_data(b"bye")
    src.close()
    assert src.state is ChannelState.CLOSED
    with pytest.raises(LocalProtocolError):
        src.send_data(b"too late")
    assert pump(src, dst, NOW) == [DataReceived(b"bye"), ConnectionClosed()]
    assert dst.state is ChannelState.CLOSED
    assert dst.failure is None
    # End of stream after an authenticated close is the normal ending.
    dst.receive_data(b"", NOW)
    assert dst.next_event() is None
    assert dst.state is ChannelState.CLOSED
    with pytest.raises(LocalProtocolError):
        dst.send_data(b"x")


def test_close_during_handshake_sends_nothing_new(peers: Peers) -> None:
    listener = make_listener(peers)
    listener.close()
    assert listener.state is ChannelState.CLOSED
    assert listener.data_to_send() == b""
    assert listener.get_timer() is None


# ----------------------------------------------------- failure and secrecy


def test_failure_is_sticky(peers: Peers) -> None:
    listener = make_listener(peers)
    listener.receive_data(b"\x00\x00\x00\x00", NOW)
    with pytest.raises(DecodeError) as info:
        listener.next_event()
    assert listener.failure is info.value
    assert_failed_closed(listener)
    listener.close()  # allowed, and changes nothing
    assert listener.state is ChannelState.FAILED
    assert listener.data_to_send() == b""


def test_established_failure_drops_keys(peers: Peers) -> None:
    hs = handshake(peers)
    hs.listener.send_data(b"queued but never sent")
    hs.listener.receive_data(_stray(0xFF), NOW)
    with pytest.raises(RemoteProtocolError):
        hs.listener.next_event()
    assert_failed_closed(hs.listener)  # the queued record is dropped as well


def _secret_forms(secret: bytes) -> list[str]:
    return [secret.hex(), secret.hex().upper(), repr(secret)[2:-1]]


def test_reprs_do_not_leak_secrets(peers: Peers) -> None:
    hs = handshake(peers)
    event = hs.dialer_event
    root = event.ratchet_root.reveal()
    exporter_secret = event.exporter._secret.reveal()
    exported = event.exporter.export(b"label", b"", 32)

    keys = derive_session_keys(
        DEFAULT_CONFIG.namespace_digest, b"\x11" * 32, b"\x22" * 32, b"syn", b"synack", b"sig"
    )
    key_material = [
        keys.key_d2l,
        keys.key_l2d,
        keys.confirm_l,
        keys.confirm_d,
        keys.ratchet_root,
        keys.exporter_secret,
    ]
    texts = [
        repr(event),
        str(event),
        repr(event.exporter),
        repr(event.ratchet_root),
        str(event.ratchet_root),
        repr(keys),
        str(keys),
        repr(hs.dialer),
        repr(hs.dialer._sender),
        repr(hs.dialer._receiver),
        repr(peers.alice),
    ]
    secrets = [root, exporter_secret, exported, *key_material, peers.alice.secret_bytes()]
    for text in texts:
        for secret in secrets:
            for form in _secret_forms(secret):
                assert form not in text, text
    assert "redacted" in repr(event.exporter)
    assert "redacted" in repr(event.ratchet_root)
    assert "redacted" in repr(keys)


def test_secret_cannot_be_hashed_or_pickled() -> None:
    import pickle

    secret = Secret(b"\x01" * 32)
    with pytest.raises(TypeError):
        hash(secret)
    with pytest.raises(TypeError):
        pickle.dumps(secret)


def test_construction_requires_expected_peer_and_resolver(peers: Peers) -> None:
    with pytest.raises(LocalProtocolError):
        ChannelConnection(Role.DIALER, peers.alice, DEFAULT_CONFIG, det_rng(b"x"))
    with pytest.raises(LocalProtocolError):
        ChannelConnection(Role.LISTENER, peers.bob, DEFAULT_CONFIG, det_rng(b"x"))


def test_start_twice_is_a_local_error(peers: Peers) -> None:
    dialer = make_dialer(peers)
    dialer.start(NOW)
    with pytest.raises(LocalProtocolError):
        dialer.start(NOW)


def test_send_before_established_is_a_local_error(peers: Peers) -> None:
    dialer = make_dialer(peers)
    dialer.start(NOW)
    with pytest.raises(LocalProtocolError):
        dialer.send_data(b"early")
    assert dialer.state is ChannelState.EXPECT_SYN_ACK


# ------------------------------------------------------- suite interop


@pytest.mark.parametrize(
    ("dialer_suite", "listener_suite"),
    [(REFERENCE, FAST), (FAST, REFERENCE)],
    ids=["reference-dialer", "reference-listener"],
)
def test_reference_suite_interoperates_with_fast(
    peers: Peers, dialer_suite: CryptoSuite, listener_suite: CryptoSuite
) -> None:
    hs = handshake(
        peers,
        dialer_config=ChannelConfig(suite=dialer_suite),
        listener_config=ChannelConfig(suite=listener_suite),
    )
    assert hs.dialer_event.transcript_hash == hs.listener_event.transcript_hash
    assert hs.dialer_event.ratchet_root == hs.listener_event.ratchet_root
    hs.dialer.send_data(b"ping")
    assert pump(hs.dialer, hs.listener, NOW) == [DataReceived(b"ping")]
    hs.listener.send_data(b"pong")
    assert pump(hs.listener, hs.dialer, NOW) == [DataReceived(b"pong")]
