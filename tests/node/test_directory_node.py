"""The directory node catches up witnesses that fell behind (real hosts, in-process)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import trio

from node.clock import system_rng, wall_ms
from node.daemon import _directory_node as directory_node
from node.daemon._directory_node import DirectoryNode
from node.daemon._metrics import NodeMetrics
from node.directory_files import OpenedDirectory, init_directory
from node.p2p import WitnessService
from node.witness_store import FileWitnessStore
from quorum import Witness, WitnessMember, WitnessSet, signers_from_bitmap
from quorum.bls import get_backend
from tests.vkd.conftest import bundle_for
from vkd import audit_checker
from vkd.tree import EMPTY_HASH

from .p2p.conftest import LOOPBACK, address, hosts, wait_until

BACKEND = get_backend("blst")
TEST_TIMEOUT_S = 60


def quorum(seed: str) -> tuple[list[int], WitnessSet]:
    """Four witnesses, three needed."""
    sks = [BACKEND.key_gen(hashlib.sha256(f"{seed}-w{i}".encode()).digest()) for i in range(4)]
    members = [
        WitnessMember(f"W{i + 1}", BACKEND.sk_to_pk(sk), BACKEND.pop_prove(sk))
        for i, sk in enumerate(sks)
    ]
    return sks, WitnessSet(tuple(members), 3)


def witnesses(
    opened: OpenedDirectory, sks: list[int], ws: WitnessSet, state_dir: Path
) -> list[Witness]:
    state_dir.mkdir()
    directory = opened.directory
    return [
        Witness(
            secret_key=sk,
            backend=BACKEND,
            set_id=ws.set_id,
            directory_key=directory.directory_key,
            directory_vrf_key=directory.vrf_public_key,
            store=FileWitnessStore(state_dir / f"{m.witness_id}.state"),
            audit=audit_checker,
            genesis_root=EMPTY_HASH,
        )
        for sk, m in zip(sks, ws.members, strict=True)
    ]


def signed_through(witness: Witness) -> int | None:
    last = witness.last_signed
    return None if last is None else last.head.epoch


async def next_epoch(opened: OpenedDirectory, handle: str) -> int:
    """Queue a registration and wait until the node certifies the epoch holding it."""
    certified = opened.records.latest_certified_epoch()
    assert certified is not None
    opened.directory.add(handle, bundle_for(handle))
    await wait_until(lambda: opened.records.latest_certified_epoch() == certified + 1)
    return certified + 1


@dataclass
class Network:
    opened: OpenedDirectory
    witnesses: list[Witness]
    services: list[WitnessService]
    node: DirectoryNode
    said: list[str]


@asynccontextmanager
async def running(tmp_path: Path, seed: str) -> AsyncIterator[Network]:
    """A directory node and four witnesses (3 of 4), all up, genesis signed by all."""
    sks, ws = quorum(seed)
    opened, _genesis = init_directory(tmp_path / "directory", wall_ms(), system_rng)
    said: list[str] = []
    with opened:
        ws_list = witnesses(opened, sks, ws, tmp_path / "witnesses")
        async with hosts(4) as witness_hosts:
            services = [
                WitnessService(h, ws_list[i], ws.members[i].witness_id)
                for i, h in enumerate(witness_hosts)
            ]
            for service in services:
                service.start()
            node = DirectoryNode(
                opened,
                hashlib.sha256(seed.encode()).digest(),
                LOOPBACK,
                ws,
                BACKEND,
                [address(h) for h in witness_hosts],
                NodeMetrics(),
                epoch_interval_s=0.05,
                say=said.append,
            )
            try:
                async with trio.open_nursery() as nursery:
                    await nursery.start(node.run)
                    await wait_until(lambda: opened.records.latest_certified_epoch() == 0)
                    # Whether or not W4 made it into genesis's certificate, it signs genesis.
                    await wait_until(lambda: all(signed_through(w) == 0 for w in ws_list))
                    yield Network(opened, ws_list, services, node, said)
                    node.stop()
            finally:
                for service in services:
                    service.stop()


def signers(net: Network, epoch: int) -> list[int]:
    return signers_from_bitmap(net.opened.directory.certificate(epoch).signers, 4)


async def test_a_witness_that_was_down_is_caught_up_and_counts_again(tmp_path: Path) -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        async with running(tmp_path, "catch-up") as net:
            w4 = net.witnesses[3]
            net.services[3].stop()  # W4 is down for epochs 1..3
            for expected in (1, 2, 3):
                assert await next_epoch(net.opened, f"user{expected}") == expected
                assert signers(net, expected) == [0, 1, 2]
            assert signed_through(w4) == 0

            net.services[3].start()  # W4 is back: it refuses new heads until caught up
            assert await next_epoch(net.opened, "user4") == 4
            await wait_until(lambda: signed_through(w4) == 4)
            assert net.node.catch_up_signatures >= 3  # epochs 1..3 came only from catch-up
            reloaded = FileWitnessStore(tmp_path / "witnesses" / "W4.state").load()
            assert reloaded is not None
            assert reloaded.head.epoch == 4

            net.services[0].stop()  # W1 fails: W2, W3 and the caught-up W4 still certify
            for expected in (5, 6):
                assert await next_epoch(net.opened, f"user{expected}") == expected
                assert signers(net, expected) == [1, 2, 3]
            assert signed_through(w4) == 6
            assert all(not s.evidence for s in net.services)
    assert "epoch 6 certified by 3 of 4" in net.said


async def test_catch_up_does_not_reach_back_past_its_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(directory_node, "MAX_CATCH_UP_EPOCHS", 2)
    with trio.fail_after(TEST_TIMEOUT_S):
        async with running(tmp_path, "catch-up-bound") as net:
            w4 = net.witnesses[3]
            net.services[3].stop()  # W4 misses epochs 1..3, more than the bound
            for expected in (1, 2, 3):
                assert await next_epoch(net.opened, f"user{expected}") == expected
            net.services[3].start()
            for expected in (4, 5):
                assert await next_epoch(net.opened, f"user{expected}") == expected
                assert signers(net, expected) == [0, 1, 2]
            await trio.sleep(0.5)  # let the catch-up runs for epochs 4 and 5 finish
            assert signed_through(w4) == 0  # asked, and refused, but not walked from genesis
            assert net.services[3].refused >= 2
