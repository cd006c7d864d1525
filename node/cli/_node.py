"""``chhaya run`` and the commands that talk to a running node.

``run`` starts the daemon. ``register``, ``send``, ``inbox``, ``contacts``
and ``chat`` are thin clients of its control socket (``DIR/control.sock``):
each sends JSON lines and prints the answer, or one error line.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from chhaya import LocalProtocolError

from ._keys import passphrase_option

__all__ = ["chat", "contacts", "data_dir_option", "inbox", "register", "run", "send"]

DATA_DIR_ENV = "CHHAYA_DATA_DIR"


def default_data_dir() -> str:
    from platformdirs import user_data_dir

    return os.environ.get(DATA_DIR_ENV) or user_data_dir("chhaya", appauthor=False)


data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False),
    default=default_data_dir,
    show_default="platform data dir, or $CHHAYA_DATA_DIR",
    help="The node's data directory.",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def _socket(data_dir: str) -> Path:
    from ..daemon import socket_path

    return socket_path(Path(data_dir))


def _call(data_dir: str, op: str, args: dict[str, Any], timeout_s: float = 60.0) -> dict[str, Any]:
    from ..daemon import call

    return call(_socket(data_dir), op, args, timeout_s)


def _time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


# ------------------------------------------------------------------ run


@click.command()
@data_dir_option
@click.option("--listen", multiple=True, help="Multiaddr to listen on (repeatable).")
@click.option("--bootstrap", multiple=True, help="Bootstrap peer multiaddr (repeatable).")
@click.option("--mdns", is_flag=True, default=None, help="Discover peers on the LAN.")
@click.option("--relay", is_flag=True, default=None, help="Serve as a circuit relay (hop).")
@click.option(
    "--relay-limit", "relay_limits", multiple=True, metavar="NAME=N",
    help="A relay hop limit: max_reservations, max_circuits, reservation_ttl_s,"
    " circuit_duration_s or circuit_data_bytes (repeatable).",
)  # fmt: skip
@click.option(
    "--relay-via", multiple=True,
    help="Hold a slot on this relay (multiaddr) and advertise the circuit (repeatable).",
)  # fmt: skip
@click.option(
    "--relay-only", is_flag=True, default=None,
    help="Publish only relay circuits in the presence record (DHT peers still see"
    " this node's addresses).",
)  # fmt: skip
@click.option(
    "--cover-traffic", type=click.FloatRange(0, 600), default=None, metavar="RATE",
    help="Send RATE cover envelopes per minute (Poisson-timed) to contacts; 0 turns it off."
    " 2 costs about 3 MiB a day.",
)  # fmt: skip
@click.option(
    "--mailbox-poll", "mailbox_poll_s", type=click.FloatRange(0.2, 3600), default=None,
    metavar="SECONDS", help="How often to fetch from mailboxes (default 30).",
)  # fmt: skip
@click.option("--directory", help="The key directory's multiaddr (…/p2p/<peer id>).")
@click.option(
    "--witness-set", type=click.Path(dir_okay=False), help="SET.json of the trusted quorum."
)
@click.option("--directory-key", help="Pin the directory's signing key (hex).")
@click.option("--metrics", help="Serve Prometheus metrics on HOST:PORT.")
@passphrase_option
@json_option
def run(
    data_dir: str,
    listen: tuple[str, ...],
    bootstrap: tuple[str, ...],
    mdns: bool | None,
    relay: bool | None,
    relay_limits: tuple[str, ...],
    relay_via: tuple[str, ...],
    relay_only: bool | None,
    cover_traffic: float | None,
    mailbox_poll_s: float | None,
    directory: str | None,
    witness_set: str | None,
    directory_key: str | None,
    metrics: str | None,
    passphrase_file: str | None,
    as_json: bool,
) -> None:
    """Run a chat node until Ctrl-C or SIGTERM."""
    import trio

    from ..daemon._main import run_user

    if witness_set is not None:
        witness_set = str(Path(witness_set).resolve())
    overrides = {
        "listen": listen or None,
        "bootstrap": bootstrap or None,
        "mdns": mdns,
        "relay": relay,
        "relay_via": relay_via or None,
        "relay_limits": _parse_limits(relay_limits) or None,
        "relay_only": relay_only,
        "cover_traffic": cover_traffic,
        "mailbox_poll_s": mailbox_poll_s,
        "directory": directory,
        "witness_set": witness_set,
        "directory_key": directory_key,
        "metrics": metrics,
    }
    trio.run(run_user, Path(data_dir), overrides, passphrase_file, as_json, _say)


def _parse_limits(items: tuple[str, ...]) -> dict[str, int]:
    limits: dict[str, int] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not value.isdigit():
            raise click.BadParameter(f"{item!r}: use NAME=N", param_hint="--relay-limit")
        limits[name] = int(value)
    return limits


def _say(line: str) -> None:
    click.echo(line)
    sys.stdout.flush()


# ------------------------------------------------------------------ clients


@click.command()
@data_dir_option
@click.argument("handle")
@click.option("--timeout", default=60.0, type=click.FloatRange(1, 120), show_default=True)
@json_option
def register(data_dir: str, handle: str, timeout: float, as_json: bool) -> None:
    """Publish this node's identity under HANDLE and wait for a certified epoch."""
    result = _call(data_dir, "register", {"handle": handle, "timeout_s": timeout}, timeout + 10)
    if as_json:
        click.echo(json.dumps(result))
    else:
        click.echo(
            f"registered {result['handle']} (version {result['version']}, "
            f"certified in epoch {result['epoch']})"
        )


