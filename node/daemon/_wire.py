"""Small messages the user node exchanges, and the presence record payload.

Inside an established channel, before any conversation message::

    Intro   = "CIN1" || handle var16 (<= MAX_HANDLE_LEN) || conversation id var16 (0 or 16)
    Welcome = "CWL1" || resume u8 (0 new conversation, 1 continue the stored one)

The dialer sends ``Intro`` (its handle, and the id of the conversation it
holds with the listener, if any); the listener verifies the handle's
directory entry against the channel's identity and the libp2p peer ID, then
answers ``Welcome``. A fresh conversation's session hello follows a
``Welcome`` with resume 0.

Presence (the payload of a signed ``/chhaya/presence/...`` DHT record)::

    Presence = "CPR1" || peer id var16 (<= 64) || count u8 (1..MAX_ADDRS)
               || each: multiaddr bytes var16 (<= MAX_ADDR_LEN)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from chhaya import DecodeError
from chhaya.session import CONVERSATION_ID_SIZE
from chhaya.wire import Reader, Writer
from vkd import MAX_HANDLE_LEN, valid_handle

__all__ = ["MAX_ADDRS", "MAX_ADDR_LEN", "Intro", "Presence", "Welcome"]

MAX_ADDRS: Final = 16
MAX_ADDR_LEN: Final = 256
MAX_PEER_ID_LEN: Final = 64
_INTRO: Final = b"CIN1"
_WELCOME: Final = b"CWL1"
_PRESENCE: Final = b"CPR1"


@dataclass(frozen=True, slots=True)
class Intro:
    handle: str
    conversation_id: bytes

    def encode(self) -> bytes:
        if not valid_handle(self.handle):
            raise ValueError(f"invalid handle {self.handle!r}")
        if len(self.conversation_id) not in (0, CONVERSATION_ID_SIZE):
            raise ValueError("conversation id must be empty or 16 bytes")
        w = Writer().raw(_INTRO).utf8(self.handle, MAX_HANDLE_LEN)
        return w.var16(self.conversation_id, CONVERSATION_ID_SIZE).getvalue()

    @classmethod
    def decode_untrusted(cls, data: bytes) -> Intro:
        r = Reader(data)
        r.expect(_INTRO, "intro magic")
        handle = r.utf8(MAX_HANDLE_LEN, "handle")
        if not valid_handle(handle):
            raise DecodeError("invalid handle")
        conversation_id = r.var16(CONVERSATION_ID_SIZE, "conversation id")
        if len(conversation_id) not in (0, CONVERSATION_ID_SIZE):
            raise DecodeError("conversation id must be empty or 16 bytes")
        r.finish()
        return cls(handle, conversation_id)


@dataclass(frozen=True, slots=True)
class Welcome:
    resume: bool

    def encode(self) -> bytes:
        return _WELCOME + bytes((int(self.resume),))

    @classmethod
    def decode_untrusted(cls, data: bytes) -> Welcome:
        r = Reader(data)
        r.expect(_WELCOME, "welcome magic")
        flag = r.u8("resume flag")
        r.finish()
        if flag not in (0, 1):
            raise DecodeError("resume flag must be 0 or 1")
        return cls(bool(flag))


@dataclass(frozen=True, slots=True)
class Presence:
    """Where a device can be dialled: its peer ID and multiaddrs (without /p2p/)."""

    peer_id: bytes
    addrs: tuple[str, ...]

    def encode(self) -> bytes:
        if not 1 <= len(self.addrs) <= MAX_ADDRS:
            raise ValueError(f"a presence lists 1..{MAX_ADDRS} addresses")
        if not 1 <= len(self.peer_id) <= MAX_PEER_ID_LEN:
            raise ValueError("bad peer id length")
        w = Writer().raw(_PRESENCE).var16(self.peer_id, MAX_PEER_ID_LEN).u8(len(self.addrs))
        for addr in self.addrs:
            if not addr:
                raise ValueError("empty address")
            w.utf8(addr, MAX_ADDR_LEN)
        return w.getvalue()

    @classmethod
    def decode_untrusted(cls, data: bytes) -> Presence:
        r = Reader(data)
        r.expect(_PRESENCE, "presence magic")
        peer_id = r.var16(MAX_PEER_ID_LEN, "peer id")
        count = r.u8("address count")
        if not peer_id or not 1 <= count <= MAX_ADDRS:
            raise DecodeError("bad presence counts")
        addrs = []
        for _ in range(count):
            addr = r.utf8(MAX_ADDR_LEN, "address")
            if not addr:
                raise DecodeError("empty address")
            addrs.append(addr)
        r.finish()
        return cls(peer_id, tuple(addrs))
