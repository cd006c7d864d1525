"""Fuzz ``RatchetMessage.decode_untrusted``: only DecodeError, exact re-encoding.

Whatever decodes has a header part of the size its flags announce and a
ciphertext within bounds. Seeds are real messages, with plain and with
encrypted headers, from a deterministic pair of sessions.

Run: ``python fuzz/fuzz_ratchet_message.py [corpus_dir] [-max_total_time=60]``
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["chhaya"]):
    import _seeds

    from chhaya import DecodeError
    from chhaya.crypto import AEAD_TAG_SIZE, FAST
    from chhaya.ratchet import (
        ENCRYPTED_HEADER_SIZE,
        HEADER_SIZE,
        MAX_RATCHET_CIPHERTEXT,
        RATCHET_VERSION,
        RatchetMessage,
        RatchetSession,
    )


def _messages(header_encryption: bool) -> list[bytes]:
    """Alice's first message, Bob's reply and a long one."""
    label = b"seed/ratchet-message/" + (b"he" if header_encryption else b"plain")
    rng = _seeds.DeterministicRng(label)
    bob_key = FAST.dh.generate(rng)
    secret, ad = rng(32), b"fuzz"
    alice = RatchetSession.initiator(
        secret, ad, bob_key.public_key, rng, header_encryption=header_encryption
    )
    bob = RatchetSession.responder(secret, ad, bob_key, header_encryption=header_encryption)
    first = alice.encrypt(b"hello", rng)
    bob.decrypt(first, rng)
    reply = bob.encrypt(b"", rng)
    long = bob.encrypt(bytes(range(256)) * 4, rng)
    return [first, reply, long]


def seeds() -> list[bytes]:
    plain = _messages(False)
    encrypted = _messages(True)
    valid = plain[0]
    return [
        *plain,
        *encrypted,
        valid[:-1],
        valid + b"\x00",
        valid[: 2 + HEADER_SIZE + AEAD_TAG_SIZE - 1],
        bytes((RATCHET_VERSION, 0x02)) + valid[2:],
        b"\x01",
        b"",
    ]


def TestOneInput(data: bytes) -> None:
    try:
        msg = RatchetMessage.decode_untrusted(data)
    except DecodeError:
        return
    assert data[0] == RATCHET_VERSION
    assert data[1] == int(msg.header_encrypted)
    size = ENCRYPTED_HEADER_SIZE if msg.header_encrypted else HEADER_SIZE
    assert len(msg.header_part) == size
    assert AEAD_TAG_SIZE <= len(msg.ciphertext) <= MAX_RATCHET_CIPHERTEXT
    assert msg.prefix() == data[: 2 + size]
    assert msg.encode() == data


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
