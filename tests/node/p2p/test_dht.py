"""Signed ``/chhaya/`` records on the Kademlia DHT between real hosts."""

from __future__ import annotations

import dataclasses
import itertools
import logging
import os
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st
from libp2p.records.utils import InvalidRecordType

from chhaya import DecodeError, LocalProtocolError, VerificationError
from chhaya.identity import PrivateIdentity
from node.p2p import (
    MAX_DHT_PAYLOAD_SIZE,
    SIGNED_RECORD_MAGIC,
    ChhayaDht,
    RecordKind,
    RecordValidator,
    SignedRecord,
    dht_record_key,
)
from node.p2p._dht import _EOF_MESSAGE, _DropEndOfStream

from .conftest import address, hosts, wait_until

ALICE = PrivateIdentity.generate(os.urandom)
MALLORY = PrivateIdentity.generate(os.urandom)
#: Bound on each networked test (py-libp2p's put_value takes 0.2-5 s).
DHT_TEST_TIMEOUT_S = 30
HOUR_MS = 3_600_000
SETTINGS = settings(max_examples=200, deadline=None)


class Clock:
    """A settable clock in Unix milliseconds, shared by a test's nodes."""

    def __init__(self) -> None:
        self.now = time.time_ns() // 1_000_000

    def __call__(self) -> int:
        return self.now


@asynccontextmanager
async def dht_line(n: int, clock: Clock) -> AsyncIterator[list[ChhayaDht]]:
    """``n`` DHT nodes, each bootstrapped to the one before it (a line)."""
    async with hosts(n) as hs, AsyncExitStack() as stack:
        nodes: list[ChhayaDht] = []
        for i, host in enumerate(hs):
            bootstrap = [address(hs[i - 1])] if i else []
            nodes.append(
                await stack.enter_async_context(ChhayaDht(host, bootstrap=bootstrap, clock=clock))
            )
        # Each link is known at both ends once the inbound side has seen a DHT stream;
        # add it explicitly so the line does not depend on that timing.
        for left, right in itertools.pairwise(nodes):
            await right.kad.routing_table.add_peer(left._host.get_id())
            await left.kad.routing_table.add_peer(right._host.get_id())
        await wait_until(lambda: all(node.routing_peers for node in nodes))
        yield nodes


# -- the record, offline -----------------------------------------------------------


def test_sign_and_verify() -> None:
    clock = Clock()
    record = SignedRecord.sign(ALICE, RecordKind.PRESENCE, b"hi", 1, clock.now + HOUR_MS)
    key = dht_record_key(ALICE.public.signing_key, RecordKind.PRESENCE)
    assert key.startswith("/chhaya/presence/")
    assert len(key.rsplit("/", 1)[1]) == 64
    validator = RecordValidator(clock)
    assert validator.check(key, record.encode()) == record
    assert record.encode().startswith(SIGNED_RECORD_MAGIC)


@pytest.mark.parametrize(
    ("mutate", "check"),
    [
        (lambda r: dataclasses.replace(r, signature=bytes(64)), "dht_signature"),
        (lambda r: dataclasses.replace(r, payload=b"other"), "dht_signature"),
        (lambda r: dataclasses.replace(r, sequence=r.sequence + 1), "dht_signature"),
        (lambda r: dataclasses.replace(r, identity_key=MALLORY.public.signing_key), "dht_identity"),
        (lambda r: dataclasses.replace(r, expires_ms=0), "dht_expired"),
    ],
)
def test_validator_refuses_forgeries(mutate, check) -> None:  # type: ignore[no-untyped-def]
    clock = Clock()
    record = SignedRecord.sign(ALICE, RecordKind.PRESENCE, b"hi", 1, clock.now + HOUR_MS)
    key = dht_record_key(ALICE.public.signing_key, RecordKind.PRESENCE)
    with pytest.raises(VerificationError) as info:
        RecordValidator(clock).validate(key, mutate(record).encode())
    assert info.value.check == check


