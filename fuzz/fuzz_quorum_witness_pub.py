"""Fuzz ``quorum.decode_witness_pub_untrusted``: only DecodeError; a decoded
member re-encodes (``encode_witness_pub``) to a file that decodes to the same
member.

The text form is not canonical (surrounding whitespace is stripped), so
bytes are compared only after stripping: the one line itself is canonical
(single spaces, lower-case hex).

Run: ``python fuzz/fuzz_quorum_witness_pub.py [corpus_dir] [-max_total_time=60]``
"""

from __future__ import annotations

import functools
import sys

import atheris

with atheris.instrument_imports(include=["quorum"]):
    import _vkd_seeds

    from chhaya import DecodeError
    from quorum import (
        decode_witness_pub_untrusted,
        encode_witness_pub,
        valid_witness_id,
    )


@functools.cache
def _seed_list() -> tuple[bytes, ...]:
    members = _vkd_seeds.quorum().witness_set.members
    valid = encode_witness_pub(members[0]).encode("ascii")
    second = encode_witness_pub(members[1]).encode("ascii")
    return (
        valid,
        second,
        b"  " + valid.rstrip(b"\n") + b"\r\n",
        valid.upper().replace(b"CHHAYA-WITNESS-V1", b"chhaya-witness-v1"),
        valid.replace(b" W1 ", b" .W1 "),
        valid.replace(b" ", b"  ", 1),
        valid[:150],
        b"chhaya-witness-v1 W1 00 00\n",
        b"",
    )


def seeds() -> list[bytes]:
    return list(_seed_list())


def TestOneInput(data: bytes) -> None:
    try:
        member = decode_witness_pub_untrusted(data)
    except DecodeError:
        return
    assert valid_witness_id(member.witness_id)
    canonical = encode_witness_pub(member)
    assert data.decode("ascii").strip() == canonical.strip()
    assert decode_witness_pub_untrusted(canonical.encode("ascii")) == member


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
