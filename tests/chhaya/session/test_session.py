"""Conversations: interactive set-up from the channel, ids, receipts, de-duplication."""

from __future__ import annotations

import contextlib
import hashlib
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chhaya import ChhayaError, CryptoError, DecodeError, LocalProtocolError
from chhaya.channel import (
    AllowlistResolver,
    ChannelConfig,
    ChannelConnection,
    HandshakeComplete,
    Role,
)
from chhaya.identity import PrivateIdentity
from chhaya.ratchet import DuplicateMessageError
from chhaya.session import (
    MAX_RECEIPT_IDS,
    Conversation,
    Payload,
    PayloadKind,
    ReceiptReceived,
    ReceiptStatus,
    TextReceived,
    initiator_from_channel,
    responder_from_channel,
)


def _rng_stream(seed: bytes):  # type: ignore[no-untyped-def]
    counter = itertools.count()

    def rng(n: int) -> bytes:
        out = b""
        while len(out) < n:
            out += hashlib.sha256(seed + next(counter).to_bytes(8, "big")).digest()
        return out[:n]

    return rng


RNG = _rng_stream(b"session-tests")
ALICE = PrivateIdentity.generate(RNG)
BOB = PrivateIdentity.generate(RNG)
NOW = 1_800_000_000_000


def _handshake() -> tuple[HandshakeComplete, HandshakeComplete]:
    cfg = ChannelConfig()
    d = ChannelConnection(Role.DIALER, ALICE, cfg, RNG, expected_peer=BOB.public.signing_key)
    resolver = AllowlistResolver({ALICE.public.signing_key: "alice"})
    lst = ChannelConnection(Role.LISTENER, BOB, cfg, RNG, resolver=resolver)
    d.start(NOW)
    lst.start(NOW)
    lst.receive_data(d.data_to_send(), NOW)
    assert lst.next_event() is None
    d.receive_data(lst.data_to_send(), NOW)
    ev_d = d.next_event()
    lst.receive_data(d.data_to_send(), NOW)
    ev_l = lst.next_event()
    assert isinstance(ev_d, HandshakeComplete)
    assert isinstance(ev_l, HandshakeComplete)
    return ev_d, ev_l


def _pair(header_encryption: bool = False) -> tuple[Conversation, Conversation]:
    hd, hl = _handshake()
    a_key, b_key = ALICE.public.signing_key, BOB.public.signing_key
    bob, hello = responder_from_channel(
        hl.ratchet_root, hl.transcript_hash, a_key, b_key, RNG, header_encryption=header_encryption
    )
    alice = initiator_from_channel(
        hd.ratchet_root,
        hd.transcript_hash,
        a_key,
        b_key,
        hello,
        RNG,
        header_encryption=header_encryption,
    )
    return alice, bob


@pytest.mark.parametrize("he", [False, True])
def test_interactive_session_from_channel(he: bool) -> None:
    alice, bob = _pair(he)
    assert not bob.can_send  # the responder waits for the initiator's first message
    mid, msg = alice.send_text(b"hi bob", NOW, RNG)
    got = bob.receive(msg, RNG)
    assert got == TextReceived(mid, NOW, b"hi bob", duplicate=False)
    receipt = bob.send_receipt(ReceiptStatus.DELIVERED, [mid], NOW + 1, RNG)
    assert alice.receive(receipt, RNG) == ReceiptReceived(ReceiptStatus.DELIVERED, (mid,))
    read = bob.send_receipt(ReceiptStatus.READ, [mid], NOW + 2, RNG)
    assert alice.receive(read, RNG) == ReceiptReceived(ReceiptStatus.READ, (mid,))


def test_responder_cannot_send_first() -> None:
    _, bob = _pair()
    with pytest.raises(LocalProtocolError):
        bob.send_text(b"too early", NOW, RNG)


