"""The libp2p host: Noise only, Yamux, TCP on loopback, identify and ping, no auto-dialing."""

from __future__ import annotations

import pytest
import trio
from libp2p import new_host
from libp2p.abc import IHost
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.custom_types import TProtocol
from libp2p.exceptions import BaseLibp2pError
from libp2p.host.ping import ID as PING_PROTOCOL
from libp2p.host.ping import PingService
from libp2p.identity.identify.identify import ID as IDENTIFY_PROTOCOL
from libp2p.network.config import ConnectionConfig, RetryConfig
from libp2p.network.connection.swarm_connection import SwarmConn
from libp2p.network.swarm import Swarm
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo, info_from_p2p_addr
from libp2p.security.insecure.transport import PLAINTEXT_PROTOCOL_ID, InsecureTransport
from libp2p.stream_muxer.yamux.yamux import Yamux
from multiaddr import Multiaddr

from chhaya import TransportError
from node.p2p import (
    NOISE_PROTOCOL_ID,
    YAMUX_PROTOCOL_ID,
    build_host,
    listen_addrs,
    running_host,
)

from .conftest import LOOPBACK, TEST_TIMEOUT_S, address, hosts, wait_until


def _only_conn(host: IHost, peer: ID) -> SwarmConn:
    conns = host.get_network().connections.get(peer, [])
    assert len(conns) == 1
    conn = conns[0]
    assert isinstance(conn, SwarmConn)
    return conn


async def test_hosts_connect_over_noise_and_yamux() -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        async with hosts(2) as (a, b):
            addr = address(a)
            assert addr.startswith("/ip4/127.0.0.1/tcp/")
            assert addr.endswith(f"/p2p/{a.get_id()}")
            assert "/tcp/0/" not in addr  # the bound port, not the requested one
            await b.connect(info_from_p2p_addr(Multiaddr(addr)))
            for local, remote in ((b, a), (a, b)):
                conn = _only_conn(local, remote.get_id())
                assert conn.get_negotiated_security_protocol() == NOISE_PROTOCOL_ID
                assert conn.get_negotiated_muxer_protocol() == YAMUX_PROTOCOL_ID
                # Noise authenticated the peer ID on both sides.
                assert conn.muxed_conn.peer_id == remote.get_id()
            # A second connect reuses the one connection (max_connections_per_peer=1).
            await b.connect(info_from_p2p_addr(Multiaddr(addr)))
            _only_conn(b, a.get_id())


async def test_identify_and_ping_are_served() -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        async with hosts(2) as (a, b):
            await b.connect(info_from_p2p_addr(Multiaddr(address(a))))
            rtts = await PingService(b).ping(a.get_id(), ping_amt=2)
            assert len(rtts) == 2

            def identified() -> bool:
                try:
                    protocols = b.get_peerstore().get_protocols(a.get_id())
                except BaseLibp2pError:
                    return False
                return str(PING_PROTOCOL) in protocols

            await wait_until(identified)  # connect() runs identify in the background
            assert str(IDENTIFY_PROTOCOL) in b.get_peerstore().get_protocols(a.get_id())


def _plaintext_host() -> IHost:
    kp = create_new_key_pair()
    host = new_host(
        key_pair=kp,
        sec_opt={TProtocol(PLAINTEXT_PROTOCOL_ID): InsecureTransport(kp)},
        muxer_opt={TProtocol(YAMUX_PROTOCOL_ID): Yamux},
        connection_config=ConnectionConfig(max_connections_per_peer=1),
    )
    swarm = host.get_network()
    assert isinstance(swarm, Swarm)
    swarm.retry_config = RetryConfig(max_retries=0)  # fail fast
    return host


async def test_plaintext_only_peer_cannot_connect_either_way() -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        plain = _plaintext_host()
        async with hosts(1) as (a,), plain.run(listen_addrs=[Multiaddr(LOOPBACK[0])]):
            with pytest.raises(BaseLibp2pError):  # it dials us
                await plain.connect(info_from_p2p_addr(Multiaddr(address(a))))
            assert a.get_connected_peers() == []
            assert plain.get_connected_peers() == []
            plain_addr = f"{plain.get_transport_addrs()[0]}/p2p/{plain.get_id()}"
            swarm = a.get_network()
            assert isinstance(swarm, Swarm)
            swarm.retry_config = RetryConfig(max_retries=0)
            with pytest.raises(BaseLibp2pError):  # we dial it
                await a.connect(info_from_p2p_addr(Multiaddr(plain_addr)))
            assert a.get_connected_peers() == []
            await plain.close()


async def test_host_never_dials_peers_on_its_own() -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        async with hosts(2) as (a, b):
            # a learns b's address, as identify or the DHT would tell it ...
            a.get_peerstore().add_addrs(b.get_id(), b.get_transport_addrs(), 3600)
            swarm = a.get_network()
            assert isinstance(swarm, Swarm)
            # ... and even when asked, the auto-connector does not dial it.
            await swarm.auto_connector.maybe_connect()
            await trio.sleep(0.2)
            assert a.get_connected_peers() == []
            assert b.get_connected_peers() == []


async def test_listen_address_in_use_is_an_error() -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        async with hosts(1) as (a,):
            taken = str(a.get_transport_addrs()[0])
            with pytest.raises(TransportError, match="cannot listen"):
                async with running_host(create_new_key_pair(), [taken]):
                    pass  # pragma: no cover


@pytest.mark.parametrize(
    "addr",
    ["/ip4/127.0.0.1/udp/0/quic-v1", "/ip4/127.0.0.1/tcp/0/ws", "not a multiaddr", "/ip4/1.2.3.4"],
)
def test_only_tcp_listen_addresses_are_accepted(addr: str) -> None:
    with pytest.raises(TransportError):
        build_host(create_new_key_pair(), [addr])


async def test_listen_addrs_are_dialable_after_binding_port_zero() -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        async with hosts(2) as (a, b):
            for addr in listen_addrs(a):
                info = info_from_p2p_addr(Multiaddr(addr))
                assert info.peer_id == a.get_id()
                await b.connect(PeerInfo(info.peer_id, info.addrs))
            assert b.get_connected_peers() == [a.get_id()]
