"""A pinned-key echo service over the channel, on plain TCP.

This is the smallest complete use of the channel: ``serve_echo`` accepts
only allowlisted identities and echoes every message; ``echo_client`` dials
an expected identity, sends messages and returns the echoes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import trio

from chhaya import ChhayaError, TransportError, VerificationError
from chhaya.channel import AllowlistResolver, ChannelConfig, SynReplayCache
from chhaya.identity import PrivateIdentity, PublicIdentity, fingerprint

from .drivers import accept_channel, dial_channel

if TYPE_CHECKING:  # trio-typing's stubs (pulled in by libp2p) shadow trio's own types
    from trio_typing import TaskStatus

__all__ = ["MAX_CONNECTIONS", "echo_client", "parse_host_port", "serve_echo"]

log = logging.getLogger("chhaya.echo")

MAX_CONNECTIONS = 256
IDLE_TIMEOUT_S = 300.0


def parse_host_port(address: str) -> tuple[str, int]:
    host, sep, port_text = address.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise TransportError(f"invalid address {address!r}: expected HOST:PORT")
    return host.strip("[]"), int(port_text)


def short_fingerprint(identity: PublicIdentity) -> str:
    return "-".join(fingerprint(identity).split()[:2])


async def serve_echo(
    bind: str,
    identity: PrivateIdentity,
    allowed: Mapping[str, PublicIdentity],
    config: ChannelConfig | None = None,
    *,
    task_status: TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until cancelled. Reports the bound ``(host, port)`` when ready."""
    config = config or ChannelConfig()
    host, port = parse_host_port(bind)
    resolver = AllowlistResolver({pub.signing_key: name for name, pub in allowed.items()})
    replay_cache = SynReplayCache(config.replay_window_ms)
    limiter = trio.CapacityLimiter(MAX_CONNECTIONS)
    try:
        listeners = await trio.open_tcp_listeners(port, host=host)
    except OSError as exc:
        raise TransportError(f"cannot listen on {bind}: {exc.strerror or exc}") from None

    async def handle(stream: trio.SocketStream) -> None:
        try:
            peer = "{}:{}".format(*stream.socket.getpeername()[:2])
        except OSError:
            peer = "?"
        if limiter.available_tokens == 0:
            log.warning("refused connection from %s: too many connections", peer)
            await trio.aclose_forcefully(stream)
            return
        async with limiter:
            try:
                channel = await accept_channel(stream, identity, resolver, replay_cache, config)
            except VerificationError as exc:
                log.info("rejected handshake from %s: %s", peer, exc.check)
                return
            except ChhayaError as exc:
                log.info("rejected handshake from %s: %s", peer, exc)
                return
            name = channel.peer_info
            log.info("accepted handshake from %s: %s", peer, name)
            try:
                async with channel:
                    while True:
                        with trio.move_on_after(IDLE_TIMEOUT_S) as idle:
                            message = await channel.receive()
                        if idle.cancelled_caught or message is None:
                            break
                        await channel.send(message)
            except ChhayaError as exc:
                log.info("closed channel with %s: %s", name, exc)
            else:
                log.info("channel with %s closed", name)

    bound = listeners[0].socket.getsockname()
    task_status.started((str(bound[0]), int(bound[1])))
    await trio.serve_listeners(handle, listeners)


async def echo_client(
    address: str,
    identity: PrivateIdentity,
    expected: PublicIdentity,
    messages: Sequence[bytes],
    config: ChannelConfig | None = None,
    timeout_s: float = 10.0,
) -> list[bytes]:
    """Dial, send each message, collect each echo, close cleanly."""
    host, port = parse_host_port(address)
    echoes: list[bytes] = []
    try:
        with trio.fail_after(timeout_s):
            try:
                stream = await trio.open_tcp_stream(host, port)
            except OSError as exc:
                raise TransportError(
                    f"cannot connect to {address}: {exc.strerror or exc}"
                ) from None
            channel = await dial_channel(stream, identity, expected.signing_key, config)
            async with channel:
                for message in messages:
                    await channel.send(message)
                    echo = await channel.receive()
                    if echo is None:
                        raise TransportError("server closed the channel")
                    echoes.append(echo)
    except trio.TooSlowError:
        raise TransportError(f"no answer from {address} within {timeout_s:g} s") from None
    return echoes
