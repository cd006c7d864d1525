"""Unit tests for the Double Ratchet, with plain and with encrypted headers.

Every rejection is checked twice: the right ChhayaError subclass is raised,
and ``session.encode()`` is byte-identical before and after, because
decryption is transactional.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Callable
from dataclasses import replace

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from chhaya.crypto import AEAD_TAG_SIZE
from chhaya.ratchet import (
    ENCRYPTED_HEADER_SIZE,
    HEADER_SIZE,
    MAX_RATCHET_CIPHERTEXT,
    MAX_RATCHET_PLAINTEXT,
    MAX_RECEIVER_CHAINS,
    MAX_SESSION_AD,
    MAX_SKIP_PER_CHAIN,
    MAX_SKIPPED_TOTAL,
    RATCHET_VERSION,
    DuplicateMessageError,
    RatchetSession,
    SkipLimitError,
    kdf_ck,
    message_key_material,
)
from chhaya.safety import (
    ChhayaError,
    CryptoError,
    DecodeError,
    LocalProtocolError,
    RemoteProtocolError,
)

from ._helpers import (
    AD,
    HEADER_MODE_IDS,
    HEADER_MODES,
    Pair,
    det_rng,
    flip_bit,
    make_pair,
    parse_state,
)

#: What a bad message from outside may surface as.
REMOTE_FAULTS = (RemoteProtocolError, CryptoError)
#: What a message whose key is gone may surface as.
GONE = (DuplicateMessageError, CryptoError)


@pytest.fixture(params=HEADER_MODES, ids=HEADER_MODE_IDS)
def he(request: pytest.FixtureRequest) -> bool:
    value: bool = request.param
    return value


@pytest.fixture
def pair(he: bool) -> Pair:
    return make_pair(he)


def prefix_size(he: bool) -> int:
    return 2 + (ENCRYPTED_HEADER_SIZE if he else HEADER_SIZE)


def assert_rejected(
    session: RatchetSession,
    data: bytes,
    rng: Callable[[int], bytes],
    expected: type[ChhayaError] | tuple[type[ChhayaError], ...],
) -> ChhayaError:
    """``data`` is rejected with ``expected`` and the session does not change."""
    before = session.encode()
    with pytest.raises(expected) as info:
        session.decrypt(data, rng)
    assert session.encode() == before
    return info.value


def can_send(session: RatchetSession) -> bool:
    """``session.can_send``, read afresh (mypy would narrow the property)."""
    return session.can_send


def established(pair: Pair) -> None:
    """One message each way: both sides can send, both have a receiving chain."""
    assert pair.to_bob(pair.a2b(b"hello bob")) == b"hello bob"
    assert pair.to_alice(pair.b2a(b"hello alice")) == b"hello alice"


# --------------------------------------------------------------- basics


def test_in_order_conversation(pair: Pair, he: bool) -> None:
    assert pair.alice.header_encryption is he
    assert pair.bob.header_encryption is he
    assert can_send(pair.alice)
    assert not can_send(pair.bob)
    for turn in range(6):
        # Each side sends a burst of messages in order, the other reads them.
        for i in range(turn + 1):
            pt = f"alice turn {turn} message {i}".encode()
            assert pair.to_bob(pair.a2b(pt)) == pt
        assert can_send(pair.bob)
        for i in range(turn + 1):
            pt = f"bob turn {turn} message {i}".encode()
            assert pair.to_alice(pair.b2a(pt)) == pt
    assert pair.alice.skipped_count == 0
    assert pair.bob.skipped_count == 0


def test_ratchet_key_changes_on_each_dh_step(pair: Pair) -> None:
    alice_keys = {pair.alice.ratchet_public_key}
    bob_keys = {pair.bob.ratchet_public_key}
    for _ in range(3):
        pair.to_bob(pair.a2b(b"ping"))
        bob_keys.add(pair.bob.ratchet_public_key)
        pair.to_alice(pair.b2a(b"pong"))
        alice_keys.add(pair.alice.ratchet_public_key)
    assert len(alice_keys) == 4
    assert len(bob_keys) == 4


def test_empty_and_maximum_plaintexts(pair: Pair, he: bool) -> None:
    assert pair.to_bob(pair.a2b(b"")) == b""
    big = bytes(range(256)) * (MAX_RATCHET_PLAINTEXT // 256)
    assert len(big) == MAX_RATCHET_PLAINTEXT
    msg = pair.a2b(big)
    assert len(msg) == prefix_size(he) + MAX_RATCHET_CIPHERTEXT
    assert pair.to_bob(msg) == big


def test_message_layout(pair: Pair, he: bool) -> None:
    msg = pair.a2b(b"abc")
    assert msg[0] == RATCHET_VERSION
    assert msg[1] == (1 if he else 0)
    assert len(msg) == prefix_size(he) + 3 + AEAD_TAG_SIZE
    if not he:
        assert msg[2:34] == pair.alice.ratchet_public_key
        assert struct.unpack(">II", msg[34:42]) == (0, 0)
    else:
        # The ratchet key must not appear in clear anywhere.
        assert pair.alice.ratchet_public_key not in msg


def test_responder_cannot_encrypt_before_receiving(pair: Pair) -> None:
    assert not can_send(pair.bob)
    before = pair.bob.encode()
    with pytest.raises(LocalProtocolError):
        pair.b2a(b"too early")
    assert pair.bob.encode() == before
    # A rejected message does not unlock sending either.
    forged = flip_bit(pair.a2b(b"first"), -1, 0)
    assert_rejected(pair.bob, forged, pair.bob_rng, CryptoError)
    assert not can_send(pair.bob)
    pair.to_bob(flip_bit(forged, -1, 0))
    assert can_send(pair.bob)
    assert pair.to_alice(pair.b2a(b"now")) == b"now"


def test_oversized_plaintext(pair: Pair) -> None:
    before = pair.alice.encode()
    with pytest.raises(LocalProtocolError):
        pair.a2b(bytes(MAX_RATCHET_PLAINTEXT + 1))
    assert pair.alice.encode() == before
    # Nothing was consumed: the next message is number 0 and decrypts.
    assert pair.to_bob(pair.a2b(b"fine")) == b"fine"
    assert parse_state(pair.bob.encode()).n_recv == 1


def test_session_ad_too_long() -> None:
    with pytest.raises(LocalProtocolError):
        make_pair(False, ad=bytes(MAX_SESSION_AD + 1))
    make_pair(False, ad=bytes(MAX_SESSION_AD))


# --------------------------------------------------------- out of order


def test_out_of_order_within_chain(pair: Pair) -> None:
    msgs = [pair.a2b(f"m{i}".encode()) for i in range(6)]
    order = [4, 0, 5, 3, 1, 2]
    expected_skipped = [4, 3, 3, 2, 1, 0]
    for i, skipped in zip(order, expected_skipped, strict=True):
        assert pair.to_bob(msgs[i]) == f"m{i}".encode()
        assert pair.bob.skipped_count == skipped
    # The same holds in Bob's direction, on an established session.
    back = [pair.b2a(f"r{i}".encode()) for i in range(4)]
    for i in (3, 2, 1, 0):
        assert pair.to_alice(back[i]) == f"r{i}".encode()
    assert pair.alice.skipped_count == 0


def test_out_of_order_across_dh_steps(pair: Pair) -> None:
    old = [pair.a2b(f"old{i}".encode()) for i in range(3)]
    assert pair.to_bob(old[0]) == b"old0"
    assert pair.to_alice(pair.b2a(b"reply")) == b"reply"
    new = [pair.a2b(f"new{i}".encode()) for i in range(3)]
    # The last message of the new chain arrives first: Bob stores the rest of
    # the old chain (up to PN) and the first two keys of the new chain.
    assert pair.to_bob(new[2]) == b"new2"
    assert pair.bob.skipped_count == 4
    state = parse_state(pair.bob.encode())
    assert len(state.skipped_chains) == 2
    # Bob answers on his new chain before the stragglers arrive.
    assert pair.to_alice(pair.b2a(b"reply2")) == b"reply2"
    for i in (1, 0):
        assert pair.to_bob(new[i]) == f"new{i}".encode()
    for i in (2, 1):
        assert pair.to_bob(old[i]) == f"old{i}".encode()
    assert pair.bob.skipped_count == 0
    # And every one of them is now a duplicate.
    for data in old + new:
        assert_rejected(pair.bob, data, pair.bob_rng, DuplicateMessageError)


def test_old_chain_messages_after_several_dh_steps(pair: Pair) -> None:
    stragglers: list[tuple[bytes, bytes]] = []
    for step in range(MAX_RECEIVER_CHAINS - 1):
        pts = [f"step{step}-{i}".encode() for i in range(3)]
        msgs = [pair.a2b(pt) for pt in pts]
        pair.to_bob(msgs[2])
        stragglers += [(msgs[0], pts[0]), (msgs[1], pts[1])]
        pair.to_alice(pair.b2a(b"ack"))
    for data, pt in reversed(stragglers):
        assert pair.to_bob(data) == pt
    assert pair.bob.skipped_count == 0


# ----------------------------------------------------------- duplicates


def test_duplicates(pair: Pair) -> None:
    first = pair.a2b(b"first")
    pair.to_bob(first)
    # The very first message, replayed: Bob must not ratchet again.
    assert_rejected(pair.bob, first, pair.bob_rng, DuplicateMessageError)
    a = [pair.a2b(f"a{i}".encode()) for i in range(3)]
    pair.to_bob(a[2])
    pair.to_bob(a[0])
    # In order, and a key that was skipped then used.
    assert_rejected(pair.bob, a[2], pair.bob_rng, DuplicateMessageError)
    assert_rejected(pair.bob, a[0], pair.bob_rng, DuplicateMessageError)
    # After a DH step: a message of the chain Bob has moved past.
    pair.to_alice(pair.b2a(b"reply"))
    pair.to_bob(pair.a2b(b"new chain"))
    assert_rejected(pair.bob, first, pair.bob_rng, DuplicateMessageError)
    assert_rejected(pair.bob, a[2], pair.bob_rng, DuplicateMessageError)
    # a[1] is still pending in a chain that has other keys gone.
    assert pair.to_bob(a[1]) == b"a1"
    assert_rejected(pair.bob, a[1], pair.bob_rng, DuplicateMessageError)
    # Alice's side too.
    reply = pair.b2a(b"again")
    pair.to_alice(reply)
    assert_rejected(pair.alice, reply, pair.alice_rng, DuplicateMessageError)


# ----------------------------------------------------------- skip caps


def test_skip_limit_within_chain(pair: Pair) -> None:
    pair.to_bob(pair.a2b(b"start"))  # Bob now expects n = 1
    msgs = [pair.a2b(b"x") for _ in range(MAX_SKIP_PER_CHAIN + 2)]  # n = 1 .. 1002
    too_far = msgs[MAX_SKIP_PER_CHAIN + 1]  # n = 1002: 1001 keys to skip
    assert_rejected(pair.bob, too_far, pair.bob_rng, SkipLimitError)
    # Exactly MAX_SKIP_PER_CHAIN keys is allowed.
    assert pair.to_bob(msgs[MAX_SKIP_PER_CHAIN]) == b"x"
    assert pair.bob.skipped_count == MAX_SKIP_PER_CHAIN
    assert pair.to_bob(too_far) == b"x"


def test_skip_limit_on_new_chain(pair: Pair) -> None:
    msgs = [pair.a2b(b"y") for _ in range(MAX_SKIP_PER_CHAIN + 2)]
    assert_rejected(pair.bob, msgs[-1], pair.bob_rng, SkipLimitError)
    assert not pair.bob.can_send
    assert pair.to_bob(msgs[-2]) == b"y"
    assert pair.bob.skipped_count == MAX_SKIP_PER_CHAIN


def test_skip_limit_on_previous_chain(pair: Pair) -> None:
    """PN far ahead of what Bob has read: too many keys left in the old chain."""
    pair.to_bob(pair.a2b(b"start"))
    for _ in range(MAX_SKIP_PER_CHAIN + 1):
        pair.a2b(b"lost")  # n = 1 .. 1001, never delivered
    pair.to_alice(pair.b2a(b"reply"))
    new_chain = pair.a2b(b"new")  # PN = 1002: 1001 keys left in the old chain
    assert_rejected(pair.bob, new_chain, pair.bob_rng, SkipLimitError)
    assert pair.bob.skipped_count == 0


def test_total_skipped_cap(pair: Pair) -> None:
    """Three chains of 800 skipped keys: the oldest 400 are forgotten."""
    per_chain = 800
    rounds: list[list[bytes]] = []
    for r in range(3):
        msgs = [pair.a2b(f"r{r}-{i}".encode()) for i in range(per_chain + 1)]
        assert pair.to_bob(msgs[-1]) == f"r{r}-{per_chain}".encode()
        assert pair.bob.skipped_count <= MAX_SKIPPED_TOTAL
        pair.to_alice(pair.b2a(b"ack"))
        rounds.append(msgs[:-1])
    assert pair.bob.skipped_count == MAX_SKIPPED_TOTAL
    evicted = 3 * per_chain - MAX_SKIPPED_TOTAL
    # The oldest fail cleanly, and leave the session alone.
    for i in (0, 1, evicted // 2, evicted - 1):
        assert_rejected(pair.bob, rounds[0][i], pair.bob_rng, GONE)
    # Everything more recent decrypts.
    for r, msgs in enumerate(rounds):
        start = evicted if r == 0 else 0
        for i in range(start, per_chain):
            assert pair.to_bob(msgs[i]) == f"r{r}-{i}".encode()
    assert pair.bob.skipped_count == 0
    # The conversation carries on.
    assert pair.to_bob(pair.a2b(b"still here")) == b"still here"


def test_receiver_chain_cap(pair: Pair) -> None:
    """Skipped keys from seven chains: only the newest five chains are kept."""
    chains = MAX_RECEIVER_CHAINS + 2
    stragglers: list[bytes] = []
    for r in range(chains):
        skipped = pair.a2b(f"skipped {r}".encode())
        pair.to_bob(pair.a2b(f"read {r}".encode()))
        stragglers.append(skipped)
        state = parse_state(pair.bob.encode())
        assert len(state.skipped_chains) <= MAX_RECEIVER_CHAINS
        assert len(state.previous_chains) <= MAX_RECEIVER_CHAINS
        pair.to_alice(pair.b2a(b"ack"))
    state = parse_state(pair.bob.encode())
    assert len(state.skipped_chains) == MAX_RECEIVER_CHAINS
    assert pair.bob.skipped_count == MAX_RECEIVER_CHAINS
    dropped = chains - MAX_RECEIVER_CHAINS
    for r in range(dropped):
        assert_rejected(pair.bob, stragglers[r], pair.bob_rng, GONE)
    for r in range(dropped, chains):
        assert pair.to_bob(stragglers[r]) == f"skipped {r}".encode()
    assert pair.bob.skipped_count == 0


# ---------------------------------------------- forged and corrupt input


def _bit_flip_scenarios(he: bool) -> dict[str, tuple[Pair, bool, bytes, bytes]]:
    """Name -> (pair, message is for Bob, message, plaintext), each fresh."""
    out: dict[str, tuple[Pair, bool, bytes, bytes]] = {}

    p = make_pair(he, seed=b"flip/first")
    out["responder-first-message"] = (p, True, p.a2b(b"first!"), b"first!")

    p = make_pair(he, seed=b"flip/in-chain")
    established(p)
    out["same-chain"] = (p, True, p.a2b(b"same chain"), b"same chain")

    p = make_pair(he, seed=b"flip/dh-step")
    established(p)
    p.to_bob(p.a2b(b"x"))
    p.a2b(b"lost")  # gives the next chain a non-zero PN
    out["initiator-dh-step"] = (p, False, p.b2a(b"new chain"), b"new chain")

    p = make_pair(he, seed=b"flip/skipped")
    established(p)
    skipped = p.a2b(b"skipped")
    p.to_bob(p.a2b(b"read"))
    out["skipped-key"] = (p, True, skipped, b"skipped")
    return out


@pytest.mark.parametrize(
    "scenario", ["responder-first-message", "same-chain", "initiator-dh-step", "skipped-key"]
)
def test_every_bit_flip_is_rejected_transactionally(he: bool, scenario: str) -> None:
    pair, for_bob, msg, pt = _bit_flip_scenarios(he)[scenario]
    session = pair.bob if for_bob else pair.alice
    rng = pair.bob_rng if for_bob else pair.alice_rng
    before = session.encode()
    for offset in range(len(msg)):
        for bit in range(8):
            with pytest.raises(REMOTE_FAULTS):
                session.decrypt(flip_bit(msg, offset, bit), rng)
            assert session.encode() == before, (offset, bit)
    # After all that, the real message still decrypts.
    assert session.decrypt(msg, rng) == pt


def test_truncated_and_extended(pair: Pair, he: bool) -> None:
    pair.to_bob(pair.a2b(b"start"))
    msg = pair.a2b(b"0123456789")
    header_end = prefix_size(he)
    # Cut inside the fixed part, or leaving less than a tag: malformed.
    for n in (0, 1, 2, 3, header_end - 1, header_end, header_end + AEAD_TAG_SIZE - 1):
        assert_rejected(pair.bob, msg[:n], pair.bob_rng, DecodeError)
    # The ciphertext runs to the end, so a cut or an extension that stays in
    # bounds is well-formed and fails authentication instead.
    for data in (msg[:-1], msg[: header_end + AEAD_TAG_SIZE], msg + b"\x00", msg + msg):
        assert_rejected(pair.bob, data, pair.bob_rng, CryptoError)
    # Beyond the ciphertext bound: malformed again.
    huge = msg + bytes(MAX_RATCHET_CIPHERTEXT)
    assert_rejected(pair.bob, huge, pair.bob_rng, DecodeError)
    assert pair.to_bob(msg) == b"0123456789"


def test_wrong_version_and_flags(pair: Pair, he: bool) -> None:
    pair.to_bob(pair.a2b(b"start"))
    msg = pair.a2b(b"payload")
    for version in (0, 2, 0xFF):
        assert_rejected(pair.bob, bytes((version,)) + msg[1:], pair.bob_rng, DecodeError)
    for flags in (0x02, 0x03, 0x80, 0xFF, 0xFE):
        assert_rejected(pair.bob, msg[:1] + bytes((flags,)) + msg[2:], pair.bob_rng, DecodeError)
    # Flipping the header-encryption flag: a mismatch with the session.
    other = msg[:1] + bytes((msg[1] ^ 1,)) + msg[2:]
    assert_rejected(pair.bob, other, pair.bob_rng, DecodeError)
    assert pair.to_bob(msg) == b"payload"


def test_header_encryption_mismatch() -> None:
    plain = make_pair(False, seed=b"mismatch")
    encrypted = make_pair(True, seed=b"mismatch")
    for_encrypted_bob = plain.a2b(b"plain")
    for_plain_bob = encrypted.a2b(b"encrypted")
    assert_rejected(encrypted.bob, for_encrypted_bob, encrypted.bob_rng, DecodeError)
    assert_rejected(plain.bob, for_plain_bob, plain.bob_rng, DecodeError)


@pytest.mark.parametrize("what", ["shared-secret", "ad"])
def test_message_for_another_session(he: bool, what: str) -> None:
    """Same keys, same rng; only the shared secret or the AD differs."""
    if what == "shared-secret":
        other = make_pair(he, shared_secret=hashlib.sha256(b"other").digest())
    else:
        other = make_pair(he, ad=AD + b"!")
    ours = make_pair(he)
    # The two sessions share their ratchet keys: only the secret or AD differs.
    assert ours.alice.ratchet_public_key == other.alice.ratchet_public_key
    stray = other.a2b(b"for someone else")
    assert_rejected(ours.bob, stray, ours.bob_rng, CryptoError)
    # Established sessions too, in both directions.
    established(ours)
    established(other)
    assert_rejected(ours.bob, other.a2b(b"stray"), ours.bob_rng, CryptoError)
    assert_rejected(ours.alice, other.b2a(b"stray"), ours.alice_rng, CryptoError)
    assert ours.to_bob(ours.a2b(b"ok")) == b"ok"


def test_low_order_ratchet_key_is_rejected() -> None:
    """A plain header naming an all-zero (low-order) key: no ratchet, no crash."""
    pair = make_pair(False)
    established(pair)
    msg = pair.a2b(b"x")
    forged = msg[:2] + bytes(32) + msg[34:]
    assert_rejected(pair.bob, forged, pair.bob_rng, CryptoError)
    assert pair.to_bob(msg) == b"x"


def test_garbage_never_escapes_the_error_tree(pair: Pair) -> None:
    established(pair)
    rng = det_rng(b"garbage")
    for n in (0, 1, 2, 41, 42, 57, 58, 59, 74, 75, 100, 200):
        for _ in range(20):
            data = rng(n)
            for session, srng in ((pair.alice, pair.alice_rng), (pair.bob, pair.bob_rng)):
                assert_rejected(session, data, srng, REMOTE_FAULTS)


# ------------------------------------------------------- serialization


def test_serialization_round_trip_mid_conversation(pair: Pair) -> None:
    established(pair)
    in_flight_to_bob = [pair.a2b(f"a{i}".encode()) for i in range(4)]
    pair.to_bob(in_flight_to_bob[3])
    in_flight_to_alice = [pair.b2a(f"b{i}".encode()) for i in range(3)]
    pair.to_alice(in_flight_to_alice[2])
    assert pair.bob.skipped_count == 3
    assert pair.alice.skipped_count == 2

    alice_state, bob_state = pair.alice.encode(), pair.bob.encode()
    restored = Pair(
        RatchetSession.decode_untrusted(alice_state),
        RatchetSession.decode_untrusted(bob_state),
        pair.alice_rng,
        pair.bob_rng,
    )
    assert restored.alice.encode() == alice_state
    assert restored.bob.encode() == bob_state
    assert restored.alice.skipped_count == 2
    assert restored.bob.skipped_count == 3
    assert restored.alice.header_encryption is pair.alice.header_encryption
    assert restored.bob.ratchet_public_key == pair.bob.ratchet_public_key
    # The restored sessions read what was in flight...
    for i in (0, 2, 1):
        assert restored.to_bob(in_flight_to_bob[i]) == f"a{i}".encode()
    for i in (1, 0):
        assert restored.to_alice(in_flight_to_alice[i]) == f"b{i}".encode()
    # ...and carry on, including across DH steps.
    for turn in range(3):
        assert restored.to_bob(restored.a2b(f"t{turn}".encode())) == f"t{turn}".encode()
        assert restored.to_alice(restored.b2a(f"u{turn}".encode())) == f"u{turn}".encode()


def test_restored_session_interoperates_with_original_peer(pair: Pair) -> None:
    """Only one side is restored; it still talks to the live other side."""
    established(pair)
    late = pair.a2b(b"late")
    pair.to_bob(pair.a2b(b"on time"))
    pair.bob = RatchetSession.decode_untrusted(pair.bob.encode())
    assert pair.to_bob(late) == b"late"
    assert pair.to_alice(pair.b2a(b"from restored bob")) == b"from restored bob"
    pair.alice = RatchetSession.decode_untrusted(pair.alice.encode())
    assert pair.to_bob(pair.a2b(b"from restored alice")) == b"from restored alice"


def test_decode_of_encode_is_identity_throughout(pair: Pair) -> None:
    def check(session: RatchetSession) -> None:
        encoded = session.encode()
        assert RatchetSession.decode_untrusted(encoded).encode() == encoded

    check(pair.alice)
    check(pair.bob)  # a responder that has not received yet
    for turn in range(4):
        msgs = [pair.a2b(f"{turn}/{i}".encode()) for i in range(3)]
        pair.to_bob(msgs[2])
        check(pair.bob)
        pair.to_bob(msgs[0])
        check(pair.bob)
        pair.to_alice(pair.b2a(b"ack"))
        check(pair.alice)
        check(pair.bob)


def test_state_encoding_rejects_trailing_and_truncated(pair: Pair) -> None:
    established(pair)
    pair.a2b(b"skip me")
    pair.to_bob(pair.a2b(b"read"))
    encoded = pair.bob.encode()
    with pytest.raises(DecodeError):
        RatchetSession.decode_untrusted(encoded + b"\x00")
    for n in range(len(encoded)):
        with pytest.raises(DecodeError):
            RatchetSession.decode_untrusted(encoded[:n])


# -------------------------------------------------------------- nonces


def test_same_plaintext_never_gives_the_same_ciphertext(pair: Pair, he: bool) -> None:
    """A 500-message conversation of identical plaintexts: all ciphertexts differ."""
    messages: list[bytes] = []
    rng = det_rng(b"directions")
    ratchet_keys: set[bytes] = set()
    for _ in range(500):
        if not pair.bob.can_send or rng(1)[0] < 150:
            msg = pair.a2b(b"same plaintext")
            ratchet_keys.add(pair.alice.ratchet_public_key)
            assert pair.to_bob(msg) == b"same plaintext"
        else:
            msg = pair.b2a(b"same plaintext")
            ratchet_keys.add(pair.bob.ratchet_public_key)
            assert pair.to_alice(msg) == b"same plaintext"
        messages.append(msg)
    assert len(set(messages)) == len(messages)
    bodies = [m[prefix_size(he) :] for m in messages]
    assert len(set(bodies)) == len(bodies)
    # Both directions and many DH steps were exercised.
    assert len(ratchet_keys) > 50


def test_message_keys_and_nonces_are_distinct_along_a_chain() -> None:
    """The chain KDF never repeats a (key, nonce) pair over a long chain."""
    ck = hashlib.sha256(b"chain").digest()
    seen_keys: set[bytes] = set()
    seen_nonces: set[bytes] = set()
    for _ in range(2000):
        ck, mk = kdf_ck(ck)
        key, nonce = message_key_material(mk)
        seen_keys.add(key)
        seen_nonces.add(nonce)
    assert len(seen_keys) == len(seen_nonces) == 2000


# ------------------------------------------------- decoded-state edges


def _forge_plain_message(
    chain_key: bytes, n_from: int, n: int, dh: bytes, pn: int, payload: bytes
) -> bytes:
    """A plain-header message at ``n`` on the chain whose key at ``n_from`` is given."""
    ck = chain_key
    for _ in range(n_from, n):
        ck = hmac.digest(ck, b"\x02", "sha256")
    mk = hmac.digest(ck, b"\x01", "sha256")
    key, nonce = message_key_material(mk)
    prefix = bytes((RATCHET_VERSION, 0)) + struct.pack(">32sII", dh, pn, n)
    return prefix + AESGCM(key).encrypt(nonce, payload, AD + prefix)


def _inconsistent_states(he: bool) -> list[tuple[str, bytes]]:
    """States whose header keys do not match the variant or the chains."""
    pair = make_pair(he, seed=b"inconsistent")
    established(pair)
    fresh_bob = parse_state(make_pair(he, seed=b"inconsistent").bob.encode())
    bob = parse_state(pair.bob.encode())
    flipped = replace(bob, header_encryption=not he)
    out = [("flag flipped", flipped.encode())]
    if he:
        key = bytes(range(32))
        out += [
            ("no sending header key", bob.with_optional("hk_send", None).encode()),
            ("no receiving header key", bob.with_optional("hk_recv", None).encode()),
            ("no next sending header key", bob.with_optional("nhk_send", None).encode()),
            ("no next receiving header key", bob.with_optional("nhk_recv", None).encode()),
            ("header key without chain", fresh_bob.with_optional("hk_send", key).encode()),
        ]
    else:
        out += [
            (f"plain session with {name}", bob.with_optional(name, bytes(32)).encode())
            for name in ("hk_send", "hk_recv", "nhk_send", "nhk_recv")
        ]
    return out


def test_decoded_state_with_inconsistent_header_keys_is_refused(he: bool) -> None:
    """Regression: a plain state with its header-encryption flag set used to
    decode, and encrypt() then failed with AssertionError."""
    for what, state in _inconsistent_states(he):
        with pytest.raises(DecodeError):
            RatchetSession.decode_untrusted(state)
        assert what


def _pair_at_end_of_chain(last: int) -> Pair:
    """Alice and Bob moved, by editing their states, to number ``last`` of
    Alice's current sending chain (a chain key of our choosing)."""
    pair = make_pair(False)
    established(pair)
    pair.to_bob(pair.a2b(b"Bob now knows Alice's current ratchet key"))
    chain_key = hashlib.sha256(b"chain key").digest()
    alice = replace(parse_state(pair.alice.encode()), n_send=last)
    bob = replace(parse_state(pair.bob.encode()), n_recv=last)
    assert bob.optional("dh_remote") == pair.alice.ratchet_public_key
    pair.alice = RatchetSession.decode_untrusted(alice.with_optional("ck_send", chain_key).encode())
    pair.bob = RatchetSession.decode_untrusted(bob.with_optional("ck_recv", chain_key).encode())
    return pair


