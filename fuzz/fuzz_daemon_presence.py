"""Fuzz ``node.daemon.Presence.decode_untrusted`` (the payload of a signed
``/chhaya/presence/`` DHT record): only DecodeError escapes, and whatever
decodes re-encodes to exactly the input.

Run: ``python fuzz/fuzz_daemon_presence.py [corpus_dir] [-max_total_time=60]``
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["node"]):
    from chhaya import DecodeError
    from node.daemon import Presence
    from node.daemon._wire import MAX_ADDR_LEN, MAX_ADDRS, MAX_PEER_ID_LEN


def seeds() -> list[bytes]:
    peer_id = b"\x00\x24\x08\x01\x12\x20" + bytes(range(32))
    one = Presence(peer_id, ("/ip4/127.0.0.1/tcp/4001",)).encode()
    full = Presence(
        b"\xff" * MAX_PEER_ID_LEN,
        tuple(
            f"/dns4/n{i}.example/tcp/{4000 + i}".ljust(MAX_ADDR_LEN, "x") for i in range(MAX_ADDRS)
        ),
    ).encode()
    several = Presence(peer_id, ("/ip4/10.0.0.1/udp/4001/quic-v1", "/ip6/::1/tcp/4001")).encode()
    return [one, several, full, one[:-1], b"CPR1", b""]


def TestOneInput(data: bytes) -> None:
    try:
        presence = Presence.decode_untrusted(data)
    except DecodeError:
        return
    assert presence.encode() == data


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
