"""Key directory benchmark: publish, lookup proofs, verify_vkd_proof, audits.

Prints one JSON object. Each figure has a baseline measured in the same run:

- publish: the unavoidable per-update primitives (one VRF prove with output
  and one commitment hash), so the ratio shows the tree's and the epoch's
  overhead on top;
- verify_vkd_proof: its raw primitives (two VRF verifies, the BLS
  FastAggregateVerify of the certificate on parsed keys, one Ed25519
  verify), so the ratio shows the proof-checking overhead.

    python -m benchmarks.bench_vkd [--quick] [--repeats N] [--million]

``--million`` also builds a 1,000,000-handle directory (several minutes) and
reports its memory and proof sizes.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import itertools
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime

from chhaya.crypto import FAST, Rng
from chhaya.identity import PrivateIdentity
from quorum import (
    CertificateVerifier,
    SignedKind,
    WitnessMember,
    WitnessSet,
    assemble_certificate,
    signing_message,
)
from quorum.bls import get_backend
from vkd import (
    Directory,
    DirectoryKeys,
    DirectoryTrust,
    DirectoryValue,
    IdentityBundle,
    InMemoryDirectoryStore,
    commitment,
    verify_vkd_proof,
    vrf_input,
)
from vkd.tree import InMemoryNodeStore, SparseMerkleTree
from vkd.vrf import FAST_VRF

WITNESSES = 16
TARGETS = {
    "publish_updates_per_s": 2000.0,
    "lookup_proof_ms": 2.0,
    "verify_vkd_proof_ms": 5.0,
    "lookup_proof_bytes_at_1m": 2048,
    "audit_10k_verify_s": 2.0,
}


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _rng(seed: bytes) -> Rng:
    counter = itertools.count()

    def rng(n: int) -> bytes:
        out = b""
        while len(out) < n:
            out += hashlib.sha256(seed + next(counter).to_bytes(8, "big")).digest()
        return out[:n]

    return rng


def _timed(fn: Callable[[], object]) -> float:
    gc.collect()
    gc.disable()
    try:
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0
    finally:
        gc.enable()


class Bench:
    def __init__(self) -> None:
        self.rng = _rng(b"bench-vkd")
        backend = get_backend("blst")
        self.sks = [backend.key_gen(hashlib.sha256(b"w%d" % i).digest()) for i in range(WITNESSES)]
        members = tuple(
            WitnessMember(f"W{i}", backend.sk_to_pk(sk), backend.pop_prove(sk))
            for i, sk in enumerate(self.sks)
        )
        self.ws = WitnessSet(members, WITNESSES)  # all 16 sign: the costliest to verify
        self.backend = backend
        keys = DirectoryKeys(FAST.sig.from_seed(b"d" * 32), b"v" * 32)
        self.directory = Directory(
            keys, SparseMerkleTree(InMemoryNodeStore()), InMemoryDirectoryStore()
        )
        self.trust = DirectoryTrust(CertificateVerifier(self.ws, backend))
        identity = PrivateIdentity.generate(_rng(b"identity")).public
        self.value = DirectoryValue(IdentityBundle(identity, (b"peer",), None, 2**62))
        self.now = 1_800_000_000_000
        self.handles = 0
        self.publish_certified(0)

    def certify(self) -> None:
        epoch = self.directory._store.latest_epoch()
        assert epoch is not None
        head = self.directory.head(epoch)
        msg = signing_message(SignedKind.EPOCH_HEAD, self.ws.set_id, head.head.head_hash)
        partials = {
            m.witness_id: self.backend.sign(sk, msg)
            for m, sk in zip(self.ws.members, self.sks, strict=True)
        }
        cert = assemble_certificate(
            self.ws, self.backend, SignedKind.EPOCH_HEAD, head.head.head_hash, partials
        )
        self.directory.attach_certificate(epoch, cert)

    def add(self, n: int) -> None:
        for _ in range(n):
            self.directory.add(f"user{self.handles}", self.value)
            self.handles += 1

    def publish_certified(self, n: int) -> float:
        self.add(n)
        self.now += 1000
        elapsed = _timed(lambda: self.directory.publish(self.now, self.rng))
        self.certify()
        return elapsed


def _baseline_per_update(n: int) -> float:
    """Seconds per update for the primitives alone: VRF prove + commitment."""
    value = b"x" * 1700
    sk = b"v" * 32

    def run() -> None:
        for i in range(n):
            _, beta = FAST_VRF.prove_with_output(sk, vrf_input(f"user{i}", 1))
            commitment(beta[:32], f"user{i}", 1, 1, value)

    return _timed(run) / n


def bench_publish(b: Bench, sizes: list[int], repeats: int) -> list[dict[str, object]]:
    out = []
    for size in sizes:
        rates, base_rates, ratios = [], [], []
        for _ in range(repeats):
            base = 1 / _baseline_per_update(min(size, 2000))
            _log(f"publish batch {size} (tree has {b.handles})")
            rate = size / b.publish_certified(size)
            rates.append(rate)
            base_rates.append(base)
            ratios.append(rate / base)
        med = statistics.median(rates)
        out.append(
            {
                "batch": size,
                "updates_per_s": round(med, 1),
                "baseline_primitives_per_s": round(statistics.median(base_rates), 1),
                "ratio": round(statistics.median(ratios), 4),
                "tree_handles_after": b.handles,
                "target_updates_per_s": TARGETS["publish_updates_per_s"],
                "target_met": med >= TARGETS["publish_updates_per_s"],
                "samples": [round(r, 1) for r in rates],
            }
        )
    return out


def _raw_verify_primitives(b: Bench, proof: object) -> float:
    """Seconds for two VRF verifies, the certificate's FAV and one Ed25519 verify."""
    from vkd import LookupProof

    assert isinstance(proof, LookupProof)
    assert proof.latest is not None
    latest = proof.latest
    head = proof.head
    vk = head.vrf_key
    msg = signing_message(SignedKind.EPOCH_HEAD, b.ws.set_id, head.head.head_hash)
    parsed = [b.backend.parse_public_key_untrusted(m.public_key) for m in b.ws.members]
    alpha1 = vrf_input(proof.handle, proof.version)
    alpha2 = vrf_input(proof.handle, proof.version + 1)
    head_msg = b"chhaya/quorum/v1/head-sig" + head.head.encode()

    def run() -> None:
        FAST_VRF.verify(vk, alpha1, latest.vrf_proof)
        FAST_VRF.verify(vk, alpha2, proof.next_vrf_proof)
        b.backend.fast_aggregate_verify_parsed(parsed, msg, proof.certificate.signature)
        FAST.sig.verify(head.directory_key, head_msg, head.signature)

    return _timed(run)


