"""Command definitions. Heavy imports happen inside commands."""

from __future__ import annotations

import logging

import click

from ._channel import channel
from ._demo import demo
from ._directory import directory
from ._keys import fingerprint_cmd, keygen
from ._node import chat, contacts, inbox, register, run, send
from ._quorum import quorum
from ._witness import witness

__all__ = ["cli"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="chhaya")
@click.option("-v", "--verbose", is_flag=True, help="Log debug details to stderr.")
def cli(verbose: bool) -> None:
    """Chhaya: a serverless peer-to-peer secure messenger."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


cli.add_command(keygen)
cli.add_command(fingerprint_cmd)
cli.add_command(channel)
cli.add_command(demo)
cli.add_command(quorum)
cli.add_command(directory)
cli.add_command(witness)
cli.add_command(run)
cli.add_command(register)
cli.add_command(send)
cli.add_command(inbox)
cli.add_command(contacts)
cli.add_command(chat)
