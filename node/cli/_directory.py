"""``chhaya directory init|add|publish|lookup|history|audit|verify``.

An operator's (and a test's) view of a key directory kept in a local data
directory: queue updates, publish and certify epochs, hand out proofs, and
check proofs the way a client would, through ``verify_vkd_proof``.

Proof files are JSON:

    {"format": "chhaya-vkd-proof-v1", "kind": "lookup" | "history",
     "handle": ..., "proof": hex, "size_bytes": n}
    {"format": "chhaya-vkd-proof-v1", "kind": "audit",
     "epoch": n, "proof": hex, "batch_size": k, "size_bytes": n}

Only the ``proof`` bytes are trusted after verification; ``verify`` also
checks that the handle or epoch the file names is the one the proof is for.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from chhaya import ChhayaError, KeyFileError, LocalProtocolError, StorageError, VerificationError

if TYPE_CHECKING:
    from chhaya.identity import PublicIdentity
    from quorum import QuorumCertificate, SignedHead, WitnessSet
    from quorum.bls import BlsBackend
    from vkd import AuditProof, DirectoryValue, HistoryProof, LookupProof

    from ..directory_files import OpenedDirectory

__all__ = ["directory"]

PROOF_FORMAT = "chhaya-vkd-proof-v1"
#: Proof files are read whole; a lookup proof is at most ~33 KiB, histories
#: and audits of large batches are bigger. Hex doubles the size.
MAX_PROOF_FILE = 64 << 20
_DAY_MS = 86_400_000
_DEFAULT_DEVICE = b"default"
_HANDLE_RULE = "use 1-64 of a-z, 0-9, '.', '_', '-', starting with a letter or digit"

dir_option = click.option(
    "--dir",
    "data_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="The directory's data directory.",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
out_option = click.option(
    "--out",
    "out_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the proof file here (else print it).",
)


# ----------------------------------------------------------------- helpers


def _emit(as_json: bool, doc: dict[str, Any], lines: Sequence[str]) -> None:
    if as_json:
        click.echo(json.dumps(doc, indent=2))
    else:
        for line in lines:
            click.echo(line)


def _check_handle(handle: str) -> None:
    from vkd import valid_handle

    if not valid_handle(handle):
        raise LocalProtocolError(f"invalid handle {handle!r}: {_HANDLE_RULE}")


def _backend() -> BlsBackend:
    from quorum.bls import default_backend

    try:
        return default_backend(os.environ)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


def _iso(ms: int) -> str:
    try:
        return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return f"{ms} ms"


def _device_text(device: bytes) -> str:
    try:
        text = device.decode("utf-8")
    except UnicodeDecodeError:
        return device.hex()
    return text if text.isprintable() else device.hex()


def _fingerprint(identity: PublicIdentity) -> str:
    from chhaya.identity import fingerprint

    return fingerprint(identity)


def _open(data_dir: str) -> OpenedDirectory:
    from ..directory_files import open_directory

    return open_directory(Path(data_dir))


def _write_proof_doc(out_file: str, doc: dict[str, Any]) -> None:
    from ..fsio import replace_file_atomic

    replace_file_atomic(Path(out_file), (json.dumps(doc, indent=2) + "\n").encode("ascii"), 0o644)


def _load_witness_keys(
    key_files: Sequence[str], ws: WitnessSet, backend: BlsBackend
) -> dict[str, int]:
    from ..quorum_files import load_witness_key

    by_key = {m.public_key: m.witness_id for m in ws.members}
    out: dict[str, int] = {}
    for path in key_files:
        sk = load_witness_key(Path(path))
        witness_id = by_key.get(backend.sk_to_pk(sk))
        if witness_id is None:
            raise KeyFileError(path, "this witness key is not in the set")
        if witness_id in out:
            raise KeyFileError(path, f"witness {witness_id} given twice")
        out[witness_id] = sk
    return out


def _epoch_list(epochs: Sequence[int]) -> str:
    if len(epochs) > 2 and list(epochs) == list(range(epochs[0], epochs[-1] + 1)):
        return f"epochs {epochs[0]}-{epochs[-1]}"
    return ("epoch " if len(epochs) == 1 else "epochs ") + ", ".join(map(str, epochs))


# ----------------------------------------------------------------- the group


@click.group()
def directory() -> None:
    """A verifiable key directory in a local data directory."""


@directory.command()
@dir_option
@json_option
def init(data_dir: str, as_json: bool) -> None:
    """Create the directory's keys, databases and genesis epoch (0)."""
    from ..clock import system_rng, wall_ms
    from ..directory_files import KEY_FILE, PUBLIC_FILE, init_directory

    path = Path(data_dir)
    opened, genesis = init_directory(path, wall_ms(), system_rng)
    with opened:
        public = opened.public
    doc = {
        "dir": str(path),
        "key_file": str(path / KEY_FILE),
        "public_file": str(path / PUBLIC_FILE),
        "directory_key": public.directory_key.hex(),
        "vrf_key": public.vrf_key.hex(),
        "directory_id": public.directory_id.hex(),
        "epoch": genesis.head.epoch,
        "root": genesis.head.root.hex(),
        "certified": False,
    }
    _emit(
        as_json,
        doc,
        [
            f"wrote {path / KEY_FILE} (0600)",
            f"wrote {path / PUBLIC_FILE}",
            f"directory key: {public.directory_key.hex()}",
            f"directory id:  {public.directory_id.hex()}",
            "published genesis epoch 0 (not certified: run `chhaya directory publish`"
            " with --witness-set and --keys)",
        ],
    )


