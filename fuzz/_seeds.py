"""Valid example encodings that seed every fuzz harness.

Everything here is deterministic: keys come from :class:`DeterministicRng`,
and the channel transcript is produced at the fixed time :data:`NOW_MS`, so
the same seeds come out on every run and on every machine.

The channel listener is built by :func:`make_listener` both here and in
``fuzz_channel_frames.py``. Its randomness, including the ML-KEM
encapsulation (the reference provider takes its message from ``rng``), comes
from a fixed rng, so a recorded dialer transcript (Syn, Ack, data records,
close) drives a fresh listener all the way to ``CLOSED``.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

from chhaya.channel import (
    AllowlistResolver,
    ChannelConfig,
    ChannelConnection,
    ConnectionClosed,
    DataReceived,
    Event,
    HandshakeComplete,
    Role,
    Syn,
    SynAck,
)
from chhaya.crypto import REFERENCE, Argon2Params
from chhaya.identity import PrivateIdentity, PublicIdentity, encode_key_file, encode_pub_file
from chhaya.wire import Writer

__all__ = [
    "CHEAP_ARGON2",
    "NOW_MS",
    "DeterministicRng",
    "Transcript",
    "ack_seeds",
    "channel_seeds",
    "dialer_identity",
    "identity",
    "key_file_seeds",
    "listener_identity",
    "make_listener",
    "pub_file_seeds",
    "public_identity_seeds",
    "run_listener",
    "syn_ack_seeds",
    "syn_seeds",
    "transcript",
    "wire_reader_seeds",
]

NOW_MS = 1_700_000_000_000
NAMESPACE = b"chhaya/fuzz"
CHEAP_ARGON2 = Argon2Params(time_cost=1, memory_kib=64, lanes=1)


class DeterministicRng:
    """``rng(n)``: SHAKE-256 over a label and a call counter. Not for real keys."""

    def __init__(self, label: bytes) -> None:
        self._label = label
        self._calls = 0

    def __call__(self, n: int) -> bytes:
        block = self._label + b"/" + self._calls.to_bytes(8, "big")
        self._calls += 1
        return hashlib.shake_256(block).digest(n)


@functools.cache
def identity(label: bytes) -> PrivateIdentity:
    return PrivateIdentity.generate(DeterministicRng(b"identity/" + label))


def listener_identity() -> PrivateIdentity:
    return identity(b"listener")


def dialer_identity() -> PrivateIdentity:
    return identity(b"dialer")


def _config() -> ChannelConfig:
    # REFERENCE: ML-KEM encapsulation draws from rng, so the listener's
    # SynAck, and therefore the keys, are the same on every run.
    return ChannelConfig(namespace=NAMESPACE, suite=REFERENCE)


def make_listener() -> ChannelConnection:
    """A fresh listener that accepts :func:`dialer_identity`, started at NOW_MS."""
    conn = ChannelConnection(
        Role.LISTENER,
        listener_identity(),
        _config(),
        DeterministicRng(b"listener-session"),
        resolver=AllowlistResolver({dialer_identity().public.signing_key: "dialer"}),
    )
    conn.start(NOW_MS)
    return conn


def run_listener(conn: ChannelConnection, data: bytes) -> list[Event]:
    """Feed ``data`` in two halves, then end of stream; return every event.

    Stops at the first error and lets it propagate.
    """
    events: list[Event] = []
    half = len(data) // 2
    # b"" means end of stream to receive_data, so empty halves are skipped.
    chunks = [c for c in (data[:half], data[half:]) if c] + [b""]
    for chunk in chunks:
        conn.receive_data(chunk, NOW_MS)
        while (event := conn.next_event()) is not None:
            events.append(event)
    return events


@dataclass(frozen=True, slots=True)
class Transcript:
    """Frames (length prefix included) a dialer sends, and the listener's reply."""

    syn: bytes
    syn_ack: bytes
    ack: bytes
    data: tuple[bytes, ...]
    close: bytes


@functools.cache
def transcript() -> Transcript:
    listener_pub = listener_identity().public.signing_key
    dialer = ChannelConnection(
        Role.DIALER,
        dialer_identity(),
        _config(),
        DeterministicRng(b"dialer-session"),
        expected_peer=listener_pub,
    )
    dialer.start(NOW_MS)
    syn = dialer.data_to_send()
    listener = make_listener()
    listener.receive_data(syn, NOW_MS)
    if listener.next_event() is not None:
        raise AssertionError("listener produced an event on Syn")
    syn_ack = listener.data_to_send()
    dialer.receive_data(syn_ack, NOW_MS)
    if not isinstance(dialer.next_event(), HandshakeComplete):
        raise AssertionError("dialer did not complete the handshake")
    ack = dialer.data_to_send()
    data: list[bytes] = []
    for message in (b"hello", b"", bytes(range(256)) * 2):
        dialer.send_data(message)
        data.append(dialer.data_to_send())
    dialer.close()
    close = dialer.data_to_send()
    return Transcript(syn=syn, syn_ack=syn_ack, ack=ack, data=tuple(data), close=close)


