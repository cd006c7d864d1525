"""Fuzz the ``/chhaya/vkd/register/1.0.0`` request and response decoders:
only DecodeError escapes, whatever decodes re-encodes to exactly the input,
and ``Registration.verify()`` on a decoded request raises only
VerificationError.

Run: ``python fuzz/fuzz_p2p_registration.py [corpus_dir] [-max_total_time=60]``
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import sys

import atheris

with atheris.instrument_imports(include=["node"]):
    import _seeds

    from chhaya import DecodeError, VerificationError
    from chhaya.prekeys import InMemoryPrekeyStore
    from node.p2p import Registration
    from node.p2p._register_protocol import decode_response_untrusted
    from vkd import MAX_DEVICE_ID_LEN, MAX_DEVICES, IdentityBundle

DIRECTORY_ID = b"\x5a" * 32
NOW_MS = _seeds.NOW_MS
DAY_MS = 86_400_000


@functools.cache
def _seed_list() -> tuple[bytes, ...]:
    identity = _seeds.identity(b"registration")
    rng = _seeds.DeterministicRng(b"seed/registration")
    store = InMemoryPrekeyStore(identity)
    store.rotate_signed_prekey(rng, NOW_MS)
    store.rotate_last_resort_kem_prekey(rng, NOW_MS)
    prekeys = store.bundle_for_publication()
    bundle = IdentityBundle(identity.public, (b"peer-alice",), prekeys, NOW_MS + DAY_MS)
    valid = Registration.sign(identity, DIRECTORY_ID, "alice", bundle, NOW_MS)
    valid.verify(DIRECTORY_ID, NOW_MS)  # a broken builder fails loudly
    devices = tuple(bytes([i + 1]) * MAX_DEVICE_ID_LEN for i in range(MAX_DEVICES))
    full = dataclasses.replace(bundle, prekeys=None, devices=devices, expires_ms=2**64 - 1)
    long_handle = Registration.sign(identity, DIRECTORY_ID, "a" * 64, full, 2**64 - 1)
    encoded = valid.encode()
    return (
        encoded,
        long_handle.encode(),
        b"CRR1\x00",
        b"CRR1\x01",
        encoded[:-1],
        encoded + b"\x00",
        b"",
    )


def seeds() -> list[bytes]:
    return list(_seed_list())


def TestOneInput(data: bytes) -> None:
    try:
        queued = decode_response_untrusted(data)
    except DecodeError:
        pass
    else:
        assert data == b"CRR1" + bytes((0 if queued else 1,))
    try:
        registration = Registration.decode_untrusted(data)
    except DecodeError:
        return
    assert registration.encode() == data
    with contextlib.suppress(VerificationError):
        registration.verify(DIRECTORY_ID, NOW_MS)


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
