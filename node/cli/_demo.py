"""``chhaya demo``: the README's main job."""

from __future__ import annotations

import json
import logging

import click

from chhaya import TransportError

__all__ = ["demo"]


@click.command()
@click.option("--json", "as_json", is_flag=True, help="End with one JSON summary line.")
def demo(as_json: bool) -> None:
    """Two identities, a hybrid post-quantum channel between them, messages echoed."""
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
