"""Asynchronous first contact, PQXDH-style.

The initiator (Alice) fetches the responder's (Bob's) prekey bundle, checks
its signatures and computes, with a fresh ephemeral key EK_A:

    DH1 = DH(IK_A, SPK_B)   DH2 = DH(EK_A, IK_B)   DH3 = DH(EK_A, SPK_B)
    DH4 = DH(EK_A, OPK_B)   only if the bundle had a one-time prekey
    (SS, CT) = ML-KEM-1024.Encaps(PQPK_B)
    SK = derive_pqxdh_secret(DH1, DH2, DH3, DH4, SS)

DH1 and DH2 authenticate both sides to each other, DH3 and DH4 give forward
secrecy, SS protects SK against an attacker who records traffic today and
breaks X25519 later. SK seeds a Double Ratchet in which Bob's signed prekey
is his first ratchet key, and the first payload travels in the same
:class:`InitialMessage`.

Bob looks the prekeys up by id, recomputes SK and decrypts. Only once the
ratchet message authenticates are one-time prekeys deleted, so a forged
message cannot burn one. A replay then finds its one-time prekey gone; a
message that used no one-time prekey is caught by the store's replay set.

What this does not do: decide whether the initiator's identity is the one
it claims to be for a handle. Both sides must check the other's
PublicIdentity against the key directory.
"""

from __future__ import annotations

from ..crypto import CryptoSuite, Rng
from ..identity import PrivateIdentity, PublicIdentity
from ..ratchet import RatchetSession
from ..safety import (
    ChhayaError,
    CryptoError,
    DecodeError,
    LocalProtocolError,
    VerificationError,
)
from ._kdf import derive_pqxdh_secret, initial_message_digest, pqxdh_associated_data
from ._messages import InitialMessage, PrekeyBundle, is_canonical_x25519
from ._store import MAX_INITIAL_MESSAGES_PER_SIGNED_PREKEY, PrekeyStore

__all__ = ["accept_initial_message", "initiate_session"]


def initiate_session(
    identity: PrivateIdentity,
    bundle: PrekeyBundle,
    first_plaintext: bytes,
    rng: Rng,
    header_encryption: bool = False,
    *,
    suite: CryptoSuite | None = None,
) -> tuple[RatchetSession, InitialMessage]:
    """Open a session to the owner of ``bundle`` and encrypt the first payload.

    ``bundle.identity`` must already be known to be the intended peer (from
    a verified directory entry). Raises VerificationError("prekey-signature")
    for a badly signed bundle and CryptoError for a degenerate public key.

    ``rng`` is drawn from in a fixed order: the ephemeral key (32 bytes), the
    ML-KEM encapsulation message (32 bytes, reference provider only: the fast
    one draws nothing and uses OpenSSL's generator), the first ratchet key
    (32), then the ratchet's own draws (a 12-byte header nonce with header
    encryption).
    Later messages before Bob answers are ordinary ``session.encrypt`` output;
    Bob can read them only after this InitialMessage.
    """
    suite = suite if suite is not None else identity.suite
    bundle.verify(suite.sig)
    remote = bundle.identity
    spk = bundle.signed_prekey.public_key
    ephemeral = suite.dh.generate(rng)
    dh1 = identity.agreement.exchange(spk)
    dh2 = ephemeral.exchange(remote.agreement_key)
    dh3 = ephemeral.exchange(spk)
    opk = bundle.one_time_prekey
    dh4 = ephemeral.exchange(opk.public_key) if opk is not None else None
    kem_ss, kem_ct = suite.kem.encapsulate(bundle.kem_prekey.public_key, rng)
    sk = derive_pqxdh_secret(dh1, dh2, dh3, dh4, kem_ss)
    ad = pqxdh_associated_data(identity.public, remote)
    session = RatchetSession.initiator(
        sk, ad, spk, rng, header_encryption=header_encryption, dh=suite.dh
    )
    ratchet_message = session.encrypt(first_plaintext, rng)
    message = InitialMessage(
        initiator_identity=identity.public,
        ephemeral_key=ephemeral.public_key,
        signed_prekey_id=bundle.signed_prekey.prekey_id,
        one_time_prekey_id=opk.prekey_id if opk is not None else None,
        kem_prekey_id=bundle.kem_prekey.prekey_id,
        kem_ciphertext=kem_ct,
        ratchet_message=ratchet_message,
    )
    return session, message


