"""Signed presence and prekey records on py-libp2p's Kademlia DHT.

A record lives under ``/chhaya/<kind>/<hex SHA-256 of the identity signing
key>`` and is a :class:`SignedRecord`::

    "CDR1" || identity signing key (32) || sequence u64 || expires_ms u64
           || var32(payload, <= 16 KiB) || Ed25519 signature (64)

The signature covers ``"chhaya/dht/v1/record" || var16(DHT key) || every
field before the signature``, so a record cannot be replayed under another
key (another identity's or another kind's).

py-libp2p does not authenticate DHT records and accepts keys of unknown
namespaces (``libp2p-notes.md`` trap 6). :class:`ChhayaDht` therefore runs
``KadDHT`` with ``strict_validation=True``: a key whose namespace has no
registered validator is refused on ``put_value``, on an inbound
``PUT_VALUE`` and on records fetched by ``get_value``. The ``chhaya``
namespace gets :class:`RecordValidator`, which checks the key layout, the
key's hash against the record's identity key, the signature and the expiry.
The standard ``pk`` and ``ipns`` validators stay registered, so other
libp2p implementations can still use the DHT for those.

``get_value`` returns a locally stored value without validating it, so
:meth:`ChhayaDht.get_record` validates every fetched record again.
"""

from __future__ import annotations

import enum
import hashlib
import logging
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from types import TracebackType
from typing import Final

import trio
from libp2p.abc import IHost
from libp2p.kad_dht.kad_dht import DHTMode, KadDHT
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.records.validator import Validator
from libp2p.tools.anyio_service import background_trio_service
from multiaddr import Multiaddr

from chhaya import ChhayaError, CryptoError, DecodeError, LocalProtocolError, VerificationError
from chhaya.crypto import FAST, CryptoSuite
from chhaya.identity import PrivateIdentity
from chhaya.wire import Reader, Writer

from ..clock import wall_ms

__all__ = [
    "DHT_NAMESPACE",
    "MAX_DHT_PAYLOAD_SIZE",
    "MAX_SIGNED_RECORD_SIZE",
    "SIGNED_RECORD_MAGIC",
    "ChhayaDht",
    "RecordKind",
    "RecordValidator",
    "SignedRecord",
    "dht_record_key",
]

log = logging.getLogger("chhaya.p2p.dht")

DHT_NAMESPACE: Final = "chhaya"
SIGNED_RECORD_MAGIC: Final = b"CDR1"
MAX_DHT_PAYLOAD_SIZE: Final = 16 * 1024
_KEY_SIZE: Final = 32
_SIGNATURE_SIZE: Final = 64
_FIXED_SIZE: Final = 4 + _KEY_SIZE + 8 + 8 + 4 + _SIGNATURE_SIZE
MAX_SIGNED_RECORD_SIZE: Final = _FIXED_SIZE + MAX_DHT_PAYLOAD_SIZE
_SIGNATURE_DOMAIN: Final = b"chhaya/dht/v1/record"
_MAX_KEY_LENGTH: Final = 256
_U64_MAX: Final = 2**64 - 1

#: The logger that reports a peer's normal end of stream as a failure (trap 7).
_KAD_LOGGER: Final = "libp2p.kad_dht.kad_dht"
_EOF_MESSAGE: Final = "Failed to read DHT message from stream: %s"

#: Bound on connecting to one bootstrap peer.
BOOTSTRAP_DIAL_TIMEOUT_S: Final = 10.0


class RecordKind(enum.StrEnum):
    """What a record holds; the second segment of its DHT key."""

    PRESENCE = "presence"
    PREKEYS = "prekeys"


def dht_record_key(identity_key: bytes, kind: RecordKind) -> str:
    """``/chhaya/<kind>/<hex SHA-256(identity_key)>``."""
    if len(identity_key) != _KEY_SIZE:
        raise ValueError("identity signing key must be 32 bytes")
    return f"/{DHT_NAMESPACE}/{RecordKind(kind).value}/{hashlib.sha256(identity_key).hexdigest()}"


def _parse_key(key: str) -> tuple[RecordKind, bytes]:
    """The kind and identity-key hash a ``/chhaya/`` key names; VerificationError if malformed."""
    parts = key.split("/")
    if len(key) > _MAX_KEY_LENGTH or len(parts) != 4 or parts[0] != "" or parts[1] != DHT_NAMESPACE:
        raise VerificationError("dht_key", "not a /chhaya/<kind>/<hash> key")
    try:
        kind = RecordKind(parts[2])
    except ValueError:
        raise VerificationError("dht_key", "unknown record kind") from None
    digest = parts[3]
    if len(digest) != 64 or digest != digest.lower():
        raise VerificationError("dht_key", "malformed identity hash")
    try:
        return kind, bytes.fromhex(digest)
    except ValueError:
        raise VerificationError("dht_key", "malformed identity hash") from None


