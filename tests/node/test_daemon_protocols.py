"""Hostile peers and directories against real node processes on 127.0.0.1.

Each test runs a :class:`~node.demo_network.LocalNetwork` (witnesses, a
directory and user nodes as separate processes, all stopped by PID on exit)
and, in the test process itself, a py-libp2p host playing the attacker:

- garbage, oversized length prefixes and truncated frames on every Chhaya
  protocol and on the heads gossip topic leave every process serving, and the
  attacker hears nothing back but stream resets and closes;
- a channel whose ``Intro`` names a handle the peer does not own is refused;
- a fake directory serving tampered, foreign-quorum or rolled-back proofs
  makes nothing trusted;
- a directory whose quorum is down never shows an uncertified registration.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest
import trio
from libp2p.abc import IHost
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.custom_types import TProtocol
from libp2p.host.exceptions import StreamFailure
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr
from multiaddr import Multiaddr

from chhaya import ChhayaError, TransportError
from chhaya.identity import PrivateIdentity
from node.clock import system_rng, wall_ms
from node.daemon._main import bls_backend
from node.daemon._wire import Intro
from node.demo_network import LocalNetwork, _make_quorum
from node.p2p import (
    CHANNEL_PROTOCOL,
    HEADS_TOPIC,
    MAX_CERTIFIED_HEAD_SIZE,
    REGISTER_PROTOCOL,
    VKD_PROTOCOL,
    WITNESS_PROTOCOL,
    CertifiedHead,
    HeadGossip,
    Libp2pStream,
    ProofUnavailable,
    VkdService,
    fetch_lookup,
    listen_addrs,
    open_channel,
    running_host,
)
from node.procs import LOOPBACK_LISTEN, NodeProcess
from node.quorum_files import load_witness_key, load_witness_set
from quorum import (
    CertificateVerifier,
    HeadTracker,
    QuorumCertificate,
    SignedHead,
    SignedKind,
    assemble_certificate,
    signing_message,
)
from vkd import (
    DirectoryTrust,
    HistoryProof,
    LookupProof,
    NotRegistered,
    VerifiedBinding,
    verify_vkd_proof,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]

T = TypeVar("T")
LOOPBACK = [LOOPBACK_LISTEN]
#: Bound on any one exchange the attacker waits for.
EXCHANGE_S = 20.0


# ------------------------------------------------------------------ helpers


async def blocking(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking call (process start, control call) off the trio thread."""
    return await trio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))


async def call(
    net: LocalNetwork, handle: str, op: str, args: dict[str, Any] | None = None
) -> dict[str, Any]:
    return await blocking(net.call, handle, op, args, 60.0)


async def call_fails(
    net: LocalNetwork, handle: str, op: str, args: dict[str, Any] | None = None
) -> str:
    """The node's error text for a control call that must fail."""
    with pytest.raises(TransportError) as info:
        await call(net, handle, op, args)
    return str(info.value)


async def start_network(
    net: LocalNetwork,
    users: Sequence[str] = (),
    *,
    extra_user_args: Sequence[str] = (),
) -> None:
    """Every witness (in parallel), the directory, then the users (in parallel)."""
    started: dict[str, NodeProcess] = {}

    async def start(name: str, args: list[str]) -> None:
        started[name] = await blocking(net.group.start, name, args)

    names = [f"w{i + 1}" for i in range(net.witness_count)]
    async with trio.open_nursery() as nursery:
        for name in names:
            nursery.start_soon(start, name, net.witness_args(name))
    net.witness_addrs = [started[name].address for name in names]
    await blocking(net.start_directory)
    async with trio.open_nursery() as nursery:
        for handle in users:
            nursery.start_soon(start, handle, [*net.user_args(handle), *extra_user_args])
    for handle in users:
        net.users[handle] = started[handle]


def directory_addr(net: LocalNetwork) -> str:
    assert net.directory is not None
    return net.directory.address


def verifier_of(set_path: Path) -> CertificateVerifier:
    backend = bls_backend()
    return CertificateVerifier(load_witness_set(set_path, backend), backend)


def verify(net: LocalNetwork, proof: LookupProof) -> VerifiedBinding | None:
    """What an honest client makes of ``proof`` (None: verified as not registered)."""
    try:
        result = verify_vkd_proof(proof, DirectoryTrust(verifier_of(net.set_path)), None, wall_ms())
    except NotRegistered:
        return None
    assert isinstance(result, VerifiedBinding)
    return result


