"""Channel benchmarks: handshakes per second and record-layer throughput.

Run as ``python -m benchmarks.bench_channel [--quick] [--repeats N]``. One JSON
object goes to stdout; progress goes to stderr. Every figure is paired with a
baseline measured in the same run (baseline, subject, baseline, subject, ...)
so that the ratios survive a shared, noisy machine. Reported rates are medians
over the repeats; ratios are medians of the per-repeat paired ratios.

See benchmarks/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from chhaya.channel import (
    SYN_ACK_SIZE,
    SYN_SIZE,
    AllowlistResolver,
    ChannelConfig,
    ChannelConnection,
    DataReceived,
    HandshakeComplete,
    Role,
    SynReplayCache,
)
from chhaya.channel._keyschedule import (
    SIG_CONTEXT_SYN,
    continuation_tag,
    derive_session_keys,
    syn_digest,
    synack_signed_digest,
)
from chhaya.crypto import FAST, REFERENCE, CryptoSuite
from chhaya.identity import PrivateIdentity

from ._common import median as _median
from ._common import rounded as _rounded
from ._common import timed as _timed
from ._common import version as _version

__all__ = ["main", "run"]

_MIB = 1 << 20
_BATCH = 64
_AAD_SIZE = 5
_RECORD_SIZES = (64, 1024, 64 * 1024)
_HANDSHAKE_TARGET_PER_S = 1000.0
# plaintext size -> minimum record/AES-GCM throughput ratio (None: no target).
_RECORD_TARGETS: dict[int, float | None] = {64: None, 1024: 0.40, 64 * 1024: 0.75}
_START_MS = 1_700_000_000_000


@dataclass(frozen=True, slots=True)
class _Plan:
    """Iterations per repeat for each measurement."""

    fast_handshakes: int
    reference_handshakes: int
    records: dict[int, int]  # plaintext size -> messages (a multiple of _BATCH)


_FULL = _Plan(
    fast_handshakes=1000,
    reference_handshakes=8,
    records={64: 32 * 1024, 1024: 32 * 1024, 64 * 1024: 4 * 1024},
)
_QUICK = _Plan(
    fast_handshakes=60,
    reference_handshakes=1,
    records={64: 2048, 1024: 2048, 64 * 1024: 256},
)


def _log(message: str) -> None:
    print(f"[bench_channel] {message}", file=sys.stderr, flush=True)


class _Clock:
    """Simulated milliseconds: one tick per handshake, so Syns age realistically."""

    def __init__(self) -> None:
        self.now = _START_MS

    def tick(self) -> int:
        self.now += 1
        return self.now


class _Peers:
    """Two long-term identities, the listener's allowlist and a shared replay cache."""

    def __init__(self, max_handshakes: int) -> None:
        self.dialer = PrivateIdentity.generate(os.urandom)
        self.listener = PrivateIdentity.generate(os.urandom)
        self.resolver = AllowlistResolver({self.dialer.public.signing_key: "dialer"})
        self.clock = _Clock()
        # One cache for every listener, as a real node has. It is sized so it
        # cannot fill during the run; a full cache would refuse Syns and the
        # benchmark would fail loudly rather than measure refusals.
        self.cache_size = max_handshakes + 1024
        self.replay_cache = SynReplayCache(
            ChannelConfig().replay_window_ms, max_entries=self.cache_size
        )

    def handshake(self, config: ChannelConfig) -> tuple[ChannelConnection, ChannelConnection]:
        """One complete handshake; returns (dialer, listener), both established."""
        now = self.clock.tick()
        dialer = ChannelConnection(
            Role.DIALER,
            self.dialer,
            config,
            os.urandom,
            expected_peer=self.listener.public.signing_key,
        )
        listener = ChannelConnection(
            Role.LISTENER,
            self.listener,
            config,
            os.urandom,
            resolver=self.resolver,
            replay_cache=self.replay_cache,
        )
        listener.start(now)
        dialer.start(now)
        dialer_done = listener_done = False
        for _ in range(4):
            data = dialer.data_to_send()
            if data:
                listener.receive_data(data, now)
                while (event := listener.next_event()) is not None:
                    if isinstance(event, HandshakeComplete):
                        listener_done = True
            data = listener.data_to_send()
            if data:
                dialer.receive_data(data, now)
                while (event := dialer.next_event()) is not None:
                    if isinstance(event, HandshakeComplete):
                        dialer_done = True
            if dialer_done and listener_done:
                return dialer, listener
        raise RuntimeError("handshake did not complete")


# ---------------------------------------------------------------- handshakes