@dataclass(frozen=True)
class SignedRecord:
    """A DHT value signed by a Chhaya identity key."""

    identity_key: bytes
    sequence: int
    expires_ms: int
    payload: bytes
    signature: bytes

    def _body(self) -> bytes:
        return (
            Writer()
            .raw(SIGNED_RECORD_MAGIC)
            .fixed(self.identity_key, _KEY_SIZE)
            .u64(self.sequence)
            .u64(self.expires_ms)
            .var32(self.payload, MAX_DHT_PAYLOAD_SIZE)
            .getvalue()
        )

    @staticmethod
    def _signed_message(key: str, body: bytes) -> bytes:
        return (
            Writer()
            .raw(_SIGNATURE_DOMAIN)
            .var16(key.encode(), _MAX_KEY_LENGTH)
            .raw(body)
            .getvalue()
        )

    @classmethod
    def sign(
        cls,
        identity: PrivateIdentity,
        kind: RecordKind,
        payload: bytes,
        sequence: int,
        expires_ms: int,
    ) -> SignedRecord:
        """A record for ``identity`` under its ``kind`` key, signed with its identity key."""
        if not 0 <= sequence <= _U64_MAX or not 0 <= expires_ms <= _U64_MAX:
            raise ValueError("sequence and expires_ms must fit in u64")
        if len(payload) > MAX_DHT_PAYLOAD_SIZE:
            raise ValueError(f"payload larger than {MAX_DHT_PAYLOAD_SIZE} bytes")
        identity_key = identity.public.signing_key
        unsigned = cls(identity_key, sequence, expires_ms, bytes(payload), b"\x00" * 64)
        key = dht_record_key(identity_key, kind)
        signature = identity.sign(cls._signed_message(key, unsigned._body()))
        return cls(identity_key, sequence, expires_ms, bytes(payload), signature)

    def encode(self) -> bytes:
        return Writer().raw(self._body()).fixed(self.signature, _SIGNATURE_SIZE).getvalue()

    @classmethod
    def decode_untrusted(cls, data: bytes) -> SignedRecord:
        """Parse peer bytes; raises only :class:`DecodeError`. Checks nothing else."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise DecodeError("input is not bytes")
        if len(data) > MAX_SIGNED_RECORD_SIZE:
            raise DecodeError(f"signed record too long ({len(data)} bytes)")
        r = Reader(bytes(data))
        r.expect(SIGNED_RECORD_MAGIC, "signed record magic")
        identity_key = r.fixed(_KEY_SIZE, "identity key")
        sequence = r.u64("sequence")
        expires_ms = r.u64("expires_ms")
        payload = r.var32(MAX_DHT_PAYLOAD_SIZE, "payload")
        signature = r.fixed(_SIGNATURE_SIZE, "signature")
        r.finish()
        return cls(identity_key, sequence, expires_ms, payload, signature)

    def verify(self, key: str, now_ms: int, suite: CryptoSuite = FAST) -> None:
        """Check this record stored under ``key`` at ``now_ms``; VerificationError if not."""
        _, digest = _parse_key(key)
        if hashlib.sha256(self.identity_key).digest() != digest:
            raise VerificationError("dht_identity", "key names another identity")
        if self.expires_ms <= now_ms:
            raise VerificationError("dht_expired", "record has expired")
        message = self._signed_message(key, self._body())
        try:
            suite.sig.verify(self.identity_key, message, self.signature)
        except CryptoError:
            raise VerificationError("dht_signature", "bad record signature") from None


class RecordValidator(Validator):
    """py-libp2p validator for the ``chhaya`` namespace.

    ``clock`` returns the current time in Unix milliseconds.
    """

    def __init__(self, clock: Callable[[], int] = wall_ms, suite: CryptoSuite = FAST):
        self._clock = clock
        self._suite = suite

    def check(self, key: str, value: bytes) -> SignedRecord:
        """Decode and verify; raises DecodeError or VerificationError."""
        record = SignedRecord.decode_untrusted(value)
        record.verify(key, self._clock(), self._suite)
        return record

    def validate(self, key: str, value: bytes) -> None:
        self.check(key, value)

    def select(self, key: str, values: list[bytes]) -> int:
        """Index of the valid record with the highest sequence (ties: larger encoding).

        Raises VerificationError if no value is valid.
        """
        best: tuple[int, bytes] | None = None
        best_index = -1
        for index, value in enumerate(values):
            try:
                record = self.check(key, value)
            except ChhayaError:
                continue
            rank = (record.sequence, bytes(value))
            if best is None or rank > best:
                best, best_index = rank, index
        if best_index < 0:
            raise VerificationError("dht_select", "no valid record to select")
        return best_index


class _DropEndOfStream(logging.Filter):
    """Drop py-libp2p's warning for a peer closing its DHT stream normally."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg != _EOF_MESSAGE or not isinstance(record.args, tuple):
            return True
        return not (record.args and isinstance(record.args[0], EOFError))


_EOF_FILTER: Final = _DropEndOfStream()