def test_record_is_bound_to_its_key() -> None:
    clock = Clock()
    validator = RecordValidator(clock)
    record = SignedRecord.sign(ALICE, RecordKind.PRESENCE, b"hi", 1, clock.now + HOUR_MS)
    # Another kind for the same identity: the signature covers the key.
    prekeys_key = dht_record_key(ALICE.public.signing_key, RecordKind.PREKEYS)
    with pytest.raises(VerificationError, match="dht_signature"):
        validator.validate(prekeys_key, record.encode())
    # Mallory's own valid record replayed under Alice's key.
    mallory = SignedRecord.sign(MALLORY, RecordKind.PRESENCE, b"x", 9, clock.now + HOUR_MS)
    alice_key = dht_record_key(ALICE.public.signing_key, RecordKind.PRESENCE)
    with pytest.raises(VerificationError, match="dht_identity"):
        validator.validate(alice_key, mallory.encode())
    for bad_key in ["/chhaya/other/" + "0" * 64, "/chhaya/presence/xyz", "/chhaya/presence"]:
        with pytest.raises(VerificationError, match="dht_key"):
            validator.validate(bad_key, record.encode())
    with pytest.raises(DecodeError):
        validator.validate(alice_key, b"garbage")


def test_expiry_follows_the_clock() -> None:
    clock = Clock()
    validator = RecordValidator(clock)
    record = SignedRecord.sign(ALICE, RecordKind.PREKEYS, b"p", 1, clock.now + 1000)
    key = dht_record_key(ALICE.public.signing_key, RecordKind.PREKEYS)
    validator.validate(key, record.encode())
    clock.now += 1000
    with pytest.raises(VerificationError, match="dht_expired"):
        validator.validate(key, record.encode())


def test_select_picks_highest_valid_sequence() -> None:
    clock = Clock()
    validator = RecordValidator(clock)
    key = dht_record_key(ALICE.public.signing_key, RecordKind.PRESENCE)
    expires = clock.now + HOUR_MS
    v1, v3, v2 = (
        SignedRecord.sign(ALICE, RecordKind.PRESENCE, b"s", seq, expires).encode()
        for seq in (1, 3, 2)
    )
    forged = dataclasses.replace(SignedRecord.decode_untrusted(v3), sequence=99).encode()
    assert validator.select(key, [v1, v3, v2]) == 1
    assert validator.select(key, [v3, v1]) == 0
    assert validator.select(key, [forged, v2, v1]) == 1
    with pytest.raises(VerificationError):
        validator.select(key, [forged, b"junk"])


def test_sign_refuses_oversized_payload() -> None:
    with pytest.raises(ValueError, match="payload"):
        SignedRecord.sign(ALICE, RecordKind.PRESENCE, bytes(MAX_DHT_PAYLOAD_SIZE + 1), 1, 1)


def test_eof_filter_drops_only_end_of_stream() -> None:
    drop = _DropEndOfStream()

    def rec(msg: str, arg: object) -> logging.LogRecord:
        name = "libp2p.kad_dht.kad_dht"
        return logging.LogRecord(name, logging.WARNING, "", 0, msg, (arg,), None)

    assert not drop.filter(rec(_EOF_MESSAGE, EOFError()))
    assert drop.filter(rec(_EOF_MESSAGE, RuntimeError("reset")))
    assert drop.filter(rec("something else %s", EOFError()))


records = st.builds(
    SignedRecord,
    identity_key=st.binary(min_size=32, max_size=32),
    sequence=st.integers(0, 2**64 - 1),
    expires_ms=st.integers(0, 2**64 - 1),
    payload=st.binary(max_size=MAX_DHT_PAYLOAD_SIZE),
    signature=st.binary(min_size=64, max_size=64),
)


@SETTINGS
@given(records)
def test_record_round_trip(record: SignedRecord) -> None:
    assert SignedRecord.decode_untrusted(record.encode()) == record


@SETTINGS
@given(st.binary(max_size=400))
def test_record_arbitrary_bytes(data: bytes) -> None:
    try:
        record = SignedRecord.decode_untrusted(data)
    except DecodeError:
        return
    assert record.encode() == data


@SETTINGS
@given(st.binary(max_size=200))
def test_record_arbitrary_bytes_after_magic(tail: bytes) -> None:
    data = SIGNED_RECORD_MAGIC + tail
    try:
        record = SignedRecord.decode_untrusted(data)
    except DecodeError:
        return
    assert record.encode() == data


# -- over the network ----------------------------------------------------------------