class _PrimitiveSet:
    """The public-key operations one handshake performs, called through the suite.

    Per handshake: 2 Ed25519 signs + 2 verifies, 2 X25519 key generations +
    2 exchanges, 1 ML-KEM-1024 key generation + encapsulation + decapsulation.
    Hashing, HMAC and HKDF are not included here; they are timed separately
    (:class:`_HashKdfSet`).
    """

    def __init__(self, suite: CryptoSuite, peers: _Peers) -> None:
        self.suite = suite
        self.sk_d = peers.dialer.signing_key
        self.sk_l = peers.listener.signing_key
        self.pk_d = peers.dialer.public.signing_key
        self.pk_l = peers.listener.public.signing_key
        # What the handshake actually signs: a context label and a digest.
        self.message = SIG_CONTEXT_SYN + bytes(32)

    def run(self, n: int) -> None:
        suite, rng, msg = self.suite, os.urandom, self.message
        sig, dh, kem = suite.sig, suite.dh, suite.kem
        sk_d, sk_l, pk_d, pk_l = self.sk_d, self.sk_l, self.pk_d, self.pk_l
        for _ in range(n):
            # Dialer's Syn.
            eph_d = dh.generate(rng)
            eph_kem = kem.generate(rng)
            sig_d = sk_d.sign(msg)
            # Listener's SynAck.
            sig.verify(pk_d, msg, sig_d)
            eph_l = dh.generate(rng)
            eph_l.exchange(eph_d.public_key)
            _, ciphertext = kem.encapsulate(eph_kem.public_key, rng)
            sig_l = sk_l.sign(msg)
            # Dialer's Ack.
            sig.verify(pk_l, msg, sig_l)
            eph_d.exchange(eph_l.public_key)
            eph_kem.decapsulate(ciphertext)


class _HashKdfSet:
    """The transcript hashing, HKDF and HMACs of one handshake (both sides)."""

    def __init__(self) -> None:
        self.ns = ChannelConfig().namespace_digest
        self.syn_unsigned = bytes(SYN_SIZE - 64)
        self.syn = bytes(SYN_SIZE)
        self.ack_unsigned = bytes(SYN_ACK_SIZE - 64 - 32)
        self.signature = bytes(64)
        self.secret = bytes(32)

    def run(self, n: int) -> None:
        ns, syn_u, syn, ack_u = self.ns, self.syn_unsigned, self.syn, self.ack_unsigned
        sig, secret = self.signature, self.secret
        for _ in range(n):
            syn_digest(syn_u)  # dialer signs
            # Listener on Syn.
            syn_digest(syn_u)
            continuation_tag(syn)
            synack_signed_digest(syn, ack_u)
            keys = derive_session_keys(ns, secret, secret, syn, ack_u, sig)
            mac_l = keys.listener_confirmation()
            # Dialer on SynAck.
            continuation_tag(syn)
            synack_signed_digest(syn, ack_u)
            keys = derive_session_keys(ns, secret, secret, syn, ack_u, sig)
            keys.listener_confirmation()
            mac_d = keys.dialer_confirmation(mac_l)
            keys.transcript_hash(mac_l, mac_d)
            # Listener on Ack.
            keys.dialer_confirmation(mac_l)
            keys.transcript_hash(mac_l, mac_d)


def _check_handshake(peers: _Peers, config: ChannelConfig) -> None:
    """Outside timing: the pair really agrees on keys."""
    dialer, listener = peers.handshake(config)
    dialer.send_data(b"ping")
    listener.receive_data(dialer.data_to_send(), peers.clock.now)
    event = listener.next_event()
    if not (isinstance(event, DataReceived) and event.data == b"ping"):
        raise RuntimeError("established pair does not agree on keys")


