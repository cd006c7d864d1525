"""The record layer: round trips, tampering, rekeying and the frame limit."""

from __future__ import annotations

import contextlib

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from chhaya.channel import (
    FRAME_CLOSE,
    FRAME_DATA,
    MAX_RECORD_PLAINTEXT,
    ChannelConfig,
    ChannelConnection,
    ChannelState,
    ConnectionClosed,
    DataReceived,
    RecordReceiver,
    RecordSender,
)
from chhaya.crypto import hkdf_expand
from chhaya.safety import (
    CryptoError,
    DecodeError,
    LocalProtocolError,
    RemoteProtocolError,
)

from .conftest import (
    NOW,
    REMOTE_FAULTS,
    Handshake,
    Peers,
    assert_failed_closed,
    det_rng,
    drain,
    feed_until_failure,
    frame,
    handshake,
    pump,
    split_frames,
)

SIZES = [0, 1, 64, 1024, MAX_RECORD_PLAINTEXT]


def _ends(hs: Handshake, direction: str) -> tuple[ChannelConnection, ChannelConnection]:
    return (hs.dialer, hs.listener) if direction == "d2l" else (hs.listener, hs.dialer)


def _record(src: ChannelConnection, payload: bytes) -> bytes:
    src.send_data(payload)
    return src.data_to_send()


# -------------------------------------------------------------- round trip


@pytest.mark.parametrize("direction", ["d2l", "l2d"])
def test_round_trip_all_sizes(peers: Peers, direction: str) -> None:
    hs = handshake(peers)
    src, dst = _ends(hs, direction)
    rng = det_rng(direction.encode())
    sent = [rng(n) for _ in range(3) for n in SIZES]
    for payload in sent:
        src.send_data(payload)
    assert pump(src, dst, NOW) == [DataReceived(p) for p in sent]
    assert dst.state is ChannelState.ESTABLISHED


def test_many_messages_both_ways_interleaved(peers: Peers) -> None:
    hs = handshake(peers)
    rng = det_rng(b"interleaved")
    for i in range(200):
        for src, dst in ((hs.dialer, hs.listener), (hs.listener, hs.dialer)):
            payload = rng(SIZES[i % 4])  # the 64 KiB size is covered above
            src.send_data(payload)
            assert pump(src, dst, NOW) == [DataReceived(payload)]


def test_records_split_at_odd_boundaries(peers: Peers) -> None:
    hs = handshake(peers)
    payloads = [bytes([i]) * (i * 37) for i in range(30)]
    for p in payloads:
        hs.dialer.send_data(p)
    stream = hs.dialer.data_to_send()
    events = []
    for i in range(0, len(stream), 7):
        hs.listener.receive_data(stream[i : i + 7], NOW)
        events += drain(hs.listener)
    assert events == [DataReceived(p) for p in payloads]


def test_large_backlog_is_consumed_in_order(peers: Peers) -> None:
    """More than a megabyte in one read: exercises the buffer compaction."""
    hs = handshake(peers)
    payloads = [bytes([i]) * MAX_RECORD_PLAINTEXT for i in range(40)]
    for p in payloads:
        hs.listener.send_data(p)
    assert pump(hs.listener, hs.dialer, NOW) == [DataReceived(p) for p in payloads]
    hs.listener.send_data(b"after")
    assert pump(hs.listener, hs.dialer, NOW) == [DataReceived(b"after")]


def test_oversized_message_is_refused_before_encryption(peers: Peers) -> None:
    hs = handshake(peers)
    with pytest.raises(LocalProtocolError):
        hs.dialer.send_data(b"\x00" * (MAX_RECORD_PLAINTEXT + 1))
    # Nothing was sealed, the counter did not move, and the channel goes on.
    assert hs.dialer.data_to_send() == b""
    assert hs.dialer.state is ChannelState.ESTABLISHED
    assert hs.dialer.failure is None
    hs.dialer.send_data(b"next")
    assert pump(hs.dialer, hs.listener, NOW) == [DataReceived(b"next")]


def test_record_frame_layout(peers: Peers) -> None:
    hs = handshake(peers)
    wire = _record(hs.dialer, b"abc")
    assert len(wire) == 4 + 1 + 3 + 16
    assert int.from_bytes(wire[:4], "big") == 1 + 3 + 16
    assert wire[4] == FRAME_DATA
    assert b"abc" not in wire


# --------------------------------------------------------------- tampering


def test_replayed_record_fails(peers: Peers) -> None:
    hs = handshake(peers)
    wire = _record(hs.dialer, b"once")
    hs.listener.receive_data(wire, NOW)
    assert drain(hs.listener) == [DataReceived(b"once")]
    hs.listener.receive_data(wire, NOW)
    with pytest.raises(CryptoError):
        hs.listener.next_event()
    assert_failed_closed(hs.listener)


