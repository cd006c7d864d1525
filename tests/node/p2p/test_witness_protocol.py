"""``/chhaya/witness/1.0.0``: a directory gets its heads co-signed over real hosts."""

from __future__ import annotations

import functools
import hashlib
import itertools
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager, suppress

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st
from libp2p.abc import IHost
from libp2p.peer.peerinfo import info_from_p2p_addr
from multiaddr import Multiaddr

from chhaya import DecodeError, LocalProtocolError, VerificationError
from chhaya.crypto import FAST
from node.p2p import (
    MAX_AUDIT_WIRE_SIZE,
    WITNESS_PROTOCOL,
    CosignRequest,
    CosignResponse,
    CosignStatus,
    Libp2pStream,
    WitnessService,
    collect_certificate,
    request_cosignature,
)
from quorum import (
    CertificateVerifier,
    EquivocationEvidence,
    InMemoryWitnessStore,
    SignedHead,
    SignedKind,
    Witness,
    WitnessMember,
    WitnessSet,
    signing_message,
)
from quorum.bls import get_backend
from tests.vkd.conftest import NOW, RNG, World, bundle_for
from vkd import (
    Directory,
    DirectoryKeys,
    DirectoryTrust,
    InMemoryDirectoryStore,
    VerifiedBinding,
    audit_checker,
    verify_vkd_proof,
)
from vkd.tree import EMPTY_HASH, InMemoryNodeStore, SparseMerkleTree

from .conftest import TEST_TIMEOUT_S, address, hosts, wait_until

BACKEND = get_backend("blst")


def fresh_world(seed: str) -> World:
    """Like ``tests.vkd.conftest.make_world``, but nothing published yet."""
    sks = [BACKEND.key_gen(hashlib.sha256(f"{seed}-w{i}".encode()).digest()) for i in range(4)]
    members = [
        WitnessMember(f"W{i + 1}", BACKEND.sk_to_pk(sk), BACKEND.pop_prove(sk))
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
            backend=BACKEND,
            set_id=ws.set_id,
            directory_key=directory.directory_key,
            directory_vrf_key=directory.vrf_public_key,
            store=InMemoryWitnessStore(),
            audit=audit_checker,
            genesis_root=EMPTY_HASH,
        )
        for sk in sks
    ]
    trust = DirectoryTrust(CertificateVerifier(ws, BACKEND), directory.directory_key)
    ticks = itertools.count()
    return World(directory, witnesses, members, ws, trust, lambda: NOW + 1000 * next(ticks))


@asynccontextmanager
async def network(
    w: World, online: tuple[int, ...] = (0, 1, 2, 3)
) -> AsyncIterator[tuple[IHost, list[str], list[WitnessService]]]:
    """A directory host and four witness hosts; only ``online`` serve the protocol."""
    async with hosts(5) as (directory, *witness_hosts), AsyncExitStack() as stack:
        services = [
            WitnessService(
                h, w.witnesses[i], w.members[i].witness_id, w.clock, request_timeout_s=2.0
            )
            for i, h in enumerate(witness_hosts)
        ]
        for i in online:
            stack.enter_context(services[i])
        yield directory, [address(h) for h in witness_hosts], services


async def certify(w: World, directory: IHost, peers: list[str]) -> SignedHead:
    head, audit = w.directory.publish(w.clock(), RNG)
    cert = await collect_certificate(
        directory,
        peers,
        head,
        b"" if audit is None else audit.encode(),
        w.witness_set,
        BACKEND,
        timeout_s=5.0,
    )
    w.directory.attach_certificate(head.head.epoch, cert)
    return head


def assert_alice_verifies(w: World) -> None:
    result = verify_vkd_proof(w.directory.lookup("alice"), w.trust, None, w.clock())
    assert isinstance(result, VerifiedBinding)
    assert result.bundle == bundle_for("alice").bundle


async def test_genesis_and_an_epoch_are_certified_over_the_network() -> None:
    w = fresh_world("p2p-witness-ok")
    with trio.fail_after(TEST_TIMEOUT_S):
        async with network(w) as (directory, peers, services):
            await certify(w, directory, peers)
            w.directory.add("alice", bundle_for("alice"))
            head = await certify(w, directory, peers)
            assert head.head.epoch == 1
            assert_alice_verifies(w)
            assert sum(s.signed for s in services) >= 6
            assert all(not s.evidence for s in services)


async def test_one_witness_offline_still_reaches_the_threshold() -> None:
    w = fresh_world("p2p-witness-one-down")
    with trio.fail_after(TEST_TIMEOUT_S):
        async with network(w, online=(0, 1, 3)) as (directory, peers, _services):
            await certify(w, directory, peers)
            w.directory.add("alice", bundle_for("alice"))
            await certify(w, directory, peers)
            assert_alice_verifies(w)