@directory.command()
@dir_option
@click.argument("handle")
@click.option(
    "--pub", "pub_file", type=click.Path(dir_okay=False), help="The identity's .pub file."
)
@click.option(
    "--device",
    "devices",
    multiple=True,
    help=f"A device id (repeatable; default {_DEFAULT_DEVICE.decode()!r}).",
)
@click.option(
    "--expires-days",
    type=click.IntRange(1, 36_500),
    default=365,
    show_default=True,
    help="The binding expires this many days from now.",
)
@click.option("--tombstone", is_flag=True, help="Revoke HANDLE instead of binding it.")
@json_option
def add(
    data_dir: str,
    handle: str,
    pub_file: str | None,
    devices: tuple[str, ...],
    expires_days: int,
    tombstone: bool,
    as_json: bool,
) -> None:
    """Queue an update of HANDLE for the next epoch: a bundle, or a tombstone."""
    from vkd import MAX_DEVICE_ID_LEN, MAX_DEVICES, DirectoryValue, IdentityBundle

    from ..clock import wall_ms
    from ..keystore import load_public_identity

    if tombstone == (pub_file is not None):
        raise click.UsageError("give exactly one of --pub FILE and --tombstone")
    if tombstone and devices:
        raise click.UsageError("--device makes no sense with --tombstone")
    _check_handle(handle)
    doc: dict[str, Any] = {"handle": handle}
    if pub_file is None:
        value = DirectoryValue(None)
        doc["kind"] = "tombstone"
        summary = [f"queued a tombstone for {handle}: the handle will be revoked"]
    else:
        device_ids = tuple(d.encode("utf-8") for d in devices) or (_DEFAULT_DEVICE,)
        if len(device_ids) > MAX_DEVICES:
            raise LocalProtocolError(f"at most {MAX_DEVICES} devices per handle")
        for device in device_ids:
            if not 1 <= len(device) <= MAX_DEVICE_ID_LEN:
                raise LocalProtocolError(f"a device id is 1-{MAX_DEVICE_ID_LEN} bytes")
        if len(set(device_ids)) != len(device_ids):
            raise LocalProtocolError("a device id is given twice")
        _, identity = load_public_identity(Path(pub_file))
        expires_ms = wall_ms() + expires_days * _DAY_MS
        value = DirectoryValue(IdentityBundle(identity, device_ids, None, expires_ms))
        fp = _fingerprint(identity)
        doc |= {
            "kind": "bundle",
            "fingerprint": fp,
            "devices": [_device_text(d) for d in device_ids],
            "expires_ms": expires_ms,
        }
        summary = [
            f"queued {handle}: {len(device_ids)} device(s), expires {_iso(expires_ms)}",
            f"fingerprint: {fp}",
        ]
    with _open(data_dir) as opened:
        opened.directory.add(handle, value)
        pending = opened.records.pending()
        version = opened.records.latest_version(handle) + sum(
            1 for u in pending if u.handle == handle
        )
    doc |= {"version": version, "pending": len(pending)}
    summary[0] += f" (version {version})"
    summary.append(f"{len(pending)} update(s) pending: run `chhaya directory publish`")
    _emit(as_json, doc, summary)


