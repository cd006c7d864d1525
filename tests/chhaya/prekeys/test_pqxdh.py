"""First contact end to end: initiate, accept, converse; and every way it must fail.

Threats and where they are covered:

- forged or corrupted initial message: ``test_every_byte_flip_fails_and_burns_nothing``
  (and it must not consume a one-time prekey or poison the replay set);
- replay: ``test_replay_with_one_time_prekey``, ``test_replay_without_one_time_prekey``,
  ``test_replay_with_one_time_kem_prekey_only``, ``test_replay_with_non_canonical_ephemeral``;
- a badly signed bundle: ``test_initiator_rejects_badly_signed_bundle``;
- the message reaching someone else: ``test_wrong_recipient_fails``;
- identity substitution (Mallory relabels Alice's message as his):
  ``test_initiator_identity_substitution_fails``;
- unknown or expired prekeys: ``test_unknown_prekey_ids``, ``test_retired_signed_prekey_*``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from chhaya import (
    CryptoError,
    DecodeError,
    LocalProtocolError,
    VerificationError,
)
from chhaya.crypto import REFERENCE, Rng
from chhaya.identity import PrivateIdentity
from chhaya.prekeys import (
    MAX_INITIAL_MESSAGES_PER_SIGNED_PREKEY,
    PREKEY_GRACE_MS,
    InitialMessage,
    InMemoryPrekeyStorage,
    PrekeyBundle,
    PrekeyStore,
    accept_initial_message,
    initial_message_digest,
    initiate_session,
)
from chhaya.ratchet import RatchetSession

from ._helpers import NOW, det_rng, identity, make_store

ALICE = "alice"
BOB = "bob"


def snapshot(store: PrekeyStore) -> tuple[object, ...]:
    """Everything acceptance may change, to check that a failure changed nothing."""
    s = store.storage
    return (
        tuple(s.signed_prekeys()),
        tuple(s.kem_prekeys()),
        tuple(s.one_time_prekeys()),
        tuple(s.initial_message_count(r.prekey_id) for r in s.signed_prekeys()),
    )


def converse(alice: RatchetSession, bob: RatchetSession, rng: Rng, rounds: int = 3) -> None:
    """Both directions, several DH ratchet steps, one out-of-order delivery."""
    for i in range(rounds):
        out = [bob.encrypt(f"b{i}.{j}".encode(), rng) for j in range(2)]
        assert alice.decrypt(out[1], rng) == f"b{i}.1".encode()
        assert alice.decrypt(out[0], rng) == f"b{i}.0".encode()
        msg = alice.encrypt(f"a{i}".encode(), rng)
        assert bob.decrypt(msg, rng) == f"a{i}".encode()


@pytest.fixture
def rng() -> Rng:
    return det_rng(b"pqxdh/test")


# ------------------------------------------------------------------ happy path


@pytest.mark.parametrize("header_encryption", [False, True], ids=["plain", "he"])
@pytest.mark.parametrize("opk", [True, False], ids=["opk", "no-opk"])
@pytest.mark.parametrize("kem_one_time", [True, False], ids=["pqopk", "last-resort"])
def test_first_contact_and_conversation(
    rng: Rng, header_encryption: bool, opk: bool, kem_one_time: bool
) -> None:
    alice, bob = identity(ALICE), identity(BOB)
    store = make_store(bob, one_time=1 if opk else 0, kem_one_time=1 if kem_one_time else 0)
    bundle = PrekeyBundle.decode_untrusted(store.take_bundle(NOW).encode())
    assert (bundle.one_time_prekey is not None) == opk
    assert bundle.kem_prekey.last_resort == (not kem_one_time)

    a_session, message = initiate_session(alice, bundle, b"hello bob", rng, header_encryption)
    wire = message.encode()
    received = InitialMessage.decode_untrusted(wire)
    b_session, plaintext, initiator = accept_initial_message(
        bob, store, received, rng, header_encryption
    )
    assert plaintext == b"hello bob"
    assert initiator == alice.public
    assert b_session.header_encryption == a_session.header_encryption == header_encryption
    converse(a_session, b_session, rng)
    # Sessions survive serialization after first contact.
    a2 = RatchetSession.decode_untrusted(a_session.encode())
    b2 = RatchetSession.decode_untrusted(b_session.encode())
    converse(a2, b2, rng, rounds=1)
    # One-time prekeys used are gone; the rest is untouched.
    if opk:
        assert bundle.one_time_prekey is not None
        assert store.storage.get_one_time_prekey(bundle.one_time_prekey.prekey_id) is None
    kem_left = store.storage.get_kem_prekey(bundle.kem_prekey.prekey_id)
    assert (kem_left is None) == kem_one_time
    assert store.storage.get_signed_prekey(bundle.signed_prekey.prekey_id) is not None


def test_alice_sends_more_before_bob_answers(rng: Rng) -> None:
    alice, bob = identity(ALICE), identity(BOB)
    store = make_store(bob)
    a_session, message = initiate_session(alice, store.take_bundle(NOW), b"one", rng)
    later = [a_session.encrypt(b"two", rng), a_session.encrypt(b"three", rng)]
    b_session, plaintext, _ = accept_initial_message(bob, store, message, rng)
    assert plaintext == b"one"
    assert b_session.decrypt(later[1], rng) == b"three"
    assert b_session.decrypt(later[0], rng) == b"two"
    converse(a_session, b_session, rng, rounds=1)


def test_empty_and_largest_first_payload(rng: Rng) -> None:
    from chhaya.ratchet import MAX_RATCHET_PLAINTEXT

    alice, bob = identity(ALICE), identity(BOB)
    store = make_store(bob)
    for payload in (b"", bytes(MAX_RATCHET_PLAINTEXT)):
        _, message = initiate_session(alice, store.take_bundle(NOW), payload, rng, True)
        message = InitialMessage.decode_untrusted(message.encode())
        _, plaintext, _ = accept_initial_message(bob, store, message, rng, True)
        assert plaintext == payload
    with pytest.raises(LocalProtocolError):
        initiate_session(alice, store.take_bundle(NOW), bytes(MAX_RATCHET_PLAINTEXT + 1), rng)


def test_cross_provider_first_contact(rng: Rng) -> None:
    """Alice on the reference ML-KEM, Bob's store on the fast one, and back."""
    alice, bob = identity(ALICE), identity(BOB)
    store = make_store(bob)
    _, message = initiate_session(alice, store.take_bundle(NOW), b"ref", rng, suite=REFERENCE)
    assert accept_initial_message(bob, store, message, rng)[1] == b"ref"
    ref_store = PrekeyStore(bob, InMemoryPrekeyStorage(), suite=REFERENCE)
    ref_store.rotate_signed_prekey(rng, NOW)
    ref_store.rotate_last_resort_kem_prekey(rng, NOW)
    _, message = initiate_session(alice, ref_store.take_bundle(NOW), b"fast", rng)
    assert accept_initial_message(bob, ref_store, message, rng)[1] == b"fast"