@click.command()
@data_dir_option
@click.argument("handle")
@click.argument("text")
@click.option("--wait", is_flag=True, help="Wait for the delivery receipt.")
@click.option("--timeout", default=30.0, type=click.FloatRange(1, 60), show_default=True)
@json_option
def send(data_dir: str, handle: str, text: str, wait: bool, timeout: float, as_json: bool) -> None:
    """Send TEXT to HANDLE, end to end encrypted and sealed."""
    args = {"handle": handle, "text": text, "wait": wait, "timeout_s": timeout}
    result = _call(data_dir, "send", args, timeout + 30)
    if as_json:
        click.echo(json.dumps(result))
    else:
        click.echo(f"{result['status']}: {result['message_id'][:16]} to {handle}")
    if wait and result["status"] == "sent":
        raise LocalProtocolError(f"no delivery receipt from {handle} within {timeout:g} s")


def _print_message(doc: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(doc))
    else:
        click.echo(f"[{_time(doc['sent_ms'])}] {doc['from']}: {doc['text']}")
    sys.stdout.flush()


@click.command()
@data_dir_option
@click.option("--follow", "-f", is_flag=True, help="Keep printing new messages.")
@click.option("--since", default=0, type=click.IntRange(0), help="Only after this cursor.")
@json_option
def inbox(data_dir: str, follow: bool, since: int, as_json: bool) -> None:
    """Show received messages."""
    from ..daemon import stream

    if follow:
        for event in stream(_socket(data_dir), "inbox", {"follow": True, "since": since}):
            _print_message(event, as_json)
        return
    result = _call(data_dir, "inbox", {"since": since})
    for doc in result["messages"]:
        _print_message(doc, as_json)
    if not as_json and not result["messages"]:
        click.echo("no messages")


@click.group()
def contacts() -> None:
    """Contacts: handles whose verified identity this node pins."""


@contacts.command(name="add")
@data_dir_option
@click.argument("handle")
@click.option("--fingerprint", help="Mark verified if the identity has this fingerprint.")
@click.option("--accept-new-key", is_flag=True, help="Accept a changed identity key.")
@click.option(
    "--card", "card_file", type=click.Path(dir_okay=False),
    help="Pin from a contact card instead of the directory (needs --fingerprint).",
)  # fmt: skip
def contacts_add(
    data_dir: str,
    handle: str,
    fingerprint: str | None,
    accept_new_key: bool,
    card_file: str | None,
) -> None:
    """Pin HANDLE's identity: from a verified directory proof, or from a card."""
    args: dict[str, Any] = {
        "handle": handle, "fingerprint": fingerprint, "accept_new_key": accept_new_key
    }  # fmt: skip
    if card_file is not None:
        if fingerprint is None:
            raise click.UsageError("--card needs --fingerprint: compare it with your contact")
        args["card"] = _read_card(Path(card_file))
    _print_contact(_call(data_dir, "contacts.add", args))


