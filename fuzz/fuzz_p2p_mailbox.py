"""Fuzz the ``/chhaya/mailbox/1.0.0`` decoders (deposit, deposit response, fetch
request, challenge, proof, list, ack, ack result): only DecodeError escapes,
and whatever decodes re-encodes to exactly the input.

Run: ``python fuzz/fuzz_p2p_mailbox.py [corpus_dir] [-max_total_time=60]``
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["node"]):
    import _seeds

    from chhaya import DecodeError
    from node.p2p import (
        AckResult,
        DepositRequest,
        DepositResponse,
        FetchAck,
        FetchChallenge,
        FetchList,
        FetchProof,
        FetchRequest,
        mailbox_id_for,
    )

DECODERS = (
    DepositRequest,
    DepositResponse,
    FetchRequest,
    FetchChallenge,
    FetchProof,
    FetchList,
    FetchAck,
    AckResult,
)


def seeds() -> list[bytes]:
    rng = _seeds.DeterministicRng(b"seed/p2p-mailbox")
    identity = _seeds.identity(b"mailbox")
    mailbox = mailbox_id_for(identity.public.signing_key)
    return [
        DepositRequest(mailbox, rng(1024)).encode(),
        DepositRequest(rng(32), rng(4096)).encode(),
        DepositResponse(True).encode(),
        DepositResponse(False).encode(),
        FetchRequest(identity.public.signing_key, 256).encode(),
        FetchChallenge(rng(32)).encode(),
        FetchProof(rng(64)).encode(),
        FetchList(()).encode(),
        FetchList(((rng(16), rng(1024)), (rng(16), rng(1024)))).encode(),
        FetchAck((), rng(64)).encode(),
        FetchAck((rng(16), rng(16), rng(16)), rng(64)).encode(),
        AckResult(3).encode(),
        b"",
    ]


def TestOneInput(data: bytes) -> None:
    for message_type in DECODERS:
        try:
            message = message_type.decode_untrusted(data)
        except DecodeError:
            continue
        assert message.encode() == data


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
