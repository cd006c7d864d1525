"""Fuzz ``decode_key_file_untrusted`` and ``key_file_is_sealed_untrusted``.

Both raise only DecodeError. No passphrase is passed, so a well-formed sealed
file stops at PassphraseRequired (a DecodeError) before Argon2 runs: fuzzing
stays fast, and a crafted file never gets to pick Argon2's cost. A plain file
that decodes re-encodes to exactly the input.

Run: ``python fuzz/fuzz_key_file.py [corpus_dir] [-max_total_time=60]``
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["chhaya"]):
    import _seeds

    from chhaya import DecodeError
    from chhaya.identity import (
        MAX_KEY_FILE_SIZE,
        PassphraseRequired,
        decode_key_file_untrusted,
        encode_key_file,
        key_file_is_sealed_untrusted,
    )


def seeds() -> list[bytes]:
    return _seeds.key_file_seeds()


def _no_randomness(n: int) -> bytes:
    raise AssertionError("a plain key file must not draw randomness")


def TestOneInput(data: bytes) -> None:
    sealed: bool | None
    try:
        sealed = key_file_is_sealed_untrusted(data)
    except DecodeError:
        sealed = None
    try:
        identity = decode_key_file_untrusted(data, None)
    except PassphraseRequired:
        assert sealed is True
        return
    except DecodeError:
        return
    assert sealed is False
    assert len(data) <= MAX_KEY_FILE_SIZE
    assert encode_key_file(identity, _no_randomness) == data


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
