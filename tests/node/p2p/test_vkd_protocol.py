"""``/chhaya/vkd/1.0.0``: lookups and history over real libp2p hosts.

Fetching never makes a proof trusted: every test that accepts a proof runs
``verify_vkd_proof`` on what the client received.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
import trio
from libp2p.abc import IHost, INetStream
from libp2p.peer.peerinfo import info_from_p2p_addr
from multiaddr import Multiaddr

from chhaya import DecodeError, LocalProtocolError, VerificationError
from node.p2p import (
    VKD_PROTOCOL,
    Libp2pStream,
    ProofSource,
    ProofUnavailable,
    VkdKind,
    VkdRequest,
    VkdResponse,
    VkdService,
    fetch_history,
    fetch_lookup,
)
from tests.vkd.conftest import World, bundle_for, make_world
from vkd import (
    HistoryProof,
    LookupProof,
    NotRegistered,
    VerifiedBinding,
    VerifiedHistory,
    verify_vkd_proof,
)

from .conftest import TEST_TIMEOUT_S, address, hosts, wait_until


@functools.cache
def world() -> World:
    """A directory with alice and bob registered in a certified epoch."""
    w = make_world("p2p-vkd")
    w.directory.add("alice", bundle_for("alice"))
    w.directory.add("bob", bundle_for("bob"))
    w.publish_and_certify()
    return w


def verify_binding(proof: LookupProof) -> VerifiedBinding:
    w = world()
    result = verify_vkd_proof(proof, w.trust, None, w.clock())
    assert isinstance(result, VerifiedBinding)
    return result


class DictCache:
    """A caching node's store: serves only what it fetched before."""

    def __init__(self) -> None:
        self.lookups: dict[str, LookupProof] = {}
        self.histories: dict[str, HistoryProof] = {}

    def lookup(self, handle: str) -> LookupProof:
        return self.lookups[handle]

    def history(self, handle: str) -> HistoryProof:
        return self.histories[handle]


@asynccontextmanager
async def serving(source: ProofSource, n: int = 2) -> AsyncIterator[tuple[list[IHost], VkdService]]:
    """``n`` hosts; the first serves ``source``."""
    async with hosts(n) as hs:
        with VkdService(hs[0], source, request_timeout_s=2.0, linger_s=1.0) as service:
            yield hs, service


async def raw_stream(client: IHost, server: IHost) -> Libp2pStream:
    await client.connect(info_from_p2p_addr(Multiaddr(address(server))))
    return Libp2pStream(await client.new_stream(server.get_id(), [VKD_PROTOCOL]))


async def refused(stream: Libp2pStream) -> bool:
    """True if the listener sent nothing back and reset or closed the stream."""
    try:
        return await stream.receive_some() == b""
    except trio.BrokenResourceError:
        return True


async def test_lookup_and_history_from_the_directory_verify() -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        async with serving(world().directory) as ((directory, client), service):
            proof = await fetch_lookup(client, address(directory), "alice")
            binding = verify_binding(proof)
            assert binding.handle == "alice"
            assert binding.bundle == bundle_for("alice").bundle

            history = await fetch_history(client, directory.get_id(), "alice")
            w = world()
            verified = verify_vkd_proof(history, w.trust, None, w.clock())
            assert isinstance(verified, VerifiedHistory)
            assert [version for version, _, _ in verified.versions] == [1]
            assert service.served == 2


async def test_unregistered_handle_verifies_as_not_registered() -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        async with serving(world().directory) as ((directory, client), _service):
            proof = await fetch_lookup(client, address(directory), "carol")
            with pytest.raises(NotRegistered):
                verify_binding(proof)
            with pytest.raises(LocalProtocolError):  # not even sent
                await fetch_lookup(client, address(directory), "Not A Handle")


async def test_a_caching_node_is_as_good_as_the_directory() -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        cache = DictCache()
        async with (
            serving(world().directory) as ((directory, _), _service),
            serving(cache, n=2) as ((cacher, client), cache_service),
        ):
            cache.lookups["alice"] = await fetch_lookup(cacher, address(directory), "alice")
            cache.histories["alice"] = await fetch_history(cacher, address(directory), "alice")

            binding = verify_binding(await fetch_lookup(client, address(cacher), "alice"))
            assert binding.bundle == bundle_for("alice").bundle
            history = await fetch_history(client, address(cacher), "alice")
            w = world()
            assert isinstance(verify_vkd_proof(history, w.trust, None, w.clock()), VerifiedHistory)

            with pytest.raises(ProofUnavailable):  # a cache miss is status 1
                await fetch_lookup(client, address(cacher), "bob")
            assert (cache_service.served, cache_service.unavailable) == (2, 1)