@directory.command()
@dir_option
@click.option(
    "--witness-set",
    "set_file",
    type=click.Path(dir_okay=False),
    help="SET.json of the witnesses whose --keys certify the epochs.",
)
@click.option(
    "--keys",
    "first_keys",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="Witness key files: --keys W1.key W2.key ... (or --keys repeated).",
)
@click.argument("more_keys", nargs=-1, type=click.Path(dir_okay=False))
@json_option
def publish(
    data_dir: str,
    set_file: str | None,
    first_keys: tuple[str, ...],
    more_keys: tuple[str, ...],
    as_json: bool,
) -> None:
    """Publish the pending updates as the next epoch; certify with witness keys."""
    if more_keys and not first_keys:
        raise click.UsageError(f"unexpected argument {more_keys[0]!r}")
    key_files = first_keys + more_keys
    if bool(key_files) != (set_file is not None):
        raise click.UsageError("--witness-set and --keys go together")
    from ..clock import system_rng, wall_ms
    from ..directory_files import certify_epochs
    from ..quorum_files import load_witness_set

    witnesses: tuple[WitnessSet, BlsBackend, dict[str, int]] | None = None
    if set_file is not None:  # load everything before publishing anything
        backend = _backend()
        ws = load_witness_set(Path(set_file), backend)
        witnesses = (ws, backend, _load_witness_keys(key_files, ws, backend))
    with _open(data_dir) as opened:
        head, audit = opened.publish(wall_ms(), system_rng)
        updates = 0 if audit is None else len(audit.batch)
        certified = []
        if witnesses is not None:
            certified = certify_epochs(opened, *witnesses, wall_ms())
        latest_certified = opened.records.latest_certified_epoch()
    epoch = head.head.epoch
    doc = {
        "epoch": epoch,
        "root": head.head.root.hex(),
        "head_hash": head.head.head_hash.hex(),
        "updates": updates,
        "certified": latest_certified == epoch,
        "certified_epochs": [{"epoch": c.epoch, "signers": list(c.signers)} for c in certified],
        "latest_certified_epoch": latest_certified,
    }
    lines = [f"published epoch {epoch}: {updates} update(s)", f"root: {head.head.root.hex()}"]
    if certified:
        signers = sorted({s for c in certified for s in c.signers})
        lines.append(
            f"certified {_epoch_list([c.epoch for c in certified])} by {', '.join(signers)}"
        )
    elif latest_certified is None:
        lines.append("not certified: no epoch is certified yet, so lookups fail")
    else:
        lines.append(f"not certified: lookups still serve epoch {latest_certified}")
    _emit(as_json, doc, lines)


def _proof_out(
    kind: str,
    handle: str,
    proof: LookupProof | HistoryProof,
    version: int,
    out_file: str | None,
    as_json: bool,
) -> None:
    data = proof.encode()
    doc = {
        "format": PROOF_FORMAT,
        "kind": kind,
        "handle": handle,
        "proof": data.hex(),
        "size_bytes": len(data),
    }
    if out_file is None:
        click.echo(json.dumps(doc, indent=2))
        return
    _write_proof_doc(out_file, doc)
    epoch = proof.head.head.epoch
    summary = {
        "out": out_file,
        "kind": kind,
        "handle": handle,
        "version": version,
        "epoch": epoch,
        "size_bytes": len(data),
    }
    what = f"version {version}" if version else "not registered"
    _emit(
        as_json,
        summary,
        [
            f"wrote {out_file}: {kind} proof for {handle} ({what})"
            f" at epoch {epoch}, {len(data)} bytes"
        ],
    )


@directory.command()
@dir_option
@click.argument("handle")
@out_option
@json_option
def lookup(data_dir: str, handle: str, out_file: str | None, as_json: bool) -> None:
    """A lookup proof for HANDLE in the newest certified epoch."""
    _check_handle(handle)
    with _open(data_dir) as opened:
        proof = opened.directory.lookup(handle)
    _proof_out("lookup", handle, proof, proof.version, out_file, as_json)


