"""Fuzz the ``/chhaya/witness/1.0.0`` co-signing request and response decoders:
only DecodeError escapes, and whatever decodes re-encodes to exactly the input.

Run: ``python fuzz/fuzz_p2p_cosign.py [corpus_dir] [-max_total_time=60]``
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["node"]):
    import _seeds
    import _vkd_seeds

    from chhaya import DecodeError
    from node.p2p import CosignRequest, CosignResponse, CosignStatus
    from quorum import GENESIS_PREVIOUS


def seeds() -> list[bytes]:
    rng = _seeds.DeterministicRng(b"seed/p2p-cosign")
    genesis = _vkd_seeds.head(0, GENESIS_PREVIOUS, rng(32))
    second = _vkd_seeds.head(1, genesis.head.head_hash, rng(32))
    return [
        CosignRequest(genesis).encode(),
        CosignRequest(second, b"CVA1" + rng(60)).encode(),
        CosignResponse(CosignStatus.SIGNED, "W1", rng(96)).encode(),
        CosignResponse(CosignStatus.REFUSED, "witness-2.example").encode(),
        b"",
    ]


def TestOneInput(data: bytes) -> None:
    try:
        request = CosignRequest.decode_untrusted(data)
    except DecodeError:
        pass
    else:
        assert request.encode() == data
    try:
        response = CosignResponse.decode_untrusted(data)
    except DecodeError:
        return
    assert response.encode() == data


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