async def fetch(host: IHost, addr: str, handle: str) -> LookupProof:
    """A lookup proof from the directory, once it has a certified epoch."""
    with trio.fail_after(EXCHANGE_S):
        while True:
            try:
                return await fetch_lookup(host, addr, handle)
            except ProofUnavailable:
                await trio.sleep(0.2)


async def wait_status(
    net: LocalNetwork, handle: str, predicate: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    with trio.fail_after(EXCHANGE_S):
        while not predicate(status := await call(net, handle, "status")):
            await trio.sleep(0.2)
    return status


def assert_all_alive(net: LocalNetwork) -> None:
    dead = [p.name for p in net.group.processes if p.process.poll() is not None]
    assert not dead, f"processes died: {dead}"


async def send_and_wait(net: LocalNetwork, sender: str, to: str, text: str) -> None:
    result = await call(net, sender, "send", {"handle": to, "text": text, "wait": True,
                                               "timeout_s": 30})  # fmt: skip
    assert result["status"] in ("delivered", "read"), result
    with trio.fail_after(EXCHANGE_S):
        while text not in [m["text"] for m in (await call(net, to, "inbox"))["messages"]]:
            await trio.sleep(0.2)


def flip(data: bytes, index: int = -1) -> bytes:
    out = bytearray(data)
    out[index] ^= 0x01
    return bytes(out)


def rng_bytes(n: int) -> bytes:
    return os.urandom(n)


# ------------------------------------------------------------------ 1. garbage


def garbage_payloads() -> list[tuple[str, bytes, bool]]:
    """(name, bytes, half-close after) for one protocol stream each."""
    return [
        ("empty", b"", True),
        ("one byte", rng_bytes(1), True),
        ("random", rng_bytes(200), True),
        ("random 60 KiB", rng_bytes(60_000), True),
        ("oversized prefix", b"\xff\xff\xff\xff" + rng_bytes(64), True),
        ("1 MiB prefix", (1 << 20).to_bytes(4, "big") + rng_bytes(64), True),
        ("truncated frame", (100).to_bytes(4, "big") + rng_bytes(10), True),
        ("truncated prefix", b"\x00\x00", True),
        ("magic then junk", (40).to_bytes(4, "big") + b"CVQ1" + rng_bytes(36), True),
        ("frame then trailing junk", (4).to_bytes(4, "big") + b"CVQ1" + rng_bytes(50), True),
        ("partial, then reset", (500).to_bytes(4, "big") + rng_bytes(20), False),
    ]


async def send_garbage(host: IHost, addr: str, protocol: TProtocol, payload: bytes,
                       eof: bool) -> bytes:  # fmt: skip
    """Open ``protocol`` on ``addr``, send ``payload``; everything the peer answers."""
    info = info_from_p2p_addr(Multiaddr(addr))
    got = bytearray()
    with trio.fail_after(EXCHANGE_S):
        await host.connect(info)
        try:
            stream = Libp2pStream(await host.new_stream(info.peer_id, [protocol]))
        except StreamFailure:
            return b""  # a full service resets new streams during negotiation
        try:
            await stream.send_all(payload)
            if not eof:
                return b""
            await stream.send_eof()
            while chunk := await stream.receive_some(1 << 16):
                got += chunk
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # reset by the peer: the expected answer
        finally:
            await stream.reset()
    return bytes(got)


async def gossip_garbage(net: LocalNetwork, real: LookupProof, peers: Sequence[str]) -> None:
    """Join the heads topic next to ``peers`` and publish malformed and forged heads.

    A fresh host: pubsub only adopts connections made after it starts.
    """
    tracker = HeadTracker(verifier_of(net.set_path), real.head.directory_key, real.head.vrf_key)
    async with (
        running_host(create_new_key_pair(), LOOPBACK) as host,
        HeadGossip(host, tracker) as gossip,
    ):
        ids = set()
        for addr in peers:
            info = info_from_p2p_addr(Multiaddr(addr))
            await host.connect(info)
            ids.add(info.peer_id)
        with trio.move_on_after(EXCHANGE_S):
            while not ids <= gossip.topic_peers or not gossip.mesh_peers:
                await trio.sleep(0.1)
        assert net.directory is not None
        assert ID.from_base58(net.directory.ready["peer_id"]) in gossip.topic_peers
        forged_sig = dataclasses.replace(real.head, signature=flip(real.head.signature))
        forged_cert = dataclasses.replace(
            real.certificate, signature=flip(real.certificate.signature, 0)
        )
        messages = [
            rng_bytes(1),
            rng_bytes(300),
            b"CHD1" + rng_bytes(300),
            rng_bytes(MAX_CERTIFIED_HEAD_SIZE + 100),
            CertifiedHead(forged_sig, real.certificate).encode(),
            CertifiedHead(real.head, forged_cert).encode(),
            CertifiedHead(real.head, real.certificate).encode()[:-5],
            CertifiedHead(real.head, real.certificate).encode() + b"junk",
        ]
        for message in messages:
            await gossip.pubsub.publish(HEADS_TOPIC, message)
            await trio.sleep(0.05)
        await trio.sleep(1.5)  # a heartbeat: gossip and IHAVE reach everyone


async def test_garbage_on_every_protocol_leaves_every_process_serving(tmp_path: Path) -> None:
    net = LocalNetwork(tmp_path)
    with net.group.running():
        await start_network(net, ["alice", "bob"])
        assert net.directory is not None
        targets: list[tuple[str, TProtocol]] = [
            (net.users["alice"].address, CHANNEL_PROTOCOL),
            (net.users["bob"].address, CHANNEL_PROTOCOL),
            (net.directory.address, VKD_PROTOCOL),
            (net.directory.address, REGISTER_PROTOCOL),
            *[(addr, WITNESS_PROTOCOL) for addr in net.witness_addrs],
        ]
        answers: list[tuple[str, str, bytes]] = []
        async with running_host(create_new_key_pair(), LOOPBACK) as attacker:
            real = await fetch(attacker, net.directory.address, "chhaya-probe")

            async def attack(addr: str, protocol: TProtocol, name: str, payload: bytes,
                             eof: bool) -> None:  # fmt: skip
                got = await send_garbage(attacker, addr, protocol, payload, eof)
                answers.append((str(protocol), name, got))

            for addr in {addr for addr, _ in targets}:  # one connection each, first
                with trio.fail_after(EXCHANGE_S):
                    await attacker.connect(info_from_p2p_addr(Multiaddr(addr)))
            async with trio.open_nursery() as nursery:
                for addr, protocol in targets:
                    for name, payload, eof in garbage_payloads():
                        nursery.start_soon(attack, addr, protocol, name, payload, eof)
        # Users follow the directory (and join the topic) once a proof verifies.
        for handle in ("alice", "bob"):
            await wait_status(net, handle, lambda s: s["directory_epoch"] is not None)
        await gossip_garbage(
            net, real, [net.directory.address, net.users["alice"].address, net.users["bob"].address]
        )
        assert len(answers) == len(targets) * len(garbage_payloads())
        spoke = [(p, n, a[:80]) for p, n, a in answers if a]
        assert not spoke, f"a service answered garbage with bytes: {spoke}"
        assert_all_alive(net)
        # Everything still works end to end: registration (directory and a
        # 3-of-4 quorum), gossip, lookups, channels and delivery.
        await blocking(net.register, ["alice", "bob"])
        await send_and_wait(net, "alice", "bob", "still here after the garbage")
        for handle in ("alice", "bob"):
            status = await call(net, handle, "status")
            assert status["handle"] == handle
            assert status["directory_epoch"] >= 1
        assert_all_alive(net)


# ------------------------------------------------------------------ 2a. intro


def metric_value(url: str, name: str, reason: str) -> float:
    assert url.startswith("http://127.0.0.1:"), url
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (checked above)
        text = response.read().decode()
    prefix = f'{name}{{reason="{reason}"}} '
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line[len(prefix) :])
    return 0.0


