"""``/chhaya/channel/1.0.0``: the Chhaya channel over a libp2p stream.

libp2p's Noise authenticates the hop and the *node* (its peer ID); the channel
handshake on top authenticates the *user* identity and adds post-quantum
secrecy. The two are bound together by ``peer_allowed(peer_id, identity_key)``:
a peer ID may speak only for the identities the application lists for it
(later, the devices of a verified directory entry). A mismatch fails the
handshake exactly like an unknown identity, so the peer learns only that the
stream closed.

The listener side (:class:`ChannelService`) runs each channel in the stream
handler task that py-libp2p starts for the stream, inside the connection's
nursery: the channel ends with its connection, and :meth:`ChannelService.stop`
ends all of them. Nothing raised in a handler reaches libp2p's nursery.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Final

import multiaddr
import trio
from libp2p.abc import IHost
from libp2p.custom_types import TProtocol
from libp2p.exceptions import BaseLibp2pError
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo, info_from_p2p_addr

from chhaya import ChhayaError, TransportError, VerificationError
from chhaya.channel import ChannelConfig, Resolver, SynReplayCache
from chhaya.crypto import Rng
from chhaya.identity import PrivateIdentity

from ..clock import system_rng, wall_ms
from ..drivers import SecureChannel, accept_channel, dial_channel
from ._service import StreamService
from ._stream import Libp2pStream

__all__ = [
    "CHANNEL_PROTOCOL",
    "ChannelHandler",
    "ChannelService",
    "PeerAllowed",
    "allow_any_peer",
    "open_channel",
]

log = logging.getLogger("chhaya.p2p.channel")

CHANNEL_PROTOCOL: Final = TProtocol("/chhaya/channel/1.0.0")

#: Channels a service runs at once; further streams are reset on arrival.
MAX_CHANNELS = 256
#: How long a closing side waits for the peer to close its half of the stream.
LINGER_S = 5.0
#: Bound on closing a channel the handler has finished with.
CHANNEL_CLOSE_TIMEOUT_S = 15.0
#: Bound on connecting to a peer and opening the protocol stream.
CONNECT_TIMEOUT_S = 10.0

#: ``peer_allowed(peer_id, identity_key)``: may this libp2p peer speak for that identity?
PeerAllowed = Callable[[ID, bytes], bool]
#: Receives each established channel and the peer ID it came from. The
#: service closes the channel when the handler returns.
ChannelHandler = Callable[[SecureChannel, ID], Awaitable[None]]

_DIAL_ERRORS = (BaseLibp2pError, OSError, ValueError, trio.BrokenResourceError)


def allow_any_peer(peer_id: ID, identity_key: bytes) -> bool:
    """The default binding: any peer ID may speak for any identity."""
    return True


def _bind_peer(resolver: Resolver, peer_allowed: PeerAllowed, peer_id: ID) -> Resolver:
    def resolve(identity_key: bytes) -> object | None:
        if not peer_allowed(peer_id, identity_key):
            log.info("peer %s may not speak for identity %s", peer_id, identity_key.hex()[:16])
            return None
        return resolver(identity_key)

    return resolve


class ChannelService(StreamService):
    """Accepts channels on ``/chhaya/channel/1.0.0`` and hands them to ``handler``."""

    protocol = CHANNEL_PROTOCOL

    def __init__(
        self,
        host: IHost,
        identity: PrivateIdentity,
        resolver: Resolver,
        config: ChannelConfig | None = None,
        *,
        handler: ChannelHandler,
        peer_allowed: PeerAllowed = allow_any_peer,
        max_channels: int = MAX_CHANNELS,
        linger_s: float = LINGER_S,
        rng: Rng = system_rng,
        clock: Callable[[], int] = wall_ms,
    ) -> None:
        super().__init__(host, max_channels)
        self._identity = identity
        self._resolver = resolver
        self._config = config or ChannelConfig()
        self._handler = handler
        self._peer_allowed = peer_allowed
        self._linger_s = linger_s
        self._rng = rng
        self._clock = clock
        self._replay_cache = SynReplayCache(self._config.replay_window_ms)
        #: Handshakes completed and handed to the handler.
        self.accepted = 0

    async def _serve(self, stream: Libp2pStream) -> None:
        peer_id = stream.remote_peer_id
        resolver = _bind_peer(self._resolver, self._peer_allowed, peer_id)
        try:
            channel = await accept_channel(
                stream,
                self._identity,
                resolver,
                self._replay_cache,
                self._config,
                rng=self._rng,
                clock=self._clock,
            )
        except ChhayaError as exc:
            self.rejected += 1
            reason = exc.check if isinstance(exc, VerificationError) else str(exc)
            log.info("rejected channel from %s: %s", peer_id, reason)
            await stream.aclose_lingering(self._linger_s)
            return
        self.accepted += 1
        log.info("channel from %s: %s", peer_id, channel.peer_info)
        try:
            await self._handler(channel, peer_id)
        except ChhayaError as exc:
            log.info("channel with %s failed: %s", peer_id, exc)
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(CHANNEL_CLOSE_TIMEOUT_S):
                await channel.aclose()  # an authenticated close, if the channel still works
            await stream.aclose_lingering(self._linger_s)


def _peer_info(peer: PeerInfo | ID | str) -> PeerInfo:
    if isinstance(peer, PeerInfo):
        return peer
    if isinstance(peer, ID):
        return PeerInfo(peer, [])  # dial addresses from the peerstore
    try:
        return info_from_p2p_addr(multiaddr.Multiaddr(peer))
    except Exception as exc:  # multiaddr and libp2p raise several unrelated types
        raise TransportError(f"invalid peer address {peer!r}: need .../p2p/<peer id>") from exc


async def open_channel(
    host: IHost,
    peer: PeerInfo | ID | str,
    identity: PrivateIdentity,
    expected_identity_key: bytes,
    config: ChannelConfig | None = None,
    *,
    peer_allowed: PeerAllowed = allow_any_peer,
    connect_timeout_s: float = CONNECT_TIMEOUT_S,
    rng: Rng = system_rng,
    clock: Callable[[], int] = wall_ms,
) -> SecureChannel:
    """Connect to ``peer``, open ``/chhaya/channel/1.0.0`` and run the dialer handshake.

    ``peer`` is a ``PeerInfo``, a peer ID already in the peerstore, or a
    multiaddr ending in ``/p2p/<peer id>``. The listener must prove
    ``expected_identity_key``; ``peer_allowed`` must accept that identity for
    the peer ID we dial. Raises :class:`TransportError` when the peer cannot be
    reached or closes the stream, :class:`VerificationError` when a check fails.
    """
    info = _peer_info(peer)
    peer_id = info.peer_id
    if peer_id == host.get_id():
        raise TransportError("cannot open a channel to this node itself")
    if not peer_allowed(peer_id, expected_identity_key):
        raise VerificationError("peer-not-allowed", f"{peer_id} may not speak for that identity")
    try:
        with trio.fail_after(connect_timeout_s):
            await host.connect(info)
            net_stream = await host.new_stream(peer_id, [CHANNEL_PROTOCOL])
    except trio.TooSlowError:
        raise TransportError(f"no channel to {peer_id} within {connect_timeout_s:g} s") from None
    except _DIAL_ERRORS as exc:
        raise TransportError(f"cannot open a channel to {peer_id}: {exc}") from None
    stream = Libp2pStream(net_stream)
    if stream.remote_peer_id != peer_id:  # pragma: no cover - libp2p routes by peer ID
        await stream.reset()
        raise TransportError(f"stream to {peer_id} reached {stream.remote_peer_id}")
    try:
        return await dial_channel(
            stream, identity, expected_identity_key, config, rng=rng, clock=clock
        )
    except BaseException:
        await stream.reset()  # the driver sent FIN; free the stream now
        raise
