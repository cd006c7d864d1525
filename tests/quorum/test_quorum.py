"""Witness sets, certificates, rotation, the witness state machine, evidence."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chhaya import DecodeError, VerificationError
from node.witness_store import FileWitnessStore
from quorum import (
    CertificateVerifier,
    EquivocationDetected,
    EquivocationEvidence,
    HeadTracker,
    InMemoryWitnessStore,
    QuorumCertificate,
    SetRotation,
    SignedHead,
    SignedKind,
    Witness,
    WitnessMember,
    WitnessSet,
    assemble_certificate,
    signing_message,
)
from quorum.bls import BlsBackend

from .conftest import DIRECTORY, NOW, OTHER_DIRECTORY, VRF_KEY, Quorum, chain, head, make_quorum


def _certify(q: Quorum, kind: SignedKind, digest: bytes, who: list[int]) -> QuorumCertificate:
    ws = q.witness_set
    msg = signing_message(kind, ws.set_id, digest)
    partials = {ws.members[i].witness_id: q.backend.sign(q.secret_keys[i], msg) for i in who}
    return assemble_certificate(ws, q.backend, kind, digest, partials)


# --- witness sets ------------------------------------------------------------


def test_set_round_trip_and_id(quorum4: Quorum) -> None:
    ws = quorum4.witness_set
    assert WitnessSet.decode_untrusted(ws.encode()) == ws
    assert len(ws.set_id) == 32
    reordered = WitnessSet(tuple(reversed(ws.members)), ws.threshold)
    assert reordered.set_id != ws.set_id  # order is part of the set (bitmap positions)
    assert WitnessSet(ws.members, 4).set_id != ws.set_id


@pytest.mark.parametrize("threshold", [0, 1, 2, 5])
def test_threshold_must_be_a_majority(quorum4: Quorum, threshold: int) -> None:
    ws = WitnessSet(quorum4.witness_set.members, threshold)
    with pytest.raises(VerificationError) as info:
        ws.validate(quorum4.backend)
    assert info.value.check == "witness-set-threshold"


def test_duplicate_members_are_refused(quorum4: Quorum) -> None:
    m = quorum4.witness_set.members
    with pytest.raises(VerificationError, match="duplicate"):
        WitnessSet((m[0], m[1], m[0]), 2).validate(quorum4.backend)
    clone = WitnessMember("OTHER", m[0].public_key, m[0].proof_of_possession)
    with pytest.raises(VerificationError, match="duplicate"):
        WitnessSet((m[0], clone, m[1]), 2).validate(quorum4.backend)


def test_key_without_valid_proof_of_possession_is_refused(quorum4: Quorum) -> None:
    """The rogue-key defence: a member must prove it knows its secret key."""
    m = quorum4.witness_set.members
    stolen_pop = WitnessMember(m[3].witness_id, m[3].public_key, m[2].proof_of_possession)
    with pytest.raises(VerificationError) as info:
        WitnessSet((*m[:3], stolen_pop), 3).validate(quorum4.backend)
    assert info.value.check == "proof-of-possession"


def test_identity_and_garbage_keys_are_refused(quorum4: Quorum) -> None:
    m = quorum4.witness_set.members
    identity = bytes([0xC0]) + bytes(47)
    for bad in (identity, b"\x00" * 48, b"\xff" * 48):
        member = WitnessMember("BAD", bad, m[0].proof_of_possession)
        with pytest.raises(VerificationError):
            WitnessSet((*m[:3], member), 3).validate(quorum4.backend)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600))
def test_set_decoder_raises_only_decode_error(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        WitnessSet.decode_untrusted(data)


# --- certificates ---------------------------------------------------------------


def test_certificate_round_trip_and_verify(quorum4: Quorum) -> None:
    cert = _certify(quorum4, SignedKind.MESSAGE, b"hello", [0, 1, 3])
    assert QuorumCertificate.decode_untrusted(cert.encode()) == cert
    verifier = CertificateVerifier(quorum4.witness_set, quorum4.backend)
    assert verifier.verify(cert, SignedKind.MESSAGE, b"hello") == [0, 1, 3]


def test_below_threshold_cannot_be_assembled_or_verified(quorum4: Quorum) -> None:
    with pytest.raises(VerificationError) as info:
        _certify(quorum4, SignedKind.MESSAGE, b"m", [0, 1])
    assert info.value.check == "certificate-threshold"
    good = _certify(quorum4, SignedKind.MESSAGE, b"m", [0, 1, 2])
    two = QuorumCertificate(good.set_id, bytes([0b0011]), good.signature)
    verifier = CertificateVerifier(quorum4.witness_set, quorum4.backend)
    with pytest.raises(VerificationError) as info:
        verifier.verify(two, SignedKind.MESSAGE, b"m")
    assert info.value.check == "certificate-threshold"


def test_bitmap_shape_is_checked(quorum4: Quorum) -> None:
    cert = _certify(quorum4, SignedKind.MESSAGE, b"m", [0, 1, 2])
    verifier = CertificateVerifier(quorum4.witness_set, quorum4.backend)
    for bitmap in (cert.signers + b"\x00", b"", bytes([0b10111])):  # longer, empty, bit 4 of 4
        bad = QuorumCertificate(cert.set_id, bitmap, cert.signature)
        with pytest.raises(VerificationError) as info:
            verifier.verify(bad, SignedKind.MESSAGE, b"m")
        assert info.value.check in {"certificate-bitmap", "certificate-threshold"}


def test_signer_bits_must_match_the_aggregate(quorum4: Quorum) -> None:
    cert = _certify(quorum4, SignedKind.MESSAGE, b"m", [0, 1, 2])
    verifier = CertificateVerifier(quorum4.witness_set, quorum4.backend)
    claimed = QuorumCertificate(cert.set_id, bytes([0b1110]), cert.signature)
    with pytest.raises(VerificationError) as info:
        verifier.verify(claimed, SignedKind.MESSAGE, b"m")
    assert info.value.check == "certificate-signature"


def test_certificate_for_another_set_is_refused(quorum4: Quorum, blst: BlsBackend) -> None:
    other = make_quorum(4, 3, blst, tag="x")
    cert = _certify(other, SignedKind.MESSAGE, b"m", [0, 1, 2])
    verifier = CertificateVerifier(quorum4.witness_set, quorum4.backend)
    with pytest.raises(VerificationError) as info:
        verifier.verify(cert, SignedKind.MESSAGE, b"m")
    assert info.value.check == "certificate-set"
    # Even with the set id forged, the signatures are from other keys.
    forged = QuorumCertificate(quorum4.witness_set.set_id, cert.signers, cert.signature)
    with pytest.raises(VerificationError) as info:
        verifier.verify(forged, SignedKind.MESSAGE, b"m")
    assert info.value.check == "certificate-signature"


def test_domain_separation_between_kinds(quorum4: Quorum) -> None:
    digest = b"\x42" * 32
    cert = _certify(quorum4, SignedKind.MESSAGE, digest, [0, 1, 2])
    verifier = CertificateVerifier(quorum4.witness_set, quorum4.backend)
    for kind in (SignedKind.EPOCH_HEAD, SignedKind.SET_ROTATION):
        with pytest.raises(VerificationError):
            verifier.verify(cert, kind, digest)


def test_bad_partial_and_unknown_witness_are_named(quorum4: Quorum) -> None:
    ws = quorum4.witness_set
    msg = signing_message(SignedKind.MESSAGE, ws.set_id, b"m")
    good = {
        ws.members[i].witness_id: quorum4.backend.sign(quorum4.secret_keys[i], msg)
        for i in range(3)
    }
    bad = dict(good)
    bad["W2"] = quorum4.backend.sign(quorum4.secret_keys[0], msg)
    with pytest.raises(VerificationError) as info:
        assemble_certificate(ws, quorum4.backend, SignedKind.MESSAGE, b"m", bad)
    assert info.value.check == "partial-signature"
    with pytest.raises(VerificationError) as info:
        assemble_certificate(ws, quorum4.backend, SignedKind.MESSAGE, b"m", {**good, "NOPE": b"x"})
    assert info.value.check == "unknown-witness"


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_certificate_decoder_raises_only_decode_error(data: bytes) -> None:
    try:
        cert = QuorumCertificate.decode_untrusted(data)
    except DecodeError:
        return
    assert cert.encode() == data


# --- rotation ---------------------------------------------------------------------


def test_rotation_needs_a_threshold_of_the_old_set(quorum4: Quorum, blst: BlsBackend) -> None:
    new = make_quorum(5, 3, blst, tag="n")
    old_verifier = CertificateVerifier(quorum4.witness_set, blst)
    cert = _certify(quorum4, SignedKind.SET_ROTATION, new.witness_set.set_id, [1, 2, 3])
    rotation = SetRotation(new.witness_set, cert)
    decoded = SetRotation.decode_untrusted(rotation.encode())
    assert decoded.verify(old_verifier, blst).set_id == new.witness_set.set_id
    # Signed by the new set itself: not valid.
    self_signed = SetRotation(
        new.witness_set, _certify(new, SignedKind.SET_ROTATION, new.witness_set.set_id, [0, 1, 2])
    )
    with pytest.raises(VerificationError):
        self_signed.verify(old_verifier, blst)
    # A message certificate over the same digest: wrong kind.
    as_message = SetRotation(
        new.witness_set, _certify(quorum4, SignedKind.MESSAGE, new.witness_set.set_id, [0, 1, 2])
    )
    with pytest.raises(VerificationError):
        as_message.verify(old_verifier, blst)


# --- the witness -------------------------------------------------------------------


def _no_audit(old: SignedHead, new: SignedHead, proof: bytes) -> None:
    if proof == b"not append-only":
        raise VerificationError("append-only", "a leaf changed")


def _witness(q: Quorum, store: object, i: int = 0) -> Witness:
    return Witness(
        secret_key=q.secret_keys[i],
        backend=q.backend,
        set_id=q.witness_set.set_id,
        directory_key=DIRECTORY.public_key,
        directory_vrf_key=VRF_KEY,
        store=store,  # type: ignore[arg-type]
        audit=_no_audit,
    )


def test_witnesses_certify_a_chain(quorum4: Quorum) -> None:
    heads = chain(4)
    witnesses = [_witness(quorum4, InMemoryWitnessStore(), i) for i in range(4)]
    verifier = CertificateVerifier(quorum4.witness_set, quorum4.backend)
    tracker = HeadTracker(verifier, DIRECTORY.public_key, VRF_KEY)
    for h in heads:
        partials = {
            quorum4.witness_set.members[i].witness_id: witnesses[i].sign_head(h, b"", NOW)
            for i in range(3)
        }
        cert = assemble_certificate(
            quorum4.witness_set, quorum4.backend, SignedKind.EPOCH_HEAD, h.head.head_hash, partials
        )
        tracker.accept(h, cert)
    assert tracker.latest == heads[-1]


def test_witness_refuses_gaps_forks_and_bad_heads(quorum4: Quorum) -> None:
    heads = chain(3)
    w = _witness(quorum4, InMemoryWitnessStore())
    with pytest.raises(VerificationError) as info:
        w.sign_head(heads[1], b"", NOW)  # must start at genesis
    assert info.value.check == "epoch"
    w.sign_head(heads[0], b"", NOW)
    with pytest.raises(VerificationError) as info:
        w.sign_head(heads[2], b"", NOW)  # skips epoch 1
    assert info.value.check == "epoch"
    fork = head(1, previous=b"\x99" * 32)
    with pytest.raises(VerificationError) as info:
        w.sign_head(fork, b"", NOW)
    assert info.value.check == "previous-hash"
    with pytest.raises(VerificationError) as info:
        w.sign_head(heads[1], b"not append-only", NOW)
    assert info.value.check == "append-only"
    alien = head(1, heads[0].head.head_hash, key=OTHER_DIRECTORY)
    with pytest.raises(VerificationError) as info:
        w.sign_head(alien, b"", NOW)
    assert info.value.check == "directory"
    tampered = SignedHead(heads[1].head, heads[1].directory_key, VRF_KEY, bytes(64))
    with pytest.raises(VerificationError) as info:
        w.sign_head(tampered, b"", NOW)
    assert info.value.check == "head-signature"
    future = head(1, heads[0].head.head_hash, time_ms=NOW + 3_600_000)
    with pytest.raises(VerificationError) as info:
        w.sign_head(future, b"", NOW)
    assert info.value.check == "head-time"
    assert w.sign_head(heads[1], b"", NOW)  # the right head still works


def test_same_head_twice_is_idempotent(quorum4: Quorum) -> None:
    w = _witness(quorum4, InMemoryWitnessStore())
    h = head(0)
    assert w.sign_head(h, b"", NOW) == w.sign_head(h, b"", NOW)


def test_witness_never_signs_two_heads_for_one_epoch_even_after_restart(
    quorum4: Quorum, tmp_path: Path
) -> None:
    state = tmp_path / "witness.state"
    first = _witness(quorum4, FileWitnessStore(state))
    first.sign_head(head(0), b"", NOW)
    del first  # "restart": a new witness reads the same file
    restarted = _witness(quorum4, FileWitnessStore(state))
    other = head(0, root=b"\x22" * 32)
    with pytest.raises(EquivocationDetected) as info:
        restarted.sign_head(other, b"", NOW)
    evidence = info.value.evidence
    evidence.verify()
    assert EquivocationEvidence.decode_untrusted(evidence.encode()) == evidence


def test_corrupt_witness_state_stops_signing(quorum4: Quorum, tmp_path: Path) -> None:
    from chhaya import StorageError

    state = tmp_path / "witness.state"
    _witness(quorum4, FileWitnessStore(state)).sign_head(head(0), b"", NOW)
    data = bytearray(state.read_bytes())
    data[10] ^= 1
    state.write_bytes(bytes(data))
    with pytest.raises(StorageError, match="corrupt"):
        _witness(quorum4, FileWitnessStore(state)).sign_head(head(0), b"", NOW)


# --- evidence and the client ------------------------------------------------------


def test_evidence_must_really_show_equivocation() -> None:
    a, b = head(3), head(3, root=b"\x33" * 32)
    EquivocationEvidence.from_heads(a, b).verify()
    with pytest.raises(VerificationError) as info:
        EquivocationEvidence(a, a).verify()
    assert info.value.check == "evidence-identical"
    with pytest.raises(VerificationError) as info:
        EquivocationEvidence(a, head(4)).verify()
    assert info.value.check == "evidence-epoch"
    with pytest.raises(VerificationError) as info:
        EquivocationEvidence(a, head(3, key=OTHER_DIRECTORY)).verify()
    assert info.value.check == "evidence-directory"
    forged = SignedHead(b.head, b.directory_key, VRF_KEY, bytes(64))
    with pytest.raises(VerificationError):
        EquivocationEvidence(a, forged).verify()


def test_client_holding_evidence_refuses_the_directory(quorum4: Quorum) -> None:
    verifier = CertificateVerifier(quorum4.witness_set, quorum4.backend)
    tracker = HeadTracker(verifier, DIRECTORY.public_key, VRF_KEY)
    h0 = head(0)
    tracker.accept(h0, _certify(quorum4, SignedKind.EPOCH_HEAD, h0.head.head_hash, [0, 1, 2]))
    evidence = EquivocationEvidence.from_heads(head(5), head(5, root=b"\x55" * 32))
    tracker.add_evidence(EquivocationEvidence.decode_untrusted(evidence.encode()))
    h1 = head(1, h0.head.head_hash)
    with pytest.raises(VerificationError) as info:
        tracker.accept(h1, _certify(quorum4, SignedKind.EPOCH_HEAD, h1.head.head_hash, [0, 1, 2]))
    assert info.value.check == "directory-equivocated"


def test_client_detects_equivocation_itself(quorum4: Quorum) -> None:
    verifier = CertificateVerifier(quorum4.witness_set, quorum4.backend)
    tracker = HeadTracker(verifier, DIRECTORY.public_key, VRF_KEY)
    a, b = head(0), head(0, root=b"\x77" * 32)
    tracker.accept(a, _certify(quorum4, SignedKind.EPOCH_HEAD, a.head.head_hash, [0, 1, 2]))
    with pytest.raises(VerificationError) as info:
        tracker.accept(b, _certify(quorum4, SignedKind.EPOCH_HEAD, b.head.head_hash, [1, 2, 3]))
    assert info.value.check == "directory-equivocated"
    assert tracker.evidence is not None


def test_client_refuses_rollback_and_uncertified_heads(quorum4: Quorum) -> None:
    verifier = CertificateVerifier(quorum4.witness_set, quorum4.backend)
    tracker = HeadTracker(verifier, DIRECTORY.public_key, VRF_KEY)
    heads = chain(3)
    for h in heads:
        tracker.accept(h, _certify(quorum4, SignedKind.EPOCH_HEAD, h.head.head_hash, [0, 1, 2]))
    with pytest.raises(VerificationError) as info:
        tracker.accept(
            heads[1], _certify(quorum4, SignedKind.EPOCH_HEAD, heads[1].head.head_hash, [0, 1, 2])
        )
    assert info.value.check == "rollback"
    h3 = head(3, heads[2].head.head_hash)
    wrong = _certify(quorum4, SignedKind.EPOCH_HEAD, heads[2].head.head_hash, [0, 1, 2])
    with pytest.raises(VerificationError) as info:
        tracker.accept(h3, wrong)
    assert info.value.check == "certificate-signature"


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600))
def test_head_and_evidence_decoders_raise_only_decode_error(data: bytes) -> None:
    for decode in (SignedHead.decode_untrusted, EquivocationEvidence.decode_untrusted):
        with contextlib.suppress(DecodeError):
            decode(data)


def test_genesis_root_is_enforced_when_configured(quorum4: Quorum) -> None:
    w = Witness(
        secret_key=quorum4.secret_keys[0],
        backend=quorum4.backend,
        set_id=quorum4.witness_set.set_id,
        directory_key=DIRECTORY.public_key,
        directory_vrf_key=VRF_KEY,
        store=InMemoryWitnessStore(),
        audit=_no_audit,
        genesis_root=b"\x00" * 32,
    )
    with pytest.raises(VerificationError) as info:
        w.sign_head(head(0), b"", NOW)  # root 0x11..., not the empty root
    assert info.value.check == "genesis-root"
    assert w.sign_head(head(0, root=b"\x00" * 32), b"", NOW)


def test_evidence_has_one_encoding() -> None:
    evidence = EquivocationEvidence.from_heads(head(7), head(7, root=b"\x70" * 32))
    swapped = EquivocationEvidence(evidence.second, evidence.first)
    with pytest.raises(DecodeError, match="canonical order"):
        EquivocationEvidence.decode_untrusted(swapped.encode())
