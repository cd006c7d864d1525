"""``chhaya witness serve``: run one witness of the quorum as a node."""

from __future__ import annotations

import sys
from pathlib import Path

import click

__all__ = ["witness"]


@click.group()
def witness() -> None:
    """A witness that co-signs the key directory's epochs."""


@witness.command()
@click.option("--key", "key_file", required=True, type=click.Path(dir_okay=False))
@click.option("--set", "set_file", required=True, type=click.Path(dir_okay=False))
@click.option(
    "--directory-public", required=True, type=click.Path(dir_okay=False),
    help="The directory's directory.json (its signing and VRF keys).",
)  # fmt: skip
@click.option(
    "--state", "state_file", required=True, type=click.Path(dir_okay=False),
    help="Where this witness records the last head it signed (0600).",
)  # fmt: skip
@click.option("--listen", multiple=True, default=("/ip4/0.0.0.0/tcp/0",), show_default=True)
@click.option("--directory-peer", help="Only this peer ID may ask for signatures.")
@click.option("--json", "as_json", is_flag=True, help="Print the ready line as JSON.")
def serve(
    key_file: str,
    set_file: str,
    directory_public: str,
    state_file: str,
    listen: tuple[str, ...],
    directory_peer: str | None,
    as_json: bool,
) -> None:
    """Co-sign the directory's heads after checking each audit proof."""
    import trio

    from ..daemon._main import run_witness

    def say(line: str) -> None:
        click.echo(line)
        sys.stdout.flush()

    trio.run(
        run_witness, Path(key_file), Path(set_file), Path(directory_public), Path(state_file),
        list(listen), directory_peer, as_json, say,
    )  # fmt: skip
