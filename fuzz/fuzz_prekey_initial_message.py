"""Fuzz ``InitialMessage.decode_untrusted``: only DecodeError, and a decoding
re-encodes to exactly the input.

The valid seeds are real first contacts (with and without a one-time prekey,
with and without header encryption), made with the REFERENCE provider so
that the ML-KEM encapsulation, and therefore every byte, is reproducible.

Run: ``python fuzz/fuzz_prekey_initial_message.py [corpus_dir] [-max_total_time=60]``
"""

from __future__ import annotations

import functools
import sys

import atheris

with atheris.instrument_imports(include=["chhaya"]):
    import _seeds

    from chhaya import DecodeError
    from chhaya.crypto import REFERENCE
    from chhaya.prekeys import (
        MAX_INITIAL_MESSAGE_SIZE,
        InitialMessage,
        InMemoryPrekeyStore,
        initiate_session,
    )


@functools.cache
def _seed_list() -> tuple[bytes, ...]:
    rng = _seeds.DeterministicRng(b"seed/prekey-initial-message")
    store = InMemoryPrekeyStore(_seeds.identity(b"prekey-owner"))
    store.rotate_signed_prekey(rng, _seeds.NOW_MS)
    store.rotate_last_resort_kem_prekey(rng, _seeds.NOW_MS)
    store.generate_one_time_prekeys(1, rng, _seeds.NOW_MS)
    initiator = _seeds.identity(b"prekey-initiator")
    out: list[bytes] = []
    for header_encryption in (False, True):
        bundle = store.take_bundle(_seeds.NOW_MS)
        _, message = initiate_session(
            initiator, bundle, b"hello", rng, header_encryption, suite=REFERENCE
        )
        out.append(message.encode())
    valid = out[0]
    return (*out, valid[:-1], valid + b"\x00", valid[:-16], b"CPM1", b"")


def seeds() -> list[bytes]:
    return list(_seed_list())


def TestOneInput(data: bytes) -> None:
    try:
        message = InitialMessage.decode_untrusted(data)
    except DecodeError:
        return
    assert len(data) <= MAX_INITIAL_MESSAGE_SIZE
    assert message.encode() == data


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