def _read_card(path: Path) -> dict[str, Any]:
    from ..keystore import read_bounded

    try:
        doc = json.loads(read_bounded(path, 64 * 1024, "contact card"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise LocalProtocolError(f"{path}: not a contact card ({exc})") from None
    if not isinstance(doc, dict):
        raise LocalProtocolError(f"{path}: not a contact card")
    return doc


@contacts.command(name="card")
@data_dir_option
@click.option("--name", help="Name this node first (only without a directory).")
def contacts_card(data_dir: str, name: str | None) -> None:
    """Print this node's contact card (JSON), for chatting without a directory."""
    card = _call(data_dir, "name", {"name": name}) if name else _call(data_dir, "card", {})
    click.echo(json.dumps(card, indent=2))


@contacts.command(name="list")
@data_dir_option
@json_option
def contacts_list(data_dir: str, as_json: bool) -> None:
    """List contacts and whether their fingerprints were compared."""
    result = _call(data_dir, "contacts.list", {})
    if as_json:
        click.echo(json.dumps(result))
        return
    for doc in result["contacts"]:
        _print_contact(doc)
    if not result["contacts"]:
        click.echo("no contacts")


@contacts.command(name="verify")
@data_dir_option
@click.argument("handle")
@click.argument("fingerprint")
def contacts_verify(data_dir: str, handle: str, fingerprint: str) -> None:
    """Mark HANDLE verified if its pinned identity has FINGERPRINT."""
    _print_contact(
        _call(data_dir, "contacts.verify", {"handle": handle, "fingerprint": fingerprint})
    )


def _print_contact(doc: dict[str, Any]) -> None:
    mark = "verified" if doc["verified"] else "not verified"
    click.echo(f"{doc['handle']}  ({mark})\n  {doc['fingerprint']}")


# ------------------------------------------------------------------ chat


_STATUS_MARK = {"sent": "✓", "delivered": "✓✓", "read": "✓✓ read", None: "…"}


def _chat_line(handle: str, doc: dict[str, Any]) -> str:
    who = "you" if doc.get("direction") == "out" else handle
    mark = f"  {_STATUS_MARK.get(doc.get('status'), '')}" if doc.get("direction") == "out" else ""
    return f"[{_time(doc['sent_ms'])}] {who}: {doc['text']}{mark}"


@click.command()
@data_dir_option
@click.argument("handle")
@click.option("--history", "history_len", default=20, type=click.IntRange(0, 1000))
def chat(data_dir: str, handle: str, history_len: int) -> None:
    """Chat with HANDLE: history, then live messages; type a line to send it."""
    from ..daemon import stream

    socket = _socket(data_dir)
    if history_len:
        for doc in _call(data_dir, "history", {"handle": handle, "limit": history_len})["messages"]:
            click.echo(_chat_line(handle, doc))
    click.echo(f"chatting with {handle}; Ctrl-D or /quit to leave")
    cursor = _call(data_dir, "inbox", {"since": 0})["cursor"]

    def follow() -> None:
        try:
            for event in stream(socket, "inbox", {"follow": True, "since": cursor}):
                if event["from"] == handle:
                    click.echo(_chat_line(handle, {**event, "direction": "in"}))
        except Exception as exc:  # the node went away: say so once
            click.echo(f"(live updates stopped: {exc})", err=True)

    threading.Thread(target=follow, daemon=True).start()
    for line in _stdin_lines():
        text = line.rstrip("\n")
        if text in ("/quit", "/exit"):
            break
        if not text:
            continue
        args = {"handle": handle, "text": text, "wait": True, "timeout_s": 10}
        try:
            result = _call(data_dir, "send", args, 60)
        except Exception as exc:
            click.echo(f"(not sent: {exc})", err=True)
            continue
        click.echo(f"  {_STATUS_MARK.get(result['status'], '')}")


def _stdin_lines() -> Sequence[str] | Any:
    return iter(sys.stdin.readline, "")
