"""Interactive session set-up, seeded from the channel handshake.

The channel's dialer becomes the ratchet's initiator. The listener makes a
fresh ratchet key pair and sends its public key as the first record on the
channel (the "session hello"); the channel authenticates it. Both sides use
the handshake's ``ratchet_root`` as the shared secret, and bind both
identities and the channel transcript into the ratchet's associated data.
"""

from __future__ import annotations

from ..crypto import FAST, X25519_KEY_SIZE, Dh, Rng, hkdf
from ..identity import PrivateIdentity, PublicIdentity
from ..prekeys import (
    InitialMessage,
    PrekeyBundle,
    PrekeyStore,
    accept_initial_message,
    initiate_session,
)
from ..ratchet import RatchetSession
from ..safety import DecodeError, Secret
from ._payload import MESSAGE_ID_SIZE, Payload, PayloadKind
from ._session import Conversation, TextReceived

__all__ = [
    "SESSION_HELLO_SIZE",
    "initiator_from_bundle",
    "initiator_from_channel",
    "responder_from_channel",
    "responder_from_initial",
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


# ------------------------------------------------------------------ asynchronous first contact


def initiator_from_bundle(
    identity: PrivateIdentity,
    bundle: PrekeyBundle,
    text: bytes,
    now: int,
    rng: Rng,
    message_id: bytes | None = None,
) -> tuple[Conversation, bytes, InitialMessage]:
    """First contact with a peer who may be offline (PQXDH-style, section 6).

    ``bundle`` must come from a verified directory entry. Returns the new
    conversation, the first text's message id and the InitialMessage that
    carries it. Messages sent before the peer answers are ordinary
    conversation messages; the peer reads them after the InitialMessage.
    """
    mid = message_id if message_id is not None else rng(MESSAGE_ID_SIZE)
    payload = Payload(PayloadKind.TEXT, mid, now, text=text).encode()
    session, initial = initiate_session(identity, bundle, payload, rng)
    return Conversation(session), mid, initial


def responder_from_initial(
    identity: PrivateIdentity, store: PrekeyStore, message: InitialMessage, rng: Rng
) -> tuple[Conversation, TextReceived, PublicIdentity]:
    """Answer a first contact: the conversation, its first text and the
    initiator's identity (which the caller must still check against the
    directory). Raises as :func:`chhaya.prekeys.accept_initial_message`, and
    DecodeError if the first payload is not a text."""
    session, plaintext, initiator = accept_initial_message(identity, store, message, rng)
    payload = Payload.decode_untrusted(plaintext)
    if payload.kind is not PayloadKind.TEXT or payload.text is None:
        raise DecodeError("the first message of a conversation must be a text")
    conversation = Conversation(session)
    conversation._remember(payload.message_id)
    return (
        conversation,
        TextReceived(payload.message_id, payload.sent_at_ms, payload.text, False),
        initiator,
    )