def install_dht_log_filter() -> None:
    """Filter the end-of-stream warnings of the Kademlia handler (idempotent)."""
    logger = logging.getLogger(_KAD_LOGGER)
    if _EOF_FILTER not in logger.filters:
        logger.addFilter(_EOF_FILTER)


class _ServerOnlyKadDHT(KadDHT):
    """KadDHT that keeps DHT clients out of its routing table.

    py-libp2p 0.8.1 adds every peer that opens a DHT stream to the routing
    table, skipping its own server-mode check ("a peer that opens a KAD
    stream must be a server"). Clients open streams too, so their addresses
    would then be handed to everyone in FIND_NODE answers, and peers would
    dial nodes that chose not to be dialled. The spec: add a peer only if it
    serves the DHT protocol (known from identify).
    """

    async def add_peer(self, peer_id: ID, *, skip_server_mode_check: bool = False) -> bool:
        return bool(await super().add_peer(peer_id, skip_server_mode_check=False))


class ChhayaDht:
    """A Kademlia DHT server on a running host, for signed ``/chhaya/`` records.

    Use as ``async with ChhayaDht(host, bootstrap=[...]) as dht:``. The
    validator refuses unsigned, forged, misplaced and expired records on every
    store (local and inbound) and every fetch.
    """

    def __init__(
        self,
        host: IHost,
        *,
        bootstrap: Sequence[str] = (),
        clock: Callable[[], int] = wall_ms,
        suite: CryptoSuite = FAST,
        server: bool = True,
    ) -> None:
        """``server=False`` runs the DHT in client mode: the node queries and
        stores records at others but serves none and is not put in their
        routing tables, so DHT walks never lead other peers to dial it (what
        a node that should be reached only through a relay wants)."""
        self._host = host
        self._bootstrap = list(bootstrap)
        self.validator = RecordValidator(clock, suite)
        mode = DHTMode.SERVER if server else DHTMode.CLIENT
        self.kad = _ServerOnlyKadDHT(host, mode, strict_validation=True)
        self.kad.register_validator(DHT_NAMESPACE, self.validator)
        self._stack: AsyncExitStack | None = None

    async def __aenter__(self) -> ChhayaDht:
        if self._stack is not None:
            raise LocalProtocolError("ChhayaDht is already running")
        install_dht_log_filter()
        async with AsyncExitStack() as stack:
            await stack.enter_async_context(background_trio_service(self.kad))
            for address in self._bootstrap:
                await self.add_bootstrap_peer(address)
            self._stack = stack.pop_all()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        stack, self._stack = self._stack, None
        if stack is None:
            return False
        return bool(await stack.__aexit__(exc_type, exc, tb))

    async def add_bootstrap_peer(self, address: str) -> bool:
        """Connect to ``address`` (a multiaddr with /p2p/) and add it to the routing table.

        Returns False (and logs) if the peer cannot be reached.
        """
        info = info_from_p2p_addr(Multiaddr(address))
        try:
            with trio.fail_after(BOOTSTRAP_DIAL_TIMEOUT_S):
                await self._host.connect(info)
        except Exception as exc:  # py-libp2p and trio raise several unrelated types
            log.warning("DHT bootstrap peer %s unreachable: %s", info.peer_id, exc)
            return False
        return await self.kad.routing_table.add_peer(info)

    @property
    def routing_peers(self) -> frozenset[ID]:
        """Peers in the Kademlia routing table."""
        return frozenset(self.kad.routing_table.get_peer_ids())

    async def put_record(
        self,
        identity: PrivateIdentity,
        kind: RecordKind,
        payload: bytes,
        sequence: int,
        expires_ms: int,
    ) -> SignedRecord:
        """Sign a record for ``identity`` and store it locally and at the closest peers.

        Raises :class:`~chhaya.VerificationError` if our own validator refuses
        it (for example, already expired), and :class:`~chhaya.LocalProtocolError`
        if we already hold a record with a higher sequence. py-libp2p does not
        report how many peers stored it (trap 6).
        """
        record = SignedRecord.sign(identity, kind, payload, sequence, expires_ms)
        key = dht_record_key(record.identity_key, kind)
        try:
            await self.kad.put_value(key, record.encode())
        except ValueError as exc:  # "Refusing to replace newer value with the older one"
            raise LocalProtocolError(f"DHT refused the record: {exc}") from None
        return record

    async def get_record(self, identity_key: bytes, kind: RecordKind) -> SignedRecord | None:
        """The best valid record for ``identity_key`` and ``kind``, or None.

        The record is validated again here: py-libp2p returns a locally
        stored value without validation, and it may have expired since.
        """
        key = dht_record_key(identity_key, kind)
        for _ in range(2):
            value = await self.kad.get_value(key)
            if value is None:
                return None
            try:
                return self.validator.check(key, value)
            except ChhayaError as exc:
                log.info("DHT record under %s refused on fetch: %s", key, exc)
                # Only a stale local copy can reach here; drop it and ask the network.
                self.kad.value_store.remove(key.encode())
        return None
