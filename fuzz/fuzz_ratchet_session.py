"""Fuzz ``RatchetSession.decode_untrusted``: only DecodeError, exact re-encoding.

Whatever decodes keeps its stores within their caps. Seeds are encodings of
real sessions, plain and header-encrypted, before the first message and in
the middle of a conversation (skipped keys, previous chains).

Run: ``python fuzz/fuzz_ratchet_session.py [corpus_dir] [-max_total_time=60]``
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["chhaya"]):
    import _seeds

    from chhaya import DecodeError
    from chhaya.crypto import FAST
    from chhaya.ratchet import MAX_SKIPPED_TOTAL, RatchetSession


def _states(header_encryption: bool) -> list[bytes]:
    """Bob mid-conversation (skipped keys in two chains), then the fresh pair."""
    label = b"seed/ratchet-session/" + (b"he" if header_encryption else b"plain")
    rng = _seeds.DeterministicRng(label)
    bob_key = FAST.dh.generate(rng)
    secret, ad = rng(32), b"fuzz"
    alice = RatchetSession.initiator(
        secret, ad, bob_key.public_key, rng, header_encryption=header_encryption
    )
    bob = RatchetSession.responder(secret, ad, bob_key, header_encryption=header_encryption)
    fresh = [alice.encode(), bob.encode()]
    for _ in range(3):
        alice.encrypt(b"skipped", rng)
        bob.decrypt(alice.encrypt(b"read", rng), rng)
        alice.decrypt(bob.encrypt(b"ack", rng), rng)
    return [bob.encode(), alice.encode(), *fresh]


def seeds() -> list[bytes]:
    plain = _states(False)
    encrypted = _states(True)
    valid = plain[0]
    return [
        *plain,
        *encrypted,
        valid[:-1],
        valid + b"\x00",
        valid[:4] + b"\x02" + valid[5:],
        b"CDRS\x01",
        b"",
    ]


def TestOneInput(data: bytes) -> None:
    try:
        session = RatchetSession.decode_untrusted(data)
    except DecodeError:
        return
    assert session.header_encryption is bool(data[5])
    assert session.skipped_count <= MAX_SKIPPED_TOTAL
    assert session.encode() == data


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
