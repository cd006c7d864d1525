"""Valid encodings that seed the quorum and key-directory harnesses.

One 3-of-4 witness quorum (blst backend), one directory key pair and one
small in-memory directory that the quorum certifies, all derived from fixed
labels, so the same seeds come out on every run and on every machine:

- epoch 0: the empty genesis;
- epoch 1: alice (one device, with prekeys) and bob (two devices, none);
- epoch 2: alice's second version (no prekeys) and carol, published as a
  tombstone.

Certificates are assembled straight from the witnesses' secret keys (the
directory's audit proofs are checked separately, by the harnesses that take
them). :func:`directory_world` checks that the lookups it serves verify, the
way ``_seeds`` replays its channel transcript, so a broken builder fails
loudly instead of seeding garbage.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from _seeds import DeterministicRng

from chhaya import VerificationError
from chhaya.crypto import FAST, SigningKey
from chhaya.identity import PrivateIdentity
from chhaya.prekeys import InMemoryPrekeyStore
from quorum import (
    CertificateVerifier,
    EpochHead,
    QuorumCertificate,
    SignedHead,
    SignedKind,
    WitnessMember,
    WitnessSet,
    assemble_certificate,
    directory_id_for,
    sign_head,
    signing_message,
)
from quorum.bls import BlsBackend, get_backend
from vkd import (
    AppendOnlyViolation,
    AuditProof,
    Directory,
    DirectoryKeys,
    DirectoryTrust,
    DirectoryValue,
    HistoryProof,
    IdentityBundle,
    InMemoryDirectoryStore,
    LookupProof,
    NotRegistered,
    VerifiedBinding,
    VerifiedHistory,
    verify_vkd_proof,
)
from vkd.tree import InMemoryNodeStore, SparseMerkleTree
from vkd.vrf import FAST_VRF

__all__ = [
    "EPOCH_MS",
    "NOW_MS",
    "THRESHOLD",
    "VERIFY_NOW_MS",
    "DirectoryWorld",
    "Quorum",
    "backend",
    "certify",
    "directory_key",
    "directory_vrf_public",
    "directory_world",
    "head",
    "quorum",
    "valid_certificates",
]

#: The genesis time; epoch e is published at NOW_MS + e * EPOCH_MS.
NOW_MS = 1_800_000_000_000
EPOCH_MS = 1000
#: What the vkd harnesses pass as the client's clock: the heads are fresh.
VERIFY_NOW_MS = NOW_MS + 10 * EPOCH_MS
THRESHOLD = 3
WITNESSES = 4


def _h(label: bytes) -> bytes:
    return hashlib.sha256(b"chhaya/fuzz/" + label).digest()


def backend() -> BlsBackend:
    return get_backend("blst")


# -- the witness quorum --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Quorum:
    secret_keys: tuple[int, ...]
    witness_set: WitnessSet


@functools.cache
def quorum(tag: bytes = b"w", n: int = WITNESSES, threshold: int = THRESHOLD) -> Quorum:
    b = backend()
    sks = tuple(b.key_gen(_h(b"witness/" + tag + b"/%d" % i)) for i in range(n))
    members = tuple(
        WitnessMember(f"{tag.decode().upper()}{i + 1}", b.sk_to_pk(sk), b.pop_prove(sk))
        for i, sk in enumerate(sks)
    )
    return Quorum(sks, WitnessSet(members, threshold))


def certify(
    q: Quorum, kind: SignedKind, digest: bytes, signers: Iterable[int] = (0, 1, 2)
) -> QuorumCertificate:
    """A certificate by the given members of ``q``, from their secret keys."""
    b = backend()
    ws = q.witness_set
    message = signing_message(kind, ws.set_id, digest)
    partials = {ws.members[i].witness_id: b.sign(q.secret_keys[i], message) for i in signers}
    return assemble_certificate(ws, b, kind, digest, partials)


def valid_certificates(q: Quorum, kind: SignedKind, digest: bytes) -> frozenset[bytes]:
    """Every certificate encoding that verifies: one per signer set of at
    least the threshold (BLS signatures are unique, and so is the bitmap)."""
    n = q.witness_set.size
    out = set()
    for mask in range(1 << n):
        signers = [i for i in range(n) if mask >> i & 1]
        if len(signers) >= q.witness_set.threshold:
            out.add(certify(q, kind, digest, signers).encode())
    return frozenset(out)


# -- the directory's keys and heads -----------------------------------------------


@functools.cache
def directory_key() -> SigningKey:
    return FAST.sig.from_seed(_h(b"directory/signing"))


def _vrf_secret() -> bytes:
    return _h(b"directory/vrf")


@functools.cache
def directory_vrf_public() -> bytes:
    return FAST_VRF.public_key(_vrf_secret())


def head(epoch: int, previous: bytes, root: bytes) -> SignedHead:
    """A head signed by the directory, at the epoch's fixed time."""
    key = directory_key()
    vrf = directory_vrf_public()
    epoch_head = EpochHead(
        directory_id_for(key.public_key, vrf), epoch, root, previous, NOW_MS + epoch * EPOCH_MS
    )
    return sign_head(key, vrf, epoch_head)