# ---------------------------------------------------------- one-time prekeys


def test_one_time_prekey_consumed_exactly_once(rng: Rng) -> None:
    alice, bob = identity(ALICE), identity(BOB)
    store = make_store(bob, one_time=3)
    ids = [r.prekey_id for r in store.storage.one_time_prekeys()]
    bundles = [store.take_bundle(NOW) for _ in range(3)]
    assert [b.one_time_prekey.prekey_id for b in bundles if b.one_time_prekey] == ids
    messages = [initiate_session(alice, b, b"x", rng)[1] for b in bundles]
    accept_initial_message(bob, store, messages[1], rng)
    remaining = [r.prekey_id for r in store.storage.one_time_prekeys()]
    assert remaining == [ids[0], ids[2]]
    with pytest.raises(VerificationError) as info:
        accept_initial_message(bob, store, messages[1], rng)
    assert info.value.check == "unknown-prekey"
    assert [r.prekey_id for r in store.storage.one_time_prekeys()] == remaining
    accept_initial_message(bob, store, messages[0], rng)
    accept_initial_message(bob, store, messages[2], rng)
    assert store.storage.one_time_prekeys() == []


# -------------------------------------------------------------------- replay


def test_replay_with_one_time_prekey(rng: Rng) -> None:
    alice, bob = identity(ALICE), identity(BOB)
    store = make_store(bob)
    _, message = initiate_session(alice, store.take_bundle(NOW), b"once", rng)
    accept_initial_message(bob, store, message, rng)
    before = snapshot(store)
    with pytest.raises(VerificationError) as info:
        accept_initial_message(bob, store, message, rng)
    assert info.value.check == "unknown-prekey"
    assert snapshot(store) == before