def test_malformed_hello_is_rejected() -> None:
    hd, _ = _handshake()
    with pytest.raises(DecodeError):
        initiator_from_channel(
            hd.ratchet_root, hd.transcript_hash, b"a" * 32, b"b" * 32, b"\x00" * 36, RNG
        )


def test_retry_with_same_id_is_reported_as_duplicate() -> None:
    alice, bob = _pair()
    mid, first = alice.send_text(b"once", NOW, RNG)
    _, retry = alice.send_text(b"once", NOW, RNG, message_id=mid)
    assert first != retry  # a new ratchet message each time
    assert bob.receive(first, RNG) == TextReceived(mid, NOW, b"once", duplicate=False)
    assert bob.receive(retry, RNG) == TextReceived(mid, NOW, b"once", duplicate=True)


def test_replayed_ratchet_message_is_rejected() -> None:
    alice, bob = _pair()
    _, msg = alice.send_text(b"x", NOW, RNG)
    bob.receive(msg, RNG)
    with pytest.raises(DuplicateMessageError):
        bob.receive(msg, RNG)


def test_conversation_state_round_trips_and_keeps_dedup_memory() -> None:
    alice, bob = _pair()
    mid, msg = alice.send_text(b"a", NOW, RNG)
    bob.receive(msg, RNG)
    bob2 = Conversation.decode_untrusted(bob.encode())
    assert bob2.encode() == bob.encode()
    _, retry = alice.send_text(b"a", NOW, RNG, message_id=mid)
    assert isinstance(got := bob2.receive(retry, RNG), TextReceived)
    assert got.duplicate


def test_sessions_from_different_channels_do_not_interoperate() -> None:
    alice, _ = _pair()
    _, bob_other = _pair()
    _, msg = alice.send_text(b"x", NOW, RNG)
    before = bob_other.encode()
    with pytest.raises(CryptoError):
        bob_other.receive(msg, RNG)
    assert bob_other.encode() == before


# --- Payload wire type -----------------------------------------------------

_ids = st.binary(min_size=16, max_size=16)
_u64 = st.integers(min_value=0, max_value=2**64 - 1)
_texts = st.builds(
    lambda mid, t, body: Payload(PayloadKind.TEXT, mid, t, text=body),
    _ids,
    _u64,
    st.binary(max_size=2000),
)
_receipts = st.builds(
    lambda mid, t, status, ids: Payload(
        PayloadKind.RECEIPT, mid, t, receipt_status=status, receipt_ids=tuple(ids)
    ),
    _ids,
    _u64,
    st.sampled_from(list(ReceiptStatus)),
    st.lists(_ids, min_size=1, max_size=MAX_RECEIPT_IDS),
)


@settings(max_examples=200, deadline=None)
@given(st.one_of(_texts, _receipts))
def test_payload_round_trip(payload: Payload) -> None:
    assert Payload.decode_untrusted(payload.encode()) == payload


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_payload_arbitrary_bytes_raise_only_decode_error(data: bytes) -> None:
    try:
        p = Payload.decode_untrusted(data)
    except DecodeError:
        return
    assert p.encode() == data


@settings(max_examples=200, deadline=None)
@given(st.one_of(_texts, _receipts), st.data())
def test_payload_mutations_raise_only_decode_error(payload: Payload, data: st.DataObject) -> None:
    raw = bytearray(payload.encode())
    i = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
    raw[i] ^= data.draw(st.integers(min_value=1, max_value=255))
    cut = data.draw(st.integers(min_value=0, max_value=len(raw)))
    for candidate in (bytes(raw), bytes(raw[:cut]), bytes(raw) + b"\x00"):
        with contextlib.suppress(DecodeError):
            Payload.decode_untrusted(candidate)


