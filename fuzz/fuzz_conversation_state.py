"""Fuzz ``Conversation.decode_untrusted`` (a stored conversation, read back
from disk, which must be treated as untrusted): only DecodeError escapes, and
whatever decodes re-encodes to exactly the input.

Run: ``python fuzz/fuzz_conversation_state.py [corpus_dir] [-max_total_time=60]``
"""

from __future__ import annotations

import sys

import atheris
from _seeds import DeterministicRng

with atheris.instrument_imports(include=["chhaya"]):
    from chhaya import DecodeError
    from chhaya.crypto import FAST
    from chhaya.ratchet import RatchetSession
    from chhaya.session import Conversation


def seeds() -> list[bytes]:
    rng = DeterministicRng(b"fuzz-conversation")
    out = []
    for he in (False, True):
        bob_key = FAST.dh.generate(rng)
        alice = Conversation(
            RatchetSession.initiator(
                bytes(32), b"ad", bob_key.public_key, rng, header_encryption=he
            )
        )
        bob = Conversation(
            RatchetSession.responder(bytes(32), b"ad", bob_key, header_encryption=he)
        )
        first = [alice.send_text(b"m%d" % i, 0, rng)[1] for i in range(3)]
        bob.receive(first[2], rng)  # leaves two skipped keys
        out += [alice.encode(), bob.encode()]
    return out


def TestOneInput(data: bytes) -> None:
    try:
        conversation = Conversation.decode_untrusted(data)
    except DecodeError:
        return
    assert conversation.encode() == data


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