def _check_transcript(t: Transcript) -> None:
    """The whole transcript must drive a fresh listener to a clean close."""
    events = run_listener(make_listener(), t.syn + t.ack + b"".join(t.data) + t.close)
    kinds = [type(e) for e in events]
    expected = [HandshakeComplete] + [DataReceived] * len(t.data) + [ConnectionClosed]
    if kinds != expected:
        raise AssertionError(f"transcript does not replay: {kinds}")


def _frame(body: bytes) -> bytes:
    return len(body).to_bytes(4, "big") + body


def syn_seeds() -> list[bytes]:
    t = transcript()
    valid = t.syn[4:]
    rng = DeterministicRng(b"seed/syn")
    other = Syn(
        namespace_digest=rng(32),
        expected_listener=rng(32),
        dialer=rng(32),
        ephemeral_x25519=rng(32),
        ephemeral_kem=rng(1568),
        timestamp_ms=2**64 - 1,
        signature=rng(64),
    ).encode()
    return [valid, other, valid[:-1], valid + b"\x00", b"\x01\x01", b""]


def syn_ack_seeds() -> list[bytes]:
    t = transcript()
    valid = t.syn_ack[4:]
    rng = DeterministicRng(b"seed/syn-ack")
    other = SynAck(
        listener=rng(32),
        ephemeral_x25519=rng(32),
        kem_ciphertext=rng(1568),
        timestamp_ms=0,
        continuation=rng(32),
        signature=rng(64),
        confirmation=rng(32),
    ).encode()
    return [valid, other, valid[:-1], valid + b"\x00", b"\x02", b""]


def ack_seeds() -> list[bytes]:
    valid = transcript().ack[4:]
    return [valid, b"\x03" + bytes(32), valid[:-1], valid + b"\x00", b"\x03", b""]


def public_identity_seeds() -> list[bytes]:
    rng = DeterministicRng(b"seed/public-identity")
    zero = PublicIdentity(bytes(32), bytes(32), bytes(1568)).encode()
    random_keys = PublicIdentity(rng(32), rng(32), rng(1568)).encode()
    valid = listener_identity().public.encode()
    return [valid, dialer_identity().public.encode(), zero, random_keys, valid[:4], b""]


def pub_file_seeds() -> list[bytes]:
    alice = encode_pub_file("alice", listener_identity().public).encode("ascii")
    bob = encode_pub_file("bob.smith-2_x", dialer_identity().public).encode("ascii")
    return [
        alice,
        bob,
        b"  " + alice.rstrip(b"\n") + b"\r\n",
        alice.replace(b"alice", b".alice"),
        alice[:100],
        b"chhaya-pub-v1 a AAAA\n",
        b"",
    ]


def key_file_seeds() -> list[bytes]:
    ident = listener_identity()
    plain = encode_key_file(ident, DeterministicRng(b"seed/key-plain"))
    sealed = encode_key_file(
        ident, DeterministicRng(b"seed/key-sealed"), b"correct horse", CHEAP_ARGON2
    )
    # Memory 2**31 KiB: out of bounds, must be refused before any Argon2 run.
    head = Writer().raw(b"CHHYKEY1").u8(1).u32(1).u32(2**31).u8(1).getvalue()
    huge = head + bytes(16 + 12 + 128 + 16)
    return [plain, sealed, huge, plain[:-1], sealed[:-1], plain + b"\x00", b"CHHYKEY1\x02", b""]


def channel_seeds() -> list[bytes]:
    t = transcript()
    _check_transcript(t)
    records = b"".join(t.data)
    return [
        t.syn,
        t.syn + t.ack,
        t.syn + t.ack + records,
        t.syn + t.ack + records + t.close,
        t.syn + t.ack + records + t.close + t.data[0],
        t.syn + t.ack + t.data[1],
        t.syn + t.syn,
        t.syn[:-1],
        _frame(b"\x10" + bytes(16)),
        _frame(b""),
        b"\xff\xff\xff\xff",
        b"",
    ]


def wire_reader_seeds() -> list[bytes]:
    # Programs for fuzz_wire_reader: an op byte, then that op's operands.
    w = Writer()
    w.u8(0).u8(3).raw(b"abc")  # fixed(3)
    w.u8(1).u16(0xBEEF)
    w.u8(2).u32(0xDEADBEEF)
    w.u8(3).u64(2**64 - 1)
    w.u8(4).u8(10).var16(b"hello", 10)
    w.u8(5).u16(300).var32(bytes(200), 300)
    w.u8(6).u8(20).utf8("h\u00e9llo w\u00f6rld", 20)
    w.u8(7).raw(b"\x00\x01")
    program = w.getvalue()
    return [program, program[:-1], program + b"\x08", b"\x06\x04\x00\x02\xc3\x28", b""]
