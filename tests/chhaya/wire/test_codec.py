"""Reader and Writer: bounds, truncation, trailing bytes, UTF-8, round trips."""

from __future__ import annotations

import contextlib
import struct
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chhaya import DecodeError
from chhaya.wire import Reader, Writer

SETTINGS = settings(deadline=None, max_examples=200)

# ------------------------------------------------------------ fixed-width ints


@pytest.mark.parametrize(
    ("method", "width", "value"),
    [
        ("u8", 1, 0),
        ("u8", 1, 0xFF),
        ("u16", 2, 0),
        ("u16", 2, 0xFFFF),
        ("u32", 4, 0xFFFF_FFFF),
        ("u64", 8, 2**64 - 1),
        ("u64", 8, 0x0102_0304_0506_0708),
    ],
)
def test_integers_are_big_endian(method: str, width: int, value: int) -> None:
    encoded = getattr(Writer(), method)(value).getvalue()
    assert encoded == value.to_bytes(width, "big")
    r = Reader(encoded)
    assert getattr(r, method)("int") == value
    r.finish()


@pytest.mark.parametrize(("method", "limit"), [("u8", 8), ("u16", 16), ("u32", 32), ("u64", 64)])
def test_writer_rejects_out_of_range_integers(method: str, limit: int) -> None:
    # u8 raises ValueError; the struct-based widths raise struct.error.
    for bad in (-1, 2**limit):
        with pytest.raises((ValueError, struct.error)):
            getattr(Writer(), method)(bad)


@pytest.mark.parametrize(("method", "width"), [("u8", 1), ("u16", 2), ("u32", 4), ("u64", 8)])
def test_truncated_integers(method: str, width: int) -> None:
    for n in range(width):
        with pytest.raises(DecodeError, match="truncated"):
            getattr(Reader(b"\xab" * n), method)("int")


# ------------------------------------------------------------------- fixed


def test_fixed_and_remaining() -> None:
    r = Reader(b"abcdef")
    assert r.remaining() == 6
    assert r.fixed(0, "empty") == b""
    assert r.fixed(2, "two") == b"ab"
    assert r.remaining() == 4
    with pytest.raises(DecodeError, match="truncated five"):
        r.fixed(5, "five")
    assert r.fixed(4, "rest") == b"cdef"
    assert r.remaining() == 0
    r.finish()


def test_writer_fixed_checks_length() -> None:
    assert Writer().fixed(b"abc", 3).getvalue() == b"abc"
    for data in (b"ab", b"abcd"):
        with pytest.raises(ValueError, match="expected 3 bytes"):
            Writer().fixed(data, 3)


def test_expect() -> None:
    Reader(b"MAGIC").expect(b"MAGIC", "magic")
    with pytest.raises(DecodeError, match="bad magic"):
        Reader(b"MAGIX").expect(b"MAGIC", "magic")
    with pytest.raises(DecodeError, match="truncated"):
        Reader(b"MAG").expect(b"MAGIC", "magic")


def test_finish_rejects_trailing_bytes() -> None:
    r = Reader(b"\x00\x01\x02")
    r.u8("first")
    with pytest.raises(DecodeError, match="2 trailing bytes"):
        r.finish()
    Reader(b"").finish()


@given(st.binary(), st.binary(min_size=1))
@SETTINGS
def test_trailing_bytes_after_any_field(data: bytes, extra: bytes) -> None:
    encoded = Writer().var32(data, len(data)).getvalue()
    r = Reader(encoded + extra)
    assert r.var32(len(data), "field") == data
    with pytest.raises(DecodeError, match="trailing"):
        r.finish()


# ---------------------------------------------------------- input types


@pytest.mark.parametrize("bad", ["text", 7, None, [1, 2], 3.5])
def test_reader_rejects_non_bytes(bad: object) -> None:
    with pytest.raises(DecodeError, match="not bytes"):
        Reader(bad)  # type: ignore[arg-type]


def test_reader_accepts_bytearray_and_memoryview_and_copies() -> None:
    buf = bytearray(b"\x00\x03abc")
    r = Reader(buf)  # type: ignore[arg-type]  # typed bytes, accepts any buffer
    buf[2:5] = b"XYZ"  # later changes to the caller's buffer do not leak in
    assert r.var16(3, "field") == b"abc"
    assert Reader(memoryview(b"\x07")).u8("byte") == 7  # type: ignore[arg-type]