def test_replay_without_one_time_prekey(rng: Rng) -> None:
    alice, bob = identity(ALICE), identity(BOB)
    store = make_store(bob, one_time=0)
    bundle = store.take_bundle(NOW)
    assert bundle.one_time_prekey is None
    assert bundle.kem_prekey.last_resort
    _, message = initiate_session(alice, bundle, b"once", rng)
    spk_id = bundle.signed_prekey.prekey_id
    accept_initial_message(bob, store, message, rng)
    digest = initial_message_digest(message.ephemeral_key, message.kem_ciphertext)
    assert store.storage.has_initial_message(digest)
    assert store.storage.initial_message_count(spk_id) == 1
    for _ in range(2):
        with pytest.raises(VerificationError) as info:
            accept_initial_message(bob, store, message, rng)
        assert info.value.check == "replayed-initial-message"
    # A different message on the same prekeys is still welcome.
    _, other = initiate_session(alice, bundle, b"twice", rng)
    assert accept_initial_message(bob, store, other, rng)[1] == b"twice"
    assert store.storage.initial_message_count(spk_id) == 2


def test_replay_with_one_time_kem_prekey_only(rng: Rng) -> None:
    alice, bob = identity(ALICE), identity(BOB)
    store = make_store(bob, one_time=0, kem_one_time=1)
    bundle = store.take_bundle(NOW)
    assert not bundle.kem_prekey.last_resort
    _, message = initiate_session(alice, bundle, b"once", rng)
    accept_initial_message(bob, store, message, rng)
    assert store.storage.initial_message_count(bundle.signed_prekey.prekey_id) == 0
    with pytest.raises(VerificationError) as info:
        accept_initial_message(bob, store, message, rng)
    assert info.value.check == "unknown-prekey"


def test_replay_with_non_canonical_ephemeral(rng: Rng) -> None:
    """X25519 ignores the top bit: the same ephemeral key with it set would
    derive the same SK but hash differently, dodging the replay set."""
    alice, bob = identity(ALICE), identity(BOB)
    store = make_store(bob, one_time=0)
    _, message = initiate_session(alice, store.take_bundle(NOW), b"once", rng)
    ek = message.ephemeral_key
    twin = dataclasses.replace(message, ephemeral_key=ek[:31] + bytes([ek[31] | 0x80]))
    accept_initial_message(bob, store, message, rng)
    with pytest.raises(DecodeError):
        accept_initial_message(bob, store, twin, rng)
    with pytest.raises(ValueError, match="canonical"):
        twin.encode()


def test_replay_set_entries_die_with_their_signed_prekey(rng: Rng) -> None:
    alice, bob = identity(ALICE), identity(BOB)
    store = make_store(bob, one_time=0)
    bundle = store.take_bundle(NOW)
    _, message = initiate_session(alice, bundle, b"x", rng)
    accept_initial_message(bob, store, message, rng)
    digest = initial_message_digest(message.ephemeral_key, message.kem_ciphertext)
    store.rotate_signed_prekey(rng, NOW + 1)
    assert store.storage.has_initial_message(digest)  # in its grace period
    store.prune(NOW + 1 + PREKEY_GRACE_MS)
    assert not store.storage.has_initial_message(digest)
    with pytest.raises(VerificationError) as info:
        accept_initial_message(bob, store, message, rng)
    assert info.value.check == "unknown-prekey"


class _FullReplaySet(InMemoryPrekeyStorage):
    def initial_message_count(self, signed_prekey_id: int) -> int:
        return MAX_INITIAL_MESSAGES_PER_SIGNED_PREKEY


