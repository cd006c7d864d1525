"""Fuzz BLS signature checks on the blst backend: ``verify``, ``pop_verify`` and
``fast_aggregate_verify`` return a bool, True only for the one valid signature
(BLS signatures are unique and their encoding canonical); ``aggregate`` raises
only DecodeError and gives back a lone valid signature unchanged.

Seeds are built here, not in ``_seeds.py``.

Run: ``python fuzz/fuzz_bls_signature.py [corpus_dir] [-max_total_time=60]``
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["quorum"]):
    from chhaya import DecodeError
    from quorum.bls import BlstBackend

BACKEND = BlstBackend()
SECRET_KEYS = [BACKEND.key_gen(bytes([i]) * 32) for i in range(1, 3)]
PUBLIC_KEYS = [BACKEND.sk_to_pk(sk) for sk in SECRET_KEYS]
MESSAGE = b"fuzz message"
SIGNATURE = BACKEND.sign(SECRET_KEYS[0], MESSAGE)
PROOF = BACKEND.pop_prove(SECRET_KEYS[0])
AGGREGATE = BACKEND.aggregate([BACKEND.sign(sk, MESSAGE) for sk in SECRET_KEYS])
PARSED = [BACKEND.parse_public_key_untrusted(pk) for pk in PUBLIC_KEYS]


def seeds() -> list[bytes]:
    return [
        SIGNATURE,
        PROOF,
        AGGREGATE,
        bytes([0xC0]) + bytes(95),  # the identity
        bytes([0xA0]) + bytes(46) + b"\x01" + bytes(47) + b"\x01",  # on the curve, outside G2
        SIGNATURE[:-1],
        SIGNATURE + b"\x00",
        b"",
    ]


def TestOneInput(data: bytes) -> None:
    try:
        aggregate = BACKEND.aggregate([data])
    except DecodeError:
        valid = False
    else:
        assert aggregate == data
        valid = True
    for result, expected in (
        (BACKEND.verify(PUBLIC_KEYS[0], MESSAGE, data), SIGNATURE),
        (BACKEND.pop_verify(PUBLIC_KEYS[0], data), PROOF),
        (BACKEND.fast_aggregate_verify(PUBLIC_KEYS, MESSAGE, data), AGGREGATE),
        (BACKEND.fast_aggregate_verify_parsed(PARSED, MESSAGE, data), AGGREGATE),
    ):
        assert isinstance(result, bool)
        assert result is (data == expected)
        assert valid or not result


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
