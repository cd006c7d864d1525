"""The secure channel: a transcript-bound hybrid handshake and a record layer."""

from ._config import AllowlistResolver, ChannelConfig, Resolver
from ._connection import ChannelConnection, ChannelState, Role, StreamEnded
from ._constants import (
    ACK_SIZE,
    FRAME_CLOSE,
    FRAME_DATA,
    FRAME_HEADER_SIZE,
    HANDSHAKE_TIMEOUT_MS,
    MAX_FRAME_BODY,
    MAX_FRAMES,
    MAX_HANDSHAKE_AGE_MS,
    MAX_RECORD_PLAINTEXT,
    MSG_ACK,
    MSG_SYN,
    MSG_SYN_ACK,
    PROTOCOL_VERSION,
    REKEY_INTERVAL,
    SYN_ACK_SIZE,
    SYN_SIZE,
    SYNCHRONY_BOUND_MS,
)
from ._events import ConnectionClosed, DataReceived, Event, HandshakeComplete
from ._keyschedule import Exporter
from ._messages import Ack, Syn, SynAck
from ._record import RecordReceiver, RecordSender
from ._replay import SynReplayCache

__all__ = [
    "ACK_SIZE",
    "FRAME_CLOSE",
    "FRAME_DATA",
    "FRAME_HEADER_SIZE",
    "HANDSHAKE_TIMEOUT_MS",
    "MAX_FRAMES",
    "MAX_FRAME_BODY",
    "MAX_HANDSHAKE_AGE_MS",
    "MAX_RECORD_PLAINTEXT",
    "MSG_ACK",
    "MSG_SYN",
    "MSG_SYN_ACK",
    "PROTOCOL_VERSION",
    "REKEY_INTERVAL",
    "SYNCHRONY_BOUND_MS",
    "SYN_ACK_SIZE",
    "SYN_SIZE",
    "Ack",
    "AllowlistResolver",
    "ChannelConfig",
    "ChannelConnection",
    "ChannelState",
    "ConnectionClosed",
    "DataReceived",
    "Event",
    "Exporter",
    "HandshakeComplete",
    "RecordReceiver",
    "RecordSender",
    "Resolver",
    "Role",
    "StreamEnded",
    "Syn",
    "SynAck",
    "SynReplayCache",
]
