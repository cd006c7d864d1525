"""Interactive session set-up, seeded from the channel handshake.

The channel's dialer becomes the ratchet's initiator. The listener makes a
fresh ratchet key pair and sends its public key as the first record on the
channel (the "session hello"); the channel authenticates it. Both sides use
the handshake's ``ratchet_root`` as the shared secret, and bind both
identities and the channel transcript into the ratchet's associated data.
"""

from __future__ import annotations

from ..crypto import FAST, X25519_KEY_SIZE, Dh, Rng, hkdf
from ..ratchet import RatchetSession
from ..safety import DecodeError, Secret
from ._session import Conversation

__all__ = [
    "SESSION_HELLO_SIZE",
    "initiator_from_channel",
    "responder_from_channel",
    "session_associated_data",
]

_HELLO_TAG = b"CSH1"
SESSION_HELLO_SIZE = len(_HELLO_TAG) + X25519_KEY_SIZE
_AD_LABEL = b"chhaya/session/v1/ad"
_ROOT_LABEL = b"chhaya/session/v1/root"


def session_associated_data(initiator_key: bytes, responder_key: bytes, transcript: bytes) -> bytes:
    return _AD_LABEL + initiator_key + responder_key + transcript


def _root(ratchet_root: Secret, transcript: bytes) -> bytes:
    return hkdf(ratchet_root.reveal(), transcript, _ROOT_LABEL, 32)


def responder_from_channel(
    ratchet_root: Secret,
    transcript_hash: bytes,
    initiator_key: bytes,
    responder_key: bytes,
    rng: Rng,
    *,
    header_encryption: bool = False,
    dh: Dh = FAST.dh,
) -> tuple[Conversation, bytes]:
    """Listener side: returns the conversation and the hello to send."""
    own = dh.generate(rng)
    ratchet = RatchetSession.responder(
        _root(ratchet_root, transcript_hash),
        session_associated_data(initiator_key, responder_key, transcript_hash),
        own,
        header_encryption=header_encryption,
        dh=dh,
    )
    return Conversation(ratchet), _HELLO_TAG + own.public_key


def initiator_from_channel(
    ratchet_root: Secret,
    transcript_hash: bytes,
    initiator_key: bytes,
    responder_key: bytes,
    hello: bytes,
    rng: Rng,
    *,
    header_encryption: bool = False,
    dh: Dh = FAST.dh,
) -> Conversation:
    """Dialer side, once the listener's hello has arrived on the channel."""
    if len(hello) != SESSION_HELLO_SIZE or hello[: len(_HELLO_TAG)] != _HELLO_TAG:
        raise DecodeError("malformed session hello")
    ratchet = RatchetSession.initiator(
        _root(ratchet_root, transcript_hash),
        session_associated_data(initiator_key, responder_key, transcript_hash),
        hello[len(_HELLO_TAG) :],
        rng,
        header_encryption=header_encryption,
        dh=dh,
    )
    return Conversation(ratchet)
