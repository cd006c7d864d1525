"""Fuzz the ``chhaya.wire.Reader`` primitives with byte-coded programs.

Each step reads an op byte, then that op's operands and field from the same
input. Reads raise only DecodeError, never return more than they declare or
more than the given maximum, and always consume input. A program that runs
to the end is rebuilt with ``Writer`` and must give back the input exactly.

Run: ``python fuzz/fuzz_wire_reader.py [corpus_dir] [-max_total_time=60]``
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["chhaya"]):
    import _seeds

    from chhaya import DecodeError
    from chhaya.wire import Reader, Writer

_OPS = 9
_EXPECTED = b"\x00\x01"


def seeds() -> list[bytes]:
    return _seeds.wire_reader_seeds()


def _step(r: Reader, w: Writer) -> None:
    op_byte = r.u8("op")
    w.u8(op_byte)
    op = op_byte % _OPS
    if op == 0:
        n = r.u8("n")
        out = r.fixed(n, "fixed")
        assert len(out) == n
        w.u8(n).fixed(out, n)
    elif op == 1:
        v = r.u16("u16")
        assert 0 <= v < 1 << 16
        w.u16(v)
    elif op == 2:
        v = r.u32("u32")
        assert 0 <= v < 1 << 32
        w.u32(v)
    elif op == 3:
        v = r.u64("u64")
        assert 0 <= v < 1 << 64
        w.u64(v)
    elif op == 4:
        m = r.u8("max")
        out = r.var16(m, "var16")
        assert len(out) <= m
        w.u8(m).var16(out, m)
    elif op == 5:
        m = r.u16("max")
        out = r.var32(m, "var32")
        assert len(out) <= m
        w.u16(m).var32(out, m)
    elif op == 6:
        m = r.u8("max")
        text = r.utf8(m, "utf8")
        assert len(text.encode("utf-8")) <= m
        w.u8(m).utf8(text, m)
    elif op == 7:
        r.expect(_EXPECTED, "expected bytes")
        w.raw(_EXPECTED)
    else:
        r.finish()


def TestOneInput(data: bytes) -> None:
    r = Reader(data)
    w = Writer()
    try:
        while r.remaining():
            before = r.remaining()
            _step(r, w)
            assert 0 <= r.remaining() < before
        r.finish()
    except DecodeError:
        assert 0 <= r.remaining() <= len(data)
        return
    assert w.getvalue() == data


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