def test_full_replay_set_fails_closed(rng: Rng) -> None:
    alice, bob = identity(ALICE), identity(BOB)
    store = PrekeyStore(bob, _FullReplaySet())
    store.rotate_signed_prekey(rng, NOW)
    store.rotate_last_resort_kem_prekey(rng, NOW)
    assert store.rotation_due(NOW)
    _, message = initiate_session(alice, store.take_bundle(NOW), b"x", rng)
    with pytest.raises(VerificationError) as info:
        accept_initial_message(bob, store, message, rng)
    assert info.value.check == "replay-set-full"
    # Messages that consume a one-time prekey need no replay entry.
    store.generate_one_time_prekeys(1, rng, NOW)
    _, message = initiate_session(alice, store.take_bundle(NOW), b"y", rng)
    assert accept_initial_message(bob, store, message, rng)[1] == b"y"


class _LosesRace(InMemoryPrekeyStorage):
    """A storage where another copy of the message committed first."""

    def commit_initial_message(
        self,
        *,
        signed_prekey_id: int,
        one_time_prekey_id: int | None,
        one_time_kem_prekey_id: int | None,
        replay_digest: bytes | None,
    ) -> bool:
        return False


def test_lost_commit_race_is_a_replay(rng: Rng) -> None:
    alice, bob = identity(ALICE), identity(BOB)
    store = PrekeyStore(bob, _LosesRace())
    store.rotate_signed_prekey(rng, NOW)
    store.rotate_last_resort_kem_prekey(rng, NOW)
    store.generate_one_time_prekeys(1, rng, NOW)
    _, message = initiate_session(alice, store.take_bundle(NOW), b"x", rng)
    with pytest.raises(VerificationError) as info:
        accept_initial_message(bob, store, message, rng)
    assert info.value.check == "replayed-initial-message"


def test_storage_commit_is_all_or_nothing(rng: Rng) -> None:
    store = make_store(identity(BOB), one_time=1, kem_one_time=1)
    s = store.storage
    opk = s.one_time_prekeys()[0].prekey_id
    kem = next(r.prekey_id for r in s.kem_prekeys() if not r.last_resort)
    last_resort = next(r.prekey_id for r in s.kem_prekeys() if r.last_resort)
    spk = s.signed_prekeys()[0].prekey_id
    before = snapshot(store)
    for bad in (
        {"signed_prekey_id": spk + 9, "one_time_prekey_id": opk, "one_time_kem_prekey_id": kem},
        {"signed_prekey_id": spk, "one_time_prekey_id": opk + 9, "one_time_kem_prekey_id": kem},
        {"signed_prekey_id": spk, "one_time_prekey_id": opk, "one_time_kem_prekey_id": kem + 9},
        {"signed_prekey_id": spk, "one_time_prekey_id": opk, "one_time_kem_prekey_id": last_resort},
    ):
        assert not s.commit_initial_message(replay_digest=bytes(32), **bad)
        assert snapshot(store) == before
    assert s.commit_initial_message(
        signed_prekey_id=spk,
        one_time_prekey_id=None,
        one_time_kem_prekey_id=None,
        replay_digest=bytes(32),
    )
    assert not s.commit_initial_message(
        signed_prekey_id=spk,
        one_time_prekey_id=opk,
        one_time_kem_prekey_id=kem,
        replay_digest=bytes(32),
    )
    assert s.get_one_time_prekey(opk) is not None


# ------------------------------------------------------------ forgeries


def _flips(data: bytes, mask: int) -> Iterator[tuple[int, bytes]]:
    for i in range(len(data)):
        yield i, data[:i] + bytes([data[i] ^ mask]) + data[i + 1 :]


def _try_forgery(bob: PrivateIdentity, store: PrekeyStore, data: bytes, rng: Rng) -> None:
    """A forgery must fail with a ChhayaError: anything else escapes and fails."""
    try:
        message = InitialMessage.decode_untrusted(data)
        accept_initial_message(bob, store, message, rng)
    except (DecodeError, VerificationError, CryptoError):
        return
    raise AssertionError("a tampered initial message was accepted")


