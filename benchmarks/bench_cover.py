"""What cover traffic costs on the wire: ``python -m benchmarks.bench_cover [--quick]``.

Two py-libp2p hosts on 127.0.0.1 (TCP + Noise + Yamux) with a Chhaya channel
between them. The kernel's own per-socket counters (``ss -ti``: bytes_sent,
segs_out) measure what the sender's TCP connection carried while it sent N
cover envelopes, and, as the same-run baseline, N real sealed ratchet
messages (a 200-byte text each, the same 1 KiB bucket). Both are measured
the same way, so the ratio says what one cover envelope costs next to a
real message; the per-minute and per-day figures scale the measured cost
per envelope by the default rate (plus 40 bytes of IPv4 + TCP headers per
segment; 52 with timestamps, which is what Linux uses on loopback).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import time
from collections.abc import Awaitable, Callable

import trio
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.peer.id import ID

from chhaya.channel import AllowlistResolver
from chhaya.identity import PrivateIdentity
from chhaya.sealed import issue_certificate, seal, seal_cover
from chhaya.session import initiator_from_channel, responder_from_channel
from node.daemon._cover import DEFAULT_RATE_PER_MIN
from node.drivers import SecureChannel
from node.p2p import ChannelService, listen_addrs, open_channel, running_host

from ._common import median, version

LOOPBACK = ["/ip4/127.0.0.1/tcp/0"]
TCP_IP_HEADER_BYTES = 52  # IPv4 (20) + TCP (20) + timestamps option (12)
TEXT = os.urandom(200)


def _socket_counters(server_port: int) -> tuple[int, int]:
    """(bytes_sent, segs_out) of the client's TCP socket to ``server_port`` (from ss).

    The benchmark opens exactly one connection to that port.
    """
    out = subprocess.run(
        ["ss", "-tinH", f"dport = :{server_port}"], capture_output=True, text=True, check=True
    ).stdout
    sent = re.findall(r"(?<![a-z_])bytes_sent:(\d+)", out)
    segs = re.findall(r"(?<![a-z_])segs_out:(\d+)", out)
    if len(sent) != 1 or len(segs) != 1:
        raise RuntimeError(f"expected one TCP connection to port {server_port}: {out!r}")
    return int(sent[0]), int(segs[0])


async def _measure(
    port: int, n: int, make: Callable[[], bytes], send: Callable[[bytes], Awaitable[None]]
) -> tuple[int, int]:
    await trio.sleep(0.2)  # let acks and identify settle
    before = _socket_counters(port)
    for _ in range(n):
        await send(make())
    await trio.sleep(0.3)
    after = _socket_counters(port)
    return after[0] - before[0], after[1] - before[1]


async def run(n: int, repeats: int) -> dict[str, object]:
    alice, bob = PrivateIdentity.generate(os.urandom), PrivateIdentity.generate(os.urandom)
    cert = issue_certificate(alice, "alice", b"device", 2**62)
    received = 0

    async def sink(channel: SecureChannel, peer_id: ID) -> None:
        nonlocal received
        while await channel.receive() is not None:
            received += 1

    cover_bytes: list[float] = []
    real_bytes: list[float] = []
    async with (
        running_host(create_new_key_pair(), LOOPBACK) as server,
        running_host(create_new_key_pair(), LOOPBACK) as client,
    ):
        service = ChannelService(
            server, bob, AllowlistResolver({alice.public.signing_key: "alice"}), handler=sink
        )
        with service:
            channel = await open_channel(client, listen_addrs(server)[0], alice,
                                         bob.public.signing_key)  # fmt: skip
            hs = channel.handshake
            assert hs is not None
            # A real conversation, to seal real ratchet messages (the baseline).
            conv_b, hello = responder_from_channel(
                hs.ratchet_root, hs.transcript_hash, alice.public.signing_key,
                bob.public.signing_key, os.urandom,
            )  # fmt: skip
            conv = initiator_from_channel(
                hs.ratchet_root, hs.transcript_hash, alice.public.signing_key,
                bob.public.signing_key, hello, os.urandom,
            )  # fmt: skip
            del conv_b
            server_port = int(listen_addrs(server)[0].split("/tcp/")[1].split("/")[0])

            def real() -> bytes:
                _, message = conv.send_text(TEXT, int(time.time() * 1000), os.urandom)
                return seal(bob.public.agreement_key, cert, message, os.urandom)

            def cover() -> bytes:
                return seal_cover(bob.public.agreement_key, len(real()), os.urandom)

            sizes = {"cover": len(cover()), "real": len(real())}
            for _ in range(repeats):
                b, s = await _measure(server_port, n, cover, channel.send)
                cover_bytes.append((b + s * TCP_IP_HEADER_BYTES) / n)
                b, s = await _measure(server_port, n, real, channel.send)
                real_bytes.append((b + s * TCP_IP_HEADER_BYTES) / n)
            await channel.aclose()
    per_envelope = median(cover_bytes)
    per_minute = per_envelope * DEFAULT_RATE_PER_MIN
    return {
        "benchmark": "bench_cover",
        "metadata": {
            "libp2p": version("libp2p"),
            "envelopes_per_repeat": n,
            "repeats": repeats,
            "transport": "TCP + Noise + Yamux on 127.0.0.1; kernel counters from ss -ti",
            "baseline": "a real sealed ratchet message (200-byte text) measured the same way",
        },
        "envelope_bytes": sizes,
        "cover_wire_bytes_per_envelope": round(per_envelope, 1),
        "real_wire_bytes_per_message": round(median(real_bytes), 1),
        "ratio_cover_to_real": round(per_envelope / median(real_bytes), 3),
        "default_rate_per_min": DEFAULT_RATE_PER_MIN,
        "cost_at_default_rate": {
            "bytes_per_minute": round(per_minute),
            "kib_per_hour": round(per_minute * 60 / 1024, 1),
            "mib_per_day": round(per_minute * 60 * 24 / 2**20, 2),
        },
        "samples": {
            "cover": [round(x, 1) for x in cover_bytes],
            "real": [round(x, 1) for x in real_bytes],
        },
        "envelopes_received": received,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    n, repeats = (20, 2) if args.quick else (200, 5)
    print(json.dumps(trio.run(run, n, repeats), indent=2))


if __name__ == "__main__":
    main()