def test_reordered_records_fail(peers: Peers) -> None:
    hs = handshake(peers)
    hs.dialer.send_data(b"first")
    hs.dialer.send_data(b"second")
    first, second = split_frames(hs.dialer.data_to_send())
    hs.listener.receive_data(second + first, NOW)
    with pytest.raises(CryptoError):
        hs.listener.next_event()
    assert_failed_closed(hs.listener)


def test_dropped_record_makes_the_next_fail(peers: Peers) -> None:
    hs = handshake(peers)
    _record(hs.dialer, b"lost")
    hs.listener.receive_data(_record(hs.dialer, b"found"), NOW)
    with pytest.raises(CryptoError):
        hs.listener.next_event()
    assert_failed_closed(hs.listener)


def test_reflected_record_fails(peers: Peers) -> None:
    """Directional keys: a record sent back to its sender does not open."""
    hs = handshake(peers)
    wire = _record(hs.dialer, b"mirror")
    hs.dialer.receive_data(wire, NOW)
    with pytest.raises(CryptoError):
        hs.dialer.next_event()
    assert_failed_closed(hs.dialer)


def test_record_from_another_session_fails(peers: Peers) -> None:
    a = handshake(peers)
    b = handshake(peers)
    b.listener.receive_data(_record(a.dialer, b"wrong session"), NOW)
    with pytest.raises(CryptoError):
        b.listener.next_event()


def test_every_bit_flip_in_a_record_fails(peers: Peers) -> None:
    clean = handshake(peers)
    wire_len = len(_record(clean.dialer, b"hello"))
    bad: list[str] = []
    for offset in range(wire_len):
        for bit in range(8):
            hs = handshake(peers)
            wire = bytearray(_record(hs.dialer, b"hello"))
            wire[offset] ^= 1 << bit
            exc = feed_until_failure(hs.listener, bytes(wire), NOW)
            if (
                not isinstance(exc, REMOTE_FAULTS)
                or hs.listener.state is not ChannelState.FAILED
                or hs.listener.data_to_send() != b""
            ):
                bad.append(f"offset {offset} bit {bit}: {exc!r} {hs.listener.state}")
    assert bad == []


@pytest.mark.parametrize(
    "offset", [5, 6, 7, -17, -1], ids=["ct0", "ct1", "ct-last", "tag0", "tag-last"]
)
def test_modified_ciphertext_or_tag_fails(peers: Peers, offset: int) -> None:
    hs = handshake(peers)
    wire = bytearray(_record(hs.dialer, b"payload"))
    wire[offset] ^= 0x01
    hs.listener.receive_data(bytes(wire), NOW)
    with pytest.raises(CryptoError):
        hs.listener.next_event()
    assert_failed_closed(hs.listener)


def test_data_relabelled_as_close_fails(peers: Peers) -> None:
    """The type byte is AAD: DATA turned into CLOSE does not authenticate."""
    hs = handshake(peers)
    wire = bytearray(_record(hs.dialer, b""))
    wire[4] = FRAME_CLOSE
    hs.listener.receive_data(bytes(wire), NOW)
    with pytest.raises(CryptoError):
        hs.listener.next_event()
    assert_failed_closed(hs.listener)  # FAILED, not CLOSED


def test_close_relabelled_as_data_fails(peers: Peers) -> None:
    hs = handshake(peers)
    hs.dialer.close()
    wire = bytearray(hs.dialer.data_to_send())
    assert wire[4] == FRAME_CLOSE
    wire[4] = FRAME_DATA
    hs.listener.receive_data(bytes(wire), NOW)
    with pytest.raises(CryptoError):
        hs.listener.next_event()
    assert_failed_closed(hs.listener)


def test_unknown_record_type_is_a_protocol_error(peers: Peers) -> None:
    hs = handshake(peers)
    wire = bytearray(_record(hs.dialer, b"x"))
    wire[4] = 0x12
    hs.listener.receive_data(bytes(wire), NOW)
    with pytest.raises(RemoteProtocolError) as info:
        hs.listener.next_event()
    assert not isinstance(info.value, DecodeError)
    assert_failed_closed(hs.listener)


@pytest.mark.parametrize("change", ["grow", "shrink"])
def test_length_change_with_consistent_framing_fails(peers: Peers, change: str) -> None:
    """Length is AAD: re-framing the body to a new length does not authenticate."""
    hs = handshake(peers)
    body = _record(hs.dialer, b"sixteen bytes!!!")[4:]
    body = body + b"\x00" if change == "grow" else body[:-1]
    hs.listener.receive_data(frame(body), NOW)
    with pytest.raises(CryptoError):
        hs.listener.next_event()
    assert_failed_closed(hs.listener)