# -- a small directory -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DirectoryWorld:
    trust: DirectoryTrust
    #: alice (version 2), bob, carol (tombstone), nobody (version 0)
    lookups: tuple[LookupProof, ...]
    #: alice (two versions), bob, carol, nobody (no versions)
    histories: tuple[HistoryProof, ...]
    #: the audit proofs of epochs 1 and 2
    audits: tuple[AuditProof, ...]
    #: epoch 2's batch and append-only proof, signed for a forged root
    violation: AppendOnlyViolation
    #: alice's two bundles (the first with prekeys), bob's
    bundles: tuple[IdentityBundle, ...]


def _bundle(
    label: bytes, devices: tuple[bytes, ...], prekeys: bool, expires: int
) -> IdentityBundle:
    rng = DeterministicRng(b"vkd/identity/" + label)
    identity = PrivateIdentity.generate(rng)
    published = None
    if prekeys:
        store = InMemoryPrekeyStore(identity)
        store.rotate_signed_prekey(rng, NOW_MS)
        store.rotate_last_resort_kem_prekey(rng, NOW_MS)
        published = store.bundle_for_publication()
    return IdentityBundle(identity.public, devices, published, expires)


def _publish_and_certify(directory: Directory, q: Quorum, epoch: int) -> None:
    signed, _ = directory.publish(NOW_MS + epoch * EPOCH_MS, DeterministicRng(b"vkd/openings"))
    certificate = certify(q, SignedKind.EPOCH_HEAD, signed.head.head_hash)
    directory.attach_certificate(signed.head.epoch, certificate)


@functools.cache
def directory_world() -> DirectoryWorld:
    q = quorum()
    keys = DirectoryKeys(directory_key(), _vrf_secret())
    directory = Directory(keys, SparseMerkleTree(InMemoryNodeStore()), InMemoryDirectoryStore())
    expires = NOW_MS + 86_400_000
    alice1 = _bundle(b"alice", (b"alice-phone",), True, expires)
    alice2 = _bundle(b"alice-2", (b"alice-laptop",), False, expires + 1)
    bob = _bundle(b"bob", (b"bob-phone", b"bob-desktop"), False, expires)

    _publish_and_certify(directory, q, 0)
    directory.add("alice", DirectoryValue(alice1))
    directory.add("bob", DirectoryValue(bob))
    _publish_and_certify(directory, q, 1)
    directory.add("alice", DirectoryValue(alice2))
    directory.add("carol", DirectoryValue(None))
    _publish_and_certify(directory, q, 2)

    handles = ("alice", "bob", "carol", "nobody")
    lookups = tuple(directory.lookup(h) for h in handles)
    histories = tuple(directory.history(h) for h in handles)
    audits = (directory.audit(1), directory.audit(2))

    honest = audits[1]
    forged = sign_head(
        directory_key(),
        directory_vrf_public(),
        dataclasses.replace(honest.new.head, root=_h(b"forged root")),
    )
    violation = AppendOnlyViolation(
        AuditProof.create(directory_key(), honest.old, forged, honest.batch, honest.append_only)
    )

    trust = DirectoryTrust(
        CertificateVerifier(q.witness_set, backend()), directory_key().public_key
    )
    world = DirectoryWorld(trust, lookups, histories, audits, violation, (alice1, alice2, bob))
    _check(world)
    return world


def _check(world: DirectoryWorld) -> None:
    """The lookups and histories must verify as described, the audits pass."""
    outcomes: list[str] = []
    for proof in world.lookups:
        try:
            result = verify_vkd_proof(proof, world.trust, None, VERIFY_NOW_MS)
        except NotRegistered:
            outcomes.append("absent")
        except VerificationError as exc:
            outcomes.append(exc.check)
        else:
            if not isinstance(result, VerifiedBinding):
                raise AssertionError("a lookup verified as a history")
            outcomes.append(f"v{result.version}")
    if outcomes != ["v2", "v1", "revoked", "absent"]:
        raise AssertionError(f"seed lookups do not verify as built: {outcomes}")
    for history in world.histories:
        if not isinstance(
            verify_vkd_proof(history, world.trust, None, VERIFY_NOW_MS), VerifiedHistory
        ):
            raise AssertionError("a history verified as a lookup")
    if [len(h.versions) for h in world.histories] != [2, 1, 1, 0]:
        raise AssertionError("seed histories have the wrong lengths")
    for audit in world.audits:
        audit.verify()
    world.violation.verify()
