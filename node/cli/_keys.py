"""``chhaya keygen`` and ``chhaya fingerprint``."""

from __future__ import annotations

from pathlib import Path

import click

from ..keystore import load_public_identity, read_passphrase, write_identity

__all__ = ["fingerprint_cmd", "keygen", "passphrase_option"]

passphrase_option = click.option(
    "--passphrase-file",
    type=click.Path(dir_okay=False),
    default=None,
    help="File holding the key passphrase (else $CHHAYA_PASSPHRASE).",
)


@click.command()
@click.option("--out-dir", required=True, type=click.Path(file_okay=False), help="Directory.")
@click.option("--name", required=True, help="Key name: NAME.key and NAME.pub are written.")
@passphrase_option
def keygen(out_dir: str, name: str, passphrase_file: str | None) -> None:
    """Create an identity: NAME.key (0600, sealed if a passphrase is given) and NAME.pub."""
    from chhaya.identity import PrivateIdentity, fingerprint, format_fingerprint

    from ..clock import system_rng

    passphrase = read_passphrase(passphrase_file)
    identity = PrivateIdentity.generate(system_rng)
    key_path, pub_path = write_identity(Path(out_dir), name, identity, passphrase)
    sealed = "sealed with Argon2id" if passphrase else "not sealed: no passphrase given"
    click.echo(f"wrote {key_path} ({sealed})")
    click.echo(f"wrote {pub_path}")
    click.echo("fingerprint:")
    click.echo(format_fingerprint(fingerprint(identity.public)))


@click.command(name="fingerprint")
@click.argument("pub_file", type=click.Path(dir_okay=False))
def fingerprint_cmd(pub_file: str) -> None:
    """Print the fingerprint of a .pub file, to compare aloud."""
    from chhaya.identity import fingerprint, format_fingerprint

    name, identity = load_public_identity(Path(pub_file))
    click.echo(f"{name}:")
    click.echo(format_fingerprint(fingerprint(identity)))
