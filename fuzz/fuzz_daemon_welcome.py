"""Fuzz ``node.daemon.Welcome.decode_untrusted`` (the listener's answer to an
Intro): only DecodeError escapes, and whatever decodes re-encodes to exactly
the input.

Run: ``python fuzz/fuzz_daemon_welcome.py [corpus_dir] [-max_total_time=60]``
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["node"]):
    from chhaya import DecodeError
    from node.daemon import Welcome


def seeds() -> list[bytes]:
    return [Welcome(True).encode(), Welcome(False).encode(), b"CWL1\x02", b"CWL1", b""]


def TestOneInput(data: bytes) -> None:
    try:
        welcome = Welcome.decode_untrusted(data)
    except DecodeError:
        return
    assert welcome.encode() == data


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
