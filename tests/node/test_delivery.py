"""Delivery over a real channel between two libp2p hosts, with logstores."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import trio
from libp2p.peer.id import ID

from chhaya.channel import AllowlistResolver
from chhaya.identity import PrivateIdentity
from chhaya.sealed import issue_certificate, seal
from node.delivery import NEVER, Delivery, peer_name
from node.drivers import SecureChannel
from node.p2p import ChannelService, open_channel
from node.store import LogStore

from .p2p.conftest import TEST_TIMEOUT_S, address, hosts

ALICE = PrivateIdentity.generate(os.urandom)  # dials
BOB = PrivateIdentity.generate(os.urandom)  # listens
EXPIRES_MS = 2**62
ALICE_CERT = issue_certificate(ALICE, "alice", b"d1", EXPIRES_MS)
BOB_CERT = issue_certificate(BOB, "bob", b"d1", EXPIRES_MS)
ALICE_NAME = peer_name(ALICE.public)
BOB_NAME = peer_name(BOB.public)


@asynccontextmanager
async def pair(
    alice_store: LogStore,
    bob_store: LogStore,
    *,
    resume: bool,
    alice_runs: bool = True,
    bob_drops: int = 0,
) -> AsyncIterator[tuple[Delivery, list[Delivery]]]:
    """Alice's Delivery (its receive loop running if ``alice_runs``) and Bob's, once made.

    Bob's side discards the first ``bob_drops`` envelopes it receives, as if lost.
    """
    bobs: list[Delivery] = []

    async def handler(channel: SecureChannel, peer_id: ID) -> None:
        if resume:
            bob = await Delivery.resume(channel, bob_store, BOB, BOB_CERT, ALICE.public)
        else:
            bob = await Delivery.establish(
                channel, bob_store, BOB, BOB_CERT, ALICE.public, dialer=False
            )
        bobs.append(bob)
        for _ in range(bob_drops):
            if await channel.receive() is None:
                return
        await bob.run()

    async with hosts(2) as (server, client):
        service = ChannelService(
            server,
            BOB,
            AllowlistResolver({ALICE.public.signing_key: "alice"}),
            handler=handler,
            linger_s=1.0,
        )
        with service:
            channel = await open_channel(client, address(server), ALICE, BOB.public.signing_key)
            if resume:
                alice = await Delivery.resume(channel, alice_store, ALICE, ALICE_CERT, BOB.public)
            else:
                alice = await Delivery.establish(
                    channel, alice_store, ALICE, ALICE_CERT, BOB.public, dialer=True
                )
            async with trio.open_nursery() as nursery:
                if alice_runs:
                    nursery.start_soon(alice.run)
                while not bobs:
                    await trio.sleep(0.01)
                yield alice, bobs
                nursery.cancel_scope.cancel()
            await channel.aclose()


def versions(path: Path, peer: str) -> int:
    with sqlite3.connect(path) as db:
        (count,) = db.execute("SELECT COUNT(*) FROM sessions WHERE peer = ?", (peer,)).fetchone()
    assert isinstance(count, int)
    return count


async def test_three_messages_are_stored_once_and_delivered(tmp_path: Path) -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        async with (
            await LogStore.open(tmp_path / "alice.db") as a_store,
            await LogStore.open(tmp_path / "bob.db") as b_store,
            pair(a_store, b_store, resume=False) as (alice, bobs),
        ):
            texts = [b"one", b"two", b"three"]
            ids = [await alice.send_text(t) for t in texts]
            await alice.wait_until(lambda: alice.delivered == 3)
            bob = bobs[0]
            assert (bob.received, bob.duplicates, bob.rejected) == (3, 0, 0)

            got = await b_store.history(ALICE_NAME)
            assert [(e.message_id, e.body, e.direction) for e in got] == [
                (i, t, "in") for i, t in zip(ids, texts, strict=True)
            ]
            sent = await a_store.history(BOB_NAME)
            assert [(e.message_id, e.status) for e in sent] == [(i, "delivered") for i in ids]
            assert await a_store.pending_outbox(2**62) == []


async def test_a_retry_with_the_same_id_is_stored_once(tmp_path: Path) -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        async with (
            await LogStore.open(tmp_path / "alice.db") as a_store,
            await LogStore.open(tmp_path / "bob.db") as b_store,
            pair(a_store, b_store, resume=False, alice_runs=False) as (alice, bobs),
        ):
            mid = await alice.send_text(b"hello")
            # Alice has not read Bob's receipt yet: the message is still in her outbox.
            assert await alice.resend(mid, b"hello", next_attempt_ms=0)
            bob = bobs[0]
            await bob.wait_until(lambda: bob.received + bob.duplicates == 2)
            assert (bob.received, bob.duplicates) == (1, 1)
            assert [(e.message_id, e.body) for e in await b_store.history(ALICE_NAME)] == [
                (mid, b"hello")
            ]
            async with trio.open_nursery() as nursery:
                nursery.start_soon(alice.run)
                await alice.wait_until(lambda: alice.delivered == 1)
                nursery.cancel_scope.cancel()
            [entry] = await a_store.history(BOB_NAME)
            assert entry.status == "delivered"
            assert await a_store.pending_outbox(2**62) == []
            assert not await alice.resend(mid, b"hello", next_attempt_ms=0)


async def test_state_versions_grow_and_a_restart_continues_the_session(tmp_path: Path) -> None:
    a_path, b_path = tmp_path / "alice.db", tmp_path / "bob.db"
    with trio.fail_after(TEST_TIMEOUT_S):
        async with (
            await LogStore.open(a_path) as a_store,
            await LogStore.open(b_path) as b_store,
            pair(a_store, b_store, resume=False) as (alice, bobs),
        ):
            assert versions(a_path, BOB_NAME) == 1  # the initiator's first state
            first = await alice.send_text(b"before the restart")
            await alice.wait_until(lambda: alice.delivered == 1)
            bob = bobs[0]
            reply = await bob.send_text(b"reply")
            await bob.wait_until(lambda: bob.delivered == 1)
            a_versions, b_versions = versions(a_path, BOB_NAME), versions(b_path, ALICE_NAME)
            # set-up, own text, its receipt, the peer's text, our receipt for it
            assert a_versions == 5
            assert b_versions == 5
            saved = await a_store.load_session(BOB_NAME)
            assert saved == alice.conversation.encode()

        # Both nodes restart: new stores, new hosts, new channel, stored conversations.
        async with (
            await LogStore.open(a_path) as a_store,
            await LogStore.open(b_path) as b_store,
            pair(a_store, b_store, resume=True) as (alice, bobs),
        ):
            ids = [await alice.send_text(t) for t in (b"after 1", b"after 2")]
            await alice.wait_until(lambda: alice.delivered == 2)
            bob = bobs[0]
            late = await bob.send_text(b"late reply")
            await bob.wait_until(lambda: bob.delivered == 1)
            await alice.wait_until(lambda: alice.received == 1)
            assert (alice.rejected, bob.rejected) == (0, 0)
            assert versions(a_path, BOB_NAME) > a_versions
            assert versions(b_path, ALICE_NAME) > b_versions

            a_hist = await a_store.history(BOB_NAME)
            assert [(e.message_id, e.direction, e.status) for e in a_hist] == [
                (first, "out", "delivered"),
                (reply, "in", None),
                (ids[0], "out", "delivered"),
                (ids[1], "out", "delivered"),
                (late, "in", None),
            ]
            b_hist = await b_store.history(ALICE_NAME)
            assert [e.body for e in b_hist] == [
                b"before the restart",
                b"reply",
                b"after 1",
                b"after 2",
                b"late reply",
            ]


async def test_garbage_and_foreign_envelopes_are_dropped(tmp_path: Path) -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        async with (
            await LogStore.open(tmp_path / "alice.db") as a_store,
            await LogStore.open(tmp_path / "bob.db") as b_store,
            pair(a_store, b_store, resume=False) as (alice, bobs),
        ):
            mallory = PrivateIdentity.generate(os.urandom)
            cert = issue_certificate(mallory, "mallory", b"d1", EXPIRES_MS)
            channel = alice._channel  # inject raw records
            await channel.send(b"garbage")
            await channel.send(seal(BOB.public.agreement_key, cert, b"x", os.urandom))
            bob = bobs[0]
            await bob.wait_until(lambda: bob.rejected == 2)
            await alice.send_text(b"still fine")
            await alice.wait_until(lambda: alice.delivered == 1)
            assert [e.body for e in await b_store.history(ALICE_NAME)] == [b"still fine"]


async def test_a_lost_message_is_retried_with_the_same_id(tmp_path: Path) -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        async with (
            await LogStore.open(tmp_path / "alice.db") as a_store,
            await LogStore.open(tmp_path / "bob.db") as b_store,
            pair(a_store, b_store, resume=False, bob_drops=1) as (alice, bobs),
            trio.open_nursery() as nursery,
        ):
            # The first retry is due 1 s after the send (RETRY_INITIAL_MS); later ones
            # are far apart so that only one retry is needed.
            nursery.start_soon(
                partial(alice.run_retries, delay_ms=lambda attempts: 60_000, poll_s=0.05)
            )
            mid = await alice.send_text(b"hello")
            [entry] = await a_store.pending_outbox(2**62)
            assert (entry.message_id, entry.attempts) == (mid, 1)
            await alice.wait_until(lambda: alice.delivered == 1)
            bob = bobs[0]
            assert (alice.retried, alice.given_up) == (1, 0)
            assert (bob.received, bob.duplicates, bob.rejected) == (1, 0, 0)
            assert [(e.message_id, e.body) for e in await b_store.history(ALICE_NAME)] == [
                (mid, b"hello")
            ]
            [sent] = await a_store.history(BOB_NAME)
            assert (sent.message_id, sent.status) == (mid, "delivered")
            assert await a_store.pending_outbox(2**62) == []
            assert await a_store.next_due_ms() is None
            nursery.cancel_scope.cancel()


async def test_retries_back_off_and_stop_after_the_maximum(tmp_path: Path) -> None:
    delays: list[int] = []

    def delay_ms(attempts: int) -> int:
        delays.append(attempts)
        return 10 << (attempts - 1)

    with trio.fail_after(TEST_TIMEOUT_S):
        async with (
            await LogStore.open(tmp_path / "alice.db") as a_store,
            await LogStore.open(tmp_path / "bob.db") as b_store,
            pair(a_store, b_store, resume=False, bob_drops=1_000) as (alice, bobs),
            trio.open_nursery() as nursery,
        ):
            mid = await alice.send_text(b"into the void")
            # Make the first retry due now instead of in 1 s.
            assert await a_store.reschedule(mid, 0)  # counts as a second send
            nursery.start_soon(
                partial(alice.run_retries, max_attempts=4, delay_ms=delay_ms, poll_s=0.05)
            )
            await alice.wait_until(lambda: alice.given_up == 1)
            # Sends 3 and 4 were retries; no delay after the last one.
            assert alice.retried == 2
            assert delays == [3]
            [entry] = await a_store.pending_outbox(NEVER)
            assert (entry.message_id, entry.attempts, entry.next_attempt_ms) == (mid, 4, NEVER)
            assert await a_store.pending_outbox(2**62) == []
            await trio.sleep(0.2)
            assert (alice.retried, alice.given_up) == (2, 1)
            [sent] = await a_store.history(BOB_NAME)
            assert sent.status == "sent"
            assert bobs[0].received == 0
            nursery.cancel_scope.cancel()


async def test_handle_many_commits_a_batch_with_one_reply_state(tmp_path: Path) -> None:
    """A batch (as from a mailbox) is committed in one go and answered by one receipt."""
    captured: list[bytes] = []
    bobs: list[Delivery] = []

    async def handler(channel: SecureChannel, peer_id: ID) -> None:
        bob = await Delivery.establish(channel, b_store, BOB, BOB_CERT, ALICE.public, dialer=False)
        bobs.append(bob)
        while len(captured) < 3:
            data = await channel.receive()
            assert data is not None
            captured.append(data)
        await bob.handle_many([*captured, captured[0], b"garbage"])  # a copy, and junk
        await bob.run()

    with trio.fail_after(TEST_TIMEOUT_S):
        async with (
            await LogStore.open(tmp_path / "alice.db") as a_store,
            await LogStore.open(tmp_path / "bob.db") as b_store,
            hosts(2) as (server, client),
        ):
            service = ChannelService(
                server, BOB, AllowlistResolver({ALICE.public.signing_key: "alice"}),
                handler=handler, linger_s=1.0,
            )  # fmt: skip
            with service:
                channel = await open_channel(client, address(server), ALICE, BOB.public.signing_key)
                alice = await Delivery.establish(
                    channel, a_store, ALICE, ALICE_CERT, BOB.public, dialer=True
                )
                ids = [await alice.send_text(t) for t in (b"one", b"two", b"three")]
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(alice.run)
                    await alice.wait_until(lambda: alice.delivered == 3)
                    nursery.cancel_scope.cancel()
                await channel.aclose()
            bob = bobs[0]
            assert (bob.received, bob.duplicates, bob.rejected) == (3, 0, 2)
            got = await b_store.history(ALICE_NAME)
            assert [e.message_id for e in got] == ids
    # The set-up state, one per text, and one after the single receipt.
    assert versions(tmp_path / "bob.db", ALICE_NAME) == 1 + 3 + 1
