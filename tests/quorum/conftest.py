"""Witness sets and a directory for the quorum tests (blst backend: fast)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pytest

from chhaya.crypto import FAST, SigningKey
from quorum import (
    GENESIS_PREVIOUS,
    EpochHead,
    SignedHead,
    WitnessMember,
    WitnessSet,
    directory_id_for,
    sign_head,
)
from quorum.bls import BlsBackend, get_backend

NOW = 1_800_000_000_000


def seeded(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()


@dataclass
class Quorum:
    backend: BlsBackend
    secret_keys: list[int]
    witness_set: WitnessSet


def make_quorum(n: int, threshold: int, backend: BlsBackend, tag: str = "w") -> Quorum:
    sks = [backend.key_gen(seeded(f"{tag}{i}")) for i in range(n)]
    members = tuple(
        WitnessMember(f"{tag.upper()}{i + 1}", backend.sk_to_pk(sk), backend.pop_prove(sk))
        for i, sk in enumerate(sks)
    )
    return Quorum(backend, sks, WitnessSet(members, threshold))


@pytest.fixture(scope="session")
def blst() -> BlsBackend:
    return get_backend("blst")


@pytest.fixture(scope="session")
def quorum4(blst: BlsBackend) -> Quorum:
    return make_quorum(4, 3, blst)


DIRECTORY: SigningKey = FAST.sig.from_seed(seeded("directory"))
VRF_KEY = seeded("directory vrf key")
OTHER_DIRECTORY: SigningKey = FAST.sig.from_seed(seeded("other directory"))


def head(
    epoch: int,
    previous: bytes = GENESIS_PREVIOUS,
    root: bytes = b"\x11" * 32,
    key: SigningKey = DIRECTORY,
    time_ms: int = NOW,
) -> SignedHead:
    h = EpochHead(directory_id_for(key.public_key, VRF_KEY), epoch, root, previous, time_ms + epoch)
    return sign_head(key, VRF_KEY, h)


def chain(length: int) -> list[SignedHead]:
    heads = [head(0)]
    for e in range(1, length):
        heads.append(head(e, heads[-1].head.head_hash, root=bytes([e]) * 32))
    return heads