@pytest.mark.parametrize("frame_type", [FRAME_DATA, FRAME_CLOSE])
@pytest.mark.parametrize("body_len", [1, 2, 16, 17])
def test_records_too_short_for_a_tag_fail(peers: Peers, frame_type: int, body_len: int) -> None:
    hs = handshake(peers)
    hs.listener.receive_data(frame(bytes([frame_type]) + bytes(body_len - 1)), NOW)
    with pytest.raises(CryptoError):
        hs.listener.next_event()
    assert_failed_closed(hs.listener)


@pytest.mark.parametrize("keep", [1, 4, 5, 20, -1])
def test_truncated_record_then_eof(peers: Peers, keep: int) -> None:
    hs = handshake(peers)
    wire = _record(hs.dialer, b"a record of some length")
    hs.listener.receive_data(wire[:keep], NOW)
    assert hs.listener.next_event() is None
    hs.listener.receive_data(b"", NOW)
    with pytest.raises(DecodeError):
        hs.listener.next_event()
    assert_failed_closed(hs.listener)


def test_records_after_close_are_ignored(peers: Peers) -> None:
    hs = handshake(peers)
    hs.dialer.send_data(b"before")
    hs.dialer.close()
    stream = hs.dialer.data_to_send()
    hs.listener.receive_data(stream + b"\x00\x00\x00\x01\xff", NOW)
    assert drain(hs.listener) == [DataReceived(b"before"), ConnectionClosed()]
    assert hs.listener.state is ChannelState.CLOSED


# ------------------------------------------------------------------- rekey


def test_rekey_in_a_connection(peers: Peers) -> None:
    cfg = ChannelConfig(rekey_interval=3)
    hs = handshake(peers, dialer_config=cfg, listener_config=cfg)
    for i in range(20):
        for src, dst in ((hs.dialer, hs.listener), (hs.listener, hs.dialer)):
            payload = f"message {i}".encode()
            src.send_data(payload)
            assert pump(src, dst, NOW) == [DataReceived(payload)]
    hs.dialer.close()
    assert pump(hs.dialer, hs.listener, NOW) == [ConnectionClosed()]


def test_rekey_interval_mismatch_fails_at_the_rekey(peers: Peers) -> None:
    hs = handshake(
        peers,
        dialer_config=ChannelConfig(rekey_interval=3),
        listener_config=ChannelConfig(rekey_interval=4),
    )
    for i in range(3):
        hs.dialer.send_data(b"%d" % i)
    assert len(pump(hs.dialer, hs.listener, NOW)) == 3
    hs.dialer.send_data(b"3")  # the dialer rekeys here, the listener does not
    with pytest.raises(CryptoError):
        pump(hs.dialer, hs.listener, NOW)
    assert_failed_closed(hs.listener)


_KEY = bytes(range(32))


def _open(receiver: RecordReceiver, wire: bytes | bytearray) -> bytes:
    return receiver.open(bytes(wire[:5]), bytes(wire[5:]))


def test_sender_and_receiver_across_rekeys() -> None:
    sender = RecordSender(_KEY, 2, 1000)
    receiver = RecordReceiver(_KEY, 2, 1000)
    for i in range(11):
        payload = b"frame %d" % i
        assert _open(receiver, sender.seal(FRAME_DATA, payload)) == payload
    assert sender.counter == receiver.counter == 11


def test_record_format_matches_the_documented_construction() -> None:
    """Nonce = 4 zero bytes | u64 counter; AAD = the 5-byte header; rekey by HKDF."""
    sender = RecordSender(_KEY, 2, 1000)
    key = _KEY
    for counter in range(6):
        if counter and counter % 2 == 0:
            key = hkdf_expand(key, b"chhaya/ch/v1/rekey", 32)
        payload = b"counter %d" % counter
        wire = bytes(sender.seal(FRAME_DATA, payload))
        nonce = bytes(4) + counter.to_bytes(8, "big")
        assert AESGCM(key).decrypt(nonce, wire[5:], wire[:5]) == payload


@pytest.mark.parametrize("receiver_interval", [1, 3, 1 << 16])
def test_receiver_with_another_interval_fails_at_the_rekey(receiver_interval: int) -> None:
    sender = RecordSender(_KEY, 2, 1000)
    receiver = RecordReceiver(_KEY, receiver_interval, 1000)
    first_rekey = min(2, receiver_interval)
    for i in range(first_rekey):
        assert _open(receiver, sender.seal(FRAME_DATA, b"%d" % i)) == b"%d" % i
    with pytest.raises(CryptoError):
        _open(receiver, sender.seal(FRAME_DATA, b"rekeyed"))


