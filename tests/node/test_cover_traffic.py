"""Cover traffic: Poisson timing, sizes that copy real traffic, and real processes
that send cover envelopes which the receiver drops silently."""

from __future__ import annotations

import os
import statistics
from collections.abc import Iterator

import pytest

from chhaya.sealed import PADDING_BUCKETS
from node.daemon._cover import (
    DEFAULT_RATE_PER_MIN,
    MAX_RATE_PER_MIN,
    CoverTraffic,
    poisson_delay_s,
)
from node.demo_network import LocalNetwork

from ._network import network, wait_for


def test_delays_are_exponential_with_the_configured_mean() -> None:
    delays = [poisson_delay_s(60.0, os.urandom) for _ in range(20_000)]
    assert all(d > 0 for d in delays)
    mean = statistics.fmean(delays)
    assert 0.95 < mean < 1.05  # mean 1 s at 60 per minute
    # Exponential: the standard deviation equals the mean (unlike fixed intervals).
    assert 0.9 < statistics.pstdev(delays) / mean < 1.1


def test_sizes_copy_the_real_envelopes() -> None:
    cover = CoverTraffic(DEFAULT_RATE_PER_MIN, list, os.urandom)
    assert cover.next_size() == PADDING_BUCKETS[0]
    cover.observe_real(PADDING_BUCKETS[1])
    cover.observe_real(12345)  # not a bucket: ignored
    assert {cover.next_size() for _ in range(50)} == {PADDING_BUCKETS[1]}


@pytest.mark.parametrize("rate", [0.0, -1.0, MAX_RATE_PER_MIN + 1])
def test_rates_out_of_range_are_refused(rate: float) -> None:
    with pytest.raises(ValueError, match="cover rate"):
        CoverTraffic(rate, list, os.urandom)


async def test_no_live_channel_means_nothing_is_sent() -> None:
    cover = CoverTraffic(DEFAULT_RATE_PER_MIN, list, os.urandom)
    assert not await cover.send_one()
    assert (cover.sent, cover.skipped) == (0, 1)


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNetwork]:
    yield from network(tmp_path_factory.mktemp("covernet"))


@pytest.mark.slow
def test_cover_envelopes_flow_and_are_dropped_silently(net: LocalNetwork) -> None:
    net.start_user("cora", ["--cover-traffic", "600"])
    net.start_user("dirk")
    net.register(["cora", "dirk"])
    sent = net.call("cora", "send", {"handle": "dirk", "text": "real", "wait": True})
    assert sent["status"] == "delivered"
    wait_for("a few cover envelopes", lambda: net.call("cora", "status")["cover_sent"] >= 5)
    # Dirk stored only the real message; the link is still up and works.
    assert [m["text"] for m in net.call("dirk", "inbox")["messages"]] == ["real"]
    reply = net.call("dirk", "send", {"handle": "cora", "text": "still fine", "wait": True})
    assert reply["status"] == "delivered"
    assert net.call("dirk", "status")["cover_sent"] == 0


def _dropped(net: LocalNetwork, handle: str) -> int:
    mailboxes = net.call(handle, "status")["mailboxes"]  # None until the directory is followed
    return 0 if mailboxes is None else int(mailboxes["dropped"])


@pytest.mark.slow
def test_without_live_channels_cover_goes_to_contacts_mailboxes(net: LocalNetwork) -> None:
    net.start_user("eve", ["--cover-traffic", "600"])
    net.start_user("fay", ["--mailbox-poll", "1"])
    net.start_user("gus")  # one more DHT server, to hold mailboxes
    net.register(["eve", "fay", "gus"])
    sent = net.call("eve", "send", {"handle": "fay", "text": "hello fay", "wait": True})
    assert sent["status"] == "delivered"  # fay is now eve's contact
    assert net.users["fay"].stop() == 0
    before = net.call("eve", "status")["mailboxes"]["deposited"]
    wait_for(
        "cover envelopes deposited for fay",
        lambda: net.call("eve", "status")["mailboxes"]["deposited"] >= before + 3,
    )
    net.start_user("fay", ["--mailbox-poll", "1"])
    wait_for("fay to drop cover from her mailboxes", lambda: _dropped(net, "fay") >= 1)
    assert [m["text"] for m in net.call("fay", "inbox")["messages"]] == ["hello fay"]
