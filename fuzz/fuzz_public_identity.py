"""Fuzz ``PublicIdentity.decode_untrusted``: only DecodeError, exact re-encoding.

Run: ``python fuzz/fuzz_public_identity.py [corpus_dir] [-max_total_time=60]``
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["chhaya"]):
    import _seeds

    from chhaya import DecodeError
    from chhaya.identity import PUBLIC_IDENTITY_SIZE, PublicIdentity


def seeds() -> list[bytes]:
    return _seeds.public_identity_seeds()


def TestOneInput(data: bytes) -> None:
    try:
        identity = PublicIdentity.decode_untrusted(data)
    except DecodeError:
        return
    assert len(data) == PUBLIC_IDENTITY_SIZE
    assert identity.encode() == data


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
