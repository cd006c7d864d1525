"""Size buckets and ISO/IEC 7816-4 padding."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chhaya.safety import DecodeError, LocalProtocolError
from chhaya.sealed import MAX_PADDED_SIZE, PADDING_BUCKETS, bucket_for, pad, unpad_untrusted

SETTINGS = settings(max_examples=200, deadline=None)


def test_buckets() -> None:
    assert PADDING_BUCKETS == (1024, 4096, 16384, 65536)
    assert MAX_PADDED_SIZE == 65536


@pytest.mark.parametrize(
    ("n", "bucket"),
    [
        (0, 1024),
        (1, 1024),
        (255, 1024),
        (256, 1024),
        (257, 1024),
        (1024, 1024),
        (1025, 4096),
        (4096, 4096),
        (4097, 16384),
        (16384, 16384),
        (16385, 65536),
        (65536, 65536),
    ],
)
def test_bucket_for(n: int, bucket: int) -> None:
    assert bucket_for(n) == bucket


@pytest.mark.parametrize("n", [65537, 10**9, -1])
def test_bucket_for_out_of_range(n: int) -> None:
    with pytest.raises(LocalProtocolError):
        bucket_for(n)


def test_pad_layout() -> None:
    assert pad(b"ab", 5) == b"ab\x80\x00\x00"
    assert pad(b"ab", 3) == b"ab\x80"
    assert pad(b"", 1) == b"\x80"
    # Content that ends in the marker or in zeros still comes back intact.
    for content in (b"\x80", b"\x00", b"x\x80\x00", b"\x80\x80"):
        assert unpad_untrusted(pad(content, 16)) == content


@pytest.mark.parametrize(("content", "target"), [(b"ab", 2), (b"ab", 1), (b"", 0)])
def test_pad_too_small(content: bytes, target: int) -> None:
    with pytest.raises(LocalProtocolError):
        pad(content, target)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00",
        b"\x00\x00\x00",
        b"abc",
        b"abc\x81",
        b"abc\x80\x01",
        b"abc\x80\x00\x00\x01",
        b"abc\x80\x00\x80\x00\x7f",
        b"\x01" * 16,
    ],
)
def test_unpad_rejects(data: bytes) -> None:
    with pytest.raises(DecodeError):
        unpad_untrusted(data)


def test_unpad_rejects_non_bytes() -> None:
    with pytest.raises(DecodeError):
        unpad_untrusted("abc\x80")  # type: ignore[arg-type]


@SETTINGS
@given(st.binary(max_size=2000), st.integers(min_value=1, max_value=300))
def test_pad_round_trip(content: bytes, extra: int) -> None:
    padded = pad(content, len(content) + extra)
    assert len(padded) == len(content) + extra
    assert unpad_untrusted(padded) == content


@SETTINGS
@given(st.binary(max_size=3000))
def test_unpad_arbitrary_bytes_raise_only_decode_error(data: bytes) -> None:
    try:
        content = unpad_untrusted(data)
    except DecodeError:
        return
    # Whatever unpads is a prefix, and padding it back gives the input.
    assert pad(content, len(data)) == data
