"""Channel constants. PROTOCOL.md lists them; keep the two in step."""

from __future__ import annotations

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
]

PROTOCOL_VERSION = 1

# Frame types: the first byte of every frame body.
MSG_SYN = 0x01
MSG_SYN_ACK = 0x02
MSG_ACK = 0x03
FRAME_DATA = 0x10
FRAME_CLOSE = 0x11

# Every frame is ``length u32 | body``; ``body[0]`` is the frame type.
FRAME_HEADER_SIZE = 5  # the length plus the type byte: the AAD of a record
MAX_RECORD_PLAINTEXT = 64 * 1024
MAX_FRAME_BODY = 1 + MAX_RECORD_PLAINTEXT + 16

SYN_SIZE = 1 + 1 + 32 + 32 + 32 + 32 + 1568 + 8 + 64
SYN_ACK_SIZE = 1 + 32 + 32 + 1568 + 8 + 32 + 64 + 32
ACK_SIZE = 1 + 32

# Time bounds, in milliseconds.
SYNCHRONY_BOUND_MS = 5_000  # how far in the future a peer's clock may be
MAX_HANDSHAKE_AGE_MS = 10_000  # how old a handshake message may be
HANDSHAKE_TIMEOUT_MS = 10_000  # the whole handshake must finish within this

# Record layer: derive a fresh key every REKEY_INTERVAL frames, and end the
# channel before the 64-bit frame counter could wrap.
REKEY_INTERVAL = 1 << 16
MAX_FRAMES = (1 << 64) - 1