LAST_NUMBER = 0xFFFFFFFE  # the last message number a sender may use


def test_message_numbers_at_the_u32_limit() -> None:
    """Regression: n = 2**32 - 1 was accepted, leaving n_recv = 2**32 unencodable.

    The last usable number, 2**32 - 2, goes through and leaves both states
    encodable; Alice then refuses to send on that chain; a forged message
    numbered 2**32 - 1 is malformed.
    """
    pair = _pair_at_end_of_chain(LAST_NUMBER)
    msg = pair.a2b(b"the very last")
    assert struct.unpack(">I", msg[38:42]) == (LAST_NUMBER,)
    chain_key = hashlib.sha256(b"chain key").digest()
    forged = _forge_plain_message(
        chain_key, LAST_NUMBER, LAST_NUMBER + 1, pair.alice.ratchet_public_key, 0, b"one more"
    )
    assert_rejected(pair.bob, forged, pair.bob_rng, DecodeError)
    assert pair.to_bob(msg) == b"the very last"
    assert parse_state(pair.bob.encode()).n_recv == LAST_NUMBER + 1
    assert parse_state(pair.alice.encode()).n_send == LAST_NUMBER + 1
    before = pair.alice.encode()
    with pytest.raises(LocalProtocolError):
        pair.a2b(b"exhausted")
    assert pair.alice.encode() == before
    # Bob's side carries on.
    assert pair.to_alice(pair.b2a(b"new chain")) == b"new chain"


def test_dh_step_after_an_exhausted_chain() -> None:
    """A sender that used its chain to the last number ratchets to a new chain
    whose headers carry PN = 2**32 - 1; the receiver must accept them."""
    pair = _pair_at_end_of_chain(LAST_NUMBER)
    assert pair.to_bob(pair.a2b(b"the very last")) == b"the very last"
    assert pair.to_alice(pair.b2a(b"new chain")) == b"new chain"
    msg = pair.a2b(b"on Alice's next chain")
    assert struct.unpack(">II", msg[34:42]) == (LAST_NUMBER + 1, 0)
    assert pair.to_bob(msg) == b"on Alice's next chain"
