"""Fuzz ``SynAck.decode_untrusted``: only DecodeError, exact re-encoding.

Run: ``python fuzz/fuzz_syn_ack.py [corpus_dir] [-max_total_time=60]``
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["chhaya"]):
    import _seeds

    from chhaya import DecodeError
    from chhaya.channel import SYN_ACK_SIZE, SynAck


def seeds() -> list[bytes]:
    return _seeds.syn_ack_seeds()


def TestOneInput(data: bytes) -> None:
    try:
        syn_ack = SynAck.decode_untrusted(data)
    except DecodeError:
        return
    assert len(data) == SYN_ACK_SIZE
    assert syn_ack.encode() == data
    tail = len(syn_ack.signature) + len(syn_ack.confirmation)
    assert syn_ack.unsigned_bytes() == data[: SYN_ACK_SIZE - tail]


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