def test_receipt_bounds() -> None:
    with pytest.raises(ValueError, match="receipt"):
        Payload(PayloadKind.RECEIPT, bytes(16), 0, receipt_status=ReceiptStatus.READ).encode()
    one = (b"x" * 16,)
    status = ReceiptStatus.READ
    bad = Payload(
        PayloadKind.RECEIPT, bytes(16), 0, receipt_status=status, receipt_ids=one
    ).encode()
    bad = bad[:-18] + (0).to_bytes(2, "big")  # count 0
    with pytest.raises(DecodeError):
        Payload.decode_untrusted(bad)


def test_window_keeps_the_newest_ids_and_old_large_states_still_decode() -> None:
    from chhaya.session import MAX_SEEN_IDS, MESSAGE_ID_SIZE
    from chhaya.session._session import _MAX_SEEN_IDS_STORED

    alice, bob = _pair()
    ids = []
    for i in range(MAX_SEEN_IDS + 3):
        mid, message = alice.send_text(b"m%d" % i, NOW, RNG)
        bob.receive(message, RNG)
        ids.append(mid)
    encoded = bob.encode()
    assert len(encoded) < 2 * MAX_SEEN_IDS * MESSAGE_ID_SIZE + 4096
    # The three oldest fell out of the window; the newest are still known.
    retry_old = alice.send_text(b"m0", NOW, RNG, ids[0])[1]
    retry_new = alice.send_text(b"mN", NOW, RNG, ids[-1])[1]
    restored = Conversation.decode_untrusted(encoded)
    old_event = restored.receive(retry_old, RNG)
    new_event = restored.receive(retry_new, RNG)
    assert isinstance(old_event, TextReceived)
    assert isinstance(new_event, TextReceived)
    assert not old_event.duplicate
    assert new_event.duplicate
    # A state written with the earlier 4,096-id window decodes, trimmed to the newest.
    head, count = encoded[: -2 - MAX_SEEN_IDS * MESSAGE_ID_SIZE], _MAX_SEEN_IDS_STORED
    legacy_ids = b"".join(i.to_bytes(MESSAGE_ID_SIZE, "big") for i in range(count))
    legacy = Conversation.decode_untrusted(head + count.to_bytes(2, "big") + legacy_ids)
    assert len(legacy.encode()) == len(encoded)
    too_many = head + (count + 1).to_bytes(2, "big") + legacy_ids + bytes(MESSAGE_ID_SIZE)
    with pytest.raises(DecodeError):
        Conversation.decode_untrusted(too_many)


def test_asynchronous_first_contact_round_trip() -> None:
    from chhaya.prekeys import InMemoryPrekeyStore
    from chhaya.session import initiator_from_bundle, responder_from_initial

    alice = PrivateIdentity.generate(RNG)
    bob = PrivateIdentity.generate(RNG)
    store = InMemoryPrekeyStore(bob)
    store.rotate_signed_prekey(RNG, NOW)
    store.rotate_last_resort_kem_prekey(RNG, NOW)
    bundle = store.bundle_for_publication()
    a_conv, mid, initial = initiator_from_bundle(alice, bundle, b"hello offline bob", NOW, RNG)
    # A second message sent before bob answers is an ordinary conversation message.
    mid2, second = a_conv.send_text(b"and a second one", NOW, RNG)
    b_conv, first, who = responder_from_initial(bob, store, initial, RNG)
    assert who == alice.public
    assert (first.message_id, first.text, first.duplicate) == (mid, b"hello offline bob", False)
    got = b_conv.receive(second, RNG)
    assert isinstance(got, TextReceived)
    assert (got.message_id, got.text) == (mid2, b"and a second one")
    # Both sides hold the same conversation (same id), and bob can answer at once.
    assert a_conv.conversation_id == b_conv.conversation_id
    _, reply = b_conv.send_text(b"hi alice", NOW, RNG)
    back = a_conv.receive(reply, RNG)
    assert isinstance(back, TextReceived)
    assert back.text == b"hi alice"
    # The initial message cannot be replayed: its prekeys are spent or remembered.
    with pytest.raises(ChhayaError):
        responder_from_initial(bob, store, initial, RNG)