@directory.command()
@dir_option
@click.argument("handle")
@out_option
@json_option
def history(data_dir: str, handle: str, out_file: str | None, as_json: bool) -> None:
    """A key-history proof (every version) for HANDLE in the newest certified epoch."""
    _check_handle(handle)
    with _open(data_dir) as opened:
        proof = opened.directory.history(handle)
    _proof_out("history", handle, proof, len(proof.versions), out_file, as_json)


@directory.command()
@dir_option
@click.option("--epoch", required=True, type=click.IntRange(0, 2**63 - 1), help="The new epoch.")
@click.option("--no-check", is_flag=True, help="Do not run the append-only check first.")
@out_option
@json_option
def audit(data_dir: str, epoch: int, no_check: bool, out_file: str | None, as_json: bool) -> None:
    """The append-only audit proof from epoch N-1 to epoch N."""
    with _open(data_dir) as opened:
        proof = opened.directory.audit(epoch)
    if not no_check:
        proof.verify()
    check = "not checked" if no_check else "ok"
    data = proof.encode()
    doc = {
        "format": PROOF_FORMAT,
        "kind": "audit",
        "epoch": epoch,
        "proof": data.hex(),
        "batch_size": len(proof.batch),
        "size_bytes": len(data),
    }
    if out_file is None:
        click.echo(json.dumps(doc, indent=2))
        if not as_json:
            click.echo(f"append-only: {check}", err=True)
        return
    _write_proof_doc(out_file, doc)
    summary = {
        "out": out_file,
        "kind": "audit",
        "epoch": epoch,
        "batch_size": len(proof.batch),
        "size_bytes": len(data),
        "append_only": check,
    }
    _emit(
        as_json,
        summary,
        [
            f"wrote {out_file}: audit proof for epoch {epoch - 1} -> {epoch},"
            f" {len(proof.batch)} new leaves, {len(data)} bytes",
            f"append-only: {check}",
        ],
    )


# ----------------------------------------------------------------- verify


def _load_proof_doc(path: Path) -> tuple[str, str | int, bytes]:
    """(kind, handle or epoch, proof bytes) from a proof file; StorageError if malformed."""
    from ..keystore import read_bounded

    raw = read_bounded(path, MAX_PROOF_FILE, "proof file")
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError):
        raise StorageError(f"{path}: not a proof file (malformed JSON)") from None
    if not isinstance(doc, dict) or doc.get("format") != PROOF_FORMAT:
        raise StorageError(f"{path}: not a proof file (format is not {PROOF_FORMAT})")
    kind = doc.get("kind")
    subject: str | int
    if kind in ("lookup", "history"):
        handle = doc.get("handle")
        if not isinstance(handle, str):
            raise StorageError(f"{path}: proof file has no handle")
        subject = handle
    elif kind == "audit":
        epoch = doc.get("epoch")
        if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
            raise StorageError(f"{path}: proof file has no epoch")
        subject = epoch
    else:
        raise StorageError(f"{path}: unknown proof kind {kind!r}")
    proof_hex = doc.get("proof")
    if not isinstance(proof_hex, str):
        raise StorageError(f"{path}: proof file has no proof")
    try:
        proof = bytes.fromhex(proof_hex)
    except ValueError:
        raise StorageError(f"{path}: the proof is not valid hex") from None
    size = doc.get("size_bytes")
    if size is not None and size != len(proof):
        raise StorageError(f"{path}: size_bytes does not match the proof")
    return kind, subject, proof


class _Invalid(Exception):
    """A proof failed a check: ``check`` names it."""

    def __init__(self, check: str, detail: str) -> None:
        self.check = check
        self.detail = detail
        super().__init__(f"{check}: {detail}")


def _invalid(exc: ChhayaError) -> _Invalid:
    if isinstance(exc, VerificationError):
        text = str(exc)
        prefix = f"{exc.check}: "
        return _Invalid(exc.check, text[len(prefix) :] if text.startswith(prefix) else text)
    return _Invalid("proof", str(exc))


