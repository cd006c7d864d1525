"""Property tests for the quorum wire types and key files.

Round trips run on structurally valid values with arbitrary field contents
(signatures need not verify: decoding only parses). Decoders of outside bytes
raise only DecodeError, whatever arrives: random bytes, a right magic with
random bytes behind it, and real encodings with bytes flipped, cut short or
extended. Whatever does decode must re-encode to exactly the input (the key
text file: to the same line, whitespace aside). Any exception other than
DecodeError escapes the ``except`` clauses and fails the test.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chhaya import DecodeError
from quorum import (
    EPOCH_HEAD_SIZE,
    MAX_WITNESS_ID_LEN,
    SIGNED_HEAD_SIZE,
    EpochHead,
    EquivocationEvidence,
    QuorumCertificate,
    SetRotation,
    SignedHead,
    SignedKind,
    WitnessMember,
    WitnessSet,
    assemble_certificate,
    decode_witness_key_untrusted,
    decode_witness_pub_untrusted,
    encode_witness_key,
    encode_witness_pub,
    signing_message,
    valid_witness_id,
)
from quorum.bls import BLS_PUBLIC_KEY_SIZE, BLS_SIGNATURE_SIZE, CURVE_ORDER, get_backend

from .conftest import Quorum, chain, head, make_quorum

SETTINGS = settings(max_examples=150, deadline=None)

U16 = st.integers(min_value=0, max_value=2**16 - 1)
U64 = st.integers(min_value=0, max_value=2**64 - 1)


def exact(n: int) -> st.SearchStrategy[bytes]:
    return st.binary(min_size=n, max_size=n)


b32 = exact(32)
witness_ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", fullmatch=True)
members = st.builds(
    WitnessMember, witness_ids, exact(BLS_PUBLIC_KEY_SIZE), exact(BLS_SIGNATURE_SIZE)
)
witness_sets = st.builds(WitnessSet, st.lists(members, max_size=6).map(tuple), U16)
certificates = st.builds(QuorumCertificate, b32, st.binary(max_size=128), exact(BLS_SIGNATURE_SIZE))
epoch_heads = st.builds(EpochHead, b32, U64, b32, b32, U64)
signed_heads = st.builds(SignedHead, epoch_heads, b32, b32, exact(64))


def _canonical_pair(a: SignedHead, b: SignedHead) -> EquivocationEvidence:
    # Evidence has one encoding: its heads are ordered by head hash.
    first, second = sorted((a, b), key=lambda h: h.head.head_hash)
    return EquivocationEvidence(first, second)


evidence = st.builds(_canonical_pair, signed_heads, signed_heads).filter(
    lambda e: e.first.head.head_hash != e.second.head.head_hash
)
rotations = st.builds(SetRotation, witness_sets, certificates)
secret_keys = st.integers(min_value=1, max_value=CURVE_ORDER - 1)


# ----------------------------------------------------------------- round trip


@SETTINGS
@given(witness_sets)
def test_witness_set_round_trip(ws: WitnessSet) -> None:
    encoded = ws.encode()
    assert len(encoded) == 8 + sum(
        2 + len(m.witness_id) + BLS_PUBLIC_KEY_SIZE + BLS_SIGNATURE_SIZE for m in ws.members
    )
    assert WitnessSet.decode_untrusted(encoded) == ws


@SETTINGS
@given(certificates)
def test_certificate_round_trip(cert: QuorumCertificate) -> None:
    encoded = cert.encode()
    assert len(encoded) == 4 + 32 + 2 + len(cert.signers) + BLS_SIGNATURE_SIZE
    assert QuorumCertificate.decode_untrusted(encoded) == cert


@SETTINGS
@given(epoch_heads)
def test_epoch_head_round_trip(h: EpochHead) -> None:
    encoded = h.encode()
    assert len(encoded) == EPOCH_HEAD_SIZE
    assert EpochHead.decode_untrusted(encoded) == h


@SETTINGS
@given(signed_heads)
def test_signed_head_round_trip(signed: SignedHead) -> None:
    encoded = signed.encode()
    assert len(encoded) == SIGNED_HEAD_SIZE
    assert encoded[:EPOCH_HEAD_SIZE] == signed.head.encode()
    assert SignedHead.decode_untrusted(encoded) == signed


@SETTINGS
@given(evidence)
def test_evidence_round_trip(ev: EquivocationEvidence) -> None:
    encoded = ev.encode()
    assert len(encoded) == 4 + 2 * SIGNED_HEAD_SIZE
    assert EquivocationEvidence.decode_untrusted(encoded) == ev


@SETTINGS
@given(rotations)
def test_rotation_round_trip(rotation: SetRotation) -> None:
    assert SetRotation.decode_untrusted(rotation.encode()) == rotation


@SETTINGS
@given(secret_keys)
def test_witness_key_round_trip(sk: int) -> None:
    encoded = encode_witness_key(sk)
    assert decode_witness_key_untrusted(encoded) == sk


@SETTINGS
@given(members)
def test_witness_pub_round_trip(member: WitnessMember) -> None:
    text = encode_witness_pub(member)
    assert text.endswith("\n")
    assert text.count("\n") == 1
    assert decode_witness_pub_untrusted(text.encode("ascii")) == member


# ------------------------------------------------------------ real encodings


def _certify(q: Quorum, kind: SignedKind, digest: bytes, who: list[int]) -> QuorumCertificate:
    ws = q.witness_set
    msg = signing_message(kind, ws.set_id, digest)
    partials = {ws.members[i].witness_id: q.backend.sign(q.secret_keys[i], msg) for i in who}
    return assemble_certificate(ws, q.backend, kind, digest, partials)


def _real_encodings() -> dict[str, list[bytes]]:
    """Encodings made the way the system makes them: signed, certified."""
    blst = get_backend("blst")
    old, new = make_quorum(4, 3, blst, tag="p"), make_quorum(5, 3, blst, tag="q")
    heads = chain(3)
    fork = head(2, heads[1].head.head_hash, root=b"\x99" * 32)
    cert = _certify(old, SignedKind.EPOCH_HEAD, heads[2].head.head_hash, [0, 1, 2])
    rotation = SetRotation(
        new.witness_set,
        _certify(old, SignedKind.SET_ROTATION, new.witness_set.set_id, [1, 2, 3]),
    )
    return {
        "witness_set": [old.witness_set.encode(), new.witness_set.encode()],
        "certificate": [cert.encode()],
        "epoch_head": [h.head.encode() for h in heads],
        "signed_head": [h.encode() for h in heads],
        "evidence": [EquivocationEvidence.from_heads(heads[2], fork).encode()],
        "rotation": [rotation.encode()],
        "witness_key": [encode_witness_key(sk) for sk in old.secret_keys],
        "witness_pub": [encode_witness_pub(m).encode("ascii") for m in old.witness_set.members],
    }


REAL = _real_encodings()

DECODERS: dict[str, Callable[[bytes], Any]] = {
    "witness_set": WitnessSet.decode_untrusted,
    "certificate": QuorumCertificate.decode_untrusted,
    "epoch_head": EpochHead.decode_untrusted,
    "signed_head": SignedHead.decode_untrusted,
    "evidence": EquivocationEvidence.decode_untrusted,
    "rotation": SetRotation.decode_untrusted,
    "witness_key": decode_witness_key_untrusted,
    "witness_pub": decode_witness_pub_untrusted,
}
MAGIC = {
    "witness_set": b"CWS1",
    "certificate": b"CQC1",
    "epoch_head": b"CEH1",
    "signed_head": b"CEH1",
    "evidence": b"CEV1",
    "rotation": b"CSR1",
    "witness_key": b"CHHYBLS1\x00",
    "witness_pub": b"chhaya-witness-v1 ",
}
STRATEGIES: dict[str, st.SearchStrategy[Any]] = {
    "witness_set": witness_sets.map(WitnessSet.encode),
    "certificate": certificates.map(QuorumCertificate.encode),
    "epoch_head": epoch_heads.map(EpochHead.encode),
    "signed_head": signed_heads.map(SignedHead.encode),
    "evidence": evidence.map(EquivocationEvidence.encode),
    "rotation": rotations.map(SetRotation.encode),
    "witness_key": secret_keys.map(encode_witness_key),
    "witness_pub": members.map(lambda m: encode_witness_pub(m).encode("ascii")),
}
KINDS = sorted(DECODERS)
#: Formats where every strict prefix and every extension is invalid.
BINARY_KINDS = [k for k in KINDS if k != "witness_pub"]


def decode_or_reject(kind: str, data: bytes) -> None:
    """Decode; success must be canonical, failure must be DecodeError only."""
    try:
        decoded = DECODERS[kind](data)
    except DecodeError:
        return
    if kind == "witness_key":
        assert 0 < decoded < CURVE_ORDER
        assert encode_witness_key(decoded) == data
    elif kind == "witness_pub":
        assert valid_witness_id(decoded.witness_id)
        assert len(decoded.witness_id) <= MAX_WITNESS_ID_LEN
        canonical = encode_witness_pub(decoded)
        assert data.decode("ascii").strip() == canonical.strip()
        assert decode_witness_pub_untrusted(canonical.encode("ascii")) == decoded
    else:
        assert decoded.encode() == data


@pytest.mark.parametrize("kind", KINDS)
def test_real_encodings_round_trip(kind: str) -> None:
    for encoded in REAL[kind]:
        decoded = DECODERS[kind](encoded)
        if kind == "witness_key":
            assert encode_witness_key(decoded) == encoded
        elif kind == "witness_pub":
            assert encode_witness_pub(decoded).encode("ascii") == encoded
        else:
            assert decoded.encode() == encoded


# ------------------------------------------------------------ arbitrary bytes


@st.composite
def mutated(draw: st.DrawFn, kind: str) -> bytes:
    """A real or generated encoding with bytes flipped, cut short or extended."""
    source = st.sampled_from(REAL[kind]) | STRATEGIES[kind]
    data = bytearray(draw(source))
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["flip", "overwrite", "truncate", "extend"]))
        if op in ("flip", "overwrite") and data:
            i = draw(st.integers(0, len(data) - 1))
            if op == "flip":
                data[i] ^= 1 << draw(st.integers(0, 7))
            else:
                data[i] = draw(st.integers(0, 255))
        elif op == "truncate":
            del data[draw(st.integers(0, len(data))) :]
        else:
            data += draw(st.binary(min_size=1, max_size=16))
    return bytes(data)


@pytest.mark.parametrize("kind", KINDS)
@SETTINGS
@given(data=st.binary(max_size=1200))
def test_arbitrary_bytes_raise_only_decode_error(kind: str, data: bytes) -> None:
    decode_or_reject(kind, data)


@pytest.mark.parametrize("kind", KINDS)
@SETTINGS
@given(data=st.binary(max_size=1200))
def test_right_magic_then_arbitrary_bytes(kind: str, data: bytes) -> None:
    decode_or_reject(kind, MAGIC[kind] + data)


@pytest.mark.parametrize("kind", KINDS)
@SETTINGS
@given(data=st.data())
def test_mutated_encodings_raise_only_decode_error(kind: str, data: st.DataObject) -> None:
    decode_or_reject(kind, data.draw(mutated(kind)))


@pytest.mark.parametrize("kind", BINARY_KINDS)
@SETTINGS
@given(data=st.data())
def test_truncated_or_extended_encodings_are_rejected(kind: str, data: st.DataObject) -> None:
    encoded = data.draw(st.sampled_from(REAL[kind]) | STRATEGIES[kind])
    cut = data.draw(st.integers(0, len(encoded) - 1))
    extra = data.draw(st.binary(min_size=1, max_size=16))
    for bad in (encoded[:cut], encoded + extra):
        with pytest.raises(DecodeError):
            DECODERS[kind](bad)


@SETTINGS
@given(members, st.sampled_from(["", " ", "\t", "\r\n", "  \n"]), st.sampled_from(["", " ", "\n"]))
def test_witness_pub_tolerates_only_surrounding_whitespace(
    member: WitnessMember, before: str, after: str
) -> None:
    text = before + encode_witness_pub(member).rstrip("\n") + after
    assert decode_witness_pub_untrusted(text.encode("ascii")) == member
    for bad in (
        text.replace(" ", "  ", 1),
        text.replace(member.public_key.hex(), member.public_key.hex().upper()),
        text + " x",
    ):
        if bad.strip() == text.strip():
            continue  # upper() of hex without letters changes nothing
        with pytest.raises(DecodeError):
            decode_witness_pub_untrusted(bad.encode("ascii"))
