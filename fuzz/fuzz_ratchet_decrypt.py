"""Fuzz ``RatchetSession.decrypt`` on an established session.

The input is one ratchet message. It goes to Bob, restored for every input
from the same saved state: a session a few DH steps in, with skipped keys in
two chains. Bit 0 of the input's flags byte picks Bob's plain-header or
header-encrypted twin, so both variants are fuzzed.

Only ChhayaError may escape, and a rejected message leaves the state
byte-identical (decryption is transactional). A message that decrypts must
be one of the genuine in-flight messages, with its exact plaintext (there is
no malleability), and a second delivery must raise DuplicateMessageError
without touching the state.

Run: ``python fuzz/fuzz_ratchet_decrypt.py [corpus_dir] [-max_total_time=60]``
"""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass

import atheris

with atheris.instrument_imports(include=["chhaya"]):
    import _seeds

    from chhaya import ChhayaError
    from chhaya.crypto import FAST
    from chhaya.ratchet import DuplicateMessageError, RatchetSession


@dataclass(frozen=True)
class Receiver:
    """Bob's saved state, and what is in flight to him: message -> plaintext."""

    state: bytes
    pending: dict[bytes, bytes]
    delivered: tuple[bytes, ...]


@functools.cache
def receiver(header_encryption: bool) -> Receiver:
    label = b"ratchet-decrypt/" + (b"he" if header_encryption else b"plain")
    rng = _seeds.DeterministicRng(label)
    bob_key = FAST.dh.generate(rng)
    secret, ad = rng(32), b"fuzz"
    alice = RatchetSession.initiator(
        secret, ad, bob_key.public_key, rng, header_encryption=header_encryption
    )
    bob = RatchetSession.responder(secret, ad, bob_key, header_encryption=header_encryption)

    def a2b(text: bytes) -> bytes:
        return alice.encrypt(text, rng)

    a0, a1, a2 = a2b(b"a0"), a2b(b"a1"), a2b(b"a2")
    bob.decrypt(a0, rng)
    bob.decrypt(a2, rng)  # a1 skipped, in what becomes an old chain
    alice.decrypt(bob.encrypt(b"b0", rng), rng)
    a3, a4, a5 = a2b(b"a3"), a2b(b"a4"), a2b(b"a5")
    bob.decrypt(a5, rng)  # a3, a4 skipped in the current chain
    bob.decrypt(a4, rng)
    a6 = a2b(b"a6")  # the next one in the current chain
    b1 = bob.encrypt(b"b1", rng)
    alice.decrypt(b1, rng)
    a7 = a2b(b"a7")  # a new DH step
    pending = {a6: b"a6", a7: b"a7", a1: b"a1", a3: b"a3"}
    return Receiver(bob.encode(), pending, (a0, a2, a4, a5))


def _rng() -> _seeds.DeterministicRng:
    return _seeds.DeterministicRng(b"ratchet-decrypt/run")


def seeds() -> list[bytes]:
    out: list[bytes] = []
    for header_encryption in (False, True):
        r = receiver(header_encryption)
        out += list(r.pending) + list(r.delivered)
    valid = out[0]
    return [*out, valid[:-1], valid + b"\x00", valid[:2], b""]


def run(data: bytes) -> bytes | ChhayaError:
    """The plaintext, or the error the message was rejected with."""
    header_encryption = len(data) > 1 and bool(data[1] & 1)
    r = receiver(header_encryption)
    bob = RatchetSession.decode_untrusted(r.state)
    try:
        plaintext = bob.decrypt(data, _rng())
    except ChhayaError as exc:
        assert bob.encode() == r.state
        return exc
    assert r.pending.get(data) == plaintext
    after = bob.encode()
    assert after != r.state
    try:
        bob.decrypt(data, _rng())
    except DuplicateMessageError:
        pass
    else:
        raise AssertionError("a message decrypted twice")
    assert bob.encode() == after
    return plaintext


def TestOneInput(data: bytes) -> None:
    run(data)


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