def _head_doc(
    head: SignedHead, certificate: QuorumCertificate | None, ws: WitnessSet | None
) -> dict[str, Any]:
    from quorum import signers_from_bitmap

    doc: dict[str, Any] = {
        "epoch": head.head.epoch,
        "root": head.head.root.hex(),
        "head_hash": head.head.head_hash.hex(),
        "head_time_ms": head.head.time_ms,
        "directory_id": head.head.directory_id.hex(),
        "directory_key": head.directory_key.hex(),
    }
    if certificate is not None and ws is not None:
        signers = signers_from_bitmap(certificate.signers, ws.size)
        doc["signers"] = [ws.members[i].witness_id for i in signers]
        doc["witness_set"] = ws.set_id.hex()
    return doc


def _head_line(doc: dict[str, Any], ws: WitnessSet | None) -> str:
    line = f"head: epoch {doc['epoch']}, root {doc['root']}"
    if ws is not None and "signers" in doc:
        line += (
            f", certified by {len(doc['signers'])} of {ws.size} witnesses"
            f" ({', '.join(doc['signers'])})"
        )
    return line


def _value_doc(value: DirectoryValue) -> dict[str, Any]:
    if value.bundle is None:
        return {"revoked": True}
    b = value.bundle
    return {
        "revoked": False,
        "fingerprint": _fingerprint(b.identity),
        "devices": [_device_text(d) for d in b.devices],
        "expires_ms": b.expires_ms,
    }


def _verify_lookup_or_history(
    kind: str,
    handle: str,
    data: bytes,
    ws: WitnessSet,
    backend: BlsBackend,
    directory_key: bytes | None,
) -> tuple[dict[str, Any], list[str]]:
    from chhaya import DecodeError
    from quorum import CertificateVerifier
    from vkd import (
        DirectoryTrust,
        HistoryProof,
        LookupProof,
        NotRegistered,
        VerifiedBinding,
        verify_vkd_proof,
    )

    from ..clock import wall_ms

    proof: LookupProof | HistoryProof
    try:
        proof = (LookupProof if kind == "lookup" else HistoryProof).decode_untrusted(data)
    except DecodeError as exc:
        raise _Invalid("proof-encoding", str(exc)) from None
    if proof.handle != handle:
        raise _Invalid("handle", f"the proof is for {proof.handle!r}, the file says {handle!r}")
    trust = DirectoryTrust(CertificateVerifier(ws, backend), directory_key)
    head = _head_doc(proof.head, proof.certificate, ws)
    doc: dict[str, Any] = {"valid": True, "kind": kind, "handle": handle, "head": head}
    lines: list[str] = []
    try:
        result = verify_vkd_proof(proof, trust, None, wall_ms())
    except NotRegistered:
        doc |= {"registered": False, "version": 0}
        lines = [f"not registered (verified): {handle} is absent from epoch {head['epoch']}"]
        return doc, [*lines, _head_line(head, ws)]
    except ChhayaError as exc:
        raise _invalid(exc) from None
    if isinstance(result, VerifiedBinding):
        b = result.bundle
        fp = _fingerprint(b.identity)
        doc |= {
            "registered": True,
            "version": result.version,
            "version_epoch": result.epoch,
            "fingerprint": fp,
            "devices": [_device_text(d) for d in b.devices],
            "expires_ms": b.expires_ms,
        }
        lines = [
            f"valid: {handle} version {result.version} (published in epoch {result.epoch})",
            _head_line(head, ws),
            f"fingerprint: {fp}",
            f"devices: {', '.join(doc['devices'])}; expires {_iso(b.expires_ms)}",
        ]
    else:
        versions = [
            {"version": v, "epoch": e, **_value_doc(value)} for v, e, value in result.versions
        ]
        doc |= {"registered": bool(versions), "versions": versions}
        lines = [f"valid: history of {handle}, {len(versions)} version(s)", _head_line(head, ws)]
        for v in versions:
            what = "revoked (tombstone)" if v["revoked"] else f"fingerprint {v['fingerprint']}"
            lines.append(f"  version {v['version']}, epoch {v['epoch']}: {what}")
    return doc, lines


