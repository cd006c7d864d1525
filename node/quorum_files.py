"""Witness files on disk: key files (0600), public files and SET.json."""

from __future__ import annotations

import json
from pathlib import Path

from chhaya import ChhayaError, DecodeError, KeyFileError, StorageError
from quorum import (
    WitnessMember,
    WitnessSet,
    decode_witness_key_untrusted,
    decode_witness_pub_untrusted,
    encode_witness_key,
    encode_witness_pub,
    valid_witness_id,
)
from quorum.bls import BlsBackend

from .fsio import write_new_file_atomic
from .keystore import read_bounded, read_private_file

__all__ = [
    "load_witness_key",
    "load_witness_pub",
    "load_witness_set",
    "witness_set_to_json",
    "write_witness_key",
]

_SET_FORMAT = "chhaya-witness-set-v1"
_MAX_SET_FILE = 1 << 20


def write_witness_key(
    out_dir: Path, name: str, secret_key: int, backend: BlsBackend
) -> tuple[Path, Path, WitnessMember]:
    if not valid_witness_id(name):
        raise KeyFileError(name, "invalid name: use letters, digits, '.', '_' or '-' (max 64)")
    try:
        out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise KeyFileError(str(out_dir), f"cannot create directory: {exc.strerror}") from None
    member = WitnessMember(name, backend.sk_to_pk(secret_key), backend.pop_prove(secret_key))
    key_path, pub_path = out_dir / f"{name}.key", out_dir / f"{name}.pub"
    for p in (key_path, pub_path):
        if p.exists():
            raise KeyFileError(str(p), "already exists; refusing to overwrite a key")
    write_new_file_atomic(key_path, encode_witness_key(secret_key), 0o600)
    write_new_file_atomic(pub_path, encode_witness_pub(member).encode("ascii"), 0o644)
    return key_path, pub_path, member


def load_witness_key(path: Path) -> int:
    data = read_private_file(path, 4096, "witness key file")
    try:
        return decode_witness_key_untrusted(data)
    except DecodeError as exc:
        raise KeyFileError(str(path), f"not a valid witness key file ({exc})") from None


def load_witness_pub(path: Path) -> WitnessMember:
    data = read_bounded(path, 4096, "witness public file")
    try:
        return decode_witness_pub_untrusted(data)
    except DecodeError as exc:
        raise KeyFileError(str(path), f"not a valid witness public file ({exc})") from None


def witness_set_to_json(ws: WitnessSet) -> str:
    doc = {
        "format": _SET_FORMAT,
        "threshold": ws.threshold,
        "members": [
            {
                "id": m.witness_id,
                "public_key": m.public_key.hex(),
                "proof_of_possession": m.proof_of_possession.hex(),
            }
            for m in ws.members
        ],
        "set_id": ws.set_id.hex(),
    }
    return json.dumps(doc, indent=2) + "\n"


def load_witness_set(path: Path, backend: BlsBackend) -> WitnessSet:
    """Read and fully validate a SET.json (keys, proofs of possession, threshold)."""
    raw = read_bounded(path, _MAX_SET_FILE, "witness set file")
    try:
        doc = json.loads(raw)
        if not isinstance(doc, dict) or doc.get("format") != _SET_FORMAT:
            raise ValueError("not a chhaya witness set")
        members = tuple(
            WitnessMember(
                str(m["id"]),
                bytes.fromhex(str(m["public_key"])),
                bytes.fromhex(str(m["proof_of_possession"])),
            )
            for m in doc["members"]
        )
        threshold = doc["threshold"]
        if not isinstance(threshold, int):
            raise ValueError("threshold is not an integer")
        ws = WitnessSet(members, threshold)
        ws.validate(backend)
    except ChhayaError as exc:
        raise StorageError(f"{path}: invalid witness set ({exc})") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise StorageError(f"{path}: invalid witness set ({exc})") from None
    stated = doc.get("set_id")
    if stated is not None and stated != ws.set_id.hex():
        raise StorageError(f"{path}: set_id does not match the members and threshold")
    return ws