async def test_two_witnesses_offline_is_below_the_threshold() -> None:
    w = fresh_world("p2p-witness-two-down")
    with trio.fail_after(TEST_TIMEOUT_S):
        async with network(w, online=(0, 2)) as (directory, peers, services):
            with pytest.raises(VerificationError) as info:
                await certify(w, directory, peers)
            assert info.value.check == "certificate-threshold"
            assert services[0].signed == services[2].signed == 1


async def test_a_second_head_for_an_epoch_is_refused_with_evidence() -> None:
    honest = fresh_world("p2p-witness-equivocation")
    forked = fresh_world("p2p-witness-equivocation")  # same directory keys
    with trio.fail_after(TEST_TIMEOUT_S):
        async with network(honest) as (directory, peers, services):
            genesis = await certify(honest, directory, peers)
            honest.directory.add("alice", bundle_for("alice"))
            await certify(honest, directory, peers)

            assert forked.directory.publish(genesis.head.time_ms, RNG)[0] == genesis
            forked.directory.add("mallory", bundle_for("mallory"))
            other, audit = forked.directory.publish(honest.clock(), RNG)
            assert other.head.epoch == 1
            assert audit is not None
            with pytest.raises(VerificationError) as info:
                await collect_certificate(
                    directory,
                    peers,
                    other,
                    audit.encode(),
                    honest.witness_set,
                    BACKEND,
                    timeout_s=5.0,
                )
            assert info.value.check == "certificate-threshold"
            await wait_until(lambda: sum(len(s.evidence) for s in services) >= 3)
            for service in services:
                for evidence in service.evidence:
                    assert isinstance(evidence, EquivocationEvidence)
                    assert evidence.epoch == 1


def framed(message: bytes) -> bytes:
    return len(message).to_bytes(4, "big") + message


async def test_garbage_requests_are_reset_and_the_service_keeps_serving() -> None:
    w = fresh_world("p2p-witness-garbage")
    with trio.fail_after(TEST_TIMEOUT_S):
        async with network(w) as (directory, peers, services):
            target = services[0]
            genesis, _ = w.directory.publish(w.clock(), RNG)
            good = CosignRequest(genesis).encode()
            garbage = [
                framed(b"nonsense"),
                framed(good + b"!"),  # trailing byte
                framed(good[:-10]),  # truncated body
                framed(good)[:-2],  # truncated frame, then EOF
                b"\xff\xff\xff\xff",  # oversized length, refused unread
                b"\x00\x00",  # truncated length prefix
            ]
            info = info_from_p2p_addr(Multiaddr(peers[0]))
            await directory.connect(info)
            for data in garbage:
                stream = Libp2pStream(await directory.new_stream(info.peer_id, [WITNESS_PROTOCOL]))
                await stream.send_all(data)
                await stream.send_eof()
                with suppress(trio.BrokenResourceError):
                    assert await stream.receive_some() == b""
                await stream.reset()
            await wait_until(lambda: target.rejected == len(garbage))
            assert target.signed == 0

            cert = await collect_certificate(
                directory, peers, genesis, b"", w.witness_set, BACKEND, timeout_s=5.0
            )
            verifier = CertificateVerifier(w.witness_set, BACKEND)
            assert len(verifier.verify(cert, SignedKind.EPOCH_HEAD, genesis.head.head_hash)) >= 3


async def test_a_directory_the_witness_does_not_accept_is_reset() -> None:
    w = fresh_world("p2p-witness-allowed")
    with trio.fail_after(TEST_TIMEOUT_S):
        async with hosts(2) as (directory, witness_host):
            service = WitnessService(
                witness_host, w.witnesses[0], "W1", w.clock, peer_allowed=lambda _peer: False
            )
            with service:
                genesis, _ = w.directory.publish(w.clock(), RNG)
                with pytest.raises(VerificationError):
                    await collect_certificate(
                        directory,
                        [address(witness_host)],
                        genesis,
                        b"",
                        w.witness_set,
                        BACKEND,
                        timeout_s=5.0,
                    )
                await wait_until(lambda: service.rejected == 1)
                assert service.signed == 0


# ------------------------------------------------------------------ messages

_HEAD = fresh_world("p2p-witness-messages").directory.publish(NOW, RNG)[0]
_IDS = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", fullmatch=True)


@given(st.binary(max_size=2048))
def test_request_round_trip(audit: bytes) -> None:
    encoded = CosignRequest(_HEAD, audit).encode()
    decoded = CosignRequest.decode_untrusted(encoded)
    assert decoded.head == _HEAD
    assert decoded.audit == audit
    assert decoded.encode() == encoded


