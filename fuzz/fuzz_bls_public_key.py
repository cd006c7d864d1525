"""Fuzz BLS public-key parsing on the blst backend: ``parse_public_key_untrusted``
raises only DecodeError and keeps exactly the input; ``key_validate`` agrees with
it; ``verify`` returns a bool, True only for the one key that signed.

Seeds are built here, not in ``_seeds.py``.

Run: ``python fuzz/fuzz_bls_public_key.py [corpus_dir] [-max_total_time=60]``
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["quorum"]):
    from chhaya import DecodeError
    from quorum.bls import BlstBackend

BACKEND = BlstBackend()
SECRET_KEY = BACKEND.key_gen(bytes(range(32)))
PUBLIC_KEY = BACKEND.sk_to_pk(SECRET_KEY)
MESSAGE = b"fuzz message"
SIGNATURE = BACKEND.sign(SECRET_KEY, MESSAGE)


def seeds() -> list[bytes]:
    return [
        PUBLIC_KEY,
        BACKEND.sk_to_pk(1),  # the generator
        BACKEND.sk_to_pk(BACKEND.key_gen(bytes(32), b"seed")),
        bytes([0xC0]) + bytes(47),  # the identity
        bytes([0x80]) + bytes(46) + b"\x04",  # on the curve, outside G1
        bytes([0x80]) + bytes(46) + b"\x01",  # off the curve
        bytes([0xA0]) + bytes(47),  # (0, -2), of order 3
        PUBLIC_KEY[:-1],
        b"\x00" + PUBLIC_KEY,
        b"",
    ]


def TestOneInput(data: bytes) -> None:
    try:
        parsed = BACKEND.parse_public_key_untrusted(data)
    except DecodeError:
        assert BACKEND.key_validate(data) is False
        valid = False
    else:
        assert parsed.encoded == data
        assert parsed.point.compress() == data  # type: ignore[attr-defined]
        assert BACKEND.key_validate(data) is True
        valid = True
    result = BACKEND.verify(data, MESSAGE, SIGNATURE)
    assert isinstance(result, bool)
    assert result is (data == PUBLIC_KEY)
    assert valid or not result


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