def test_rekeyed_key_differs_from_the_old_one() -> None:
    """After a rekey the old key no longer opens frames."""
    sender = RecordSender(_KEY, 2, 1000)
    for _ in range(2):
        sender.seal(FRAME_DATA, b"")
    wire = bytes(sender.seal(FRAME_DATA, b"x"))
    nonce = bytes(4) + (2).to_bytes(8, "big")
    with pytest.raises(InvalidTag):
        AESGCM(_KEY).decrypt(nonce, wire[5:], wire[:5])


# ------------------------------------------------------------ frame limit


def test_sender_frame_limit_in_a_connection(peers: Peers) -> None:
    hs = handshake(peers, dialer_config=ChannelConfig(max_frames=5))
    for i in range(5):
        hs.dialer.send_data(b"%d" % i)
    assert pump(hs.dialer, hs.listener, NOW) == [DataReceived(b"%d" % i) for i in range(5)]
    with pytest.raises(LocalProtocolError):
        hs.dialer.send_data(b"one too many")
    assert_failed_closed(hs.dialer)


def test_close_frame_counts_toward_the_limit(peers: Peers) -> None:
    hs = handshake(peers, dialer_config=ChannelConfig(max_frames=5))
    for i in range(4):
        hs.dialer.send_data(b"%d" % i)
    hs.dialer.close()
    assert pump(hs.dialer, hs.listener, NOW) == [
        *(DataReceived(b"%d" % i) for i in range(4)),
        ConnectionClosed(),
    ]
    assert hs.dialer.state is ChannelState.CLOSED


def test_close_with_an_exhausted_counter_still_ends_the_channel(peers: Peers) -> None:
    """close() when no frame is left must not leave the channel ESTABLISHED.

    Whether close() raises here is a matter of API taste; what must hold is
    that afterwards the channel is over and its record keys are gone.
    """
    hs = handshake(peers, dialer_config=ChannelConfig(max_frames=5))
    for i in range(5):
        hs.dialer.send_data(b"%d" % i)
    pump(hs.dialer, hs.listener, NOW)
    with contextlib.suppress(LocalProtocolError):
        hs.dialer.close()
    assert hs.dialer.state in (ChannelState.CLOSED, ChannelState.FAILED)
    assert hs.dialer.data_to_send() == b""
    with pytest.raises(LocalProtocolError):
        hs.dialer.send_data(b"")


def test_receiver_frame_limit_in_a_connection(peers: Peers) -> None:
    hs = handshake(peers, listener_config=ChannelConfig(max_frames=2))
    for i in range(2):
        hs.dialer.send_data(b"%d" % i)
    assert len(pump(hs.dialer, hs.listener, NOW)) == 2
    hs.dialer.send_data(b"third")
    with pytest.raises(RemoteProtocolError) as info:
        pump(hs.dialer, hs.listener, NOW)
    assert not isinstance(info.value, DecodeError)
    assert_failed_closed(hs.listener)


def test_sender_limit_direct() -> None:
    sender = RecordSender(_KEY, 1 << 16, 2)
    sender.seal(FRAME_DATA, b"")
    sender.seal(FRAME_DATA, b"")
    with pytest.raises(LocalProtocolError):
        sender.seal(FRAME_DATA, b"")
    assert sender.counter == 2


def test_receiver_limit_direct() -> None:
    sender = RecordSender(_KEY, 1 << 16, 10)
    receiver = RecordReceiver(_KEY, 1 << 16, 2)
    for _ in range(2):
        _open(receiver, sender.seal(FRAME_DATA, b"ok"))
    with pytest.raises(RemoteProtocolError):
        _open(receiver, sender.seal(FRAME_DATA, b"third"))
    assert receiver.counter == 2


def test_wiped_directions_refuse_work() -> None:
    sender = RecordSender(_KEY, 4, 10)
    receiver = RecordReceiver(_KEY, 4, 10)
    wire = sender.seal(FRAME_DATA, b"x")
    sender.wipe()
    receiver.wipe()
    with pytest.raises(LocalProtocolError):
        sender.seal(FRAME_DATA, b"x")
    with pytest.raises(LocalProtocolError):
        _open(receiver, wire)
    assert _KEY.hex() not in repr(sender)


@pytest.mark.parametrize(("interval", "limit"), [(0, 1), (1, 0), (-1, 5)])
def test_direction_parameters_must_be_positive(interval: int, limit: int) -> None:
    with pytest.raises(ValueError, match="positive"):
        RecordSender(_KEY, interval, limit)
    with pytest.raises(ValueError, match="positive"):
        RecordReceiver(_KEY, interval, limit)