@given(st.booleans(), _IDS, st.binary(min_size=96, max_size=96))
def test_response_round_trip(signed: bool, witness_id: str, signature: bytes) -> None:
    status = CosignStatus.SIGNED if signed else CosignStatus.REFUSED
    response = CosignResponse(status, witness_id, signature if signed else b"")
    decoded = CosignResponse.decode_untrusted(response.encode())
    assert (decoded.status, decoded.witness_id, decoded.signature) == (
        response.status,
        response.witness_id,
        response.signature,
    )


@given(st.binary(max_size=600))
def test_arbitrary_bytes_only_raise_decode_error(data: bytes) -> None:
    for decode in (CosignRequest.decode_untrusted, CosignResponse.decode_untrusted):
        try:
            message = decode(data)
        except DecodeError:
            continue
        assert message.encode() == data


@given(st.binary(max_size=200))
def test_mutated_messages_only_raise_decode_error(suffix: bytes) -> None:
    bases = [
        CosignRequest(_HEAD, b"audit").encode(),
        CosignResponse(CosignStatus.SIGNED, "W1", bytes(96)).encode(),
        CosignResponse(CosignStatus.REFUSED, "W2").encode(),
    ]
    for base in bases:
        for data in (base[: len(suffix) % (len(base) + 1)] + suffix, base + suffix):
            for decode in (CosignRequest.decode_untrusted, CosignResponse.decode_untrusted):
                try:
                    message = decode(data)
                except DecodeError:
                    continue
                assert message.encode() == data


def test_invalid_messages_are_not_encoded() -> None:
    with pytest.raises(LocalProtocolError):
        CosignResponse(CosignStatus.SIGNED, "W1", b"short").encode()
    with pytest.raises(LocalProtocolError):
        CosignResponse(CosignStatus.REFUSED, "W1", bytes(96)).encode()
    with pytest.raises(LocalProtocolError):
        CosignResponse(7, "W1").encode()
    with pytest.raises(LocalProtocolError):
        CosignResponse(CosignStatus.REFUSED, "not valid!").encode()
    with pytest.raises(LocalProtocolError):
        CosignRequest(_HEAD, bytes(MAX_AUDIT_WIRE_SIZE + 1)).encode()
    with pytest.raises(DecodeError):
        CosignRequest.decode_untrusted(b"CWQ1" + _HEAD.encode() + b"\xff\xff\xff\xff")


# ------------------------------------------------------------------ one witness


async def test_request_cosignature_answers_for_one_witness() -> None:
    w = fresh_world("p2p-witness-one")
    with trio.fail_after(TEST_TIMEOUT_S):
        async with network(w, online=(0, 1)) as (directory, peers, services):
            genesis, _ = w.directory.publish(w.clock(), RNG)
            ask = functools.partial(
                request_cosignature,
                directory,
                witness_set=w.witness_set,
                backend=BACKEND,
                timeout_s=5.0,
            )
            got = await ask(peers[0], genesis, b"")
            assert got is not None
            witness_id, signature = got
            assert witness_id == "W1"
            message = signing_message(
                SignedKind.EPOCH_HEAD, w.witness_set.set_id, genesis.head.head_hash
            )
            assert BACKEND.verify(w.members[0].public_key, message, signature)

            w.directory.add("alice", bundle_for("alice"))
            head, audit = w.directory.publish(w.clock(), RNG)
            assert audit is not None
            # W2 never signed genesis, so it refuses epoch 1.
            assert await ask(peers[1], head, audit.encode()) is None
            assert services[1].refused == 1
            # W3 does not serve the protocol; nothing listens on port 1.
            assert await ask(peers[2], genesis, b"") is None
            peer_id = peers[3].rsplit("/p2p/", 1)[1]
            assert await ask(f"/ip4/127.0.0.1/tcp/1/p2p/{peer_id}", genesis, b"") is None
            # W1 signs epoch 1 too, after genesis.
            got = await ask(peers[0], head, audit.encode())
            assert got is not None
            assert got[0] == "W1"


async def test_request_cosignature_refuses_a_witness_answering_under_another_name() -> None:
    w = fresh_world("p2p-witness-impostor")
    with trio.fail_after(TEST_TIMEOUT_S):
        async with hosts(2) as (directory, witness_host):
            genesis, _ = w.directory.publish(w.clock(), RNG)
            for claimed in ("W2", "W9"):  # W1's key answering as W2, or as no member
                service = WitnessService(witness_host, w.witnesses[0], claimed, w.clock)
                with service:
                    got = await request_cosignature(
                        directory,
                        address(witness_host),
                        genesis,
                        b"",
                        w.witness_set,
                        BACKEND,
                        timeout_s=5.0,
                    )
                    assert got is None
                    assert service.signed == 1
