"""Proof encodings: round trips, one encoding per proof, bounds, and decoders
that raise only DecodeError.

Any exception other than DecodeError escapes the ``except`` clauses below
and fails the test.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chhaya import DecodeError
from vkd.tree import (
    EMPTY_HASH,
    MAX_APPEND_ONLY_NODES,
    MAX_APPEND_ONLY_PROOF_SIZE,
    MAX_DEPTH,
    MAX_MEMBERSHIP_PROOF_SIZE,
    MAX_NON_MEMBERSHIP_PROOF_SIZE,
    NODE_EMPTY,
    NODE_HASH,
    NODE_INNER,
    NODE_LEAF,
    AppendOnlyProof,
    MembershipProof,
    NonMembershipProof,
)

from ._helpers import h32

SETTINGS = settings(max_examples=150, deadline=None)

b32 = st.binary(min_size=32, max_size=32)
sibling = st.one_of(st.just(EMPTY_HASH), b32.filter(lambda h: h != EMPTY_HASH))
paths = st.one_of(
    st.lists(sibling, max_size=40),
    st.lists(sibling, min_size=MAX_DEPTH - 3, max_size=MAX_DEPTH),
).map(tuple)
memberships = st.builds(MembershipProof, b32, b32, paths)
non_memberships = st.builds(NonMembershipProof, b32, st.none() | st.tuples(b32, b32), paths)


@st.composite
def append_only_proofs(draw: st.DrawFn) -> AppendOnlyProof:
    """Random well-shaped proofs (not necessarily true ones)."""
    kinds = bytearray()
    leaves: list[tuple[bytes, bytes]] = []
    hashes: list[bytes] = []
    budget = draw(st.integers(0, 40))
    stack = [0]
    while stack:
        depth = stack.pop()
        choices = [NODE_EMPTY, NODE_LEAF, NODE_HASH]
        if budget > 0 and depth < MAX_DEPTH:
            choices.append(NODE_INNER)
        kind = draw(st.sampled_from(choices))
        kinds.append(kind)
        if kind == NODE_INNER:
            budget -= 1
            stack += [depth + 1, depth + 1]
        elif kind == NODE_LEAF:
            leaves.append((draw(b32), draw(b32)))
        elif kind == NODE_HASH:
            hashes.append(draw(b32.filter(lambda h: h != EMPTY_HASH)))
    return AppendOnlyProof(bytes(kinds), tuple(leaves), tuple(hashes))


Proof = MembershipProof | NonMembershipProof | AppendOnlyProof
DECODERS: dict[str, Callable[[bytes], Proof]] = {
    "membership": MembershipProof.decode_untrusted,
    "non_membership": NonMembershipProof.decode_untrusted,
    "append_only": AppendOnlyProof.decode_untrusted,
}
STRATEGIES: dict[str, st.SearchStrategy[Any]] = {
    "membership": memberships,
    "non_membership": non_memberships,
    "append_only": append_only_proofs(),
}
MAX_SIZES = {
    "membership": MAX_MEMBERSHIP_PROOF_SIZE,
    "non_membership": MAX_NON_MEMBERSHIP_PROOF_SIZE,
    "append_only": MAX_APPEND_ONLY_PROOF_SIZE,
}
KINDS = sorted(DECODERS)


def decode_or_reject(kind: str, data: bytes) -> None:
    """Decode; success must re-encode to the input, failure must be DecodeError."""
    try:
        decoded = DECODERS[kind](data)
    except DecodeError:
        return
    assert decoded.encode() == data


@pytest.mark.parametrize("kind", KINDS)
@SETTINGS
@given(data=st.data())
def test_round_trip(kind: str, data: st.DataObject) -> None:
    proof = data.draw(STRATEGIES[kind])
    encoded = proof.encode()
    assert len(encoded) == proof.encoded_size() <= MAX_SIZES[kind]
    assert DECODERS[kind](encoded) == proof


@pytest.mark.parametrize("kind", KINDS)
@SETTINGS
@given(data=st.binary(max_size=600))
def test_arbitrary_bytes_raise_only_decode_error(kind: str, data: bytes) -> None:
    decode_or_reject(kind, data)


@pytest.mark.parametrize("kind", KINDS)
@SETTINGS
@given(data=st.data())
def test_mutated_encodings_raise_only_decode_error(kind: str, data: st.DataObject) -> None:
    encoded = bytearray(data.draw(STRATEGIES[kind]).encode())
    action = data.draw(st.sampled_from(["flip", "truncate", "extend", "overwrite"]))
    if action == "flip" and encoded:
        position = data.draw(st.integers(0, len(encoded) * 8 - 1))
        encoded[position // 8] ^= 0x80 >> (position % 8)
    elif action == "truncate":
        del encoded[data.draw(st.integers(0, len(encoded))) :]
    elif action == "extend":
        encoded += data.draw(st.binary(min_size=1, max_size=40))
    elif encoded:
        encoded[data.draw(st.integers(0, len(encoded) - 1))] = data.draw(st.integers(0, 255))
    decode_or_reject(kind, bytes(encoded))


@pytest.mark.parametrize("kind", KINDS)
def test_non_bytes_and_oversized_input(kind: str) -> None:
    with pytest.raises(DecodeError):
        DECODERS[kind]("text")  # type: ignore[arg-type]
    with pytest.raises(DecodeError, match="too long"):
        DECODERS[kind](bytes(MAX_SIZES[kind] + 1))


def test_membership_layout() -> None:
    s1, s3 = h32("s1"), h32("s3")
    proof = MembershipProof(h32("i"), h32("v"), (s1, EMPTY_HASH, s3, EMPTY_HASH, EMPTY_HASH, s1))
    encoded = proof.encode()
    assert encoded == h32("i") + h32("v") + b"\x00\x06" + bytes([0b01011000]) + s1 + s3 + s1
    # Trailing bytes, truncation, padding bits, a written-out empty sibling.
    bad = [
        encoded + b"\x00",
        encoded[:-1],
        encoded[:66] + bytes([0b01011001]) + encoded[67:],
        encoded[:66] + bytes([0b00011000]) + encoded[67:99] + EMPTY_HASH + encoded[99:],
        h32("i") + h32("v") + (MAX_DEPTH + 1).to_bytes(2, "big"),
    ]
    for data in bad:
        with pytest.raises(DecodeError):
            MembershipProof.decode_untrusted(data)


def test_deepest_membership_proof_is_within_bounds() -> None:
    proof = MembershipProof(h32("i"), h32("v"), tuple(h32(str(k)) for k in range(MAX_DEPTH)))
    assert len(proof.encode()) == MAX_MEMBERSHIP_PROOF_SIZE
    assert MembershipProof.decode_untrusted(proof.encode()) == proof


def test_non_membership_layout() -> None:
    empty_end = NonMembershipProof(h32("i"), None, (h32("s"),))
    assert empty_end.encode() == h32("i") + b"\x00" + b"\x00\x01\x00" + h32("s")
    leaf_end = NonMembershipProof(h32("i"), (h32("j"), h32("vj")), ())
    assert leaf_end.encode() == h32("i") + b"\x01" + h32("j") + h32("vj") + b"\x00\x00"
    with pytest.raises(DecodeError, match="kind"):
        NonMembershipProof.decode_untrusted(h32("i") + b"\x02" + b"\x00\x00")
    deepest = NonMembershipProof(h32("i"), (h32("j"), h32("v")), (h32("s"),) * MAX_DEPTH)
    assert len(deepest.encode()) == MAX_NON_MEMBERSHIP_PROOF_SIZE


def test_append_only_layout() -> None:
    leaf = (h32("j"), h32("vj"))
    proof = AppendOnlyProof(
        bytes([NODE_INNER, NODE_INNER, NODE_LEAF, NODE_HASH, NODE_EMPTY]),
        (leaf,),
        (h32("h"),),
    )
    encoded = proof.encode()
    kinds = bytes([0b10100111, 0b00000000])
    assert encoded == b"\x00\x00\x00\x05" + kinds + leaf[0] + leaf[1] + h32("h")
    bad = [
        encoded + b"\x00",
        encoded[:-1],
        b"\x00\x00\x00\x05" + bytes([0b10100111, 0b00010000]) + encoded[6:],  # unused bits
        b"\x00\x00\x00\x00",  # no nodes
        (MAX_APPEND_ONLY_NODES + 1).to_bytes(4, "big") + bytes(64),
        b"\x00\x00\x00\x01" + bytes([NODE_HASH << 6]) + EMPTY_HASH,  # empty as HASH
        b"\x00\x00\x00\x02" + bytes([0b10000000]),  # tree ends early
        b"\x00\x00\x00\x02" + bytes([0]),  # nodes after the end
    ]
    for data in bad:
        with pytest.raises(DecodeError):
            AppendOnlyProof.decode_untrusted(data)


def test_append_only_depth_limit() -> None:
    # A chain of opened nodes down to depth 256, each with a closed sibling.
    nodes = bytes([NODE_INNER, NODE_HASH] * MAX_DEPTH + [NODE_EMPTY])
    proof = AppendOnlyProof(nodes, (), (h32("h"),) * MAX_DEPTH)
    assert AppendOnlyProof.decode_untrusted(proof.encode()) == proof
    deeper = AppendOnlyProof(
        bytes([NODE_INNER, NODE_HASH] * (MAX_DEPTH + 1) + [NODE_EMPTY]),
        (),
        (h32("h"),) * (MAX_DEPTH + 1),
    )
    with pytest.raises(ValueError, match="deepest"):
        deeper.encode()
    raw = (
        len(deeper.nodes).to_bytes(4, "big")
        + bytes([0b10111011] * ((MAX_DEPTH + 1) // 2) + [0b10110000])
        + h32("h") * (MAX_DEPTH + 1)
    )
    with pytest.raises(DecodeError, match="deepest"):
        AppendOnlyProof.decode_untrusted(raw)


def test_append_only_encode_checks_consistency() -> None:
    for proof in (
        AppendOnlyProof(bytes([NODE_LEAF]), (), ()),
        AppendOnlyProof(bytes([NODE_HASH]), (), (EMPTY_HASH,)),
        AppendOnlyProof(bytes([NODE_INNER]), (), ()),
    ):
        with pytest.raises(ValueError, match="append-only proof"):
            proof.encode()
