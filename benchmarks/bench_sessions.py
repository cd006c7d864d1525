"""Session benchmarks: Double Ratchet messages and sealed-sender envelopes per second.

Run as ``python -m benchmarks.bench_sessions [--quick] [--repeats N]``. One
JSON object goes to stdout; progress goes to stderr. The ratchet figures are
paired with a baseline measured in the same run, the pure-Python
``doubleratchet`` package (python-doubleratchet by Syndace) in its standard
configuration, timed immediately before each subject (baseline, subject,
baseline, subject, ...). Reported rates are medians over the repeats; ratios
are medians of the per-repeat paired ratios.

The baseline is optional: without ``doubleratchet`` installed
(``pip install -e '.[bench]'``) every baseline field is null and only the
absolute targets are judged.

See benchmarks/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from chhaya.crypto import FAST
from chhaya.identity import PrivateIdentity
from chhaya.ratchet import RatchetSession
from chhaya.sealed import (
    CertificateCache,
    issue_certificate,
    open_envelope_untrusted,
    seal,
)

from ._common import median as _median
from ._common import rounded as _rounded
from ._common import timed as _timed
from ._common import version as _version

__all__ = ["main", "run"]

_MESSAGE_SIZE = 200
_AD_SIZE = 64
_START_MS = 1_700_000_000_000
_CERT_LIFETIME_MS = 30 * 24 * 3600 * 1000
_INSTALL_HINT = "doubleratchet is not installed: pip install -e '.[bench]'"

# Absolute targets (from the issue), in operations per second.
_TARGET_IN_ORDER = 25_000.0
_TARGET_DH_STEP = 4_000.0
_TARGET_SEALED = 5_000.0
# What the issue quotes for doubleratchet on the reference machine.
_ISSUE_BASELINE_IN_ORDER = 3_500.0
_ISSUE_BASELINE_DH_STEP = 1_900.0

# Mirrors chhaya.ratchet's skip limits (MAX_SKIP_PER_CHAIN, MAX_SKIPPED_TOTAL).
_DR_DOS_THRESHOLD = 1000
_DR_MAX_SKIPPED = 2000
# Chain step: the first HMAC output becomes the chain key, the second the
# message key, so CK' = HMAC(CK, 0x02) and MK = HMAC(CK, 0x01) (Signal, 5.2).
_DR_MESSAGE_CHAIN_CONSTANT = b"\x02\x01"
# The header as the baseline authenticates it: the same layout as chhaya's.
_DR_HEADER = struct.Struct(">32sII")


@dataclass(frozen=True, slots=True)
class _Plan:
    """Operations per repeat for each measurement (DH-step counts are even)."""

    in_order: int
    dh_step: int
    sealed: int
    baseline_in_order: int
    baseline_dh_step: int


_FULL = _Plan(
    in_order=20_000,
    dh_step=4_000,
    sealed=4_000,
    baseline_in_order=4_000,
    baseline_dh_step=2_000,
)
_QUICK = _Plan(
    in_order=1_000,
    dh_step=200,
    sealed=200,
    baseline_in_order=100,
    baseline_dh_step=50,
)


def _log(message: str) -> None:
    print(f"[bench_sessions] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ chhaya


def _chhaya_pair(ad: bytes, header_encryption: bool) -> tuple[RatchetSession, RatchetSession]:
    """A fresh session pair; the initiator's first message is already delivered."""
    rng = os.urandom
    secret = rng(32)
    responder_key = FAST.dh.generate(rng)
    alice = RatchetSession.initiator(
        secret, ad, responder_key.public_key, rng, header_encryption=header_encryption
    )
    bob = RatchetSession.responder(secret, ad, responder_key, header_encryption=header_encryption)
    if bob.decrypt(alice.encrypt(b"hello", rng), rng) != b"hello":
        raise RuntimeError("chhaya session pair does not agree on keys")
    return alice, bob