async def test_record_put_on_one_node_is_fetched_from_another() -> None:
    clock = Clock()
    with trio.fail_after(DHT_TEST_TIMEOUT_S):
        async with dht_line(4, clock) as nodes:
            start = trio.current_time()
            record = await nodes[0].put_record(
                ALICE, RecordKind.PREKEYS, b"bundle", 1, clock.now + HOUR_MS
            )
            put_s = trio.current_time() - start
            start = trio.current_time()
            fetched = await nodes[3].get_record(ALICE.public.signing_key, RecordKind.PREKEYS)
            get_s = trio.current_time() - start
            assert fetched == record
            assert fetched.payload == b"bundle"
            key = dht_record_key(ALICE.public.signing_key, RecordKind.PREKEYS).encode()
            assert sum(node.kad.value_store.has(key) for node in nodes) >= 2
            assert await nodes[2].get_record(MALLORY.public.signing_key, RecordKind.PREKEYS) is None
            logging.getLogger(__name__).info("put %.2f s, get %.2f s", put_s, get_s)


async def test_higher_sequence_wins() -> None:
    clock = Clock()
    expires = clock.now + HOUR_MS
    with trio.fail_after(DHT_TEST_TIMEOUT_S):
        async with dht_line(3, clock) as nodes:
            await nodes[0].put_record(ALICE, RecordKind.PRESENCE, b"old", 1, expires)
            await nodes[0].put_record(ALICE, RecordKind.PRESENCE, b"new", 2, expires)
            with pytest.raises(LocalProtocolError):
                await nodes[0].put_record(ALICE, RecordKind.PRESENCE, b"older", 0, expires)
            fetched = await nodes[2].get_record(ALICE.public.signing_key, RecordKind.PRESENCE)
            assert fetched is not None
            assert (fetched.sequence, fetched.payload) == (2, b"new")


async def test_forged_records_refused_on_put_and_get() -> None:
    clock = Clock()
    good = SignedRecord.sign(ALICE, RecordKind.PRESENCE, b"here", 5, clock.now + HOUR_MS)
    key = dht_record_key(ALICE.public.signing_key, RecordKind.PRESENCE)
    forgeries = [
        dataclasses.replace(good, signature=bytes(64)),
        dataclasses.replace(good, payload=b"elsewhere"),
        SignedRecord.sign(MALLORY, RecordKind.PRESENCE, b"me", 9, clock.now + HOUR_MS),
        SignedRecord.sign(ALICE, RecordKind.PRESENCE, b"old", 9, clock.now - 1),
    ]
    with trio.fail_after(DHT_TEST_TIMEOUT_S):
        async with dht_line(3, clock) as nodes:
            a, b, c = nodes
            b_id = b._host.get_id()
            for forged in forgeries:
                value = forged.encode()
                # Local put: refused before anything is sent.
                with pytest.raises(VerificationError):
                    await a.kad.put_value(key, value)
                # A peer that skips its own checks: the remote handler refuses to store.
                assert not await a.kad.value_store._store_at_peer(b_id, key.encode(), value)
                assert not b.kad.value_store.has(key.encode())
            # A malicious node holding a forged record: fetches refuse it.
            b.kad.value_store.put(key.encode(), forgeries[0].encode())
            assert await c.get_record(ALICE.public.signing_key, RecordKind.PRESENCE) is None
            assert await b.get_record(ALICE.public.signing_key, RecordKind.PRESENCE) is None


async def test_expired_record_refused_on_fetch() -> None:
    clock = Clock()
    with trio.fail_after(DHT_TEST_TIMEOUT_S):
        async with dht_line(2, clock) as (a, b):
            await a.put_record(ALICE, RecordKind.PRESENCE, b"soon", 1, clock.now + 1000)
            assert await b.get_record(ALICE.public.signing_key, RecordKind.PRESENCE) is not None
            clock.now += 1000
            assert await b.get_record(ALICE.public.signing_key, RecordKind.PRESENCE) is None
            assert await a.get_record(ALICE.public.signing_key, RecordKind.PRESENCE) is None


async def test_unknown_namespace_refused() -> None:
    clock = Clock()
    with trio.fail_after(DHT_TEST_TIMEOUT_S):
        async with dht_line(2, clock) as (a, b):
            assert a.kad.strict_validation
            for key in ["/other/thing", "plain-key"]:
                with pytest.raises(InvalidRecordType):
                    await a.kad.put_value(key, b"value")
                stored = await a.kad.value_store._store_at_peer(
                    b._host.get_id(), key.encode(), b"value"
                )
                assert not stored
                assert not b.kad.value_store.has(key.encode())