# ------------------------------------------------------------ var16 / var32


def test_var16_bounds() -> None:
    assert Reader(b"\x00\x00").var16(0, "f") == b""
    assert Reader(b"\x00\x02hi").var16(2, "f") == b"hi"
    with pytest.raises(DecodeError, match=r"f too long \(3 > 2\)"):
        Reader(b"\x00\x03hey").var16(2, "f")
    with pytest.raises(DecodeError, match="truncated"):
        Reader(b"\x00\x05hey").var16(10, "f")
    with pytest.raises(DecodeError, match="truncated"):
        Reader(b"\x00").var16(10, "f")


def test_var32_checks_max_before_reading() -> None:
    # A huge declared length is refused as too long, not read or allocated.
    with pytest.raises(DecodeError, match="too long"):
        Reader(b"\xff\xff\xff\xff").var32(1024, "f")
    with pytest.raises(DecodeError, match="too long"):
        Reader(b"\x00\x00\x04\x01" + bytes(1025)).var32(1024, "f")
    assert Reader(b"\x00\x00\x04\x00" + bytes(1024)).var32(1024, "f") == bytes(1024)
    with pytest.raises(DecodeError, match="truncated"):
        Reader(b"\x00\x00\x04\x00" + bytes(1023)).var32(1024, "f")


def test_writer_var_bounds() -> None:
    assert Writer().var16(b"ab", 2).getvalue() == b"\x00\x02ab"
    assert Writer().var32(b"ab", 2).getvalue() == b"\x00\x00\x00\x02ab"
    with pytest.raises(ValueError, match="longer than 1"):
        Writer().var16(b"ab", 1)
    with pytest.raises(ValueError, match="longer than 1"):
        Writer().var32(b"ab", 1)


@given(st.binary(max_size=600), st.integers(min_value=0, max_value=700))
@SETTINGS
def test_var16_reader_matches_writer_bound(data: bytes, max_len: int) -> None:
    encoded = len(data).to_bytes(2, "big") + data
    if len(data) <= max_len:
        assert Writer().var16(data, max_len).getvalue() == encoded
        assert Reader(encoded).var16(max_len, "f") == data
    else:
        with pytest.raises(ValueError, match="longer than"):
            Writer().var16(data, max_len)
        with pytest.raises(DecodeError, match="too long"):
            Reader(encoded).var16(max_len, "f")


@given(st.binary(max_size=600), st.integers(min_value=0, max_value=700))
@SETTINGS
def test_var32_reader_matches_writer_bound(data: bytes, max_len: int) -> None:
    encoded = len(data).to_bytes(4, "big") + data
    if len(data) <= max_len:
        assert Writer().var32(data, max_len).getvalue() == encoded
        assert Reader(encoded).var32(max_len, "f") == data
    else:
        with pytest.raises(ValueError, match="longer than"):
            Writer().var32(data, max_len)
        with pytest.raises(DecodeError, match="too long"):
            Reader(encoded).var32(max_len, "f")


@given(st.integers(min_value=0, max_value=0xFFFF), st.binary(max_size=64))
@SETTINGS
def test_var16_declared_length_past_end(declared: int, body: bytes) -> None:
    data = declared.to_bytes(2, "big") + body
    r = Reader(data)
    if declared <= len(body):
        assert r.var16(0xFFFF, "f") == body[:declared]
        assert r.remaining() == len(body) - declared
    else:
        with pytest.raises(DecodeError, match="truncated"):
            r.var16(0xFFFF, "f")


# -------------------------------------------------------------------- utf8


@given(st.text(max_size=100))
@SETTINGS
def test_utf8_round_trip(text: str) -> None:
    raw = text.encode("utf-8")
    encoded = Writer().utf8(text, len(raw)).getvalue()
    assert encoded == len(raw).to_bytes(2, "big") + raw
    r = Reader(encoded)
    assert r.utf8(len(raw), "text") == text
    r.finish()