def _bench_handshakes(
    name: str, suite: CryptoSuite, n: int, repeats: int, peers: _Peers
) -> dict[str, Any]:
    config = ChannelConfig(suite=suite)
    primitives = _PrimitiveSet(suite, peers)
    hash_kdf = _HashKdfSet()

    def run_handshakes(count: int) -> None:
        handshake = peers.handshake
        for _ in range(count):
            handshake(config)

    # Warm-up, untimed.
    _check_handshake(peers, config)
    primitives.run(1)
    hash_kdf.run(1)

    hs_rates: list[float] = []
    prim_rates: list[float] = []
    hash_us: list[float] = []
    ratios: list[float] = []
    ratios_with_hash: list[float] = []
    for r in range(repeats):
        _log(f"handshake/{name}: repeat {r + 1}/{repeats} ({n} handshakes)")
        prim_s = _timed(primitives.run, n) / n
        hash_s = _timed(hash_kdf.run, max(n, 200)) / max(n, 200)
        hs_s = _timed(run_handshakes, n) / n
        hs_rates.append(1.0 / hs_s)
        prim_rates.append(1.0 / prim_s)
        hash_us.append(hash_s * 1e6)
        ratios.append(prim_s / hs_s)
        ratios_with_hash.append((prim_s + hash_s) / hs_s)

    hs_per_s = _median(hs_rates)
    prim_per_s = _median(prim_rates)
    is_fast = suite is FAST
    result: dict[str, Any] = {
        "suite": suite.name,
        "kem": suite.kem.name,
        "iterations_per_repeat": n,
        "unit": "handshakes/s; *_us fields in microseconds per handshake",
        "handshakes_per_s": round(hs_per_s, 1),
        "primitives_per_s": round(prim_per_s, 1),
        "ratio": round(_median(ratios), 4),
        "handshake_us": round(1e6 / hs_per_s, 1),
        "primitives_us": round(1e6 / prim_per_s, 1),
        "overhead_us": round(1e6 / hs_per_s - 1e6 / prim_per_s, 1),
        "hash_kdf_us": round(_median(hash_us), 2),
        "ratio_with_hash_kdf": round(_median(ratios_with_hash), 4),
        "target_handshakes_per_s": _HANDSHAKE_TARGET_PER_S if is_fast else None,
        "target_met": (hs_per_s >= _HANDSHAKE_TARGET_PER_S) if is_fast else None,
        "samples": {
            "handshakes_per_s": _rounded(hs_rates, 1),
            "primitives_per_s": _rounded(prim_rates, 1),
            "ratio": _rounded(ratios),
        },
    }
    return result


# ------------------------------------------------------------------ records


def _aesgcm_baseline(size: int) -> Callable[[int], object]:
    aead = AESGCM(AESGCM.generate_key(256))
    # A throwaway key; reusing one nonce is harmless here and keeps nonce
    # construction out of the baseline.
    nonce = bytes(12)
    aad = bytes(_AAD_SIZE)
    plaintext = os.urandom(size)

    def run(n: int) -> bytes:
        encrypt, decrypt = aead.encrypt, aead.decrypt
        out = b""
        for _ in range(n):
            out = decrypt(nonce, encrypt(nonce, plaintext, aad), aad)
        return out

    return run


def _record_single(
    sender: ChannelConnection, receiver: ChannelConnection, msg: bytes, now: int
) -> Callable[[int], object]:
    """One message per round trip through the sans-IO objects."""

    def run(n: int) -> None:
        send, pull = sender.send_data, sender.data_to_send
        push, next_event = receiver.receive_data, receiver.next_event
        event = None
        for _ in range(n):
            send(msg)
            data = pull()
            push(data, now)
            event = next_event()
        if not (isinstance(event, DataReceived) and len(event.data) == len(msg)):
            raise RuntimeError("record round trip lost a message")

    return run


