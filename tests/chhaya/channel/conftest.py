"""Shared helpers for the channel tests: identities, a byte pump, a handshake.

Everything here is deterministic: randomness comes from :func:`det_rng`, a
SHA-256 counter stream, so a dialer built twice with the same seed and the
same clock emits the same Syn byte for byte. (The FAST suite's ML-KEM
encapsulation draws from OpenSSL regardless, so a listener's SynAck is not
reproducible; tests that need a fixed SynAck build it once.)
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

import pytest

from chhaya.channel import (
    AllowlistResolver,
    ChannelConfig,
    ChannelConnection,
    ChannelState,
    Event,
    HandshakeComplete,
    Resolver,
    Role,
    SynReplayCache,
)
from chhaya.crypto import Rng
from chhaya.identity import PrivateIdentity
from chhaya.safety import (
    ChhayaError,
    CryptoError,
    LocalProtocolError,
    RemoteProtocolError,
    VerificationError,
)

#: A wall-clock-like base time in milliseconds, far from zero and from 2**64.
NOW = 1_700_000_000_000

DEFAULT_CONFIG = ChannelConfig()

#: What a remote fault may surface as (DecodeError is a RemoteProtocolError).
REMOTE_FAULTS: tuple[type[ChhayaError], ...] = (
    RemoteProtocolError,
    VerificationError,
    CryptoError,
)

_LEN = struct.Struct(">I")


def det_rng(seed: bytes) -> Rng:
    """A deterministic byte stream: SHA-256(seed || counter) blocks."""
    counter = 0

    def rng(n: int) -> bytes:
        nonlocal counter
        out = bytearray()
        while len(out) < n:
            out += hashlib.sha256(seed + counter.to_bytes(8, "big")).digest()
            counter += 1
        return bytes(out[:n])

    return rng


def frame(body: bytes) -> bytes:
    """Wrap ``body`` as one wire frame: ``u32 length | body``."""
    return _LEN.pack(len(body)) + body


def split_frames(data: bytes) -> list[bytes]:
    """Split a well-formed byte stream into whole frames (prefix included)."""
    out: list[bytes] = []
    pos = 0
    while pos < len(data):
        (n,) = _LEN.unpack_from(data, pos)
        out.append(data[pos : pos + 4 + n])
        pos += 4 + n
    assert pos == len(data)
    return out


@dataclass(frozen=True)
class Peers:
    """Three identities: alice dials, bob listens, carol is somebody else."""

    alice: PrivateIdentity
    bob: PrivateIdentity
    carol: PrivateIdentity


def make_peers() -> Peers:
    return Peers(
        alice=PrivateIdentity.generate(det_rng(b"identity/alice")),
        bob=PrivateIdentity.generate(det_rng(b"identity/bob")),
        carol=PrivateIdentity.generate(det_rng(b"identity/carol")),
    )


@pytest.fixture(scope="module")
def peers() -> Peers:
    return make_peers()


def allow(*identities: PrivateIdentity, names: tuple[str, ...] = ()) -> AllowlistResolver:
    """An allowlist of ``identities``; each maps to its name or to ``peer<i>``."""
    return AllowlistResolver(
        {
            ident.public.signing_key: names[i] if i < len(names) else f"peer{i}"
            for i, ident in enumerate(identities)
        }
    )


def make_dialer(
    peers: Peers,
    *,
    config: ChannelConfig = DEFAULT_CONFIG,
    identity: PrivateIdentity | None = None,
    expected: PrivateIdentity | None = None,
    resolver: Resolver | None = None,
    seed: bytes = b"rng/dialer",
) -> ChannelConnection:
    """A dialer (alice by default) expecting bob unless told otherwise."""
    return ChannelConnection(
        Role.DIALER,
        identity if identity is not None else peers.alice,
        config,
        det_rng(seed),
        expected_peer=(expected if expected is not None else peers.bob).public.signing_key,
        resolver=resolver,
    )


def make_listener(
    peers: Peers,
    *,
    config: ChannelConfig = DEFAULT_CONFIG,
    identity: PrivateIdentity | None = None,
    resolver: Resolver | None = None,
    replay_cache: SynReplayCache | None = None,
    seed: bytes = b"rng/listener",
) -> ChannelConnection:
    """A listener (bob by default) that accepts alice as "alice" unless told otherwise."""
    return ChannelConnection(
        Role.LISTENER,
        identity if identity is not None else peers.bob,
        config,
        det_rng(seed),
        resolver=resolver if resolver is not None else allow(peers.alice, names=("alice",)),
        replay_cache=replay_cache,
    )


def drain(conn: ChannelConnection) -> list[Event]:
    """Pull events until the connection needs more bytes."""
    events: list[Event] = []
    while (event := conn.next_event()) is not None:
        events.append(event)
    return events


def pump(src: ChannelConnection, dst: ChannelConnection, now: int) -> list[Event]:
    """Move whatever ``src`` has queued into ``dst`` and collect ``dst``'s events."""
    data = src.data_to_send()
    if data:  # b"" would mean end of stream
        dst.receive_data(data, now)
    return drain(dst)


