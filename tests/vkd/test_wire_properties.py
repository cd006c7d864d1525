"""Property tests for the key directory's wire types.

Round trips run on two kinds of values: structurally valid ones with
arbitrary field contents (nothing needs to verify to parse), and real proofs
from a small certified directory, built once per module, with some fields
swapped for arbitrary ones (``dataclasses.replace``). Decoders of outside
bytes raise only DecodeError, whatever arrives: random bytes, a right magic
with random bytes behind it, and real encodings with bytes flipped, cut short
or extended. Whatever does decode must re-encode to exactly the input. Any
exception other than DecodeError escapes the ``except`` clauses and fails.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chhaya.crypto import MLKEM1024_PUBLIC_KEY_SIZE
from chhaya.identity import PrivateIdentity, PublicIdentity
from chhaya.prekeys import InMemoryPrekeyStore, OneTimePrekey, PrekeyBundle
from chhaya.safety import DecodeError
from quorum import EpochHead, QuorumCertificate, SignedHead, sign_head
from vkd import (
    MAX_DEVICE_ID_LEN,
    MAX_DEVICES,
    MAX_LOOKUP_PROOF_SIZE,
    MAX_VERSION,
    AppendOnlyViolation,
    AuditProof,
    DirectoryValue,
    HistoryProof,
    IdentityBundle,
    LookupProof,
    VersionOpening,
)
from vkd.tree import (
    EMPTY_HASH,
    NODE_EMPTY,
    NODE_HASH,
    NODE_INNER,
    NODE_LEAF,
    AppendOnlyProof,
    MembershipProof,
    NonMembershipProof,
)
from vkd.vrf import VRF_PROOF_SIZE

from .conftest import NOW, bundle_for, det_rng, make_world

SETTINGS = settings(max_examples=150, deadline=None)

U64 = st.integers(min_value=0, max_value=2**64 - 1)
# The last u64 is reserved: a proof's "next version" must fit (vkd.MAX_VERSION).
VERSIONS = st.integers(min_value=1, max_value=MAX_VERSION - 1)


def exact(n: int) -> st.SearchStrategy[bytes]:
    return st.binary(min_size=n, max_size=n)


b32 = exact(32)
non_empty = b32.filter(lambda h: h != EMPTY_HASH)
handles = st.from_regex(r"[a-z0-9][a-z0-9._-]{0,63}", fullmatch=True)
paths = st.lists(st.just(EMPTY_HASH) | non_empty, max_size=12).map(tuple)
memberships = st.builds(MembershipProof, b32, b32, paths)
non_memberships = st.builds(NonMembershipProof, b32, st.none() | st.tuples(b32, b32), paths)
vrf_proofs = exact(VRF_PROOF_SIZE)
signed_heads = st.builds(
    SignedHead, st.builds(EpochHead, b32, U64, b32, b32, U64), b32, b32, exact(64)
)
certificates = st.builds(QuorumCertificate, b32, st.binary(max_size=128), exact(96))
openings = st.builds(
    VersionOpening,
    value=st.binary(max_size=300),
    opening=b32,
    epoch=U64,
    vrf_proof=vrf_proofs,
    membership=memberships,
)


@st.composite
def append_only_proofs(draw: st.DrawFn) -> AppendOnlyProof:
    """Small well-shaped proofs (not necessarily true ones)."""
    kinds = bytearray()
    leaves: list[tuple[bytes, bytes]] = []
    hashes: list[bytes] = []
    budget = draw(st.integers(0, 8))
    stack = [0]
    while stack:
        stack.pop()
        choices = [NODE_EMPTY, NODE_LEAF, NODE_HASH] + ([NODE_INNER] if budget > 0 else [])
        kind = draw(st.sampled_from(choices))
        kinds.append(kind)
        if kind == NODE_INNER:
            budget -= 1
            stack += [0, 0]
        elif kind == NODE_LEAF:
            leaves.append((draw(b32), draw(b32)))
        elif kind == NODE_HASH:
            hashes.append(draw(non_empty))
    return AppendOnlyProof(bytes(kinds), tuple(leaves), tuple(hashes))


@st.composite
def lookups(draw: st.DrawFn) -> LookupProof:
    version = draw(st.just(0) | VERSIONS)
    return LookupProof(
        draw(handles),
        version,
        None if version == 0 else draw(openings),
        draw(vrf_proofs),
        draw(non_memberships),
        draw(signed_heads),
        draw(certificates),
    )


histories = st.builds(
    HistoryProof,
    handles,
    st.lists(openings, max_size=3).map(tuple),
    vrf_proofs,
    non_memberships,
    signed_heads,
    certificates,
)
batches = st.lists(st.tuples(b32, b32), max_size=5).map(tuple)
audits = st.builds(AuditProof, signed_heads, signed_heads, batches, append_only_proofs(), exact(64))
violations = st.builds(AppendOnlyViolation, audits)
public_identities = st.builds(PublicIdentity, b32, b32, exact(MLKEM1024_PUBLIC_KEY_SIZE))
device_lists = st.lists(
    st.binary(min_size=1, max_size=MAX_DEVICE_ID_LEN), min_size=1, max_size=MAX_DEVICES
).map(tuple)


# ------------------------------------------------------------- a real directory


def _prekeys() -> PrekeyBundle:
    owner = PrivateIdentity.generate(det_rng(b"wire-properties/prekeys"))
    store = InMemoryPrekeyStore(owner)
    rng = det_rng(b"wire-properties/prekey-store")
    store.rotate_signed_prekey(rng, NOW)
    store.rotate_last_resort_kem_prekey(rng, NOW)
    store.generate_one_time_prekeys(1, rng, NOW)
    return store.take_bundle(NOW)


PREKEYS = _prekeys()
assert PREKEYS.one_time_prekey is not None
ONE_TIME: OneTimePrekey = PREKEYS.one_time_prekey


@st.composite
def bundles(draw: st.DrawFn) -> IdentityBundle:
    identity = draw(public_identities)
    prekeys = None
    if draw(st.booleans()):
        one_time = draw(st.sampled_from([None, ONE_TIME]))
        prekeys = dataclasses.replace(PREKEYS, identity=identity, one_time_prekey=one_time)
    return IdentityBundle(identity, draw(device_lists), prekeys, draw(U64))


values = st.builds(DirectoryValue, st.none() | bundles())


def _with_prekeys(value: DirectoryValue) -> DirectoryValue:
    assert value.bundle is not None
    prekeys = dataclasses.replace(PREKEYS, identity=value.bundle.identity)
    return DirectoryValue(dataclasses.replace(value.bundle, prekeys=prekeys))


def _real_values() -> dict[str, list[Any]]:
    """Proofs, bundles and values as the directory serves them."""
    world = make_world("wire-properties")
    d = world.directory
    d.add("alice", _with_prekeys(bundle_for("alice")))
    d.add("bob", bundle_for("bob"))
    world.publish_and_certify()
    d.add("alice", bundle_for("alice-2"))
    d.add("carol", DirectoryValue(None))
    world.publish_and_certify()
    names = ["alice", "bob", "carol", "nobody"]
    honest = d.audit(2)
    forged = sign_head(
        d._keys.signing,
        d.vrf_public_key,
        dataclasses.replace(honest.new.head, root=b"\x42" * 32),
    )
    violation = AppendOnlyViolation(
        AuditProof.create(d._keys.signing, honest.old, forged, honest.batch, honest.append_only)
    )
    vals = [_with_prekeys(bundle_for("alice")), bundle_for("bob"), DirectoryValue(None)]
    real: dict[str, list[Any]] = {
        "lookup": [d.lookup(n) for n in names],
        "history": [d.history(n) for n in names],
        "audit": [d.audit(1), honest],
        "violation": [violation],
        "bundle": [v.bundle for v in vals if v.bundle is not None],
        "value": vals,
    }
    return real


REAL = _real_values()

DECODERS: dict[str, Callable[[bytes], Any]] = {
    "lookup": LookupProof.decode_untrusted,
    "history": HistoryProof.decode_untrusted,
    "audit": AuditProof.decode_untrusted,
    "violation": AppendOnlyViolation.decode_untrusted,
    "bundle": IdentityBundle.decode_untrusted,
    "value": DirectoryValue.decode_untrusted,
}
GENERATED: dict[str, st.SearchStrategy[Any]] = {
    "lookup": lookups(),
    "history": histories,
    "audit": audits,
    "violation": violations,
    "bundle": bundles(),
    "value": values,
}
#: Fields of each real value that may be swapped for an arbitrary one.
FIELDS: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "lookup": {
        "handle": handles,
        "next_vrf_proof": vrf_proofs,
        "non_membership": non_memberships,
        "head": signed_heads,
        "certificate": certificates,
    },
    "history": {
        "handle": handles,
        "versions": st.lists(openings, max_size=2).map(tuple),
        "next_vrf_proof": vrf_proofs,
        "non_membership": non_memberships,
        "head": signed_heads,
        "certificate": certificates,
    },
    "audit": {
        "old": signed_heads,
        "new": signed_heads,
        "batch": batches,
        "append_only": append_only_proofs(),
        "signature": exact(64),
    },
    "violation": {"audit": audits},
    "bundle": {"identity": public_identities, "devices": device_lists, "expires_ms": U64},
    "value": {"bundle": st.none() | bundles()},
}
MAGIC = {
    "lookup": b"CVL1",
    "history": b"CVH1",
    "audit": b"CVA1",
    "violation": b"CVV1CVA1",
    "bundle": b"CIB1",
    "value": b"\x01CIB1",
}
KINDS = sorted(DECODERS)


@st.composite
def variants(draw: st.DrawFn, kind: str) -> Any:
    """A real value with some of its fields replaced by arbitrary ones."""
    value = draw(st.sampled_from(REAL[kind]))
    fields = FIELDS[kind]
    chosen = draw(st.lists(st.sampled_from(sorted(fields)), max_size=len(fields), unique=True))
    changes = {name: draw(fields[name]) for name in chosen}
    if kind == "bundle" and "identity" in changes and value.prekeys is not None:
        # The prekeys must belong to the bundle's identity.
        changes["prekeys"] = dataclasses.replace(value.prekeys, identity=changes["identity"])
    if kind == "lookup" and value.latest is not None and draw(st.booleans()):
        changes["version"] = draw(st.integers(1, MAX_VERSION - 1))
        changes["latest"] = draw(openings)
    return dataclasses.replace(value, **changes)


def decode_or_reject(kind: str, data: bytes) -> None:
    """Decode; success must re-encode to the input, failure must be DecodeError."""
    try:
        decoded = DECODERS[kind](data)
    except DecodeError:
        return
    assert decoded.encode() == data


# ----------------------------------------------------------------- round trip


@pytest.mark.parametrize("kind", KINDS)
def test_real_values_round_trip(kind: str) -> None:
    for value in REAL[kind]:
        encoded = value.encode()
        assert DECODERS[kind](encoded) == value
        assert DECODERS[kind](encoded).encode() == encoded


@pytest.mark.parametrize("kind", KINDS)
@SETTINGS
@given(data=st.data())
def test_generated_values_round_trip(kind: str, data: st.DataObject) -> None:
    value = data.draw(GENERATED[kind])
    encoded = value.encode()
    if kind == "lookup":
        assert len(encoded) <= MAX_LOOKUP_PROOF_SIZE
    assert DECODERS[kind](encoded) == value


@pytest.mark.parametrize("kind", KINDS)
@SETTINGS
@given(data=st.data())
def test_real_values_with_replaced_fields_round_trip(kind: str, data: st.DataObject) -> None:
    value = data.draw(variants(kind))
    assert DECODERS[kind](value.encode()) == value


# ------------------------------------------------------------ arbitrary bytes


def _encodings(kind: str) -> st.SearchStrategy[bytes]:
    real = st.sampled_from([v.encode() for v in REAL[kind]])
    return (
        real | variants(kind).map(lambda v: v.encode()) | GENERATED[kind].map(lambda v: v.encode())
    )


@st.composite
def mutated(draw: st.DrawFn, kind: str) -> bytes:
    """A valid encoding with bytes flipped or overwritten, cut short or extended."""
    data = bytearray(draw(_encodings(kind)))
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
@given(data=st.binary(max_size=3000))
def test_arbitrary_bytes_raise_only_decode_error(kind: str, data: bytes) -> None:
    decode_or_reject(kind, data)


@pytest.mark.parametrize("kind", KINDS)
@SETTINGS
@given(data=st.binary(max_size=3000))
def test_right_magic_then_arbitrary_bytes(kind: str, data: bytes) -> None:
    decode_or_reject(kind, MAGIC[kind] + data)


@pytest.mark.parametrize("kind", KINDS)
@SETTINGS
@given(data=st.data())
def test_mutated_encodings_raise_only_decode_error(kind: str, data: st.DataObject) -> None:
    decode_or_reject(kind, data.draw(mutated(kind)))


@pytest.mark.parametrize("kind", KINDS)
@SETTINGS
@given(data=st.data())
def test_truncated_or_extended_encodings_are_rejected(kind: str, data: st.DataObject) -> None:
    encoded = data.draw(_encodings(kind))
    cut = data.draw(st.integers(0, len(encoded) - 1))
    extra = data.draw(st.binary(min_size=1, max_size=16))
    for bad in (encoded[:cut], encoded + extra):
        with pytest.raises(DecodeError):
            DECODERS[kind](bad)
