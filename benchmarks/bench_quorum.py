"""Quorum certificate benchmark: creation and verification, both BLS backends.

Prints one JSON object. The baseline, measured in the same run and
interleaved with the subject, is the raw pyblst FastAggregateVerify on
public keys that are already decompressed: sum the G1 points, hash the
message to G2, two Miller loops and a final exponentiation check. The
subject is ``CertificateVerifier.verify`` on a t-of-n certificate (t = n),
which adds the certificate's checks and the bitmap walk.

    python -m benchmarks.bench_quorum [--quick] [--repeats N] [--py-ecc-max-n N]
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime

from pyblst import BlstP1Element, BlstP2Element, final_verify, miller_loop

from quorum import (
    CertificateVerifier,
    QuorumCertificate,
    SignedKind,
    WitnessMember,
    WitnessSet,
    assemble_certificate,
    signing_message,
)
from quorum.bls import BLS_DST_SIG, BlsBackend, get_backend

_G1 = BlstP1Element.uncompress(
    bytes.fromhex(
        "97f1d3a73197d7942695638c4fa9ac0fc3688c4f9774b905a14e3a3f171bac586c55e83ff97a1aeffb3af00adb22c6bb"
    )
)
TARGET_VERIFY_MS_64 = 2.0
TARGET_RATIO_64 = 1.2


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _time(fn: Callable[[], object], iterations: int) -> float:
    """Seconds per call, GC off while timing."""
    gc.collect()
    gc.disable()
    try:
        t0 = time.perf_counter()
        for _ in range(iterations):
            fn()
        return (time.perf_counter() - t0) / iterations
    finally:
        gc.enable()


def _quorum(n: int, backend: BlsBackend) -> tuple[list[int], WitnessSet]:
    sks = [backend.key_gen(hashlib.sha256(b"bench-%d" % i).digest()) for i in range(n)]
    blst = get_backend("blst")  # key material is the same in both backends; make it fast
    members = tuple(
        WitnessMember(f"W{i}", blst.sk_to_pk(sk), blst.pop_prove(sk)) for i, sk in enumerate(sks)
    )
    return sks, WitnessSet(members, n // 2 + 1)


def _bench_n(
    n: int, backend: BlsBackend, repeats: int, iterations: int, create: bool
) -> dict[str, object]:
    sks, ws = _quorum(n, backend)
    digest = hashlib.sha256(b"head %d" % n).digest()
    message = signing_message(SignedKind.EPOCH_HEAD, ws.set_id, digest)
    blst = get_backend("blst")

    def create_cert() -> QuorumCertificate:
        partials = {
            m.witness_id: backend.sign(sk, message) for m, sk in zip(ws.members, sks, strict=True)
        }
        return assemble_certificate(ws, backend, SignedKind.EPOCH_HEAD, digest, partials)

    # All n sign (t = n), the costliest certificate to verify.
    partials = {m.witness_id: blst.sign(sk, message) for m, sk in zip(ws.members, sks, strict=True)}
    cert = assemble_certificate(ws, blst, SignedKind.EPOCH_HEAD, digest, partials)
    verifier = CertificateVerifier(ws, backend)
    points = [BlstP1Element.uncompress(m.public_key) for m in ws.members]
    sig_point = BlstP2Element.uncompress(cert.signature)

    def raw_fav() -> bool:
        agg = points[0]
        for p in points[1:]:
            agg = agg + p
        h = BlstP2Element.hash_to_group(message, BLS_DST_SIG)
        return bool(final_verify(miller_loop(_G1, sig_point), miller_loop(agg, h)))

    def subject() -> object:
        return verifier.verify(cert, SignedKind.EPOCH_HEAD, digest)

    assert raw_fav()
    subject()
    base_ms, subj_ms, ratios, create_ms = [], [], [], []
    for _ in range(repeats):
        b = _time(raw_fav, iterations) * 1000
        s = _time(subject, iterations) * 1000
        base_ms.append(b)
        subj_ms.append(s)
        ratios.append(s / b)
        if create:
            create_ms.append(_time(create_cert, 1) * 1000)
    out: dict[str, object] = {
        "n": n,
        "threshold_signers": n,
        "verify_ms": round(statistics.median(subj_ms), 4),
        "baseline_raw_fast_aggregate_verify_ms": round(statistics.median(base_ms), 4),
        "ratio": round(statistics.median(ratios), 4),
        "create_ms": round(statistics.median(create_ms), 2) if create_ms else None,
        "certificate_bytes": len(cert.encode()),
        "samples": {
            "verify_ms": [round(x, 4) for x in subj_ms],
            "ratio": [round(x, 4) for x in ratios],
        },
    }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--py-ecc-max-n", type=int, default=256, help="largest n for py_ecc (slow)")
    args = ap.parse_args()
    repeats = 1 if args.quick else args.repeats
    sizes = [4, 16] if args.quick else [4, 16, 64, 256]
    started = time.perf_counter()
    results: dict[str, list[dict[str, object]]] = {"blst": [], "py_ecc": []}
    for name in ("blst", "py_ecc"):
        backend = get_backend(name)
        for n in sizes:
            if name == "py_ecc" and n > args.py_ecc_max_n:
                continue
            _log(f"{name} n={n}")
            iterations = (20 if args.quick else 100) if name == "blst" else 1
            reps = repeats if name == "blst" else 1
            results[name].append(_bench_n(n, backend, reps, iterations, create=True))
    blst64 = next((r for r in results["blst"] if r["n"] == 64), None)
    targets: dict[str, object] = {}
    if blst64 is not None:
        v = float(str(blst64["verify_ms"]))
        ratio = float(str(blst64["ratio"]))
        targets = {
            "blst_64_of_64_verify_ms<=2": v <= TARGET_VERIFY_MS_64,
            "blst_64_of_64_ratio<=1.2": ratio <= TARGET_RATIO_64,
        }
    doc = {
        "benchmark": "quorum.certificates",
        "metadata": {
            "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "repeats": repeats,
            "quick": args.quick,
            "statistic": "median over repeats; ratio = median of paired per-repeat ratios",
            "baseline": "raw pyblst FastAggregateVerify on decompressed keys, same run",
            "create": "n partial signatures, each partial verified, then aggregated",
            "py_ecc_note": f"py_ecc runs n <= {args.py_ecc_max_n}, one iteration (pure Python)",
            "wall_s": round(time.perf_counter() - started, 2),
        },
        "results": results,
        "targets_met": targets,
    }
    print(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
