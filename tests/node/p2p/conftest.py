"""Real py-libp2p hosts on 127.0.0.1 for the node/p2p tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager

import trio
from libp2p.abc import IHost
from libp2p.crypto.ed25519 import create_new_key_pair

from node.p2p import listen_addrs, running_host

LOOPBACK = ["/ip4/127.0.0.1/tcp/0"]
#: Every test body runs under this bound.
TEST_TIMEOUT_S = 20


@asynccontextmanager
async def hosts(n: int) -> AsyncIterator[list[IHost]]:
    """``n`` running hosts on loopback, each shut down on exit."""
    async with AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(running_host(create_new_key_pair(), LOOPBACK))
            for _ in range(n)
        ]


def address(host: IHost) -> str:
    """The host's first bound address, with its /p2p/ suffix."""
    return listen_addrs(host)[0]


async def wait_until(predicate: Callable[[], bool], interval: float = 0.01) -> None:
    """Poll ``predicate()`` until true (callers bound the wait)."""
    while not predicate():
        await trio.sleep(interval)
