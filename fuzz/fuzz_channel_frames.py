"""Fuzz the framing and state machine of a listener ``ChannelConnection``.

The input is the byte stream a dialer sends. It is fed in two halves, then
end of stream, draining events after each. Only ChhayaError may escape; after
an error the connection is FAILED with nothing queued for the peer. The
seeds hold a full recorded transcript (Syn, Ack, records, close) that a fresh
listener from ``_seeds.make_listener`` accepts, so mutations reach the
established record layer as well as the handshake.

Run: ``python fuzz/fuzz_channel_frames.py [corpus_dir] [-max_total_time=60]``
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["chhaya"]):
    import _seeds

    from chhaya import ChhayaError
    from chhaya.channel import (
        ChannelState,
        ConnectionClosed,
        DataReceived,
        Event,
        HandshakeComplete,
    )


def seeds() -> list[bytes]:
    return _seeds.channel_seeds()


def run(data: bytes) -> tuple[list[Event], ChhayaError | None]:
    """Events the listener produced, and the error that stopped it, if any."""
    conn = _seeds.make_listener()
    events: list[Event] = []
    error: ChhayaError | None = None
    try:
        events = _seeds.run_listener(conn, data)
    except ChhayaError as exc:
        error = exc
    if error is not None:
        assert conn.state is ChannelState.FAILED
        assert conn.failure is error
        assert conn.data_to_send() == b""
        assert conn.get_timer() is None
    # Events come in protocol order: one handshake, then records, then close.
    kinds = [type(e) for e in events]
    if kinds:
        assert kinds[0] is HandshakeComplete
        assert kinds.count(HandshakeComplete) == 1
        assert all(k is DataReceived for k in kinds[1:-1])
        assert kinds[-1] in (HandshakeComplete, DataReceived, ConnectionClosed)
    if ConnectionClosed in kinds:
        assert error is None
        assert conn.state is ChannelState.CLOSED
    return events, error


def TestOneInput(data: bytes) -> None:
    run(data)


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