async def intro_refused(host: IHost, bob: str, bob_key: bytes, intro: bytes) -> None:
    """Run a real channel handshake with bob as a stranger, send ``intro``: bob closes."""
    identity = PrivateIdentity.generate(system_rng)
    with trio.fail_after(EXCHANGE_S):
        channel = await open_channel(host, bob, identity, bob_key)
        try:
            await channel.send(intro)
            try:
                answer = await channel.receive()
            except ChhayaError:
                answer = None  # the stream went away under the channel: also a refusal
            assert answer is None, f"bob answered a bad intro with {answer!r}"
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(5):
                await channel.aclose()


async def test_intro_for_a_handle_the_peer_does_not_own_is_refused(tmp_path: Path) -> None:
    net = LocalNetwork(tmp_path)
    with net.group.running():
        await start_network(net, ["alice", "bob"], extra_user_args=["--metrics", "127.0.0.1:0"])
        await blocking(net.register, ["alice", "bob"])
        metrics = net.users["bob"].ready["metrics"]
        assert isinstance(metrics, str)
        async with running_host(create_new_key_pair(), LOOPBACK) as attacker:
            binding = verify(net, await fetch(attacker, directory_addr(net), "bob"))
            assert binding is not None
            bob_key = binding.bundle.identity.signing_key
            bob = net.users["bob"].address
            # (a) alice's handle from a stranger's identity, (b) a handle nobody
            # registered, (c) an intro that does not decode.
            await intro_refused(attacker, bob, bob_key, Intro("alice", b"").encode())
            await intro_refused(attacker, bob, bob_key, Intro("nobody-here", b"").encode())
            await intro_refused(attacker, bob, bob_key, rng_bytes(40))
        for reason in ("intro-identity", "not-registered", "DecodeError"):
            value = await blocking(metric_value, metrics, "chhaya_handshake_failures_total", reason)
            assert value >= 1, reason
        status = await call(net, "bob", "status")
        assert status["handle"] == "bob"
        assert status["channels"] == 0  # nothing kept from the refused channels
        await send_and_wait(net, "alice", "bob", "the real alice")
        history = await call(net, "bob", "history", {"handle": "alice"})
        assert [m["text"] for m in history["messages"]] == ["the real alice"]
        assert_all_alive(net)