def _record_batched(
    sender: ChannelConnection, receiver: ChannelConnection, msg: bytes, now: int
) -> Callable[[int], object]:
    """_BATCH messages sent, then all bytes delivered at once and events drained."""

    def run(n: int) -> None:
        send, pull = sender.send_data, sender.data_to_send
        push, next_event = receiver.receive_data, receiver.next_event
        received = 0
        for _ in range(n // _BATCH):
            for _ in range(_BATCH):
                send(msg)
            push(pull(), now)
            while next_event() is not None:
                received += 1
        if received != n // _BATCH * _BATCH:
            raise RuntimeError("batched records lost messages")

    return run


def _bench_record_size(size: int, n: int, repeats: int, peers: _Peers) -> dict[str, Any]:
    msg = os.urandom(size)
    baseline = _aesgcm_baseline(size)
    variants: dict[str, Callable[[int], object]] = {}
    for variant, make in (("per_message", _record_single), ("batched_64", _record_batched)):
        # A fresh established pair per variant; records flow dialer -> listener.
        sender, receiver = peers.handshake(ChannelConfig())
        variants[variant] = make(sender, receiver, msg, peers.clock.now)

    # Warm-up, untimed.
    baseline(_BATCH)
    for fn in variants.values():
        fn(_BATCH)

    base_rates: dict[str, list[float]] = {v: [] for v in variants}
    rates: dict[str, list[float]] = {v: [] for v in variants}
    ratios: dict[str, list[float]] = {v: [] for v in variants}
    mib = size * n / _MIB
    for r in range(repeats):
        _log(f"records/{size}B: repeat {r + 1}/{repeats} ({n} messages)")
        for variant, fn in variants.items():
            base = mib / _timed(baseline, n)
            subject = mib / _timed(fn, n)
            base_rates[variant].append(base)
            rates[variant].append(subject)
            ratios[variant].append(subject / base)

    target = _RECORD_TARGETS.get(size)
    result: dict[str, Any] = {
        "plaintext_bytes": size,
        "messages_per_repeat": n,
        "unit": "MiB/s of plaintext, sealed and opened; ratio = record / AES-GCM",
        "baseline_mib_per_s": round(_median([x for v in base_rates.values() for x in v]), 1),
        "target_ratio": target,
    }
    for variant in variants:
        subject_median = _median(rates[variant])
        ratio = _median(ratios[variant])
        result[variant] = {
            "mib_per_s": round(subject_median, 1),
            "messages_per_s": round(subject_median * _MIB / size, 0),
            "baseline_mib_per_s": round(_median(base_rates[variant]), 1),
            "ratio": round(ratio, 4),
            "target_met": None if target is None else ratio >= target,
            "samples": {
                "mib_per_s": _rounded(rates[variant], 1),
                "baseline_mib_per_s": _rounded(base_rates[variant], 1),
                "ratio": _rounded(ratios[variant]),
            },
        }
    return result


# --------------------------------------------------------------------- main


def _metadata(quick: bool, repeats: int, plan: _Plan, cache_size: int) -> dict[str, Any]:
    from cryptography.hazmat.backends.openssl.backend import backend

    return {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "cryptography": _version("cryptography"),
        "openssl": backend.openssl_version_text(),
        "pynacl": _version("pynacl"),
        "kyber_py": _version("kyber-py"),
        "chhaya": _version("chhaya"),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "quick": quick,
        "repeats": repeats,
        "plan": {
            "fast_handshakes_per_repeat": plan.fast_handshakes,
            "reference_handshakes_per_repeat": plan.reference_handshakes,
            "record_messages_per_repeat": {str(k): v for k, v in plan.records.items()},
        },
        "method": {
            "timer": "time.perf_counter",
            "statistic": "median over repeats; ratio = median of per-repeat paired ratios",
            "interleaving": "each repeat times the baseline immediately before its subject",
            "gc": "cyclic GC disabled while timing (as timeit does); refcounting unaffected",
            "rng": "os.urandom",
            "replay_cache": f"one SynReplayCache shared by all listeners, {cache_size} entries",
            "single_process": "dialer and listener in one process and one thread",
        },
        "units": {
            "handshakes_per_s": "complete handshakes (both ends HandshakeComplete) per second",
            "primitives_per_s": "1 / (time of the public-key primitives of one handshake)",
            "ratio": "subject rate / baseline rate (1.0 = no overhead)",
            "*_us": "microseconds per handshake",
            "mib_per_s": "plaintext MiB (2^20 bytes) per second, sealed and opened",
            "messages_per_s": "records sealed and opened per second",
        },
    }


def run(quick: bool = False, repeats: int = 5) -> dict[str, Any]:
    if repeats < 1:
        raise ValueError("repeats must be at least 1")
    plan = _QUICK if quick else _FULL
    warmups = 8 + 2 * len(_RECORD_SIZES)
    max_handshakes = repeats * (plan.fast_handshakes + plan.reference_handshakes) + warmups
    peers = _Peers(max_handshakes)

    handshakes = {
        "fast": _bench_handshakes("fast", FAST, plan.fast_handshakes, repeats, peers),
        "reference": _bench_handshakes(
            "reference", REFERENCE, plan.reference_handshakes, repeats, peers
        ),
    }
    records = {
        str(size): _bench_record_size(size, plan.records[size], repeats, peers)
        for size in _RECORD_SIZES
    }
    if len(peers.replay_cache) >= peers.cache_size:
        raise RuntimeError("replay cache filled up; the handshake figures are invalid")

    targets = {
        "fast_handshakes_per_s>=1000": handshakes["fast"]["target_met"],
        "record_1KiB_ratio>=0.40": records["1024"]["per_message"]["target_met"],
        "record_64KiB_ratio>=0.75": records["65536"]["per_message"]["target_met"],
    }
    return {
        "benchmark": "chhaya.channel",
        "metadata": _metadata(quick, repeats, plan, peers.cache_size),
        "handshake": handshakes,
        "records": records,
        "targets_met": targets,
        "all_targets_met": all(targets.values()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_channel",
        description="Benchmark channel handshakes and record throughput against raw primitives.",
    )
    parser.add_argument("--quick", action="store_true", help="few iterations (CI smoke test)")
    parser.add_argument("--repeats", type=int, default=5, help="repeats per figure (default 5)")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    start = time.perf_counter()
    result = run(quick=args.quick, repeats=args.repeats)
    result["metadata"]["wall_s"] = round(time.perf_counter() - start, 2)
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
