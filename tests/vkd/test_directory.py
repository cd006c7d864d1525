"""The directory end to end: publish, certify, look up, verify, audit."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chhaya import ChhayaError, DecodeError, VerificationError
from quorum import EquivocationDetected, QuorumCertificate, SignedHead, sign_head
from vkd import (
    AppendOnlyViolation,
    AppendOnlyViolationDetected,
    AuditProof,
    DirectoryTrust,
    DirectoryValue,
    HistoryProof,
    IdentityBundle,
    LookupProof,
    NotRegistered,
    VerifiedBinding,
    VerifiedHistory,
    audit_checker,
    verify_vkd_proof,
)

from .conftest import NOW, RNG, World, bundle_for, make_world


def _check(
    world: World, proof: LookupProof | HistoryProof, last: SignedHead | None = None
) -> object:
    return verify_vkd_proof(proof, world.trust, last, world.clock())


def test_lookup_returns_the_verified_bundle(world: World) -> None:
    alice, bob = bundle_for("alice"), bundle_for("bob")
    world.directory.add("alice", alice)
    world.directory.add("bob", bob)
    world.publish_and_certify()
    got = _check(world, world.directory.lookup("alice"))
    assert isinstance(got, VerifiedBinding)
    assert got.bundle == alice.bundle
    assert got.version == 1
    proof = world.directory.lookup("bob")
    assert LookupProof.decode_untrusted(proof.encode()) == proof


def test_updates_make_versions_and_history(world: World) -> None:
    values = [bundle_for(f"alice-{i}") for i in range(3)]
    for v in values:
        world.directory.add("alice", v)
        world.publish_and_certify()
    got = _check(world, world.directory.lookup("alice"))
    assert isinstance(got, VerifiedBinding)
    assert got.version == 3
    assert got.bundle == values[-1].bundle
    history = world.directory.history("alice")
    assert HistoryProof.decode_untrusted(history.encode()) == history
    verified = _check(world, history)
    assert isinstance(verified, VerifiedHistory)
    assert [(v, e) for v, e, _ in verified.versions] == [(1, 1), (2, 2), (3, 3)]
    assert [val for _, _, val in verified.versions] == values


def test_unregistered_handle_is_a_verified_absence(world: World) -> None:
    with pytest.raises(NotRegistered) as info:
        _check(world, world.directory.lookup("nobody"))
    assert info.value.check == "not-registered"


def test_tombstone_revokes(world: World) -> None:
    world.directory.add("alice", bundle_for("alice"))
    world.publish_and_certify()
    world.directory.add("alice", DirectoryValue(None))
    world.publish_and_certify()
    with pytest.raises(VerificationError) as info:
        _check(world, world.directory.lookup("alice"))
    assert info.value.check == "revoked"


def test_expired_bundle_is_refused(world: World) -> None:
    world.directory.add("alice", bundle_for("alice", expires=NOW))
    world.publish_and_certify()
    with pytest.raises(VerificationError) as info:
        _check(world, world.directory.lookup("alice"))
    assert info.value.check == "bundle-expired"


def test_uncertified_epochs_are_not_served(world: World) -> None:
    world.directory.add("alice", bundle_for("alice"))
    world.directory.publish(world.clock(), RNG)  # published, never certified
    with pytest.raises(NotRegistered):
        _check(world, world.directory.lookup("alice"))


# --- each named rejection ------------------------------------------------------


@pytest.fixture
def registered(world: World) -> World:
    world.directory.add("alice", bundle_for("alice"))
    world.directory.add("bob", bundle_for("bob"))
    world.publish_and_certify()
    return world


def _check_fails(world: World, proof: LookupProof, check: str, **kw: object) -> None:
    trust = kw.pop("trust", world.trust)
    last = kw.pop("last", None)
    now = kw.pop("now", world.clock())
    assert isinstance(trust, DirectoryTrust)
    assert last is None or isinstance(last, SignedHead)
    assert isinstance(now, int)
    with pytest.raises(VerificationError) as info:
        verify_vkd_proof(proof, trust, last, now)
    assert info.value.check == check, info.value


def test_wrong_vrf_key(registered: World) -> None:
    # VRF proofs made with a key other than the one the certified head names.
    other = make_world("other")
    other.directory.add("alice", bundle_for("alice"))
    other.publish_and_certify()
    proof = registered.directory.lookup("alice")
    assert proof.latest is not None
    foreign = other.directory.lookup("alice")
    assert foreign.latest is not None
    latest = dataclasses.replace(proof.latest, vrf_proof=foreign.latest.vrf_proof)
    _check_fails(registered, dataclasses.replace(proof, latest=latest), "vrf")


def test_proof_for_another_handle(registered: World) -> None:
    proof = dataclasses.replace(registered.directory.lookup("alice"), handle="bob")
    _check_fails(registered, proof, "vrf")


def test_stale_head(registered: World) -> None:
    proof = registered.directory.lookup("alice")
    late = proof.head.head.time_ms + registered.trust.max_head_age_ms + 1
    _check_fails(registered, proof, "stale-head", now=late)


def test_rolled_back_epoch(registered: World) -> None:
    old = registered.directory.lookup("alice")
    registered.directory.add("carol", bundle_for("carol"))
    newer = registered.publish_and_certify()
    _check_fails(registered, old, "rollback", last=newer)


def test_certificate_under_threshold(registered: World) -> None:
    proof = registered.directory.lookup("alice")
    bits = proof.certificate.signers
    two = bytes([bits[0] & 0b0011])
    cert = QuorumCertificate(proof.certificate.set_id, two, proof.certificate.signature)
    _check_fails(registered, dataclasses.replace(proof, certificate=cert), "certificate-threshold")


def test_head_from_another_directory(registered: World) -> None:
    other = make_world("other")
    other.directory.add("alice", bundle_for("alice"))
    other.publish_and_certify()
    _check_fails(registered, other.directory.lookup("alice"), "directory")


def test_equivocating_head_at_the_same_epoch(registered: World) -> None:
    proof = registered.directory.lookup("alice")
    h = proof.head.head
    fork = sign_head(
        registered.directory._keys.signing,  # the directory itself signs a second head
        registered.directory.vrf_public_key,
        dataclasses.replace(h, root=b"\x01" * 32),
    )
    with pytest.raises(EquivocationDetected) as info:
        verify_vkd_proof(proof, registered.trust, fork, registered.clock())
    info.value.evidence.verify()


def _decode_and_verify(
    world: World, decode: Callable[[bytes], LookupProof | HistoryProof], raw: bytes
) -> None:
    verify_vkd_proof(decode(raw), world.trust, None, world.clock())


def _decode_and_audit(raw: bytes) -> None:
    decoded = AuditProof.decode_untrusted(raw)
    audit_checker(decoded.old, decoded.new, raw)


def test_every_byte_flip_of_each_proof_is_rejected(registered: World) -> None:
    lookup = registered.directory.lookup("alice").encode()
    history = registered.directory.history("alice").encode()
    for raw, decode in (
        (lookup, LookupProof.decode_untrusted),
        (history, HistoryProof.decode_untrusted),
    ):
        for i in range(len(raw)):
            bad = bytearray(raw)
            bad[i] ^= 0x01
            with pytest.raises(ChhayaError):
                _decode_and_verify(registered, decode, bytes(bad))
    audit = registered.directory.audit(1).encode()
    for i in range(0, len(audit), 7):
        bad = bytearray(audit)
        bad[i] ^= 0x01
        with pytest.raises(ChhayaError):
            _decode_and_audit(bytes(bad))


def test_oversized_proofs_are_refused() -> None:
    with pytest.raises(DecodeError):
        LookupProof.decode_untrusted(b"CVL1" + bytes(200_000))
    with pytest.raises(DecodeError):
        HistoryProof.decode_untrusted(b"CVH1\x00\x01a\xff\xff" + bytes(100))


# --- a directory that rewrites an old binding ---------------------------------


def test_changed_binding_is_refused_by_witnesses_with_evidence(registered: World) -> None:
    d = registered.directory
    previous = d.head(d.certified_epoch())
    honest_head, honest_audit = d.publish(registered.clock(), RNG)  # empty batch
    assert honest_audit is not None
    # The directory claims a root in which alice's leaf changed, with the
    # honest batch and proof: the audit cannot reconcile the two roots.
    forged_head = dataclasses.replace(honest_head.head, root=b"\x42" * 32)
    forged = sign_head(d._keys.signing, d.vrf_public_key, forged_head)
    audit = AuditProof.create(
        d._keys.signing, previous, forged, honest_audit.batch, honest_audit.append_only
    )
    witness = registered.witnesses[0]
    with pytest.raises(AppendOnlyViolationDetected) as info:
        witness.sign_head(forged, audit.encode(), registered.clock())
    evidence = info.value.evidence
    evidence.verify()
    decoded = AppendOnlyViolation.decode_untrusted(evidence.encode())
    decoded.verify()
    # A client holding the evidence refuses the directory.
    trust = registered.trust.with_evidence(decoded)
    _check_fails(registered, d.lookup("alice"), "directory-equivocated", trust=trust)


def test_honest_audit_is_not_evidence(registered: World) -> None:
    with pytest.raises(VerificationError) as info:
        AppendOnlyViolation(registered.directory.audit(1)).verify()
    assert info.value.check == "evidence-invalid"


# --- decoders --------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_decoders_raise_only_decode_error(data: bytes) -> None:
    for decode in (
        LookupProof.decode_untrusted,
        HistoryProof.decode_untrusted,
        AuditProof.decode_untrusted,
        AppendOnlyViolation.decode_untrusted,
        IdentityBundle.decode_untrusted,
        DirectoryValue.decode_untrusted,
    ):
        with contextlib.suppress(DecodeError):
            decode(data)
        with contextlib.suppress(DecodeError):
            decode(b"CVL1" + data)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.sampled_from(["alice", "bob", "carol", "dave"]), min_size=1, max_size=6))
def test_lookup_round_trips_and_verifies_for_any_history(names: list[str]) -> None:
    w = make_world("hyp")
    for i, name in enumerate(names):
        w.directory.add(name, bundle_for(f"{name}{i}"))
        w.publish_and_certify()
    for name in set(names):
        proof = w.directory.lookup(name)
        assert LookupProof.decode_untrusted(proof.encode()) == proof
        got = verify_vkd_proof(proof, w.trust, None, w.clock())
        assert isinstance(got, VerifiedBinding)
        assert got.version == names.count(name)


def test_last_u64_version_is_refused(registered: World) -> None:
    # A malicious directory could publish version 2**64 - 1; then "the next
    # version" would not fit. The decoder refuses such a proof outright.
    proof = registered.directory.lookup("alice")
    raw = bytearray(proof.encode())
    at = 4 + 2 + len("alice")
    raw[at : at + 8] = ((1 << 64) - 1).to_bytes(8, "big")
    with pytest.raises(DecodeError, match="version out of range"):
        LookupProof.decode_untrusted(bytes(raw))
