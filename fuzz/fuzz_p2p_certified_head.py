"""Fuzz ``CertifiedHead.decode_untrusted`` (gossip on ``/chhaya/vkd/heads/1``):
only DecodeError escapes, and whatever decodes re-encodes to exactly the input.

Run: ``python fuzz/fuzz_p2p_certified_head.py [corpus_dir] [-max_total_time=60]``
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["node", "quorum"]):
    from chhaya import DecodeError
    from node.p2p import CertifiedHead
    from quorum import EpochHead, QuorumCertificate, SignedHead


def seeds() -> list[bytes]:
    head = SignedHead(
        EpochHead(b"\x01" * 32, 3, b"\x02" * 32, b"\x03" * 32, 7),
        b"\x04" * 32,
        b"\x05" * 32,
        b"\x06" * 64,
    )
    cert = QuorumCertificate(b"\x07" * 32, b"\x0f", b"\x08" * 96)
    return [CertifiedHead(head, cert).encode(), b"CHD1", b""]


def TestOneInput(data: bytes) -> None:
    try:
        head = CertifiedHead.decode_untrusted(data)
    except DecodeError:
        return
    assert head.encode() == data


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