def bench_proofs(b: Bench, repeats: int, iterations: int) -> dict[str, object]:
    names = [f"user{i * 7919 % b.handles}" for i in range(iterations)]
    gen_ms, ver_ms, base_ms, ratios = [], [], [], []
    proofs: list[object] = []
    for _ in range(repeats):
        t = _timed(lambda: proofs.extend(b.directory.lookup(n) for n in names))
        gen_ms.append(t / iterations * 1000)
        sample = proofs[: min(50, len(proofs))]
        now = b.now + 1

        def verify_all(ps: list[object] = sample, at: int = now) -> None:
            for p in ps:
                verify_vkd_proof(p, b.trust, None, at)  # type: ignore[arg-type]

        v = _timed(verify_all) / len(sample) * 1000
        base = statistics.median(_raw_verify_primitives(b, p) for p in sample[:20]) * 1000
        ver_ms.append(v)
        base_ms.append(base)
        ratios.append(v / base)
        proofs.clear()
    sizes = []
    for name in names[:200]:
        p = b.directory.lookup(name)
        assert p.latest is not None
        sizes.append(
            (len(p.encode()), len(p.encode()) - len(p.latest.value), p.latest.membership.depth)
        )
    total = statistics.mean(s[0] for s in sizes)
    without = [s[1] for s in sizes]
    value = total - statistics.mean(without)
    return {
        "tree_handles": b.handles,
        "witnesses": WITNESSES,
        "lookup_proof_ms": round(statistics.median(gen_ms), 4),
        "lookup_proofs_per_s": round(1000 / statistics.median(gen_ms), 1),
        "verify_vkd_proof_ms": round(statistics.median(ver_ms), 4),
        "verify_baseline_primitives_ms": round(statistics.median(base_ms), 4),
        "verify_ratio": round(statistics.median(ratios), 4),
        "lookup_proof_bytes_mean": round(total, 1),
        "lookup_proof_bytes_without_value_mean": round(statistics.mean(without), 1),
        "lookup_proof_bytes_without_value_max": max(without),
        "value_bytes": round(value, 1),
        "membership_depth_mean": round(statistics.mean(s[2] for s in sizes), 2),
        "proofs_sampled_for_size": len(sizes),
        "targets": {
            "lookup_proof_ms<=2": statistics.median(gen_ms) <= TARGETS["lookup_proof_ms"],
            "verify_vkd_proof_ms<=5": statistics.median(ver_ms) <= TARGETS["verify_vkd_proof_ms"],
        },
    }