class TamperingSource:
    """A malicious server: alice's proof carrying bob's value."""

    def lookup(self, handle: str) -> LookupProof:
        d = world().directory
        alice, bob = d.lookup("alice"), d.lookup("bob")
        assert alice.latest is not None
        assert bob.latest is not None
        return dataclasses.replace(
            alice, latest=dataclasses.replace(alice.latest, value=bob.latest.value)
        )

    def history(self, handle: str) -> HistoryProof:
        return world().directory.history("bob")  # another handle's history


async def test_a_tampered_proof_fails_verification() -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        async with serving(TamperingSource()) as ((server, client), _service):
            proof = await fetch_lookup(client, address(server), "alice")
            with pytest.raises(VerificationError) as info:
                verify_binding(proof)
            assert not isinstance(info.value, NotRegistered)
            with pytest.raises(DecodeError):  # answered for a handle we did not ask about
                await fetch_history(client, address(server), "alice")


def raw_server(
    host: IHost, answer: Callable[[bytes], bytes]
) -> Callable[[INetStream], Awaitable[None]]:
    """A hand-written listener sending ``answer(proof)`` as the whole reply."""
    honest = world().directory.lookup("alice").encode()

    async def handler(net_stream: INetStream) -> None:
        stream = Libp2pStream(net_stream)
        try:
            await stream.receive_some()
            await stream.send_all(answer(honest))
            await stream.send_eof()
            await stream.aclose_lingering(1.0)
        except trio.BrokenResourceError:
            await stream.reset()

    host.set_stream_handler(VKD_PROTOCOL, handler)
    return handler


def framed(message: bytes) -> bytes:
    return len(message).to_bytes(4, "big") + message


def flip_byte(proof: bytes) -> bytes:
    body = bytearray(VkdResponse(0, proof).encode(VkdKind.LOOKUP))
    body[len(body) // 2] ^= 0x01
    return framed(bytes(body))


async def test_byte_level_tampering_and_bad_responses_are_caught() -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        async with hosts(2) as (server, client):
            raw_server(server, flip_byte)
            try:
                proof = await fetch_lookup(client, address(server), "alice")
            except DecodeError:
                pass
            else:
                with pytest.raises(VerificationError):
                    verify_binding(proof)

            bad_answers: list[Callable[[bytes], bytes]] = [
                lambda p: b"\xff\xff\xff\xff",  # oversized length prefix, refused unread
                lambda p: framed(b"CVR1\x07" + VkdResponse(0, p).encode(1)[5:]),  # bad status
                lambda p: framed(b"CVR1\x01" + (1).to_bytes(4, "big") + b"x"),  # 1 with a proof
                lambda p: framed(VkdResponse(0, p).encode(1) + b"!"),  # trailing byte
                lambda p: framed(VkdResponse(0, p).encode(1))[:100],  # truncated
            ]
            for answer in bad_answers:
                raw_server(server, answer)
                with pytest.raises(DecodeError):
                    await fetch_lookup(client, address(server), "alice")


async def test_garbage_requests_are_dropped_and_the_service_keeps_serving() -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        async with serving(world().directory) as ((directory, client), service):
            garbage = [
                framed(b"nonsense"),
                framed(b"CVQ1\x03" + VkdRequest(1, "alice").encode()[5:]),  # unknown kind
                framed(b"CVQ1\x01\x00\x05Al ce"),  # invalid handle
                framed(VkdRequest(1, "alice").encode() + b"!"),  # trailing byte
                framed(VkdRequest(1, "alice").encode())[:-2],  # truncated, then EOF
                b"\x00\x00",  # truncated length prefix
            ]
            for data in garbage:
                stream = await raw_stream(client, directory)
                await stream.send_all(data)
                await stream.send_eof()
                assert await refused(stream)
                await stream.reset()
            await wait_until(lambda: service.rejected == len(garbage))

            binding = verify_binding(await fetch_lookup(client, address(directory), "alice"))
            assert binding.handle == "alice"
            assert service.served == 1


async def test_oversized_and_slow_requests_are_refused() -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        async with serving(world().directory) as ((directory, client), service):
            stream = await raw_stream(client, directory)
            # Announces 4 GiB; the service refuses it without waiting for the body.
            await stream.send_all(b"\xff\xff\xff\xff")
            with trio.fail_after(1.0):
                assert await refused(stream)
            await stream.reset()

            slow = await raw_stream(client, directory)
            await slow.send_all(b"\x00\x00\x00\x09CVQ1")  # and then nothing (timeout 2 s)
            assert await refused(slow)
            await slow.reset()
            await wait_until(lambda: service.rejected == 2)
            await wait_until(lambda: service.active == 0)