def _chhaya_in_order(
    sender: RatchetSession, receiver: RatchetSession, msg: bytes
) -> Callable[[int], object]:
    """``n`` messages one way, each decrypted as soon as it is encrypted."""

    def run(n: int) -> None:
        encrypt, decrypt, rng = sender.encrypt, receiver.decrypt, os.urandom
        out = b""
        for _ in range(n):
            out = decrypt(encrypt(msg, rng), rng)
        if out != msg:
            raise RuntimeError("chhaya in-order round trip lost a message")

    return run


def _chhaya_dh_step(
    alice: RatchetSession, bob: RatchetSession, msg: bytes
) -> Callable[[int], object]:
    """``n`` messages alternating B->A, A->B: every decryption takes a DH step."""

    def run(n: int) -> None:
        a_enc, a_dec, b_enc, b_dec = alice.encrypt, alice.decrypt, bob.encrypt, bob.decrypt
        rng = os.urandom
        out_a = out_b = b""
        for _ in range(n // 2):
            out_a = a_dec(b_enc(msg, rng), rng)
            out_b = b_dec(a_enc(msg, rng), rng)
        if out_a != msg or out_b != msg:
            raise RuntimeError("chhaya ping-pong lost a message")

    return run


def _check_chhaya_dh_step(alice: RatchetSession, bob: RatchetSession, msg: bytes) -> None:
    """Outside timing: each side sends under a new ratchet key every time."""
    rng = os.urandom
    seen: set[bytes] = set()
    for _ in range(3):
        seen.add(bob.ratchet_public_key)
        alice.decrypt(bob.encrypt(msg, rng), rng)
        seen.add(alice.ratchet_public_key)
        bob.decrypt(alice.encrypt(msg, rng), rng)
    if len(seen) != 6:
        raise RuntimeError("chhaya ping-pong did not ratchet on every message")


# ------------------------------------------------------------ doubleratchet


@dataclass(frozen=True, slots=True)
class _Baseline:
    """The doubleratchet runners, each driving one shared event loop."""

    version: str | None
    configuration: dict[str, Any]
    in_order: Callable[[int], object]
    dh_step: Callable[[int], object]


def _load_baseline(runner: asyncio.Runner, ad: bytes, msg: bytes) -> _Baseline | None:
    """Build two doubleratchet pairs, or return None if the package is missing.

    Configuration: X25519 DH ratchet, HKDF-SHA-256 root chain, separate
    HMAC-SHA-256 message chains, and the library's recommended AEAD
    (AES-256-CBC + HMAC-SHA-256 with HKDF-SHA-256 key derivation), the
    algorithms the Signal specification recommends.
    """
    # The ignores below only matter when doubleratchet is absent (mypy then
    # sees Any); with it installed they are unused and the code is checked.
    try:
        from doubleratchet import (  # type: ignore[import-not-found, unused-ignore]
            DoubleRatchet,
            EncryptedMessage,
            Header,
        )
        from doubleratchet.recommended import (  # type: ignore[import-not-found, unused-ignore]
            HashFunction,
            aead_aes_hmac,
            diffie_hellman_ratchet_curve25519,
            kdf_hkdf,
            kdf_separate_hmacs,
        )
    except ImportError:
        return None

    class _Session(DoubleRatchet):  # type: ignore[misc, unused-ignore]
        @staticmethod
        def _build_associated_data(associated_data: bytes, header: Header) -> bytes:
            # The same 40-byte header chhaya authenticates, after a fixed-size AD.
            return associated_data + _DR_HEADER.pack(
                header.ratchet_pub,
                header.previous_sending_chain_length,
                header.sending_chain_length,
            )

    class _DhRatchet(diffie_hellman_ratchet_curve25519.DiffieHellmanRatchet):  # type: ignore[misc, unused-ignore]
        pass

    class _RootKdf(kdf_hkdf.KDF):  # type: ignore[misc, unused-ignore]
        @staticmethod
        def _get_hash_function() -> HashFunction:
            return HashFunction.SHA_256

        @staticmethod
        def _get_info() -> bytes:
            return b"chhaya-bench/doubleratchet/root"

    class _ChainKdf(kdf_separate_hmacs.KDF):  # type: ignore[misc, unused-ignore]
        @staticmethod
        def _get_hash_function() -> HashFunction:
            return HashFunction.SHA_256

    class _Aead(aead_aes_hmac.AEAD):  # type: ignore[misc, unused-ignore]
        @staticmethod
        def _get_hash_function() -> HashFunction:
            return HashFunction.SHA_256

        @staticmethod
        def _get_info() -> bytes:
            return b"chhaya-bench/doubleratchet/message"

    async def make_pair() -> tuple[_Session, _Session]:
        """Alice encrypts the initial message to Bob's ratchet key; Bob decrypts it."""
        secret = os.urandom(32)
        bob_priv = _DhRatchet._generate_priv()
        alice, initial = await _Session.encrypt_initial_message(
            diffie_hellman_ratchet_class=_DhRatchet,
            root_chain_kdf=_RootKdf,
            message_chain_kdf=_ChainKdf,
            message_chain_constant=_DR_MESSAGE_CHAIN_CONSTANT,
            dos_protection_threshold=_DR_DOS_THRESHOLD,
            max_num_skipped_message_keys=_DR_MAX_SKIPPED,
            aead=_Aead,
            shared_secret=secret,
            recipient_ratchet_pub=_DhRatchet._derive_pub(bob_priv),
            message=b"hello",
            associated_data=ad,
        )
        bob, plaintext = await _Session.decrypt_initial_message(
            diffie_hellman_ratchet_class=_DhRatchet,
            root_chain_kdf=_RootKdf,
            message_chain_kdf=_ChainKdf,
            message_chain_constant=_DR_MESSAGE_CHAIN_CONSTANT,
            dos_protection_threshold=_DR_DOS_THRESHOLD,
            max_num_skipped_message_keys=_DR_MAX_SKIPPED,
            aead=_Aead,
            shared_secret=secret,
            own_ratchet_priv=bob_priv,
            message=initial,
            associated_data=ad,
        )
        if plaintext != b"hello":
            raise RuntimeError("doubleratchet pair does not agree on keys")
        return alice, bob

    async def in_order(sender: _Session, receiver: _Session, n: int) -> None:
        encrypt, decrypt = sender.encrypt_message, receiver.decrypt_message
        out = b""
        for _ in range(n):
            out = await decrypt(await encrypt(msg, ad), ad)
        if out != msg:
            raise RuntimeError("doubleratchet in-order round trip lost a message")

    async def dh_step(alice: _Session, bob: _Session, n: int) -> None:
        a_enc, a_dec = alice.encrypt_message, alice.decrypt_message
        b_enc, b_dec = bob.encrypt_message, bob.decrypt_message
        out_a = out_b = b""
        for _ in range(n // 2):
            out_a = await a_dec(await b_enc(msg, ad), ad)
            out_b = await b_dec(await a_enc(msg, ad), ad)
        if out_a != msg or out_b != msg:
            raise RuntimeError("doubleratchet ping-pong lost a message")

    async def check_dh_step(alice: _Session, bob: _Session) -> None:
        """Outside timing: each side sends under a new ratchet key every time."""
        seen: set[bytes] = set()
        for _ in range(3):
            m: EncryptedMessage = await bob.encrypt_message(msg, ad)
            seen.add(m.header.ratchet_pub)
            await alice.decrypt_message(m, ad)
            m = await alice.encrypt_message(msg, ad)
            seen.add(m.header.ratchet_pub)
            await bob.decrypt_message(m, ad)
        if len(seen) != 6:
            raise RuntimeError("doubleratchet ping-pong did not ratchet on every message")

    sender, receiver = runner.run(make_pair())
    alice, bob = runner.run(make_pair())
    runner.run(check_dh_step(alice, bob))

    def run_in_order(n: int) -> None:
        runner.run(in_order(sender, receiver, n))

    def run_dh_step(n: int) -> None:
        runner.run(dh_step(alice, bob, n))

    return _Baseline(
        version=_version("doubleratchet"),
        configuration={
            "dh_ratchet": "X25519 (recommended.diffie_hellman_ratchet_curve25519)",
            "root_chain_kdf": "HKDF-SHA-256 (recommended.kdf_hkdf)",
            "message_chain_kdf": "HMAC-SHA-256 (recommended.kdf_separate_hmacs), constant 02 01",
            "aead": "AES-256-CBC + HMAC-SHA-256, HKDF-SHA-256 keys (recommended.aead_aes_hmac)",
            "dos_protection_threshold": _DR_DOS_THRESHOLD,
            "max_num_skipped_message_keys": _DR_MAX_SKIPPED,
            "associated_data": f"{_AD_SIZE}-byte AD || 40-byte header",
            "event_loop": "one asyncio.Runner loop for the whole run; one run() per timed block",
            "wire_format": "none: EncryptedMessage objects are passed as they are",
        },
        in_order=run_in_order,
        dh_step=run_dh_step,
    )


# ------------------------------------------------------------------ sealed


def _sealed(content: bytes, cache: CertificateCache | None) -> tuple[Callable[[int], object], int]:
    """Seal then open one envelope per iteration; also returns the envelope size."""
    sender = PrivateIdentity.generate(os.urandom)
    recipient = PrivateIdentity.generate(os.urandom)
    now = _START_MS
    certificate = issue_certificate(sender, "alice", b"laptop", now + _CERT_LIFETIME_MS)
    recipient_key = recipient.public.agreement_key
    envelope_size = len(seal(recipient_key, certificate, content, os.urandom))

    def run(n: int) -> None:
        rng = os.urandom
        opened = None
        for _ in range(n):
            opened = open_envelope_untrusted(
                recipient, seal(recipient_key, certificate, content, rng), now, cache
            )
        if opened is None or opened.content != content or opened.certificate != certificate:
            raise RuntimeError("sealed round trip lost a message")

    return run, envelope_size


# -------------------------------------------------------------- measuring


def _paired(
    label: str,
    subjects: dict[str, Callable[[int], object]],
    n: int,
    baseline: Callable[[int], object] | None,
    n_baseline: int,
    repeats: int,
) -> tuple[dict[str, list[float]], dict[str, list[float]], dict[str, list[float]]]:
    """Per-variant rates, paired baseline rates and ratios, one per repeat."""
    # Warm-up, untimed.
    if baseline is not None:
        baseline(min(n_baseline, 20))
    for fn in subjects.values():
        fn(min(n, 200))

    rates: dict[str, list[float]] = {v: [] for v in subjects}
    base_rates: dict[str, list[float]] = {v: [] for v in subjects}
    ratios: dict[str, list[float]] = {v: [] for v in subjects}
    for r in range(repeats):
        counts = f"{n} operations" + (f", baseline {n_baseline}" if baseline is not None else "")
        _log(f"{label}: repeat {r + 1}/{repeats} ({counts})")
        for variant, fn in subjects.items():
            base = n_baseline / _timed(baseline, n_baseline) if baseline is not None else None
            subject = n / _timed(fn, n)
            rates[variant].append(subject)
            if base is not None:
                base_rates[variant].append(base)
                ratios[variant].append(subject / base)
    return rates, base_rates, ratios


def _variant(
    rates: list[float],
    base_rates: list[float],
    ratios: list[float],
    target: float,
    issue_baseline: float,
    **extra: Any,
) -> dict[str, Any]:
    rate = _median(rates)
    return {
        **extra,
        "per_s": round(rate, 1),
        "us_per_op": round(1e6 / rate, 2),
        "baseline_per_s": round(_median(base_rates), 1) if base_rates else None,
        "ratio": round(_median(ratios), 4) if ratios else None,
        "ratio_to_issue_baseline": round(rate / issue_baseline, 4),
        "target_met": rate >= target,
        "samples": {
            "per_s": _rounded(rates, 1),
            "baseline_per_s": _rounded(base_rates, 1),
            "ratio": _rounded(ratios),
        },
    }


def _bench_ratchet(
    kind: str,
    plan_n: int,
    plan_baseline: int,
    baseline: Callable[[int], object] | None,
    make: Callable[[RatchetSession, RatchetSession, bytes], Callable[[int], object]],
    target: float,
    issue_baseline: float,
    repeats: int,
    ad: bytes,
    msg: bytes,
) -> dict[str, Any]:
    subjects: dict[str, Callable[[int], object]] = {}
    for variant, he in (("chhaya", False), ("chhaya_header_encryption", True)):
        alice, bob = _chhaya_pair(ad, he)
        if kind == "dh_step_every_message":
            _check_chhaya_dh_step(alice, bob, msg)
        subjects[variant] = make(alice, bob, msg)
    rates, base_rates, ratios = _paired(kind, subjects, plan_n, baseline, plan_baseline, repeats)
    all_base = [x for v in base_rates.values() for x in v]
    result: dict[str, Any] = {
        "plaintext_bytes": len(msg),
        "operations_per_repeat": plan_n,
        "baseline_operations_per_repeat": plan_baseline if baseline is not None else None,
        "unit": "messages encrypted and decrypted per second; ratio = chhaya / doubleratchet",
        "baseline_per_s": round(_median(all_base), 1) if all_base else None,
        "issue_baseline_per_s": issue_baseline,
        "target_per_s": target,
        "target_kind": "absolute",
    }
    for variant in subjects:
        result[variant] = _variant(
            rates[variant],
            base_rates[variant],
            ratios[variant],
            target,
            issue_baseline,
            header_encryption=variant.endswith("header_encryption"),
        )
    return result


def _bench_sealed(
    plan_n: int,
    plan_baseline: int,
    baseline: Callable[[int], object] | None,
    repeats: int,
    msg: bytes,
) -> dict[str, Any]:
    cache = CertificateCache()
    no_cache, envelope_size = _sealed(msg, None)
    with_cache, _ = _sealed(msg, cache)
    subjects = {"no_cache": no_cache, "with_cache": with_cache}
    rates, base_rates, ratios = _paired(
        "sealed", subjects, plan_n, baseline, plan_baseline, repeats
    )
    result: dict[str, Any] = {
        "content_bytes": len(msg),
        "envelope_bytes": envelope_size,
        "operations_per_repeat": plan_n,
        "baseline_operations_per_repeat": plan_baseline if baseline is not None else None,
        "unit": (
            "envelopes sealed and opened per second; ratio = sealed / doubleratchet "
            "in-order messages (reference only)"
        ),
        "issue_baseline_per_s": _ISSUE_BASELINE_IN_ORDER,
        "target_per_s": _TARGET_SEALED,
        "target_kind": "absolute (the ratio is a reference point, not a target)",
    }
    for variant in subjects:
        result[variant] = _variant(
            rates[variant],
            base_rates[variant],
            ratios[variant],
            _TARGET_SEALED,
            _ISSUE_BASELINE_IN_ORDER,
            certificate_cache=variant == "with_cache",
        )
    result["with_cache"]["cache_hits"] = cache.hits
    result["with_cache"]["cache_misses"] = cache.misses
    return result


# --------------------------------------------------------------------- main


def _metadata(quick: bool, repeats: int, plan: _Plan) -> dict[str, Any]:
    from cryptography.hazmat.backends.openssl.backend import backend

    return {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "cryptography": _version("cryptography"),
        "openssl": backend.openssl_version_text(),
        "pynacl": _version("pynacl"),
        "doubleratchet": _version("doubleratchet"),
        "chhaya": _version("chhaya"),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "quick": quick,
        "repeats": repeats,
        "plan": {
            "in_order_per_repeat": plan.in_order,
            "dh_step_per_repeat": plan.dh_step,
            "sealed_per_repeat": plan.sealed,
            "baseline_in_order_per_repeat": plan.baseline_in_order,
            "baseline_dh_step_per_repeat": plan.baseline_dh_step,
        },
        "method": {
            "timer": "time.perf_counter",
            "statistic": "median over repeats; ratio = median of per-repeat paired ratios",
            "interleaving": "each repeat times the baseline immediately before each subject",
            "gc": "cyclic GC disabled while timing (as timeit does); refcounting unaffected",
            "rng": "os.urandom",
            "single_process": "both parties in one process and one thread",
            "message": f"{_MESSAGE_SIZE} random bytes, {_AD_SIZE}-byte session AD",
        },
        "units": {
            "per_s": "operations per second (a message encrypted and decrypted, or an "
            "envelope sealed and opened)",
            "us_per_op": "microseconds per operation (1e6 / per_s)",
            "ratio": "chhaya rate / doubleratchet rate, paired per repeat",
            "ratio_to_issue_baseline": "chhaya rate / the doubleratchet rate the issue quotes",
        },
    }


def run(quick: bool = False, repeats: int = 5) -> dict[str, Any]:
    if repeats < 1:
        raise ValueError("repeats must be at least 1")
    plan = _QUICK if quick else _FULL
    ad = os.urandom(_AD_SIZE)
    msg = os.urandom(_MESSAGE_SIZE)

    with asyncio.Runner() as runner:
        baseline = _load_baseline(runner, ad, msg)
        if baseline is None:
            _log(_INSTALL_HINT + "; baseline figures will be null")
        base_in_order = baseline.in_order if baseline is not None else None
        base_dh_step = baseline.dh_step if baseline is not None else None
        in_order = _bench_ratchet(
            "in_order",
            plan.in_order,
            plan.baseline_in_order,
            base_in_order,
            _chhaya_in_order,
            _TARGET_IN_ORDER,
            _ISSUE_BASELINE_IN_ORDER,
            repeats,
            ad,
            msg,
        )
        dh_step = _bench_ratchet(
            "dh_step_every_message",
            plan.dh_step,
            plan.baseline_dh_step,
            base_dh_step,
            _chhaya_dh_step,
            _TARGET_DH_STEP,
            _ISSUE_BASELINE_DH_STEP,
            repeats,
            ad,
            msg,
        )
        sealed = _bench_sealed(plan.sealed, plan.baseline_in_order, base_in_order, repeats, msg)

    targets = {
        "in_order_per_s>=25000": in_order["chhaya"]["target_met"],
        "dh_step_per_s>=4000": dh_step["chhaya"]["target_met"],
        "sealed_per_s>=5000": sealed["no_cache"]["target_met"],
    }
    informational = {
        "in_order_header_encryption_per_s>=25000": in_order["chhaya_header_encryption"][
            "target_met"
        ],
        "dh_step_header_encryption_per_s>=4000": dh_step["chhaya_header_encryption"]["target_met"],
        "sealed_with_cache_per_s>=5000": sealed["with_cache"]["target_met"],
    }
    return {
        "benchmark": "chhaya.sessions",
        "metadata": _metadata(quick, repeats, plan),
        "baseline": {
            "library": "doubleratchet",
            "available": baseline is not None,
            "version": baseline.version if baseline is not None else None,
            "configuration": baseline.configuration if baseline is not None else None,
            "note": None if baseline is not None else _INSTALL_HINT,
        },
        "ratchet": {"in_order": in_order, "dh_step_every_message": dh_step},
        "sealed": sealed,
        "targets_met": targets,
        "all_targets_met": all(targets.values()),
        "other_variants_target_met": informational,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_sessions",
        description="Benchmark Double Ratchet sessions and sealed sender against doubleratchet.",
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