def bench_audit(b: Bench, batch: int) -> dict[str, object]:
    _log(f"audit of a {batch} batch")
    b.publish_certified(batch)
    epoch = b.directory._store.latest_epoch()
    assert epoch is not None
    audit = b.directory.audit(epoch)
    raw = audit.encode()
    seconds = _timed(audit.verify)
    return {
        "batch": batch,
        "tree_handles": b.handles,
        "audit_proof_bytes": len(raw),
        "audit_proof_bytes_per_update": round(len(raw) / batch, 1),
        "verify_s": round(seconds, 4),
        "target_met": seconds <= TARGETS["audit_10k_verify_s"],
    }


def _rss_mib() -> float:
    """Resident set size from /proc (Linux); the heap measure for the 1M run."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def bench_million() -> dict[str, object]:
    _log("building a 1,000,000-handle directory (several minutes)")
    gc.collect()
    rss_before = _rss_mib()
    b = Bench()
    step = 100_000
    t0 = time.perf_counter()
    while b.handles < 1_000_000:
        b.publish_certified(step)
        _log(f"  {b.handles} handles")
    build_s = time.perf_counter() - t0
    gc.collect()
    rss = _rss_mib() - rss_before
    proofs = bench_proofs(b, 1, 200)
    mean_size = float(str(proofs["lookup_proof_bytes_without_value_mean"]))
    return {
        "handles": b.handles,
        "epochs": 10,
        "build_s": round(build_s, 1),
        "updates_per_s": round(b.handles / build_s, 1),
        "rss_growth_mib": round(rss, 1),
        "rss_bytes_per_handle": round(rss * 2**20 / b.handles, 1),
        "memory_note": "in-memory stores keep every epoch's nodes, all versions and openings",
        "proofs": proofs,
        "lookup_proof_bytes_without_value_mean<=2048": mean_size
        <= TARGETS["lookup_proof_bytes_at_1m"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--million", action="store_true")
    args = ap.parse_args()
    started = time.perf_counter()
    repeats = 1 if args.quick else args.repeats
    sizes = [200, 1000] if args.quick else [1000, 10_000, 100_000]
    b = Bench()
    publish = bench_publish(b, sizes, 1)  # each batch grows the tree: one pass
    proofs = bench_proofs(b, repeats, 50 if args.quick else 500)
    audit = bench_audit(b, 1000 if args.quick else 10_000)
    doc: dict[str, object] = {
        "benchmark": "vkd.directory",
        "metadata": {
            "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "quick": args.quick,
            "repeats": repeats,
            "statistic": "median over repeats",
            "publish_baseline": "VRF prove_with_output + commitment hash per update, same run",
            "verify_baseline": "2 VRF verifies + BLS FAV (16 keys, parsed) + 1 Ed25519 verify",
            "note": "a lookup proof carries the whole identity bundle (ML-KEM key: 1568 B); "
            "the 2 KiB target applies to the proof without the value",
        },
        "publish": publish,
        "lookup": proofs,
        "audit": audit,
    }
    if args.million:
        doc["million"] = bench_million()
    doc["metadata"]["wall_s"] = round(time.perf_counter() - started, 1)  # type: ignore[index]
    print(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
