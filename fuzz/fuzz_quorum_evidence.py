"""Fuzz ``quorum.EquivocationEvidence.decode_untrusted``: only DecodeError, and a
decoding re-encodes to exactly the input. ``verify()`` raises only
VerificationError and succeeds only for a pair of the directory's own heads.

Run: ``python fuzz/fuzz_quorum_evidence.py [corpus_dir] [-max_total_time=60]``
"""

from __future__ import annotations

import functools
import sys

import atheris

with atheris.instrument_imports(include=["quorum"]):
    import _seeds
    import _vkd_seeds

    from chhaya import DecodeError, VerificationError
    from quorum import GENESIS_PREVIOUS, SIGNED_HEAD_SIZE, EquivocationEvidence, SignedHead


@functools.cache
def _heads() -> tuple[SignedHead, ...]:
    """Genesis and two different heads for epoch 1: the directory equivocated."""
    rng = _seeds.DeterministicRng(b"seed/quorum-evidence")
    genesis = _vkd_seeds.head(0, GENESIS_PREVIOUS, rng(32))
    fork_a = _vkd_seeds.head(1, genesis.head.head_hash, rng(32))
    fork_b = _vkd_seeds.head(1, genesis.head.head_hash, rng(32))
    return genesis, fork_a, fork_b


@functools.cache
def _seed_list() -> tuple[bytes, ...]:
    genesis, fork_a, fork_b = _heads()
    valid = EquivocationEvidence.from_heads(fork_a, fork_b)
    swapped = EquivocationEvidence(valid.second, valid.first).encode()  # parses, not canonical
    same = EquivocationEvidence(fork_a, fork_a).encode()
    epochs = EquivocationEvidence(genesis, fork_a).encode()
    encoded = valid.encode()
    return (
        encoded,
        swapped,
        same,
        epochs,
        encoded[: 4 + SIGNED_HEAD_SIZE],
        encoded[:-1],
        encoded + b"\x00",
        b"CEV1",
        b"",
    )


def seeds() -> list[bytes]:
    return list(_seed_list())


def TestOneInput(data: bytes) -> None:
    try:
        evidence = EquivocationEvidence.decode_untrusted(data)
    except DecodeError:
        return
    assert len(data) == 4 + 2 * SIGNED_HEAD_SIZE
    assert evidence.encode() == data
    try:
        evidence.verify()
    except VerificationError:
        return
    assert {evidence.first, evidence.second} <= set(_heads())
    assert evidence.first != evidence.second


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
