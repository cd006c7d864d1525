"""Round trips and "arbitrary bytes raise only DecodeError" for the p2p wire types."""

from __future__ import annotations

import contextlib

from hypothesis import given, settings
from hypothesis import strategies as st

from chhaya import DecodeError
from node.p2p import CertifiedHead, VkdKind, VkdRequest, VkdResponse
from quorum import EpochHead, QuorumCertificate, SignedHead

SETTINGS = settings(max_examples=200, deadline=None)
handles = st.from_regex(r"[a-z0-9][a-z0-9._-]{0,63}", fullmatch=True)
kinds = st.sampled_from([VkdKind.LOOKUP, VkdKind.HISTORY])
b32 = st.binary(min_size=32, max_size=32)
u64 = st.integers(min_value=0, max_value=2**64 - 1)
heads = st.builds(
    SignedHead,
    st.builds(EpochHead, b32, u64, b32, b32, u64),
    b32,
    b32,
    st.binary(min_size=64, max_size=64),
)
certs = st.builds(
    QuorumCertificate, b32, st.binary(min_size=1, max_size=8), st.binary(min_size=96, max_size=96)
)


@SETTINGS
@given(kinds, handles)
def test_request_round_trip(kind: int, handle: str) -> None:
    decoded = VkdRequest.decode_untrusted(VkdRequest(kind, handle).encode())
    assert (decoded.kind, decoded.handle) == (kind, handle)


@SETTINGS
@given(kinds, st.binary(max_size=3000))
def test_response_round_trip(kind: int, proof: bytes) -> None:
    decoded = VkdResponse.decode_untrusted(VkdResponse(0, proof).encode(kind), kind)
    assert (decoded.status, decoded.proof) == (0, proof)


@SETTINGS
@given(heads, certs)
def test_certified_head_round_trip(signed: SignedHead, cert: QuorumCertificate) -> None:
    head = CertifiedHead(signed, cert)
    assert CertifiedHead.decode_untrusted(head.encode()) == head


@SETTINGS
@given(st.binary(max_size=600), kinds)
def test_arbitrary_bytes_raise_only_decode_error(data: bytes, kind: int) -> None:
    for raw in (data, b"CVQ1" + data, b"CVR1" + data, b"CHD1" + data):
        with contextlib.suppress(DecodeError):
            VkdRequest.decode_untrusted(raw)
        with contextlib.suppress(DecodeError):
            VkdResponse.decode_untrusted(raw, kind)
        with contextlib.suppress(DecodeError):
            CertifiedHead.decode_untrusted(raw)
