"""The local demo: two identities, a channel between them, messages echoed.

Everything is real except the network's reach: key files are written to a
temporary directory with their proper modes, and the two parties talk over
TCP on 127.0.0.1.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import trio

from chhaya.channel import ChannelConfig
from chhaya.identity import PrivateIdentity, fingerprint

from .clock import system_rng
from .echo import echo_client, serve_echo, short_fingerprint
from .keystore import load_private_identity, load_public_identity, write_identity

__all__ = ["DemoResult", "run_local_demo"]

DEMO_MESSAGES = [
    "hello from alice",
    "the channel is hybrid: X25519 + ML-KEM-1024",
    "every record is AES-256-GCM with an implicit counter nonce",
]


@dataclass(frozen=True, slots=True)
class DemoResult:
    identities: int
    messages_sent: int
    messages_echoed: int
    handshake_and_echo_ms: float
    elapsed_s: float


def run_local_demo(say: Callable[[str], None]) -> DemoResult:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="chhaya-demo-") as tmp:
        keys = Path(tmp)
        for name in ("alice", "bob"):
            write_identity(keys, name, PrivateIdentity.generate(system_rng))
            say(f"created identity {name}: {keys / name}.key (mode 0600) and {name}.pub")
        alice = load_private_identity(keys / "alice.key", None)
        bob = load_private_identity(keys / "bob.key", None)
        _, alice_pub = load_public_identity(keys / "alice.pub")
        _, bob_pub = load_public_identity(keys / "bob.pub")
        say(f"alice fingerprint: {fingerprint(alice_pub)}")
        say(f"bob   fingerprint: {fingerprint(bob_pub)}")
        config = ChannelConfig(namespace=b"chhaya/demo")
        messages = [m.encode() for m in DEMO_MESSAGES]

        async def main() -> tuple[list[bytes], float]:
            async with trio.open_nursery() as nursery:
                host, port = await nursery.start(
                    serve_echo, "127.0.0.1:0", bob, {"alice": alice_pub}, config
                )
                say(f"bob listens on {host}:{port} and allows only alice")
                t0 = time.perf_counter()
                echoes = await echo_client(f"{host}:{port}", alice, bob_pub, messages, config)
                elapsed_ms = (time.perf_counter() - t0) * 1000
                nursery.cancel_scope.cancel()
            return echoes, elapsed_ms

        echoes, exchange_ms = trio.run(main)
        say(f"alice verified bob as {short_fingerprint(bob_pub)}; handshake complete")
        for sent, echo in zip(messages, echoes, strict=True):
            status = "echoed" if echo == sent else "MISMATCH"
            say(f"alice -> bob: {sent.decode()!r}  [{status}]")
    return DemoResult(
        identities=2,
        messages_sent=len(messages),
        messages_echoed=sum(1 for s, e in zip(messages, echoes, strict=True) if s == e),
        handshake_and_echo_ms=round(exchange_ms, 2),
        elapsed_s=round(time.perf_counter() - started, 3),
    )


def result_json(result: DemoResult) -> dict[str, object]:
    return asdict(result)