def test_utf8_bound_counts_bytes_not_characters() -> None:
    text = "\u00e9\u00e9\u00e9"  # three characters, six bytes
    assert Reader(Writer().utf8(text, 6).getvalue()).utf8(6, "t") == text
    with pytest.raises(ValueError, match="longer than 5"):
        Writer().utf8(text, 5)
    with pytest.raises(DecodeError, match="too long"):
        Reader(b"\x00\x06" + text.encode()).utf8(5, "t")


@pytest.mark.parametrize(
    "raw",
    [
        b"\xff",
        b"\xc3",  # truncated two-byte sequence
        b"\xc3\x28",  # bad continuation byte
        b"\xc0\x80",  # overlong NUL
        b"\xed\xa0\x80",  # UTF-16 surrogate
        b"\xf4\x90\x80\x80",  # above U+10FFFF
        b"ok\x80",
    ],
)
def test_utf8_rejects_invalid(raw: bytes) -> None:
    data = len(raw).to_bytes(2, "big") + raw
    with pytest.raises(DecodeError, match="not UTF-8"):
        Reader(data).utf8(64, "name")


def test_writer_utf8_rejects_lone_surrogate() -> None:
    with pytest.raises(UnicodeEncodeError):
        Writer().utf8("\ud800", 10)


# ------------------------------------------------ sequences and truncation


@dataclass(frozen=True)
class Field:
    kind: str
    value: int | bytes | str
    max_len: int = 0


_FIELDS = st.one_of(
    st.builds(Field, st.just("u8"), st.integers(0, 2**8 - 1)),
    st.builds(Field, st.just("u16"), st.integers(0, 2**16 - 1)),
    st.builds(Field, st.just("u32"), st.integers(0, 2**32 - 1)),
    st.builds(Field, st.just("u64"), st.integers(0, 2**64 - 1)),
    st.binary(max_size=40).map(lambda b: Field("fixed", b, len(b))),
    st.binary(max_size=40).map(lambda b: Field("var16", b, len(b) + 3)),
    st.binary(max_size=40).map(lambda b: Field("var32", b, len(b))),
    st.text(max_size=20).map(lambda t: Field("utf8", t, len(t.encode()) + 1)),
)


def write(fields: list[Field]) -> bytes:
    w = Writer()
    for f in fields:
        if f.kind == "fixed":
            assert isinstance(f.value, bytes)
            w.fixed(f.value, f.max_len)
        elif f.kind in ("var16", "var32"):
            getattr(w, f.kind)(f.value, f.max_len)
        elif f.kind == "utf8":
            assert isinstance(f.value, str)
            w.utf8(f.value, f.max_len)
        else:
            getattr(w, f.kind)(f.value)
    return w.getvalue()


def read(data: bytes, fields: list[Field]) -> list[int | bytes | str]:
    r = Reader(data)
    out: list[int | bytes | str] = []
    for f in fields:
        if f.kind == "fixed":
            out.append(r.fixed(f.max_len, "fixed"))
        elif f.kind in ("var16", "var32", "utf8"):
            out.append(getattr(r, f.kind)(f.max_len, f.kind))
        else:
            out.append(getattr(r, f.kind)(f.kind))
    r.finish()
    return out


@given(st.lists(_FIELDS, max_size=12))
@SETTINGS
def test_sequence_round_trip(fields: list[Field]) -> None:
    assert read(write(fields), fields) == [f.value for f in fields]


@given(st.lists(_FIELDS, min_size=1, max_size=8), st.data())
@SETTINGS
def test_every_truncation_is_a_decode_error(fields: list[Field], data: st.DataObject) -> None:
    encoded = write(fields)
    if not encoded:
        return
    cut = data.draw(st.integers(0, len(encoded) - 1))
    with pytest.raises(DecodeError):
        read(encoded[:cut], fields)


@given(st.lists(_FIELDS, max_size=8), st.binary(min_size=1, max_size=8))
@SETTINGS
def test_any_extension_is_a_decode_error(fields: list[Field], extra: bytes) -> None:
    with pytest.raises(DecodeError):
        read(write(fields) + extra, fields)


@given(st.lists(_FIELDS, max_size=8), st.binary(max_size=200))
@SETTINGS
def test_arbitrary_bytes_raise_only_decode_error(fields: list[Field], data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        read(data, fields)
