"""Fuzz ``node.daemon.Intro.decode_untrusted`` (the dialer's first message in
a channel): only DecodeError escapes, and whatever decodes re-encodes to
exactly the input.

Run: ``python fuzz/fuzz_daemon_intro.py [corpus_dir] [-max_total_time=60]``
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["node"]):
    from chhaya import DecodeError
    from node.daemon import Intro


def seeds() -> list[bytes]:
    with_conversation = Intro("alice", bytes(range(16))).encode()
    return [
        with_conversation,
        Intro("bob.smith-2_x", b"").encode(),
        Intro("z" * 64, b"\xff" * 16).encode(),
        with_conversation[:-1],
        b"CIN1",
        b"",
    ]


def TestOneInput(data: bytes) -> None:
    try:
        intro = Intro.decode_untrusted(data)
    except DecodeError:
        return
    assert intro.encode() == data


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
