"""First contact and a conversation through sealed envelopes, in the core.

Every way an envelope can go bad must end in a typed error and leave the
receiving conversation exactly as it was.
"""

from __future__ import annotations

import hashlib

import pytest

from chhaya import ChhayaError, CryptoError, DecodeError, VerificationError
from chhaya.crypto import Rng
from chhaya.identity import PrivateIdentity
from chhaya.prekeys import (
    InitialMessage,
    InMemoryPrekeyStore,
    accept_initial_message,
    initiate_session,
)
from chhaya.ratchet import DuplicateMessageError, SkipLimitError
from chhaya.sealed import (
    OpenedEnvelope,
    SenderCertificate,
    issue_certificate,
    open_envelope_untrusted,
    seal,
    seal_cover,
)
from chhaya.session import Conversation, Payload, PayloadKind, TextReceived

NOW = 1_800_000_000_000
DAY = 86_400_000


def det_rng(seed: bytes) -> Rng:
    counter = 0

    def rng(n: int) -> bytes:
        nonlocal counter
        out = b""
        while len(out) < n:
            out += hashlib.sha256(seed + counter.to_bytes(8, "big")).digest()
            counter += 1
        return out[:n]

    return rng


RNG = det_rng(b"e2e")
ALICE = PrivateIdentity.generate(RNG)
BOB = PrivateIdentity.generate(RNG)
CAROL = PrivateIdentity.generate(RNG)
ALICE_CERT = issue_certificate(ALICE, "alice", b"laptop", NOW + DAY)
BOB_CERT = issue_certificate(BOB, "bob", b"phone", NOW + DAY)


def _open(recipient: PrivateIdentity, envelope: bytes, now: int = NOW) -> OpenedEnvelope:
    opened = open_envelope_untrusted(recipient, envelope, now)
    assert opened is not None
    return opened


def _first_contact() -> tuple[Conversation, Conversation]:
    store = InMemoryPrekeyStore(BOB)
    store.rotate_signed_prekey(RNG, NOW)
    store.rotate_last_resort_kem_prekey(RNG, NOW)
    store.generate_one_time_prekeys(2, RNG, NOW)
    bundle = store.take_bundle(NOW)
    first = Payload(PayloadKind.TEXT, b"\x01" * 16, NOW, text=b"hello bob").encode()
    ratchet, initial = initiate_session(ALICE, bundle, first, RNG)
    envelope = seal(BOB.public.agreement_key, ALICE_CERT, initial.encode(), RNG)

    opened = _open(BOB, envelope)
    assert opened.certificate.handle == "alice"
    message = InitialMessage.decode_untrusted(opened.content)
    bob_ratchet, plaintext, initiator = accept_initial_message(BOB, store, message, RNG)
    # The certificate must name the identity that PQXDH authenticated.
    assert initiator.signing_key == opened.certificate.identity_key
    assert Payload.decode_untrusted(plaintext).text == b"hello bob"
    return Conversation(ratchet), Conversation(bob_ratchet)


def _deliver(conv: Conversation, envelope: bytes) -> object:
    return conv.receive(_open(BOB, envelope).content, RNG)


def _send(conv: Conversation, cert: SenderCertificate, to: PrivateIdentity, text: bytes) -> bytes:
    _, message = conv.send_text(text, NOW, RNG)
    return seal(to.public.agreement_key, cert, message, RNG)


def test_first_contact_then_conversation_through_envelopes() -> None:
    alice, bob = _first_contact()
    reply = _send(bob, BOB_CERT, ALICE, b"hi alice")
    got = alice.receive(_open(ALICE, reply).content, RNG)
    assert isinstance(got, TextReceived)
    assert got.text == b"hi alice"
    for i in range(5):
        got = bob.receive(_open(BOB, _send(alice, ALICE_CERT, BOB, b"%d" % i)).content, RNG)
        assert isinstance(got, TextReceived)
        assert got.text == b"%d" % i


def test_cover_envelopes_are_dropped_without_touching_the_conversation() -> None:
    _, bob = _first_contact()
    before = bob.encode()
    assert open_envelope_untrusted(BOB, seal_cover(BOB.public.agreement_key, 100, RNG), NOW) is None
    assert bob.encode() == before


def _bad_envelopes(alice: Conversation) -> dict[str, tuple[bytes, type[ChhayaError]]]:
    good = _send(alice, ALICE_CERT, BOB, b"good")
    flipped = bytearray(good)
    flipped[100] ^= 1
    expired = issue_certificate(ALICE, "alice", b"laptop", NOW - 1)
    _, message = alice.send_text(b"x", NOW, RNG)
    return {
        "forged": (bytes(len(good)), DecodeError),
        "tampered": (bytes(flipped), CryptoError),
        "truncated": (good[:-1], DecodeError),
        "oversized": (good + bytes(65536), DecodeError),
        "wrong-recipient": (_send(alice, ALICE_CERT, CAROL, b"not for bob"), CryptoError),
        "expired-certificate": (
            seal(BOB.public.agreement_key, expired, message, RNG),
            VerificationError,
        ),
    }


@pytest.mark.parametrize(
    "kind",
    ["forged", "tampered", "truncated", "oversized", "wrong-recipient", "expired-certificate"],
)
def test_bad_envelope_fails_typed_and_leaves_state(kind: str) -> None:
    alice, bob = _first_contact()
    envelope, error = _bad_envelopes(alice)[kind]
    before = bob.encode()
    with pytest.raises(error):
        _deliver(bob, envelope)
    assert bob.encode() == before


def test_replayed_envelope_is_rejected_by_the_ratchet() -> None:
    alice, bob = _first_contact()
    envelope = _send(alice, ALICE_CERT, BOB, b"once")
    bob.receive(_open(BOB, envelope).content, RNG)
    before = bob.encode()
    with pytest.raises(DuplicateMessageError):
        bob.receive(_open(BOB, envelope).content, RNG)
    assert bob.encode() == before


def test_reordered_beyond_the_cap_fails_cleanly() -> None:
    alice, bob = _first_contact()
    late = [_send(alice, ALICE_CERT, BOB, b"m") for _ in range(1002)][-1]
    before = bob.encode()
    with pytest.raises(SkipLimitError):
        bob.receive(_open(BOB, late).content, RNG)
    assert bob.encode() == before


def test_certificate_of_someone_else_does_not_pass_the_ratchet() -> None:
    # Carol wraps a ratchet message of her own making in Alice's certificate:
    # the envelope opens, but Bob's session with Alice rejects the content.
    _, bob = _first_contact()
    carol_alice, _ = _first_contact()  # another session, same certificate
    _, carol_msg = carol_alice.send_text(b"I am alice", NOW, RNG)
    forged = seal(BOB.public.agreement_key, ALICE_CERT, carol_msg, RNG)
    before = bob.encode()
    with pytest.raises(CryptoError):
        _deliver(bob, forged)
    assert bob.encode() == before