def syn_bytes(peers: Peers, *, now: int = NOW, config: ChannelConfig = DEFAULT_CONFIG) -> bytes:
    """The framed Syn the default dialer (alice, expecting bob) sends at ``now``."""
    dialer = make_dialer(peers, config=config)
    dialer.start(now)
    return dialer.data_to_send()


@dataclass
class Handshake:
    dialer: ChannelConnection
    listener: ChannelConnection
    dialer_event: HandshakeComplete
    listener_event: HandshakeComplete


def handshake(
    peers: Peers,
    *,
    dialer_config: ChannelConfig = DEFAULT_CONFIG,
    listener_config: ChannelConfig = DEFAULT_CONFIG,
    dialer_resolver: Resolver | None = None,
    now: int = NOW,
) -> Handshake:
    """Run Syn, SynAck and Ack; both ends come back ESTABLISHED."""
    dialer = make_dialer(peers, config=dialer_config, resolver=dialer_resolver)
    listener = make_listener(peers, config=listener_config)
    dialer.start(now)
    listener.start(now)
    assert pump(dialer, listener, now) == []
    (dialer_event,) = pump(listener, dialer, now)
    (listener_event,) = pump(dialer, listener, now)
    assert isinstance(dialer_event, HandshakeComplete)
    assert isinstance(listener_event, HandshakeComplete)
    assert dialer.state is ChannelState.ESTABLISHED
    assert listener.state is ChannelState.ESTABLISHED
    assert dialer.data_to_send() == b""
    assert listener.data_to_send() == b""
    return Handshake(dialer, listener, dialer_event, listener_event)


def feed_until_failure(conn: ChannelConnection, data: bytes, now: int) -> ChhayaError | None:
    """Feed ``data``, then end of stream; return the error, or None if none came.

    Stops at the first error. A HandshakeComplete along the way is returned as
    "no error" as well, since a tampered handshake must never complete.
    """
    try:
        if data:
            conn.receive_data(data, now)
        for event in drain(conn):
            if isinstance(event, HandshakeComplete):
                return None
        conn.receive_data(b"", now)
        drain(conn)
    except ChhayaError as exc:
        return exc
    return None


def assert_failed_closed(conn: ChannelConnection) -> None:
    """The channel is FAILED, says nothing to the peer, and refuses further use."""
    assert conn.state is ChannelState.FAILED
    assert conn.failure is not None
    assert conn.data_to_send() == b""
    assert conn.get_timer() is None
    with pytest.raises(LocalProtocolError):
        conn.receive_data(b"\x00", NOW)
    with pytest.raises(LocalProtocolError):
        conn.next_event()
    with pytest.raises(LocalProtocolError):
        conn.send_data(b"x")
    with pytest.raises(LocalProtocolError):
        conn.start(NOW)
    assert conn.state is ChannelState.FAILED
    assert conn.data_to_send() == b""
