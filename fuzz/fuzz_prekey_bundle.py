"""Fuzz ``PrekeyBundle.decode_untrusted``: only DecodeError, and a decoding
re-encodes to exactly the input. A decoded bundle is also put through
``verify()``, which may only raise VerificationError.

Run: ``python fuzz/fuzz_prekey_bundle.py [corpus_dir] [-max_total_time=60]``
"""

from __future__ import annotations

import contextlib
import functools
import sys

import atheris

with atheris.instrument_imports(include=["chhaya"]):
    import _seeds

    from chhaya import DecodeError, VerificationError
    from chhaya.prekeys import (
        MAX_PREKEY_BUNDLE_SIZE,
        ONE_TIME_PREKEY_SIZE,
        InMemoryPrekeyStore,
        PrekeyBundle,
    )


@functools.cache
def _seed_list() -> tuple[bytes, ...]:
    rng = _seeds.DeterministicRng(b"seed/prekey-bundle")
    store = InMemoryPrekeyStore(_seeds.identity(b"prekey-owner"))
    store.rotate_signed_prekey(rng, _seeds.NOW_MS)
    store.rotate_last_resort_kem_prekey(rng, _seeds.NOW_MS)
    store.generate_one_time_prekeys(1, rng, _seeds.NOW_MS)
    store.generate_kem_prekeys(1, rng, _seeds.NOW_MS)
    full = store.take_bundle(_seeds.NOW_MS).encode()
    published = store.bundle_for_publication().encode()
    return (full, published, full[:-1], full + b"\x00", published[:-1], b"CPB1", b"")


def seeds() -> list[bytes]:
    return list(_seed_list())


def TestOneInput(data: bytes) -> None:
    try:
        bundle = PrekeyBundle.decode_untrusted(data)
    except DecodeError:
        return
    assert len(data) in (MAX_PREKEY_BUNDLE_SIZE, MAX_PREKEY_BUNDLE_SIZE - ONE_TIME_PREKEY_SIZE)
    assert bundle.encode() == data
    with contextlib.suppress(VerificationError):
        bundle.verify()


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
