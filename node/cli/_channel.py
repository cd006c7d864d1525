"""``chhaya channel serve`` and ``chhaya channel connect``: pinned-key echo."""

from __future__ import annotations

import logging
import signal
from pathlib import Path

import click

from chhaya import KeyFileError

from ..keystore import load_private_identity, load_public_identity, read_passphrase
from ._keys import passphrase_option

__all__ = ["channel"]

log = logging.getLogger("chhaya.cli")


@click.group()
def channel() -> None:
    """Secure channel over plain TCP with pinned keys (an echo service)."""


@channel.command()
@click.option("--bind", required=True, help="HOST:PORT to listen on (port 0: any).")
@click.option("--key", "key_file", required=True, type=click.Path(dir_okay=False))
@click.option(
    "--allow",
    "allow_files",
    multiple=True,
    required=True,
    type=click.Path(dir_okay=False),
    help="A .pub file of an identity allowed to connect (repeatable).",
)
@passphrase_option
def serve(
    bind: str, key_file: str, allow_files: tuple[str, ...], passphrase_file: str | None
) -> None:
    """Echo every message from allowed identities; log each handshake."""
    import trio

    from ..echo import serve_echo, short_fingerprint

    identity = load_private_identity(Path(key_file), read_passphrase(passphrase_file))
    allowed = {}
    for path in allow_files:
        name, pub = load_public_identity(Path(path))
        if name in allowed:
            raise KeyFileError(path, f"a second identity named {name!r} is allowed")
        allowed[name] = pub

    async def run() -> None:
        # Install the signal handlers before announcing readiness, so that a
        # signal sent right after "listening" still stops us cleanly.
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:
                host, port = await nursery.start(serve_echo, bind, identity, allowed)
                click.echo(
                    f"listening on {host}:{port} as {short_fingerprint(identity.public)}; "
                    f"allowing {', '.join(sorted(allowed))}"
                )
                async for signum in signals:
                    log.info("received %s, stopping", signal.Signals(signum).name)
                    nursery.cancel_scope.cancel()
                    break

    trio.run(run)
    click.echo("stopped")


@channel.command()
@click.argument("address")
@click.option("--key", "key_file", required=True, type=click.Path(dir_okay=False))
@click.option("--expect", "expect_file", required=True, type=click.Path(dir_okay=False))
@click.option("--msg", "messages", multiple=True, required=True, help="Message (repeatable).")
@click.option("--timeout", default=10.0, show_default=True, help="Seconds for the whole exchange.")
@passphrase_option
def connect(
    address: str,
    key_file: str,
    expect_file: str,
    messages: tuple[str, ...],
    timeout: float,
    passphrase_file: str | None,
) -> None:
    """Connect to ADDRESS (HOST:PORT), expecting the identity in --expect; print echoes."""
    import trio

    from ..echo import echo_client

    identity = load_private_identity(Path(key_file), read_passphrase(passphrase_file))
    _, expected = load_public_identity(Path(expect_file))
    echoes = trio.run(
        echo_client,
        address,
        identity,
        expected,
        [m.encode("utf-8") for m in messages],
        None,
        timeout,
    )
    for echo in echoes:
        click.echo(echo.decode("utf-8", errors="replace"))
