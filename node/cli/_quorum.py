"""``chhaya quorum keygen|set|certify|verify``: witness keys and certificates."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from chhaya import ChhayaError, KeyFileError, VerificationError

__all__ = ["quorum"]

_MAX_MESSAGE = 4096


def _message_bytes(hex_text: str) -> bytes:
    try:
        message = bytes.fromhex(hex_text)
    except ValueError:
        raise click.BadParameter("not valid hex", param_hint="--message") from None
    if len(message) > _MAX_MESSAGE:
        raise click.BadParameter(f"longer than {_MAX_MESSAGE} bytes", param_hint="--message")
    return message


@click.group()
def quorum() -> None:
    """BLS witness keys, witness sets and quorum certificates."""


@quorum.command()
@click.option("--out-dir", required=True, type=click.Path(file_okay=False))
@click.option("--name", required=True, help="Witness id: NAME.key and NAME.pub are written.")
def keygen(out_dir: str, name: str) -> None:
    """Create a witness key (0600) and its public part with proof of possession."""
    from quorum.bls import default_backend

    from ..clock import system_rng
    from ..quorum_files import write_witness_key

    backend = default_backend(os.environ)
    sk = backend.key_gen(system_rng(32))
    key_path, pub_path, _ = write_witness_key(Path(out_dir), name, sk, backend)
    click.echo(f"wrote {key_path}")
    click.echo(f"wrote {pub_path}")


@quorum.command(name="set")
@click.option("--threshold", required=True, type=int, help="Signatures needed (a majority).")
@click.argument("pub_files", nargs=-1, required=True, type=click.Path(dir_okay=False))
def set_cmd(threshold: int, pub_files: tuple[str, ...]) -> None:
    """Print a witness set (SET.json) from witness .pub files."""
    from quorum import WitnessSet
    from quorum.bls import default_backend

    from ..quorum_files import load_witness_pub, witness_set_to_json

    members = tuple(load_witness_pub(Path(p)) for p in pub_files)
    ws = WitnessSet(members, threshold)
    ws.validate(default_backend(os.environ))
    click.echo(witness_set_to_json(ws), nl=False)


@quorum.command()
@click.option("--set", "set_file", required=True, type=click.Path(dir_okay=False))
@click.option("--message", "message_hex", required=True, help="The message, in hex.")
@click.option(
    "--keys",
    "first_keys",
    required=True,
    multiple=True,
    type=click.Path(dir_okay=False),
    help="Witness key files: --keys W1.key W2.key ... (or --keys repeated).",
)
@click.argument("more_keys", nargs=-1, type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print every part as JSON.")
def certify(
    set_file: str,
    message_hex: str,
    first_keys: tuple[str, ...],
    more_keys: tuple[str, ...],
    as_json: bool,
) -> None:
    """Co-sign MESSAGE with witness keys; print the certificate (hex)."""
    key_files = first_keys + more_keys
    from quorum import SignedKind, assemble_certificate, signers_from_bitmap, signing_message
    from quorum.bls import default_backend

    from ..quorum_files import load_witness_key, load_witness_set

    backend = default_backend(os.environ)
    ws = load_witness_set(Path(set_file), backend)
    message = _message_bytes(message_hex)
    to_sign = signing_message(SignedKind.MESSAGE, ws.set_id, message)
    by_key = {m.public_key: m.witness_id for m in ws.members}
    partials: dict[str, bytes] = {}
    for path in key_files:
        sk = load_witness_key(Path(path))
        witness_id = by_key.get(backend.sk_to_pk(sk))
        if witness_id is None:
            raise KeyFileError(path, "this witness key is not in the set")
        if witness_id in partials:
            raise KeyFileError(path, f"witness {witness_id} given twice")
        partials[witness_id] = backend.sign(sk, to_sign)
    cert = assemble_certificate(ws, backend, SignedKind.MESSAGE, message, partials)
    if as_json:
        signers = signers_from_bitmap(cert.signers, ws.size)
        doc = {
            "message": message.hex(),
            "set_id": ws.set_id.hex(),
            "signers": cert.signers.hex(),
            "signer_ids": [ws.members[i].witness_id for i in signers],
            "aggregate_signature": cert.signature.hex(),
            "certificate": cert.encode().hex(),
        }
        click.echo(json.dumps(doc, indent=2))
    else:
        click.echo(cert.encode().hex())


@quorum.command()
@click.option("--set", "set_file", required=True, type=click.Path(dir_okay=False))
@click.option("--message", "message_hex", required=True, help="The message, in hex.")
@click.option("--cert", "cert_hex", required=True, help="The certificate, in hex.")
def verify(set_file: str, message_hex: str, cert_hex: str) -> None:
    """Exit 0 if CERT certifies MESSAGE under SET; else 1 with the reason."""
    from chhaya import DecodeError
    from quorum import CertificateVerifier, QuorumCertificate, SignedKind, signers_from_bitmap
    from quorum.bls import default_backend

    from ..quorum_files import load_witness_set

    backend = default_backend(os.environ)
    ws = load_witness_set(Path(set_file), backend)
    message = _message_bytes(message_hex)
    try:
        cert = QuorumCertificate.decode_untrusted(bytes.fromhex(cert_hex))
    except ValueError:
        raise VerificationError("certificate-encoding", "certificate is not valid hex") from None
    except DecodeError as exc:
        raise VerificationError("certificate-encoding", str(exc)) from None
    try:
        signers = CertificateVerifier(ws, backend).verify(cert, SignedKind.MESSAGE, message)
    except ChhayaError as exc:
        click.echo(f"invalid: {exc}", err=True)
        sys.exit(1)
    names = ", ".join(ws.members[i].witness_id for i in signers_from_bitmap(cert.signers, ws.size))
    click.echo(f"valid: {len(signers)} of {ws.size} witnesses signed ({names})")
