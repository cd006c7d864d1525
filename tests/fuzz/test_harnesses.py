"""Smoke tests for the atheris harnesses in ``fuzz/``, without fuzzing.

Every harness is imported (which must not start fuzzing) and its
``TestOneInput`` is called on its seeds, on mutations of them and on random
bytes. A last test (marked slow, about 30 s with twenty harnesses) runs
``fuzz/run_all.py`` for two seconds a harness.
"""

from __future__ import annotations

import importlib
import pkgutil
import random
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

import chhaya
import chhaya.channel
import chhaya.identity
import chhaya.prekeys
import chhaya.ratchet
import chhaya.sealed
import chhaya.session
import node.daemon
import node.p2p
import node.p2p._register_protocol
import quorum
import vkd
import vkd.tree
import vkd.vrf
from chhaya import ChhayaError, DecodeError
from chhaya.channel import ConnectionClosed, DataReceived, HandshakeComplete

# Every chhaya module is imported before any harness: a harness wraps its
# imports in atheris.instrument_imports(), which only instruments modules
# imported for the first time, so the modules the rest of the suite uses
# stay uninstrumented.
for _info in pkgutil.walk_packages(chhaya.__path__, "chhaya."):
    importlib.import_module(_info.name)

FUZZ_DIR = Path(__file__).resolve().parents[2] / "fuzz"
HARNESSES = sorted(p.stem for p in FUZZ_DIR.glob("fuzz_*.py"))
RANDOM_INPUTS = 200

# Harnesses whose first seed must be a valid encoding, and how to check it.
VALID_FIRST_SEED: dict[str, Callable[[bytes], object]] = {
    "fuzz_ack": chhaya.channel.Ack.decode_untrusted,
    "fuzz_key_file": lambda d: chhaya.identity.decode_key_file_untrusted(d, None),
    "fuzz_pub_file": chhaya.identity.decode_pub_file_untrusted,
    "fuzz_public_identity": chhaya.identity.PublicIdentity.decode_untrusted,
    "fuzz_syn": chhaya.channel.Syn.decode_untrusted,
    "fuzz_syn_ack": chhaya.channel.SynAck.decode_untrusted,
    "fuzz_wire_reader": lambda d: d,
    "fuzz_channel_frames": lambda d: d,
    "fuzz_sealed_certificate": chhaya.sealed.SenderCertificate.decode_untrusted,
    "fuzz_padding": chhaya.sealed.unpad_untrusted,
    "fuzz_prekey_signed_prekey": chhaya.prekeys.SignedPrekey.decode_untrusted,
    "fuzz_prekey_kem_prekey": chhaya.prekeys.SignedKemPrekey.decode_untrusted,
    "fuzz_prekey_one_time_prekey": chhaya.prekeys.OneTimePrekey.decode_untrusted,
    "fuzz_prekey_bundle": chhaya.prekeys.PrekeyBundle.decode_untrusted,
    "fuzz_prekey_initial_message": chhaya.prekeys.InitialMessage.decode_untrusted,
    "fuzz_ratchet_header": chhaya.ratchet.Header.decode_untrusted,
    "fuzz_ratchet_message": chhaya.ratchet.RatchetMessage.decode_untrusted,
    "fuzz_ratchet_session": chhaya.ratchet.RatchetSession.decode_untrusted,
    "fuzz_session_payload": chhaya.session.Payload.decode_untrusted,
    "fuzz_conversation_state": chhaya.session.Conversation.decode_untrusted,
    "fuzz_vrf_proof": vkd.vrf.FAST_VRF.proof_to_hash,
    "fuzz_smt_membership_proof": vkd.tree.MembershipProof.decode_untrusted,
    "fuzz_smt_non_membership_proof": vkd.tree.NonMembershipProof.decode_untrusted,
    "fuzz_smt_append_only_proof": vkd.tree.AppendOnlyProof.decode_untrusted,
    "fuzz_quorum_witness_set": quorum.WitnessSet.decode_untrusted,
    "fuzz_quorum_certificate": quorum.QuorumCertificate.decode_untrusted,
    "fuzz_quorum_epoch_head": quorum.EpochHead.decode_untrusted,
    "fuzz_quorum_signed_head": quorum.SignedHead.decode_untrusted,
    "fuzz_quorum_evidence": quorum.EquivocationEvidence.decode_untrusted,
    "fuzz_quorum_set_rotation": quorum.SetRotation.decode_untrusted,
    "fuzz_quorum_witness_key": quorum.decode_witness_key_untrusted,
    "fuzz_quorum_witness_pub": quorum.decode_witness_pub_untrusted,
    "fuzz_vkd_lookup_proof": vkd.LookupProof.decode_untrusted,
    "fuzz_vkd_history_proof": vkd.HistoryProof.decode_untrusted,
    "fuzz_vkd_audit_proof": vkd.AuditProof.decode_untrusted,
    "fuzz_vkd_append_only_violation": vkd.AppendOnlyViolation.decode_untrusted,
    "fuzz_vkd_identity_bundle": vkd.IdentityBundle.decode_untrusted,
    "fuzz_vkd_directory_value": vkd.DirectoryValue.decode_untrusted,
    "fuzz_p2p_vkd_messages": node.p2p.VkdRequest.decode_untrusted,
    "fuzz_p2p_certified_head": node.p2p.CertifiedHead.decode_untrusted,
    "fuzz_p2p_dht_record": node.p2p.SignedRecord.decode_untrusted,
    "fuzz_p2p_cosign": node.p2p.CosignRequest.decode_untrusted,
    "fuzz_p2p_registration": node.p2p.Registration.decode_untrusted,
    "fuzz_p2p_mailbox": node.p2p.DepositRequest.decode_untrusted,
    "fuzz_daemon_intro": node.daemon.Intro.decode_untrusted,
    "fuzz_daemon_welcome": node.daemon.Welcome.decode_untrusted,
    "fuzz_daemon_presence": node.daemon.Presence.decode_untrusted,
}


