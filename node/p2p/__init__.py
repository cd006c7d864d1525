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
from ._dht import (
    DHT_NAMESPACE,
    MAX_DHT_PAYLOAD_SIZE,
    MAX_SIGNED_RECORD_SIZE,
    SIGNED_RECORD_MAGIC,
    ChhayaDht,
    RecordKind,
    RecordValidator,
    SignedRecord,
    dht_record_key,
    wall_clock_ms,
)
from ._heads import (
    CERTIFIED_HEAD_MAGIC,
    HEADS_TOPIC,
    MAX_CERTIFIED_HEAD_SIZE,
    CertifiedHead,
    HeadGossip,
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
from ._vkd_protocol import (
    MAX_HISTORY_PROOF_SIZE,
    VKD_PROTOCOL,
    ProofSource,
    ProofUnavailable,
    VkdKind,
    VkdRequest,
    VkdResponse,
    VkdService,
    fetch_history,
    fetch_lookup,
)

__all__ = [
    "CERTIFIED_HEAD_MAGIC",
    "CHANNEL_PROTOCOL",
    "DHT_NAMESPACE",
    "HEADS_TOPIC",
    "MAX_CERTIFIED_HEAD_SIZE",
    "MAX_DHT_PAYLOAD_SIZE",
    "MAX_HISTORY_PROOF_SIZE",
    "MAX_SIGNED_RECORD_SIZE",
    "NOISE_PROTOCOL_ID",
    "SIGNED_RECORD_MAGIC",
    "VKD_PROTOCOL",
    "YAMUX_PROTOCOL_ID",
    "CertifiedHead",
    "ChannelHandler",
    "ChannelService",
    "ChhayaDht",
    "HeadGossip",
    "Libp2pStream",
    "PeerAllowed",
    "ProofSource",
    "ProofUnavailable",
    "RecordKind",
    "RecordValidator",
    "SignedRecord",
    "VkdKind",
    "VkdRequest",
    "VkdResponse",
    "VkdService",
    "allow_any_peer",
    "build_host",
    "configure_libp2p_logging",
    "dht_record_key",
    "fetch_history",
    "fetch_lookup",
    "listen_addrs",
    "open_channel",
    "running_host",
    "wall_clock_ms",
]
