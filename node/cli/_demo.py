"""``chhaya demo``: the README's main job."""

from __future__ import annotations

import json
import sys

import click

from chhaya import TransportError

__all__ = ["demo"]


@click.command()
@click.option(
    "--nodes", "users", default=3, type=click.IntRange(2, 10), show_default=True,
    help="User nodes (besides the directory and 4 witnesses).",
)  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="End with one JSON summary line.")
@click.option(
    "--channel-only", is_flag=True, help="Only the two-party channel demo (one process, TCP)."
)
def demo(users: int, as_json: bool, channel_only: bool) -> None:
    """A directory, a 3-of-4 witness quorum and N users as processes on 127.0.0.1."""

    def say(line: str) -> None:
        click.echo(line, err=as_json)
        sys.stderr.flush() if as_json else sys.stdout.flush()

    if channel_only:
        _channel_demo(as_json, say)
        return
    from ..demo_network import run_network_demo

    result = run_network_demo(users, say)
    if as_json:
        click.echo(json.dumps(result.to_json()))
    else:
        click.echo(
            f"done: {result.messages_delivered}/{result.messages_sent} messages delivered, "
            f"{result.proofs_verified} proofs verified, {result.epochs_certified} epochs "
            f"certified, {result.nodes} processes, {result.elapsed_s:.1f} s"
        )
    if result.messages_delivered != result.messages_sent:
        raise TransportError("some messages were not delivered")


def _channel_demo(as_json: bool, say: object) -> None:
    import logging

    from ..demo_local import result_json, run_local_demo

    logging.getLogger("chhaya.echo").setLevel(logging.WARNING)
    result = run_local_demo(lambda line: click.echo(line, err=as_json))
    if as_json:
        click.echo(json.dumps(result_json(result)))
    else:
        click.echo(
            f"done: {result.messages_echoed}/{result.messages_sent} messages echoed "
            f"in {result.elapsed_s:.2f} s"
        )
    if result.messages_echoed != result.messages_sent:
        raise TransportError("some messages were not echoed intact")
