"""Certified-head gossip: time for a head to reach every node of a 20-node network.

Run as ``python -m benchmarks.bench_heads [--quick] [--nodes N] [--rounds R]``.
One JSON object goes to stdout; progress goes to stderr.

All nodes are real py-libp2p hosts (TCP + Noise + Yamux) on 127.0.0.1 in this
one process and trio loop, each running :class:`node.p2p.HeadGossip` with its
own :class:`quorum.HeadTracker`. Node ``i`` dials ``i+1``, ``i+2`` and ``i+5``
(mod N): a ring with chords, about 6 neighbours each. After the meshes form,
each round certifies a new epoch (3-of-4 BLS quorum), publishes it from a
different node, and times until every node's tracker has accepted it.

Baseline, timed on the same message in the same round: **one gossipsub hop**,
the time until the first direct neighbour of the publisher accepted it. The
``ratio`` is the median of per-round (all nodes / one hop) ratios.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import statistics
import sys
import time
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from importlib import metadata

import trio
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.peer.peerinfo import info_from_p2p_addr
from multiaddr import Multiaddr

from chhaya.crypto import FAST
from node.p2p import HeadGossip, listen_addrs, running_host
from quorum import (
    CertificateVerifier,
    HeadTracker,
    QuorumCertificate,
    SignedHead,
    SignedKind,
    WitnessMember,
    WitnessSet,
    assemble_certificate,
    signing_message,
)
from quorum.bls import get_backend
from vkd import Directory, DirectoryKeys, InMemoryDirectoryStore
from vkd.tree import InMemoryNodeStore, SparseMerkleTree

__all__ = ["main", "run"]

TARGET_ALL_NODES_S = 1.0
CHORDS = (1, 2, 5)
MESH_TIMEOUT_S = 30.0
ROUND_TIMEOUT_S = 10.0


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class HeadSource:
    """A directory whose heads a 3-of-4 quorum certifies directly."""

    def __init__(self) -> None:
        self.backend = get_backend("blst")
        self.sks = [self.backend.key_gen(hashlib.sha256(b"w%d" % i).digest()) for i in range(4)]
        self.ws = WitnessSet(
            tuple(
                WitnessMember(f"W{i}", self.backend.sk_to_pk(sk), self.backend.pop_prove(sk))
                for i, sk in enumerate(self.sks)
            ),
            3,
        )
        keys = DirectoryKeys(FAST.sig.from_seed(b"d" * 32), b"v" * 32)
        self.directory = Directory(
            keys, SparseMerkleTree(InMemoryNodeStore()), InMemoryDirectoryStore()
        )
        self.now = 1_800_000_000_000
        self.counter = 0

    def _rng(self, n: int) -> bytes:
        self.counter += 1
        return hashlib.sha256(b"bench-heads%d" % self.counter).digest()[:n].ljust(n, b"\0")

    def tracker(self) -> HeadTracker:
        return HeadTracker(
            CertificateVerifier(self.ws, self.backend),
            self.directory.directory_key,
            self.directory.vrf_public_key,
        )

    def next_head(self) -> tuple[SignedHead, QuorumCertificate]:
        self.now += 1000
        signed, _ = self.directory.publish(self.now, self._rng)
        digest = signed.head.head_hash
        msg = signing_message(SignedKind.EPOCH_HEAD, self.ws.set_id, digest)
        partials = {
            m.witness_id: self.backend.sign(sk, msg)
            for m, sk in list(zip(self.ws.members, self.sks, strict=True))[:3]
        }
        cert = assemble_certificate(self.ws, self.backend, SignedKind.EPOCH_HEAD, digest, partials)
        self.directory.attach_certificate(signed.head.epoch, cert)
        return signed, cert


async def _round(
    gossips: list[HeadGossip], publisher: int, neighbours: set[int], source: HeadSource
) -> tuple[float, float]:
    """(seconds until all nodes accepted, seconds until the first neighbour did)."""
    signed, cert = source.next_head()
    epoch = signed.head.epoch
    done: dict[int, float] = {}

    async def watch(i: int) -> None:
        await gossips[i].wait_for_epoch(epoch, ROUND_TIMEOUT_S)
        done[i] = time.perf_counter()

    with trio.fail_after(ROUND_TIMEOUT_S):
        async with trio.open_nursery() as nursery:
            for i in range(len(gossips)):
                if i != publisher:
                    nursery.start_soon(watch, i)
            await trio.sleep(0)  # let the watchers start waiting
            t0 = time.perf_counter()
            await gossips[publisher].publish(signed, cert)
    return max(done.values()) - t0, min(done[i] for i in neighbours) - t0


async def run(nodes: int, rounds: int) -> dict[str, object]:
    source = HeadSource()
    edges = {(i, (i + c) % nodes) for i in range(nodes) for c in CHORDS if (i + c) % nodes != i}
    neighbours: dict[int, set[int]] = {i: set() for i in range(nodes)}
    for i, j in edges:
        neighbours[i].add(j)
        neighbours[j].add(i)
    loopback = ["/ip4/127.0.0.1/tcp/0"]
    async with AsyncExitStack() as stack:
        _log(f"starting {nodes} hosts")
        hosts = [
            await stack.enter_async_context(running_host(create_new_key_pair(), loopback))
            for _ in range(nodes)
        ]
        gossips = [await stack.enter_async_context(HeadGossip(h, source.tracker())) for h in hosts]
        t_mesh = time.perf_counter()
        for i, j in sorted(edges):
            await hosts[i].connect(info_from_p2p_addr(Multiaddr(listen_addrs(hosts[j])[0])))
        with trio.fail_after(MESH_TIMEOUT_S):
            while not all(
                g.topic_peers >= {hosts[j].get_id() for j in neighbours[i]} and g.mesh_peers
                for i, g in enumerate(gossips)
            ):
                await trio.sleep(0.02)
        mesh_s = time.perf_counter() - t_mesh
        _log(f"meshes formed in {mesh_s:.2f} s; {len(edges)} connections")
        await trio.sleep(2.5)  # a couple of heartbeats to settle the meshes
        all_s, hop_s = [], []
        for r in range(rounds):
            publisher = (r * 7) % nodes
            total, hop = await _round(gossips, publisher, neighbours[publisher], source)
            all_s.append(total)
            hop_s.append(hop)
            _log(f"round {r}: all {total * 1000:.1f} ms, one hop {hop * 1000:.1f} ms")
        mesh_sizes = [len(g.mesh_peers) for g in gossips]
        rejected = sum(g.rejected.total() for g in gossips)
    median_all = statistics.median(all_s)
    return {
        "benchmark": "bench_heads",
        "metadata": {
            "python": platform.python_version(),
            "libp2p": metadata.version("libp2p"),
            "machine": platform.machine(),
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "nodes": nodes,
            "connections": len(edges),
            "topology": f"ring with chords {list(CHORDS)}",
            "rounds": rounds,
            "baseline": "one gossipsub hop: first direct neighbour of the publisher to accept",
        },
        "mesh_formed_s": round(mesh_s, 4),
        "mesh_size_min_median_max": [
            min(mesh_sizes),
            statistics.median(mesh_sizes),
            max(mesh_sizes),
        ],
        "head_to_all_nodes_ms": round(median_all * 1000, 2),
        "one_hop_ms": round(statistics.median(hop_s) * 1000, 2),
        "ratio_all_over_one_hop": round(
            statistics.median(a / h for a, h in zip(all_s, hop_s, strict=True)), 2
        ),
        "target_all_nodes_s": TARGET_ALL_NODES_S,
        "target_met": median_all <= TARGET_ALL_NODES_S,
        "rejected_messages": rejected,
        "samples": {
            "all_nodes_ms": [round(x * 1000, 2) for x in all_s],
            "one_hop_ms": [round(x * 1000, 2) for x in hop_s],
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="8 nodes, 2 rounds")
    ap.add_argument("--nodes", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    nodes, rounds = (8, 2) if args.quick else (args.nodes, args.rounds)
    started = time.perf_counter()
    result = trio.run(run, nodes, rounds)
    result["elapsed_s"] = round(time.perf_counter() - started, 2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