# ------------------------------------------------------------------ 2b/3/4. fake directory


class FakeSource:
    """A ProofSource that serves whatever proofs the test puts in ``proofs``."""

    def __init__(self) -> None:
        self.proofs: dict[str, LookupProof] = {}
        self.asked = 0

    def lookup(self, handle: str) -> LookupProof:
        self.asked += 1
        return self.proofs[handle]

    def history(self, handle: str) -> HistoryProof:
        raise KeyError(handle)


def rogue_certificate(root: Path, head: SignedHead) -> QuorumCertificate:
    """A valid 3-of-4 certificate of ``head``, from a witness set nobody trusts."""
    backend = bls_backend()
    witness_set = load_witness_set(_make_quorum(root, 4, 3), backend)
    digest = head.head.head_hash
    message = signing_message(SignedKind.EPOCH_HEAD, witness_set.set_id, digest)
    partials = {
        m.witness_id: backend.sign(load_witness_key(root / "witnesses" / f"{m.witness_id}.key"),
                                   message)
        for m in witness_set.members[:3]
    }  # fmt: skip
    return assemble_certificate(witness_set, backend, SignedKind.EPOCH_HEAD, digest, partials)


def tamper_value(proof: LookupProof) -> LookupProof:
    if proof.latest is None:  # not registered: no value; break the head instead
        return dataclasses.replace(
            proof, head=dataclasses.replace(proof.head, signature=flip(proof.head.signature))
        )
    value = proof.latest.value
    latest = dataclasses.replace(proof.latest, value=flip(value, len(value) // 2))
    return dataclasses.replace(proof, latest=latest)


async def test_fake_directory_tampered_foreign_or_rolled_back_is_never_trusted(
    tmp_path: Path,
) -> None:
    net = LocalNetwork(tmp_path / "net")
    handles = ("alice", "carol", "chhaya-probe")
    with net.group.running():
        await start_network(net, ["alice"])
        async with running_host(create_new_key_pair(), LOOPBACK) as host:
            real_addr = directory_addr(net)
            old = {h: await fetch(host, real_addr, h) for h in handles}
            await blocking(net.register, ["alice"])
            new = {h: await fetch(host, real_addr, h) for h in handles}
            assert verify(net, new["alice"]) is not None
            assert verify(net, old["alice"]) is None  # epoch 0: not registered yet
            assert new["alice"].head.head.epoch > old["alice"].head.head.epoch

            source = FakeSource()
            with VkdService(host, source):
                fake_addr = listen_addrs(host)[0]
                carol = await blocking(net.group.start, "carol", [
                    "run", "--data-dir", str(net.user_dir("carol")), "--listen", LOOPBACK_LISTEN,
                    "--directory", fake_addr, "--witness-set", str(net.set_path), "--json",
                ])  # fmt: skip
                net.users["carol"] = carol

                rogue = {h: rogue_certificate(tmp_path / f"rogue-{h}", p.head)
                         for h, p in new.items()}  # fmt: skip
                # (name, proofs served, the check each of lookup/send/register fails)
                forgeries: list[tuple[str, dict[str, LookupProof], tuple[str, str, str]]] = [
                    # 3. a head certified by a quorum we do not trust
                    (
                        "foreign quorum",
                        {h: dataclasses.replace(p, certificate=rogue[h]) for h, p in new.items()},
                        ("certificate-set",) * 3,
                    ),
                    # 3. a head the quorum did not certify (another epoch's certificate)
                    (
                        "swapped certificate",
                        {
                            h: dataclasses.replace(p, certificate=old[h].certificate)
                            for h, p in new.items()
                        },
                        ("certificate-signature",) * 3,
                    ),
                    # 2b. a flipped byte in alice's value; for carol (not registered,
                    # no value) a flipped byte in the head's signature
                    (
                        "tampered value",
                        {h: tamper_value(p) for h, p in new.items()},
                        ("commitment", "commitment", "head-signature"),
                    ),
                ]
                for name, proofs, checks in forgeries:
                    source.proofs = proofs
                    asked = source.asked
                    errors = [
                        await call_fails(net, "carol", "lookup", {"handle": "alice"}),
                        await call_fails(net, "carol", "send", {"handle": "alice", "text": "hi"}),
                        await call_fails(
                            net, "carol", "register", {"handle": "carol", "timeout_s": 5}
                        ),
                    ]
                    assert source.asked > asked, name
                    for error, check in zip(errors, checks, strict=True):
                        assert error.startswith(f"{check}: "), (name, error)
                    status = await call(net, "carol", "status")
                    assert status["directory_epoch"] is None, name
                    assert status["proofs_verified"] == 0, name
                    assert status["handle"] is None, name

                # The genuine proofs, served by the same fake, do verify.
                source.proofs = new
                found = await call(net, "carol", "lookup", {"handle": "alice"})
                assert found["registered"] is True
                assert found["epoch"] == new["alice"].head.head.epoch

                # 4. Rollback: the older certified epoch (where alice is not
                # registered) is refused once the newer one was seen.
                source.proofs = old
                error = await call_fails(net, "carol", "lookup", {"handle": "alice"})
                assert error.startswith("rollback: "), error
                status = await call(net, "carol", "status")
                assert status["directory_epoch"] == new["alice"].head.head.epoch
                assert_all_alive(net)


# ------------------------------------------------------------------ 3. no quorum


async def test_directory_without_its_quorum_never_shows_an_uncertified_registration(
    tmp_path: Path,
) -> None:
    net = LocalNetwork(tmp_path)
    with net.group.running():
        await start_network(net, ["alice"])
        status = await wait_status(net, "alice", lambda s: s["directory_epoch"] is not None)
        assert status["directory_epoch"] == 0
        for witness in [p for p in net.group.processes if p.name in ("w2", "w3", "w4")]:
            await blocking(witness.stop)
        # One witness of a 3-of-4 set is left: the registration is queued, a new
        # epoch published, but it is never certified, so never visible.
        error = await call_fails(net, "alice", "register", {"handle": "alice", "timeout_s": 4})
        assert "no certified epoch showed it within 4 s" in error, error
        found = await call(net, "alice", "lookup", {"handle": "alice"})
        assert found["registered"] is False
        status = await call(net, "alice", "status")
        assert status["directory_epoch"] == 0
        assert status["handle"] is None
        async with running_host(create_new_key_pair(), LOOPBACK) as host:
            proof = await fetch(host, directory_addr(net), "alice")
            assert proof.head.head.epoch == 0
            assert verify(net, proof) is None
        assert net.directory is not None
        assert net.directory.process.poll() is None
        assert net.users["alice"].process.poll() is None
