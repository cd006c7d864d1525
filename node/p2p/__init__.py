"""The node's libp2p side: the host and Chhaya protocols over libp2p streams.

Importing this package imports py-libp2p, which takes about a second.
"""

from ._channel_protocol import (
    CHANNEL_PROTOCOL,
    ChannelHandler,
    ChannelService,
    PeerAllowed,
    allow_any_peer,
    open_channel,
)
from ._host import (
    NOISE_PROTOCOL_ID,
    YAMUX_PROTOCOL_ID,
    build_host,
    configure_libp2p_logging,
    listen_addrs,
    running_host,
)
from ._stream import Libp2pStream

__all__ = [
    "CHANNEL_PROTOCOL",
    "NOISE_PROTOCOL_ID",
    "YAMUX_PROTOCOL_ID",
    "ChannelHandler",
    "ChannelService",
    "Libp2pStream",
    "PeerAllowed",
    "allow_any_peer",
    "build_host",
    "configure_libp2p_logging",
    "listen_addrs",
    "open_channel",
    "running_host",
]