@pytest.mark.parametrize(
    ("opk", "mask"),
    [(True, 0x01), (False, 0x80)],
    ids=["opk-low-bit", "last-resort-high-bit"],
)
def test_every_byte_flip_fails_and_burns_nothing(rng: Rng, opk: bool, mask: int) -> None:
    alice, bob = identity(ALICE), identity(BOB)
    store = make_store(bob, one_time=1 if opk else 0)
    _, message = initiate_session(alice, store.take_bundle(NOW), b"!", rng)
    genuine = message.encode()
    assert len(message.ratchet_message) == 2 + 40 + 1 + 16
    before = snapshot(store)
    for _, forged in _flips(genuine, mask):
        _try_forgery(bob, store, forged, rng)
    # Cut short or extended, too.
    for forged in (genuine[:-1], genuine + b"\x00", genuine[:-17] + genuine[-16:]):
        _try_forgery(bob, store, forged, rng)
    assert snapshot(store) == before
    # Nothing was burnt and nothing poisoned the replay set.
    _, plaintext, _ = accept_initial_message(bob, store, message, rng)
    assert plaintext == b"!"


def test_header_encrypted_message_flips(rng: Rng) -> None:
    """The encrypted-header variant, at every offset of its ratchet part."""
    alice, bob = identity(ALICE), identity(BOB)
    store = make_store(bob)
    _, message = initiate_session(alice, store.take_bundle(NOW), b"", rng, True)
    genuine = message.encode()
    start = len(genuine) - len(message.ratchet_message) - 4
    before = snapshot(store)
    for i in range(start, len(genuine)):
        forged = genuine[:i] + bytes([genuine[i] ^ 0xFF]) + genuine[i + 1 :]
        try:
            accept_initial_message(bob, store, InitialMessage.decode_untrusted(forged), rng, True)
        except (DecodeError, VerificationError, CryptoError):
            continue
        raise AssertionError(f"flip at {i} accepted")
    assert snapshot(store) == before
    assert accept_initial_message(bob, store, message, rng, True)[1] == b""


def test_initiator_identity_substitution_fails(rng: Rng) -> None:
    """Mallory relabels Alice's message as coming from himself (or Carol)."""
    alice, bob = identity(ALICE), identity(BOB)
    store = make_store(bob)
    _, message = initiate_session(alice, store.take_bundle(NOW), b"from alice", rng)
    before = snapshot(store)
    for who in ("mallory", "carol"):
        relabelled = dataclasses.replace(message, initiator_identity=identity(who).public)
        with pytest.raises(CryptoError):
            accept_initial_message(bob, store, relabelled, rng)
    # Alice's real agreement key with another identity's other keys: AD differs.
    mixed = dataclasses.replace(
        message.initiator_identity, signing_key=identity("mallory").public.signing_key
    )
    with pytest.raises(CryptoError):
        accept_initial_message(
            bob, store, dataclasses.replace(message, initiator_identity=mixed), rng
        )
    assert snapshot(store) == before
    assert accept_initial_message(bob, store, message, rng)[2] == alice.public


def test_swapped_ratchet_message_fails(rng: Rng) -> None:
    """Key-agreement fields of one message with the ratchet part of another."""
    alice, bob = identity(ALICE), identity(BOB)
    store = make_store(bob, one_time=2)
    _, m1 = initiate_session(alice, store.take_bundle(NOW), b"one", rng)
    _, m2 = initiate_session(alice, store.take_bundle(NOW), b"two", rng)
    with pytest.raises(CryptoError):
        accept_initial_message(
            bob, store, dataclasses.replace(m1, ratchet_message=m2.ratchet_message), rng
        )
    assert accept_initial_message(bob, store, m1, rng)[1] == b"one"
    assert accept_initial_message(bob, store, m2, rng)[1] == b"two"


def test_header_encryption_mismatch(rng: Rng) -> None:
    alice, bob = identity(ALICE), identity(BOB)
    store = make_store(bob)
    _, message = initiate_session(alice, store.take_bundle(NOW), b"x", rng, True)
    before = snapshot(store)
    with pytest.raises(DecodeError):
        accept_initial_message(bob, store, message, rng, False)
    assert snapshot(store) == before
    assert accept_initial_message(bob, store, message, rng, True)[1] == b"x"


