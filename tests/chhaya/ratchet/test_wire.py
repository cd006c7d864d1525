"""Property tests for the ratchet decoders: round trips, and only DecodeError.

Each decoder of outside bytes (``Header``, ``RatchetMessage``,
``RatchetSession``) gets the two house tests: whatever it builds re-encodes
to the same bytes, and arbitrary bytes raise nothing but DecodeError.
"""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from chhaya.crypto import AEAD_TAG_SIZE
from chhaya.ratchet import (
    ENCRYPTED_HEADER_SIZE,
    HEADER_SIZE,
    MAX_RATCHET_CIPHERTEXT,
    RATCHET_VERSION,
    Header,
    RatchetMessage,
    RatchetSession,
)
from chhaya.safety import DecodeError

from ._helpers import make_pair

SETTINGS = settings(max_examples=300, deadline=None)

#: The largest u32 is reserved: no message carries it as its number.
RESERVED = (1 << 32) - 1
NUMBERS = st.integers(min_value=0, max_value=RESERVED - 1)

HEADERS = st.builds(Header, dh=st.binary(min_size=32, max_size=32), pn=NUMBERS, n=NUMBERS)


@st.composite
def messages(draw: st.DrawFn) -> RatchetMessage:
    encrypted = draw(st.booleans())
    size = ENCRYPTED_HEADER_SIZE if encrypted else HEADER_SIZE
    part = draw(st.binary(min_size=size, max_size=size))
    ciphertext = draw(st.binary(min_size=AEAD_TAG_SIZE, max_size=AEAD_TAG_SIZE + 200))
    return RatchetMessage(encrypted, part, ciphertext)


@SETTINGS
@given(HEADERS)
def test_header_round_trip(header: Header) -> None:
    encoded = header.encode()
    assert len(encoded) == HEADER_SIZE
    assert Header.decode_untrusted(encoded) == header


@SETTINGS
@given(st.binary(max_size=2 * HEADER_SIZE))
def test_header_arbitrary_bytes(data: bytes) -> None:
    try:
        header = Header.decode_untrusted(data)
    except DecodeError:
        assert len(data) != HEADER_SIZE or RESERVED in struct.unpack(">32sII", data)[1:]
        return
    assert header.n != RESERVED
    assert header.encode() == data


def test_header_message_number_limit() -> None:
    dh = bytes(range(32))
    assert Header.decode_untrusted(Header(dh, 0, RESERVED - 1).encode()).n == RESERVED - 1
    try:
        Header.decode_untrusted(Header(dh, 0, RESERVED).encode())
    except DecodeError:
        return
    raise AssertionError("message number 2**32 - 1 accepted")


@SETTINGS
@given(messages())
def test_message_round_trip(msg: RatchetMessage) -> None:
    encoded = msg.encode()
    assert encoded[0] == RATCHET_VERSION
    assert RatchetMessage.decode_untrusted(encoded) == msg


def test_message_ciphertext_bounds() -> None:
    part = bytes(HEADER_SIZE)
    for n in (AEAD_TAG_SIZE, MAX_RATCHET_CIPHERTEXT):
        msg = RatchetMessage(False, part, bytes(n))
        assert RatchetMessage.decode_untrusted(msg.encode()) == msg
    for n in (0, AEAD_TAG_SIZE - 1, MAX_RATCHET_CIPHERTEXT + 1):
        try:
            RatchetMessage.decode_untrusted(RatchetMessage(False, part, bytes(n)).encode())
        except DecodeError:
            continue
        raise AssertionError(f"ciphertext of {n} bytes accepted")


@SETTINGS
@given(st.binary(max_size=200))
def test_message_arbitrary_bytes(data: bytes) -> None:
    try:
        msg = RatchetMessage.decode_untrusted(data)
    except DecodeError:
        return
    assert msg.encode() == data


@SETTINGS
@given(
    st.one_of(
        st.binary(max_size=400),
        # Mostly-valid prefixes reach deeper into the decoder.
        st.tuples(st.booleans(), st.binary(max_size=400)).map(
            lambda t: b"CDRS\x01" + bytes((int(t[0]),)) + t[1]
        ),
    )
)
def test_session_arbitrary_bytes(data: bytes) -> None:
    try:
        session = RatchetSession.decode_untrusted(data)
    except DecodeError:
        return
    assert session.encode() == data


_SESSION_STATES: list[bytes] = []


def _session_states() -> list[bytes]:
    """Real encodings: fresh and mid-conversation, both header modes."""
    if not _SESSION_STATES:
        for he in (False, True):
            pair = make_pair(he, seed=b"wire-states")
            _SESSION_STATES.extend([pair.alice.encode(), pair.bob.encode()])
            for _ in range(3):
                pair.a2b(b"skipped")
                pair.to_bob(pair.a2b(b"read"))
                pair.to_alice(pair.b2a(b"ack"))
                _SESSION_STATES.extend([pair.alice.encode(), pair.bob.encode()])
    return _SESSION_STATES


@SETTINGS
@given(st.data())
def test_session_round_trip_and_mutations(data: st.DataObject) -> None:
    state = data.draw(st.sampled_from(_session_states()))
    assert RatchetSession.decode_untrusted(state).encode() == state
    # One byte overwritten, or the tail cut: DecodeError or an exact re-encoding.
    index = data.draw(st.integers(0, len(state) - 1))
    value = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(state)))
    for mutated in (state[:index] + bytes((value,)) + state[index + 1 :], state[:cut]):
        try:
            session = RatchetSession.decode_untrusted(mutated)
        except DecodeError:
            continue
        assert session.encode() == mutated
