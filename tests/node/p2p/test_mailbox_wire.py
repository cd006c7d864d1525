"""Round trips and "arbitrary bytes raise only DecodeError" for every
``/chhaya/mailbox/1.0.0`` message, plus the mailbox id and signed messages."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chhaya import DecodeError, LocalProtocolError
from chhaya.sealed import PADDING_BUCKETS
from node.p2p import (
    MAX_FETCH,
    AckResult,
    DepositRequest,
    DepositResponse,
    FetchAck,
    FetchChallenge,
    FetchList,
    FetchProof,
    FetchRequest,
    ack_signing_message,
    fetch_signing_message,
    mailbox_id_for,
)

SETTINGS = settings(max_examples=100, deadline=None)

b16 = st.binary(min_size=16, max_size=16)
b32 = st.binary(min_size=32, max_size=32)
b64 = st.binary(min_size=64, max_size=64)
envelopes = st.sampled_from(PADDING_BUCKETS[:2]).flatmap(
    lambda n: st.binary(min_size=n, max_size=n)
)

Message = (
    DepositRequest
    | DepositResponse
    | FetchRequest
    | FetchChallenge
    | FetchProof
    | FetchList
    | FetchAck
    | AckResult
)

messages: st.SearchStrategy[Message] = st.one_of(
    st.builds(DepositRequest, b32, envelopes),
    st.builds(DepositResponse, st.booleans()),
    st.builds(FetchRequest, b32, st.integers(1, MAX_FETCH)),
    st.builds(FetchChallenge, b32),
    st.builds(FetchProof, b64),
    st.builds(
        FetchList,
        st.lists(st.tuples(b16, envelopes), max_size=8, unique_by=lambda e: e[0]).map(tuple),
    ),
    st.builds(FetchAck, st.lists(b16, max_size=MAX_FETCH).map(tuple), b64),
    st.builds(AckResult, st.integers(0, MAX_FETCH)),
)

DECODERS: list[Callable[[bytes], object]] = [
    DepositRequest.decode_untrusted,
    DepositResponse.decode_untrusted,
    FetchRequest.decode_untrusted,
    FetchChallenge.decode_untrusted,
    FetchProof.decode_untrusted,
    FetchList.decode_untrusted,
    FetchAck.decode_untrusted,
    AckResult.decode_untrusted,
]
MAGICS = [b"CMD1", b"CMR1", b"CMF1", b"CMC1", b"CMS1", b"CML1", b"CMA1", b"CMK1"]


@SETTINGS
@given(messages)
def test_round_trip(message: Message) -> None:
    encoded = message.encode()
    assert type(message).decode_untrusted(encoded) == message


@SETTINGS
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_raise_only_decode_error(data: bytes) -> None:
    for decode in DECODERS:
        with contextlib.suppress(DecodeError):
            decode(data)


@SETTINGS
@given(st.sampled_from(MAGICS), st.binary(max_size=2048))
def test_arbitrary_bytes_after_a_magic_raise_only_decode_error(magic: bytes, tail: bytes) -> None:
    for decode in DECODERS:
        with contextlib.suppress(DecodeError):
            decode(magic + tail)


@SETTINGS
@given(messages, st.binary(min_size=1, max_size=4))
def test_trailing_bytes_and_truncation_are_refused(message: Message, extra: bytes) -> None:
    encoded = message.encode()
    decode = type(message).decode_untrusted
    with pytest.raises(DecodeError):
        decode(encoded + extra)
    with pytest.raises(DecodeError):
        decode(encoded[:-1])


def test_bounds_are_enforced_both_ways() -> None:
    with pytest.raises(LocalProtocolError):
        DepositRequest(b"\x00" * 32, b"x" * 1000).encode()
    with pytest.raises(LocalProtocolError):
        FetchRequest(b"\x00" * 32, 0).encode()
    with pytest.raises(LocalProtocolError):
        FetchRequest(b"\x00" * 32, MAX_FETCH + 1).encode()
    with pytest.raises(LocalProtocolError):
        FetchList(((b"\x01" * 16, b"x" * 1024), (b"\x01" * 16, b"y" * 1024))).encode()
    with pytest.raises(LocalProtocolError):
        FetchList(tuple((i.to_bytes(16, "big"), b"x" * 65536) for i in range(16))).encode()
    with pytest.raises(LocalProtocolError):
        FetchAck((b"\x00" * 16,) * (MAX_FETCH + 1), b"\x00" * 64).encode()
    with pytest.raises(DecodeError):
        FetchRequest.decode_untrusted(b"CMF1" + b"\x00" * 32 + (MAX_FETCH + 1).to_bytes(2, "big"))
    duplicate = b"CML1\x00\x02" + 2 * (b"\x01" * 16 + (1024).to_bytes(4, "big") + b"x" * 1024)
    with pytest.raises(DecodeError, match="duplicate"):
        FetchList.decode_untrusted(duplicate)
    with pytest.raises(DecodeError):
        DepositResponse.decode_untrusted(b"CMR1\x02")
    with pytest.raises(DecodeError):
        FetchList.decode_untrusted(b"CML1" + b"\x00" * (1 << 21))  # over the bound, unread


def test_mailbox_id_and_signed_messages_are_domain_separated() -> None:
    key = bytes(range(32))
    assert mailbox_id_for(key) == hashlib.sha256(b"chhaya/mailbox/v1" + key).digest()
    with pytest.raises(ValueError, match="32 bytes"):
        mailbox_id_for(key[:31])
    server, nonce = b"peer-id-bytes", b"\x07" * 32
    fetch = fetch_signing_message(server, nonce, 5)
    assert fetch == b"chhaya/mailbox/fetch/v1" + b"\x00\x0d" + server + nonce + b"\x00\x05"
    ack = ack_signing_message(server, nonce, [b"\x01" * 16])
    assert ack == b"chhaya/mailbox/ack/v1\x00\x0d" + server + nonce + b"\x00\x01" + b"\x01" * 16
    assert ack_signing_message(server, nonce, []) != fetch_signing_message(server, nonce, 0)
