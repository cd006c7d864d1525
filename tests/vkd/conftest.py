"""A directory with a 3-of-4 witness quorum, all in memory."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from chhaya.crypto import FAST, Rng
from chhaya.identity import PrivateIdentity
from quorum import (
    CertificateVerifier,
    InMemoryWitnessStore,
    SignedHead,
    SignedKind,
    Witness,
    WitnessMember,
    WitnessSet,
    assemble_certificate,
)
from quorum.bls import get_backend
from vkd import (
    Directory,
    DirectoryKeys,
    DirectoryTrust,
    DirectoryValue,
    IdentityBundle,
    InMemoryDirectoryStore,
    audit_checker,
)
from vkd.tree import EMPTY_HASH, InMemoryNodeStore, SparseMerkleTree

NOW = 1_800_000_000_000


def det_rng(seed: bytes) -> Rng:
    counter = itertools.count()

    def rng(n: int) -> bytes:
        out = b""
        while len(out) < n:
            out += hashlib.sha256(seed + next(counter).to_bytes(8, "big")).digest()
        return out[:n]

    return rng


RNG = det_rng(b"vkd-tests")


def bundle_for(name: str, expires: int = NOW + 86_400_000) -> DirectoryValue:
    identity = PrivateIdentity.generate(det_rng(name.encode()))
    return DirectoryValue(
        IdentityBundle(identity.public, (b"peer-" + name.encode(),), None, expires)
    )


@dataclass
class World:
    directory: Directory
    witnesses: list[Witness]
    members: list[WitnessMember]
    witness_set: WitnessSet
    trust: DirectoryTrust
    clock: Callable[[], int]

    def publish_and_certify(self, signers: tuple[int, ...] = (0, 1, 2)) -> SignedHead:
        now = self.clock()
        head, audit = self.directory.publish(now, RNG)
        proof = b"" if audit is None else audit.encode()
        partials = {
            self.members[i].witness_id: self.witnesses[i].sign_head(head, proof, now)
            for i in signers
        }
        backend = get_backend("blst")
        cert = assemble_certificate(
            self.witness_set, backend, SignedKind.EPOCH_HEAD, head.head.head_hash, partials
        )
        self.directory.attach_certificate(head.head.epoch, cert)
        return head


def make_world(seed: str = "dir") -> World:
    backend = get_backend("blst")
    sks = [backend.key_gen(hashlib.sha256(f"{seed}-w{i}".encode()).digest()) for i in range(4)]
    members = [
        WitnessMember(f"W{i + 1}", backend.sk_to_pk(sk), backend.pop_prove(sk))
        for i, sk in enumerate(sks)
    ]
    ws = WitnessSet(tuple(members), 3)
    keys = DirectoryKeys(
        FAST.sig.from_seed(hashlib.sha256(f"{seed}-sig".encode()).digest()),
        hashlib.sha256(f"{seed}-vrf".encode()).digest(),
    )
    directory = Directory(keys, SparseMerkleTree(InMemoryNodeStore()), InMemoryDirectoryStore())
    witnesses = [
        Witness(
            secret_key=sk,
            backend=backend,
            set_id=ws.set_id,
            directory_key=directory.directory_key,
            directory_vrf_key=directory.vrf_public_key,
            store=InMemoryWitnessStore(),
            audit=audit_checker,
            genesis_root=EMPTY_HASH,
        )
        for sk in sks
    ]
    trust = DirectoryTrust(CertificateVerifier(ws, backend), directory.directory_key)
    ticks = itertools.count()
    world = World(directory, witnesses, members, ws, trust, lambda: NOW + 1000 * next(ticks))
    world.publish_and_certify()  # genesis
    return world


@pytest.fixture
def world() -> World:
    return make_world()