@pytest.fixture(scope="module", autouse=True)
def _fuzz_on_path() -> Iterator[None]:
    sys.path.insert(0, str(FUZZ_DIR))
    try:
        yield
    finally:
        sys.path.remove(str(FUZZ_DIR))


def load(name: str) -> ModuleType:
    return importlib.import_module(name)


def entry_point(module: ModuleType) -> Callable[[bytes], None]:
    fn: Callable[[bytes], None] = module.TestOneInput
    return fn


def seeds_of(module: ModuleType) -> list[bytes]:
    seeds: list[bytes] = module.seeds()
    return seeds


def mutations(seeds: list[bytes], rng: random.Random, count: int) -> Iterator[bytes]:
    """Bit flips, byte overwrites, truncations and extensions of the seeds."""
    for _ in range(count):
        data = bytearray(rng.choice(seeds))
        kind = rng.randrange(4)
        if kind == 0 and data:
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        elif kind == 1 and data:
            data[rng.randrange(len(data))] = rng.randrange(256)
        elif kind == 2:
            del data[rng.randrange(len(data) + 1) :]
        else:
            data += rng.randbytes(rng.randrange(1, 40))
        yield bytes(data)


def random_inputs(seeds: list[bytes], rng: random.Random, count: int) -> Iterator[bytes]:
    longest = max(len(s) for s in seeds)
    for _ in range(count):
        n = rng.choice([rng.randrange(16), rng.randrange(longest + 64)])
        yield rng.randbytes(n)


def test_harness_list() -> None:
    assert set(VALID_FIRST_SEED) <= set(HARNESSES)


@pytest.mark.parametrize("name", HARNESSES)
def test_import_does_not_fuzz_or_leave_hooks(name: str) -> None:
    module = load(name)
    assert callable(module.TestOneInput)
    assert callable(module.seeds)
    assert callable(module.main)
    assert not any(type(f).__name__ == "AtherisMetaPathFinder" for f in sys.meta_path)


@pytest.mark.parametrize("name", HARNESSES)
def test_seeds(name: str) -> None:
    module = load(name)
    seeds = seeds_of(module)
    assert seeds
    assert len(set(seeds)) == len(seeds)
    if name in VALID_FIRST_SEED:
        VALID_FIRST_SEED[name](seeds[0])  # raises if the first seed is not valid
    for seed in seeds:
        entry_point(module)(seed)


@pytest.mark.parametrize("name", HARNESSES)
def test_random_and_mutated_inputs(name: str) -> None:
    module = load(name)
    seeds = seeds_of(module)
    rng = random.Random(f"harness/{name}")
    run = entry_point(module)
    for data in random_inputs(seeds, rng, RANDOM_INPUTS):
        run(data)
    for data in mutations(seeds, rng, RANDOM_INPUTS):
        run(data)


def test_channel_seed_transcript_reaches_close() -> None:
    module = load("fuzz_channel_frames")
    full = next(s for s in seeds_of(module) if len(s) > 2400)
    events, error = module.run(full)
    assert error is None
    kinds = [type(e) for e in events]
    assert kinds == [HandshakeComplete, DataReceived, DataReceived, DataReceived, ConnectionClosed]


def test_channel_harness_reports_only_chhaya_errors() -> None:
    module = load("fuzz_channel_frames")
    events, error = module.run(b"\x00\x00\x00\x00")
    assert events == []
    assert isinstance(error, DecodeError)
    events, error = module.run(seeds_of(module)[0][:-1])
    assert isinstance(error, ChhayaError)


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_run_all_two_seconds(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            str(FUZZ_DIR / "run_all.py"),
            "--seconds",
            "2",
            "--jobs",
            "4",  # libFuzzer stops on wall time, so overlap shortens the run
            "--corpus-root",
            str(tmp_path / "corpus"),
            "--crash-root",
            str(tmp_path / "crashes"),
        ],
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == len(HARNESSES)
    for line, name in zip(lines, HARNESSES, strict=True):
        assert line.split()[:2] == [name.removeprefix("fuzz_"), "ok"]
    for name in HARNESSES:
        assert any((tmp_path / "corpus" / name.removeprefix("fuzz_")).iterdir())