# ------------------------------------------------------------ wrong parties


def test_initiator_rejects_badly_signed_bundle(rng: Rng) -> None:
    alice, bob = identity(ALICE), identity(BOB)
    bundle = make_store(bob, kem_one_time=1).take_bundle(NOW)
    r = dataclasses.replace
    forged_spk = r(bundle.signed_prekey, public_key=identity("mallory").public.agreement_key)
    forged_kem = r(bundle.kem_prekey, public_key=identity("mallory").public.kem_key)
    for bad in (
        r(bundle, signed_prekey=forged_spk),
        r(bundle, kem_prekey=forged_kem),
        r(bundle, kem_prekey=r(bundle.kem_prekey, last_resort=True)),
        r(bundle, identity=identity("mallory").public),
    ):
        with pytest.raises(VerificationError) as info:
            initiate_session(alice, bad, b"x", rng)
        assert info.value.check == "prekey-signature"


def test_wrong_recipient_fails(rng: Rng) -> None:
    """Carol has prekeys with the same ids as Bob's, but not the same keys."""
    alice, bob, carol = identity(ALICE), identity(BOB), identity("carol")
    bob_store = make_store(bob, b"bob", kem_one_time=1)
    carol_store = make_store(carol, b"carol", kem_one_time=1)
    _, message = initiate_session(alice, bob_store.take_bundle(NOW), b"for bob", rng)
    before = snapshot(carol_store)
    with pytest.raises(CryptoError):
        accept_initial_message(carol, carol_store, message, rng)
    assert snapshot(carol_store) == before
    # Bob's store used with Carol's identity: a local mistake, refused up front.
    with pytest.raises(LocalProtocolError):
        accept_initial_message(carol, bob_store, message, rng)
    assert accept_initial_message(bob, bob_store, message, rng)[1] == b"for bob"


@pytest.mark.parametrize("field", ["signed_prekey_id", "one_time_prekey_id", "kem_prekey_id"])
def test_unknown_prekey_ids(rng: Rng, field: str) -> None:
    alice, bob = identity(ALICE), identity(BOB)
    store = make_store(bob)
    _, message = initiate_session(alice, store.take_bundle(NOW), b"x", rng)
    before = snapshot(store)
    for unknown in (0, 999, 2**32 - 1):
        changes: dict[str, Any] = {field: unknown}
        bad = dataclasses.replace(message, **changes)
        with pytest.raises(VerificationError) as info:
            accept_initial_message(bob, store, InitialMessage.decode_untrusted(bad.encode()), rng)
        assert info.value.check == "unknown-prekey"
    assert snapshot(store) == before


def test_retired_signed_prekey_works_in_grace_period(rng: Rng) -> None:
    alice, bob = identity(ALICE), identity(BOB)
    store = make_store(bob, one_time=2)
    old = store.take_bundle(NOW)
    _, in_flight = initiate_session(alice, old, b"old", rng)
    store.rotate_signed_prekey(rng, NOW + 1000)
    store.rotate_last_resort_kem_prekey(rng, NOW + 1000)
    new = store.take_bundle(NOW + 1000)
    assert new.signed_prekey.prekey_id != old.signed_prekey.prekey_id
    assert new.kem_prekey.prekey_id != old.kem_prekey.prekey_id
    store.prune(NOW + PREKEY_GRACE_MS - 1)
    assert accept_initial_message(bob, store, in_flight, rng)[1] == b"old"
    _, fresh = initiate_session(alice, new, b"new", rng)
    assert accept_initial_message(bob, store, fresh, rng)[1] == b"new"


def test_retired_signed_prekey_refused_after_grace(rng: Rng) -> None:
    alice, bob = identity(ALICE), identity(BOB)
    store = make_store(bob, one_time=0)
    _, late = initiate_session(alice, store.take_bundle(NOW), b"late", rng)
    store.rotate_signed_prekey(rng, NOW + 1000)
    store.prune(NOW + 1000 + PREKEY_GRACE_MS)
    with pytest.raises(VerificationError) as info:
        accept_initial_message(bob, store, late, rng)
    assert info.value.check == "unknown-prekey"
