"""Round trips and "arbitrary bytes raise only DecodeError" for the user
node's Intro, Welcome and Presence messages."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chhaya import DecodeError
from chhaya.session import CONVERSATION_ID_SIZE
from node.daemon import Intro, Presence, Welcome
from node.daemon._wire import MAX_ADDR_LEN, MAX_ADDRS, MAX_PEER_ID_LEN

SETTINGS = settings(max_examples=200, deadline=None)
handles = st.from_regex(r"[a-z0-9][a-z0-9._-]{0,63}", fullmatch=True)
conversation_ids = st.just(b"") | st.binary(
    min_size=CONVERSATION_ID_SIZE, max_size=CONVERSATION_ID_SIZE
)
# Any non-empty text (hypothesis draws no surrogates) of at most MAX_ADDR_LEN UTF-8 bytes.
utf8_addrs = st.text(min_size=1, max_size=MAX_ADDR_LEN // 4) | st.text(
    st.characters(max_codepoint=0x7F), min_size=1, max_size=MAX_ADDR_LEN
)
peer_ids = st.binary(min_size=1, max_size=MAX_PEER_ID_LEN)


@SETTINGS
@given(handles, conversation_ids)
def test_intro_round_trip(handle: str, conversation_id: bytes) -> None:
    intro = Intro(handle, conversation_id)
    encoded = intro.encode()
    assert Intro.decode_untrusted(encoded) == intro


@pytest.mark.parametrize("resume", [False, True])
def test_welcome_round_trip(resume: bool) -> None:
    welcome = Welcome(resume)
    assert Welcome.decode_untrusted(welcome.encode()) == welcome


@SETTINGS
@given(peer_ids, st.lists(utf8_addrs, min_size=1, max_size=MAX_ADDRS).map(tuple))
def test_presence_round_trip(peer_id: bytes, addr_list: tuple[str, ...]) -> None:
    presence = Presence(peer_id, addr_list)
    encoded = presence.encode()
    assert Presence.decode_untrusted(encoded) == presence


def test_presence_realistic() -> None:
    presence = Presence(b"\x00\x24" + bytes(36), ("/ip4/127.0.0.1/tcp/4001", "/ip6/::1/udp/9/quic"))
    assert Presence.decode_untrusted(presence.encode()) == presence


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"CIN1",
        b"CIN1\x00\x05Alice\x00\x00",  # upper case is not a handle
        b"CIN1\x00\x05alice\x00\x01\x00",  # conversation id of 1 byte
        b"CIN1\x00\x05alice\x00\x00\x00",  # trailing byte
        b"CIN1\x00\x02\xff\xfe\x00\x00",  # not UTF-8
    ],
)
def test_intro_rejects(data: bytes) -> None:
    with pytest.raises(DecodeError):
        Intro.decode_untrusted(data)


@pytest.mark.parametrize("data", [b"", b"CWL1", b"CWL1\x02", b"CWL1\x00\x00", b"CWL0\x00"])
def test_welcome_rejects(data: bytes) -> None:
    with pytest.raises(DecodeError):
        Welcome.decode_untrusted(data)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"CPR1\x00\x00\x01\x00\x01a",  # empty peer id
        b"CPR1\x00\x01p\x00",  # no addresses
        b"CPR1\x00\x01p" + bytes((MAX_ADDRS + 1,)) + b"\x00\x01a" * (MAX_ADDRS + 1),
        b"CPR1\x00\x01p\x01\x00\x00",  # empty address
        b"CPR1\x00\x01p\x01\x00\x01a\x00",  # trailing byte
    ],
)
def test_presence_rejects(data: bytes) -> None:
    with pytest.raises(DecodeError):
        Presence.decode_untrusted(data)


def _decode_all(raw: bytes) -> None:
    with contextlib.suppress(DecodeError):
        Intro.decode_untrusted(raw)
    with contextlib.suppress(DecodeError):
        Welcome.decode_untrusted(raw)
    with contextlib.suppress(DecodeError):
        Presence.decode_untrusted(raw)


@SETTINGS
@given(st.binary(max_size=600))
def test_arbitrary_bytes_raise_only_decode_error(data: bytes) -> None:
    for raw in (data, b"CIN1" + data, b"CWL1" + data, b"CPR1" + data):
        _decode_all(raw)


@SETTINGS
@given(st.binary(max_size=64), st.integers(min_value=0, max_value=255), st.binary(max_size=400))
def test_structured_presence_raises_only_decode_error(
    peer_id: bytes, count: int, rest: bytes
) -> None:
    raw = b"CPR1" + len(peer_id).to_bytes(2, "big") + peer_id + bytes((count,)) + rest
    try:
        presence = Presence.decode_untrusted(raw)
    except DecodeError:
        return
    assert presence.encode() == raw


@SETTINGS
@given(st.binary(max_size=80), st.binary(max_size=20))
def test_structured_intro_raises_only_decode_error(handle: bytes, rest: bytes) -> None:
    raw = b"CIN1" + len(handle).to_bytes(2, "big") + handle + rest
    try:
        intro = Intro.decode_untrusted(raw)
    except DecodeError:
        return
    assert intro.encode() == raw