def _verify_audit(
    epoch: int, data: bytes, directory_key: bytes | None
) -> tuple[dict[str, Any], list[str]]:
    from chhaya import DecodeError
    from vkd import AuditProof

    audit: AuditProof
    try:
        audit = AuditProof.decode_untrusted(data)
    except DecodeError as exc:
        raise _Invalid("proof-encoding", str(exc)) from None
    if audit.new.head.epoch != epoch:
        raise _Invalid(
            "epoch", f"the proof is for epoch {audit.new.head.epoch}, the file says {epoch}"
        )
    if directory_key is not None and audit.new.directory_key != directory_key:
        raise _Invalid("directory", "audit proof is signed by another directory")
    try:
        audit.verify()  # signature, chaining, append-only
    except ChhayaError as exc:
        raise _invalid(exc) from None
    doc = {
        "valid": True,
        "kind": "audit",
        "epoch": epoch,
        "old_root": audit.old.head.root.hex(),
        "new_root": audit.new.head.root.hex(),
        "directory_id": audit.new.head.directory_id.hex(),
        "directory_key": audit.new.directory_key.hex(),
        "batch_size": len(audit.batch),
        "append_only": "ok",
    }
    lines = [
        f"valid: audit proof for epoch {epoch - 1} -> {epoch}, {len(audit.batch)} new leaves",
        "append-only: ok",
        "note: audit proofs carry signed heads only, no quorum certificates",
    ]
    return doc, lines


@directory.command()
@click.argument("proof_file", type=click.Path(dir_okay=False))
@click.option(
    "--witness-set",
    "set_file",
    type=click.Path(dir_okay=False),
    help="The trusted witness set (needed for lookup and history proofs).",
)
@click.option("--directory-key", "directory_key_hex", help="Pin the directory's key (hex).")
@json_option
def verify(
    proof_file: str, set_file: str | None, directory_key_hex: str | None, as_json: bool
) -> None:
    """Verify PROOF_FILE as a client would; exit 1 with the failed check if invalid."""
    from ..quorum_files import load_witness_set

    directory_key = None
    if directory_key_hex is not None:
        try:
            directory_key = bytes.fromhex(directory_key_hex)
        except ValueError:
            raise click.BadParameter("not valid hex", param_hint="--directory-key") from None
        if len(directory_key) != 32:
            raise click.BadParameter("not 32 bytes", param_hint="--directory-key")
    kind, subject, data = _load_proof_doc(Path(proof_file))
    try:
        if isinstance(subject, str):
            if set_file is None:
                raise click.UsageError(f"verifying a {kind} proof needs --witness-set")
            backend = _backend()
            ws = load_witness_set(Path(set_file), backend)
            doc, lines = _verify_lookup_or_history(kind, subject, data, ws, backend, directory_key)
        else:
            doc, lines = _verify_audit(subject, data, directory_key)
    except _Invalid as exc:
        if as_json:
            click.echo(
                json.dumps(
                    {"valid": False, "kind": kind, "check": exc.check, "detail": exc.detail},
                    indent=2,
                )
            )
        click.echo(f"invalid: {exc}", err=True)
        sys.exit(1)
    _emit(as_json, doc, lines)


@directory.command()
@dir_option
@click.option("--listen", multiple=True, default=("/ip4/0.0.0.0/tcp/0",), show_default=True)
@click.option(
    "--witness-set", "set_file", required=True, type=click.Path(dir_okay=False),
    help="SET.json of the quorum that certifies this directory.",
)  # fmt: skip
@click.option(
    "--witness", "witnesses", multiple=True, required=True,
    help="A witness node's multiaddr, …/p2p/<peer id> (repeatable).",
)  # fmt: skip
@click.option(
    "--epoch-interval", default=1.0, type=click.FloatRange(0.05, 3600), show_default=True,
    help="Seconds between epochs (an epoch is published only when needed).",
)  # fmt: skip
@click.option("--metrics", help="Serve Prometheus metrics on HOST:PORT.")
@json_option
def serve(
    data_dir: str,
    listen: tuple[str, ...],
    set_file: str,
    witnesses: tuple[str, ...],
    epoch_interval: float,
    metrics: str | None,
    as_json: bool,
) -> None:
    """Serve lookups and registrations over libp2p; publish and certify epochs."""
    import trio

    from ..daemon._main import run_directory

    def say(line: str) -> None:
        click.echo(line)
        sys.stdout.flush()

    trio.run(
        run_directory, Path(data_dir), list(listen), Path(set_file), list(witnesses),
        epoch_interval, metrics, as_json, say,
    )  # fmt: skip
