"""Property tests for the handshake wire types and for the frame parser.

Decoders of peer bytes raise only DecodeError; the connection raises only
ChhayaError subclasses, whatever arrives. Any other exception (IndexError,
struct.error, ValueError...) escapes the ``except`` clauses and fails.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from chhaya.channel import (
    ACK_SIZE,
    FRAME_CLOSE,
    FRAME_DATA,
    MSG_ACK,
    MSG_SYN,
    MSG_SYN_ACK,
    PROTOCOL_VERSION,
    SYN_ACK_SIZE,
    SYN_SIZE,
    Ack,
    ChannelConnection,
    ChannelState,
    Syn,
    SynAck,
)
from chhaya.safety import ChhayaError, DecodeError

from .conftest import NOW, Peers, drain, frame, handshake, make_dialer, make_listener

SETTINGS = settings(max_examples=200, deadline=None)

U64 = st.integers(min_value=0, max_value=(1 << 64) - 1)


def exact(n: int) -> st.SearchStrategy[bytes]:
    return st.binary(min_size=n, max_size=n)


SYNS = st.builds(
    Syn,
    namespace_digest=exact(32),
    expected_listener=exact(32),
    dialer=exact(32),
    ephemeral_x25519=exact(32),
    ephemeral_kem=exact(1568),
    timestamp_ms=U64,
    signature=exact(64),
)
SYN_ACKS = st.builds(
    SynAck,
    listener=exact(32),
    ephemeral_x25519=exact(32),
    kem_ciphertext=exact(1568),
    timestamp_ms=U64,
    continuation=exact(32),
    signature=exact(64),
    confirmation=exact(32),
)
ACKS = st.builds(Ack, confirmation=exact(32))

Message = Syn | SynAck | Ack


def _decoder(kind: str) -> Callable[[bytes], Message]:
    decoders: dict[str, Callable[[bytes], Message]] = {
        "syn": Syn.decode_untrusted,
        "synack": SynAck.decode_untrusted,
        "ack": Ack.decode_untrusted,
    }
    return decoders[kind]


def _decode_or_reject(kind: str, data: bytes) -> None:
    """Decode; success must be canonical, failure must be DecodeError only."""
    try:
        decoded = _decoder(kind)(data)
    except DecodeError:
        return
    assert decoded.encode() == data


# ------------------------------------------------------------- round trip


@SETTINGS
@given(SYNS)
def test_syn_round_trip(syn: Syn) -> None:
    encoded = syn.encode()
    assert len(encoded) == SYN_SIZE
    assert encoded[:2] == bytes([MSG_SYN, PROTOCOL_VERSION])
    assert Syn.decode_untrusted(encoded) == syn


@SETTINGS
@given(SYN_ACKS)
def test_synack_round_trip(synack: SynAck) -> None:
    encoded = synack.encode()
    assert len(encoded) == SYN_ACK_SIZE
    assert encoded[0] == MSG_SYN_ACK
    assert SynAck.decode_untrusted(encoded) == synack


@SETTINGS
@given(ACKS)
def test_ack_round_trip(ack: Ack) -> None:
    encoded = ack.encode()
    assert len(encoded) == ACK_SIZE
    assert encoded[0] == MSG_ACK
    assert Ack.decode_untrusted(encoded) == ack


# -------------------------------------------------------- arbitrary bytes

KINDS = st.sampled_from(["syn", "synack", "ack"])
_TYPE = {"syn": bytes([MSG_SYN, PROTOCOL_VERSION]), "synack": bytes([MSG_SYN_ACK]), "ack": b"\x03"}
_SIZE = {"syn": SYN_SIZE, "synack": SYN_ACK_SIZE, "ack": ACK_SIZE}


@SETTINGS
@given(KINDS, st.binary(max_size=4000))
def test_arbitrary_bytes_raise_only_decode_error(kind: str, data: bytes) -> None:
    _decode_or_reject(kind, data)


@SETTINGS
@given(KINDS, st.data())
def test_right_type_and_near_right_size(kind: str, data: st.DataObject) -> None:
    """Past the type check, into the field reads and the trailing-bytes check."""
    size = _SIZE[kind]
    head = _TYPE[kind]
    tail = data.draw(st.binary(min_size=size - len(head) - 3, max_size=size - len(head) + 3))
    _decode_or_reject(kind, head + tail)


def _valid(kind: str, data: st.DataObject) -> bytes:
    if kind == "syn":
        return data.draw(SYNS).encode()
    if kind == "synack":
        return data.draw(SYN_ACKS).encode()
    return data.draw(ACKS).encode()


@SETTINGS
@given(KINDS, st.data())
def test_mutated_valid_encodings(kind: str, data: st.DataObject) -> None:
    encoded = bytearray(_valid(kind, data))
    flips = data.draw(
        st.lists(
            st.tuples(st.integers(0, len(encoded) - 1), st.integers(1, 255)),
            max_size=8,
        )
    )
    for index, xor in flips:
        encoded[index] ^= xor
    cut = data.draw(st.integers(0, len(encoded)))
    if data.draw(st.booleans()):
        del encoded[cut:]
    encoded += data.draw(st.binary(max_size=40))
    _decode_or_reject(kind, bytes(encoded))


@SETTINGS
@given(KINDS, st.data())
def test_truncated_or_extended_valid_encodings_are_rejected(kind: str, data: st.DataObject) -> None:
    encoded = _valid(kind, data)
    cut = data.draw(st.integers(0, len(encoded) - 1))
    extra = data.draw(st.binary(min_size=1, max_size=40))
    decode = _decoder(kind)
    for bad in (encoded[:cut], encoded + extra):
        try:
            decode(bad)
        except DecodeError:
            continue
        raise AssertionError(f"accepted {len(bad)} bytes for a fixed-size {kind}")


# ----------------------------------------------------- the frame parser


def _feed(conn: ChannelConnection, chunks: list[bytes], eof: bool) -> None:
    """Feed chunks, pulling events after each; any ChhayaError ends it."""
    try:
        for chunk in chunks:
            conn.receive_data(chunk, NOW)
            drain(conn)
        if eof:
            conn.receive_data(b"", NOW)
            drain(conn)
    except ChhayaError:
        assert conn.state is ChannelState.FAILED
        assert conn.data_to_send() == b""


FRAME_TYPES = st.sampled_from([0x00, MSG_SYN, MSG_SYN_ACK, MSG_ACK, FRAME_DATA, FRAME_CLOSE, 0xFF])


def _framed() -> st.SearchStrategy[bytes]:
    """A well-framed body of a plausible type, so parsing goes past the length."""
    return st.builds(
        lambda t, body: frame(bytes([t]) + body), FRAME_TYPES, st.binary(max_size=2000)
    )


STREAMS = st.one_of(
    st.binary(max_size=4000),
    st.lists(_framed(), max_size=3).map(b"".join),
    st.builds(
        lambda t, body: frame(bytes([t]) + body),
        st.sampled_from([MSG_SYN, MSG_SYN_ACK]),
        st.binary(min_size=SYN_ACK_SIZE - 2, max_size=SYN_SIZE + 1),
    ),
)


def _chunks(data: st.DataObject, stream: bytes) -> list[bytes]:
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=5)))
    bounds = [0, *cuts, len(stream)]
    return [stream[a:b] for a, b in itertools.pairwise(bounds) if b > a]


@SETTINGS
@given(STREAMS, st.booleans(), st.data())
def test_listener_survives_arbitrary_bytes(
    peers: Peers, stream: bytes, eof: bool, data: st.DataObject
) -> None:
    listener = make_listener(peers)
    listener.start(NOW)
    _feed(listener, _chunks(data, stream), eof)


@SETTINGS
@given(STREAMS, st.booleans(), st.data())
def test_dialer_survives_arbitrary_bytes(
    peers: Peers, stream: bytes, eof: bool, data: st.DataObject
) -> None:
    dialer = make_dialer(peers)
    dialer.start(NOW)
    dialer.data_to_send()
    _feed(dialer, _chunks(data, stream), eof)


@SETTINGS
@given(STREAMS, st.booleans(), st.booleans(), st.data())
def test_established_channel_survives_arbitrary_bytes(
    peers: Peers, stream: bytes, eof: bool, at_dialer: bool, data: st.DataObject
) -> None:
    hs = handshake(peers)
    conn = hs.dialer if at_dialer else hs.listener
    _feed(conn, _chunks(data, stream), eof)