def accept_initial_message(
    identity: PrivateIdentity,
    store: PrekeyStore,
    message: InitialMessage,
    rng: Rng,
    header_encryption: bool = False,
) -> tuple[RatchetSession, bytes, PublicIdentity]:
    """Answer a first contact: return the session, the first plaintext and
    the initiator's (not yet directory-checked) identity.

    Raises:
        VerificationError("unknown-prekey"): a prekey id is unknown, or its
            one-time prekey was already used (a replay);
        VerificationError("replayed-initial-message"): a message that used
            no one-time prekey was accepted before;
        VerificationError("replay-set-full"): too many such messages for this
            signed prekey; rotate it (see ``PrekeyStore.rotation_due``);
        CryptoError: the message does not authenticate (forged, corrupted,
            or meant for someone else);
        DecodeError: the message is malformed, or its header-encryption
            flag differs from ``header_encryption``.

    On any failure the store is unchanged.
    """
    if store.identity.public != identity.public:
        raise LocalProtocolError("the prekey store belongs to another identity")
    if not is_canonical_x25519(message.ephemeral_key):
        raise DecodeError("non-canonical ephemeral key")
    suite = store.suite
    storage = store.storage
    spk_record = storage.get_signed_prekey(message.signed_prekey_id)
    kem_record = storage.get_kem_prekey(message.kem_prekey_id)
    opk_record = None
    if message.one_time_prekey_id is not None:
        opk_record = storage.get_one_time_prekey(message.one_time_prekey_id)
        if opk_record is None:
            raise VerificationError("unknown-prekey", "one-time prekey")
    if spk_record is None:
        raise VerificationError("unknown-prekey", "signed prekey")
    if kem_record is None:
        raise VerificationError("unknown-prekey", "KEM prekey")

    replay_digest = None
    if opk_record is None and kem_record.last_resort:
        replay_digest = initial_message_digest(message.ephemeral_key, message.kem_ciphertext)
        if storage.has_initial_message(replay_digest):
            raise VerificationError("replayed-initial-message")
        if storage.initial_message_count(spk_record.prekey_id) >= (
            MAX_INITIAL_MESSAGES_PER_SIGNED_PREKEY
        ):
            raise VerificationError("replay-set-full", "rotate the signed prekey")

    initiator = message.initiator_identity
    spk = suite.dh.from_private(spk_record.private_key)
    dh1 = spk.exchange(initiator.agreement_key)
    dh2 = identity.agreement.exchange(message.ephemeral_key)
    dh3 = spk.exchange(message.ephemeral_key)
    dh4 = None
    if opk_record is not None:
        dh4 = suite.dh.from_private(opk_record.private_key).exchange(message.ephemeral_key)
    kem_ss = suite.kem.from_seed(kem_record.seed).decapsulate(message.kem_ciphertext)
    sk = derive_pqxdh_secret(dh1, dh2, dh3, dh4, kem_ss)
    ad = pqxdh_associated_data(initiator, identity.public)
    session = RatchetSession.responder(
        sk, ad, spk, header_encryption=header_encryption, dh=suite.dh
    )
    try:
        plaintext = session.decrypt(message.ratchet_message, rng)
    except DecodeError:
        raise
    except ChhayaError:
        # A wrong key shows up as a failed tag, or as a header whose numbers
        # trip the ratchet's limits: to the caller it is one thing.
        raise CryptoError() from None

    committed = storage.commit_initial_message(
        signed_prekey_id=spk_record.prekey_id,
        one_time_prekey_id=opk_record.prekey_id if opk_record is not None else None,
        one_time_kem_prekey_id=None if kem_record.last_resort else kem_record.prekey_id,
        replay_digest=replay_digest,
    )
    if not committed:
        # Another copy of this message was accepted in between.
        raise VerificationError("replayed-initial-message")
    return session, plaintext, initiator
