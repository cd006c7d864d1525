"""``/chhaya/vkd/register/1.0.0``: a user asks the directory to bind a handle.

One request per stream, framed like ``/chhaya/vkd/1.0.0``::

    frame    = length u32 || message
    request  = "CRG1" || handle var16 (<= MAX_HANDLE_LEN) || IdentityBundle var16
               || requested_ms u64 || Ed25519 signature (64)
    response = "CRR1" || status u8 (0 queued, 1 refused)

The signature is made with the bundle's identity signing key over::

    "chhaya/vkd/register/v1" || directory id (32) || every request byte before it

so a registration names the directory it is for and cannot be replayed to
another one. The directory accepts it only when the signature verifies, the
bundle is unexpired and well formed, ``requested_ms`` is within
:data:`MAX_CLOCK_SKEW_MS` of its clock, the libp2p peer that sent it is one
of the bundle's devices (so a node can only register identities it runs),
and the handle is free or already bound to the same identity key (first
come, first served; a key change needs the old key, which is out of scope
here). An accepted registration is queued for the next epoch; it becomes
visible only through a lookup proof of a certified epoch, so the client
never trusts this answer, only :func:`vkd.verify_vkd_proof`.

A refusal says nothing about why. A malformed request gets a stream reset.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import trio
from libp2p.abc import IHost
from libp2p.custom_types import TProtocol
from libp2p.exceptions import BaseLibp2pError
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo

from chhaya import (
    ChhayaError,
    CryptoError,
    DecodeError,
    LocalProtocolError,
    TransportError,
    VerificationError,
)
from chhaya.crypto import FAST, CryptoSuite
from chhaya.identity import PrivateIdentity
from chhaya.wire import Reader, Writer
from vkd import MAX_HANDLE_LEN, IdentityBundle, valid_handle

from ._channel_protocol import _peer_info
from ._framing import STREAM_ERRORS, frame, receive_frame
from ._service import StreamService
from ._stream import Libp2pStream

__all__ = [
    "MAX_CLOCK_SKEW_MS",
    "MAX_REGISTRATION_SIZE",
    "REGISTER_PROTOCOL",
    "Registration",
    "RegistrationService",
    "RegistrationSink",
    "register_handle",
]

log = logging.getLogger("chhaya.p2p.register")

REGISTER_PROTOCOL: Final = TProtocol("/chhaya/vkd/register/1.0.0")

#: A registration older or newer than this (by the directory's clock) is refused.
MAX_CLOCK_SKEW_MS: Final = 5 * 60_000
#: Bound on an encoded identity bundle inside a registration.
MAX_BUNDLE_SIZE: Final = 8 * 1024
_SIGNATURE_SIZE: Final = 64
_DIRECTORY_ID_SIZE: Final = 32
MAX_REGISTRATION_SIZE: Final = 4 + 2 + MAX_HANDLE_LEN + 2 + MAX_BUNDLE_SIZE + 8 + _SIGNATURE_SIZE
_RESPONSE_SIZE: Final = 5
_REQUEST_MAGIC: Final = b"CRG1"
_RESPONSE_MAGIC: Final = b"CRR1"
_CONTEXT: Final = b"chhaya/vkd/register/v1"
_QUEUED: Final = 0
_REFUSED: Final = 1
REQUEST_TIMEOUT_S: Final = 10.0
MAX_REQUESTS: Final = 32
LINGER_S: Final = 2.0

_DIAL_ERRORS = (BaseLibp2pError, OSError, ValueError, trio.BrokenResourceError)


@dataclass(frozen=True, slots=True)
class Registration:
    """A signed request to bind ``handle`` to ``bundle``."""

    handle: str
    bundle: IdentityBundle
    requested_ms: int
    signature: bytes

    def _unsigned(self) -> bytes:
        if not valid_handle(self.handle):
            raise LocalProtocolError(f"invalid handle {self.handle!r}")
        return (
            Writer()
            .raw(_REQUEST_MAGIC)
            .utf8(self.handle, MAX_HANDLE_LEN)
            .var16(self.bundle.encode(), MAX_BUNDLE_SIZE)
            .u64(self.requested_ms)
            .getvalue()
        )

    @staticmethod
    def _signed_message(directory_id: bytes, unsigned: bytes) -> bytes:
        if len(directory_id) != _DIRECTORY_ID_SIZE:
            raise LocalProtocolError("directory id must be 32 bytes")
        return _CONTEXT + directory_id + unsigned

    @classmethod
    def sign(
        cls,
        identity: PrivateIdentity,
        directory_id: bytes,
        handle: str,
        bundle: IdentityBundle,
        now_ms: int,
    ) -> Registration:
        if bundle.identity != identity.public:
            raise LocalProtocolError("the bundle belongs to another identity")
        unsigned = cls(handle, bundle, now_ms, b"")._unsigned()
        signature = identity.sign(cls._signed_message(directory_id, unsigned))
        return cls(handle, bundle, now_ms, signature)

    def encode(self) -> bytes:
        return self._unsigned() + self.signature

    @classmethod
    def decode_untrusted(cls, data: bytes) -> Registration:
        """Parse peer bytes; raises only :class:`DecodeError`. Checks no signature."""
        if len(data) > MAX_REGISTRATION_SIZE:
            raise DecodeError("registration too large")
        r = Reader(data)
        r.expect(_REQUEST_MAGIC, "registration magic")
        handle = r.utf8(MAX_HANDLE_LEN, "handle")
        if not valid_handle(handle):
            raise DecodeError("invalid handle")
        bundle = IdentityBundle.decode_untrusted(r.var16(MAX_BUNDLE_SIZE, "bundle"))
        requested_ms = r.u64("requested time")
        signature = r.fixed(_SIGNATURE_SIZE, "signature")
        r.finish()
        return cls(handle, bundle, requested_ms, signature)

    def verify(self, directory_id: bytes, now_ms: int, suite: CryptoSuite = FAST) -> None:
        """Signature, freshness, bundle expiry and prekeys; VerificationError otherwise."""
        message = self._signed_message(directory_id, self._unsigned())
        try:
            suite.sig.verify(self.bundle.identity.signing_key, message, self.signature)
        except CryptoError:
            raise VerificationError("registration-signature", "bad signature") from None
        if abs(now_ms - self.requested_ms) > MAX_CLOCK_SKEW_MS:
            raise VerificationError("registration-time", "registration outside the clock bound")
        self.bundle.check(now_ms)


def _encode_response(status: int) -> bytes:
    return _RESPONSE_MAGIC + bytes((status,))


def decode_response_untrusted(data: bytes) -> bool:
    """True if the directory queued the registration; raises only DecodeError."""
    r = Reader(data)
    r.expect(_RESPONSE_MAGIC, "registration response magic")
    status = r.u8("registration status")
    r.finish()
    if status not in (_QUEUED, _REFUSED):
        raise DecodeError("unknown registration status")
    return status == _QUEUED


#: ``sink(registration, peer_id)`` queues a verified registration, or raises
#: ChhayaError to refuse it (for example, the handle belongs to another key).
RegistrationSink = Callable[[Registration, ID], None]


class RegistrationService(StreamService):
    """Serves ``/chhaya/vkd/register/1.0.0`` for a directory."""

    protocol = REGISTER_PROTOCOL

    def __init__(
        self,
        host: IHost,
        directory_id: bytes,
        sink: RegistrationSink,
        clock: Callable[[], int],
        *,
        max_requests: int = MAX_REQUESTS,
        request_timeout_s: float = REQUEST_TIMEOUT_S,
    ) -> None:
        super().__init__(host, max_requests)
        self._directory_id = directory_id
        self._sink = sink
        self._clock = clock
        self._request_timeout_s = request_timeout_s
        #: Registrations queued.
        self.queued = 0
        #: Well-formed registrations refused.
        self.refused = 0

    async def _serve(self, stream: Libp2pStream) -> None:
        peer_id = stream.remote_peer_id
        try:
            with trio.fail_after(self._request_timeout_s):
                raw = await receive_frame(stream, MAX_REGISTRATION_SIZE)
            registration = Registration.decode_untrusted(raw)
        except (DecodeError, trio.TooSlowError, *STREAM_ERRORS) as exc:
            self.rejected += 1
            log.info("dropped a registration from %s: %s", peer_id, str(exc) or type(exc))
            await stream.reset()
            return
        status = self._decide(registration, peer_id)
        try:
            await stream.send_all(frame(_encode_response(status)))
            await stream.send_eof()
        except STREAM_ERRORS as exc:
            log.info("could not answer %s: %s", peer_id, exc)
            return
        await stream.aclose_lingering(LINGER_S)

    def _decide(self, registration: Registration, peer_id: ID) -> int:
        try:
            registration.verify(self._directory_id, self._clock())
            if peer_id.to_bytes() not in registration.bundle.devices:
                raise VerificationError("registration-device", "sender is not a listed device")
            self._sink(registration, peer_id)
        except ChhayaError as exc:
            log.info("refused registration of %r from %s: %s", registration.handle, peer_id, exc)
            self.refused += 1
            return _REFUSED
        except Exception:  # a failing sink must not take the service down
            log.exception("registration sink failed for %r", registration.handle)
            self.refused += 1
            return _REFUSED
        self.queued += 1
        return _QUEUED


async def register_handle(
    host: IHost,
    directory: PeerInfo | ID | str,
    registration: Registration,
    timeout_s: float = REQUEST_TIMEOUT_S,
) -> bool:
    """Send ``registration``; True if the directory queued it.

    The answer is only a hint: the binding counts once a verified lookup
    proof shows it. Raises TransportError if the directory cannot be reached
    or answers garbage.
    """
    info = _peer_info(directory)
    stream: Libp2pStream | None = None
    try:
        with trio.fail_after(timeout_s):
            try:
                await host.connect(info)
                stream = Libp2pStream(await host.new_stream(info.peer_id, [REGISTER_PROTOCOL]))
                await stream.send_all(frame(registration.encode()))
                await stream.send_eof()
                raw = await receive_frame(stream, _RESPONSE_SIZE)
                queued = decode_response_untrusted(raw)
            except (*_DIAL_ERRORS, *STREAM_ERRORS) as exc:
                raise TransportError(f"cannot register with {info.peer_id}: {exc}") from None
            except DecodeError as exc:
                raise TransportError(f"directory {info.peer_id} answered garbage: {exc}") from None
    except trio.TooSlowError:
        raise TransportError(
            f"no answer from directory {info.peer_id} in {timeout_s:g} s"
        ) from None
    except BaseException:
        if stream is not None:
            await stream.reset()
        raise
    await stream.aclose_lingering(LINGER_S, max_discard=0)
    return queued
