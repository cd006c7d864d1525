"""Fuzz ``vkd.IdentityBundle.decode_untrusted``: only DecodeError, and a
decoding re-encodes to exactly the input. ``check()`` (expiry and prekey
signatures) raises only VerificationError.

Run: ``python fuzz/fuzz_vkd_identity_bundle.py [corpus_dir] [-max_total_time=60]``
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import sys

import atheris

with atheris.instrument_imports(include=["chhaya", "quorum", "vkd"]):
    import _vkd_seeds

    from chhaya import DecodeError, VerificationError
    from vkd import MAX_DEVICE_ID_LEN, MAX_DEVICES, IdentityBundle


@functools.cache
def _seed_list() -> tuple[bytes, ...]:
    alice, alice2, bob = _vkd_seeds.directory_world().bundles
    valid = alice.encode()
    devices = tuple(bytes([i]) * MAX_DEVICE_ID_LEN for i in range(MAX_DEVICES))
    full = dataclasses.replace(bob, devices=devices, expires_ms=2**64 - 1).encode()
    # alice's prekeys under bob's identity: refused.
    assert alice.prekeys is not None
    prekeys = alice.prekeys.encode()
    before_flag, expiry = bob.encode()[:-9], bob.encode()[-8:]
    foreign = before_flag + b"\x01" + len(prekeys).to_bytes(2, "big") + prekeys + expiry
    return (valid, alice2.encode(), bob.encode(), full, foreign, valid[:-1], valid + b"\x00", b"")


def seeds() -> list[bytes]:
    return list(_seed_list())


def TestOneInput(data: bytes) -> None:
    try:
        bundle = IdentityBundle.decode_untrusted(data)
    except DecodeError:
        return
    assert bundle.encode() == data
    with contextlib.suppress(VerificationError):
        bundle.check(_vkd_seeds.VERIFY_NOW_MS)


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
