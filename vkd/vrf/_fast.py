"""The fast path: the same RFC 9381 steps, with the group operations in libsodium.

libsodium's scalar multiplication (through pynacl's bindings) only accepts
canonical points of the prime-order subgroup, and refuses a zero scalar or
an identity result. RFC 9381 asks for more than that, so:

- hash-to-curve decodes arbitrary hash output as a point and multiplies it by
  the cofactor; that runs in the reference arithmetic, and only the result,
  which is in the prime-order subgroup, goes to libsodium;
- a proof's Gamma may be any curve point, of small or mixed order included
  (the RFC only asks that it decode), and so may a public key that is not of
  small order. Those rare, never honest, points are multiplied by the
  reference arithmetic, so that both paths give the same answer on every
  input. Additions and subtractions take any curve point in libsodium;
- a zero scalar (s = 0, c = 0, k = 0) gives the identity without a call.

Secret-dependent work (x*B, x*H, k*B, k*H and s = k + c*x) stays in
libsodium, which is constant time; the Python parts see only the public
key, alpha and the proof. Try-and-increment takes time that depends on
alpha, as RFC 9381 warns for the TAI suites; here alpha is the handle the
asking client named, so the timing tells it nothing new.

A verifier fails closed: every libsodium refusal either has an exact
fallback or is a rejection, and only VerificationError leaves ``verify``.
"""

from __future__ import annotations

from nacl.bindings import (
    crypto_core_ed25519_add,
    crypto_core_ed25519_is_valid_point,
    crypto_core_ed25519_scalar_add,
    crypto_core_ed25519_scalar_mul,
    crypto_core_ed25519_scalar_reduce,
    crypto_core_ed25519_sub,
    crypto_scalarmult_ed25519_base_noclamp,
    crypto_scalarmult_ed25519_noclamp,
)
from nacl.exceptions import RuntimeError as SodiumRuntimeError

from chhaya import CryptoError, DecodeError, VerificationError
from chhaya.safety import ct_equal

from . import _reference as ref
from ._api import VRF_PUBLIC_KEY_SIZE, Vrf
from ._suite import (
    C_LEN,
    COFACTOR,
    IDENTITY_ENCODING,
    Q_LEN,
    ProveTranscript,
    challenge,
    encode_to_curve_candidate,
    expand_secret_key,
    nonce_string,
    output_from,
    split_proof_untrusted,
)

__all__ = ["FastVrf"]

_ZERO_SCALAR = bytes(Q_LEN)
_COFACTOR_SCALAR = COFACTOR.to_bytes(Q_LEN, "little")
_C_PADDING = bytes(Q_LEN - C_LEN)


def _base_mult(n: bytes) -> bytes:
    """``n * B`` for a scalar n reduced mod q, or the clamped secret scalar."""
    if n == _ZERO_SCALAR:
        return IDENTITY_ENCODING
    return crypto_scalarmult_ed25519_base_noclamp(n)


def _mult_subgroup(n: bytes, point: bytes) -> bytes:
    """``n * point`` for a point known to be in the prime-order subgroup, not O.

    With n reduced mod q (or the clamped secret scalar, never 0 mod q) and
    nonzero, the result is never the identity, so libsodium cannot refuse.
    """
    if n == _ZERO_SCALAR:
        return IDENTITY_ENCODING
    return crypto_scalarmult_ed25519_noclamp(n, point)


def _mult(n: bytes, point: bytes) -> bytes | None:
    """``n * point`` for any encoding; None if it is not a point (RFC 8032 5.1.3).

    ``n`` is reduced mod q. libsodium takes canonical points of the
    prime-order subgroup; it refuses every other valid point (small or mixed
    order), which the reference arithmetic then handles exactly.
    """
    if n != _ZERO_SCALAR:
        try:
            return crypto_scalarmult_ed25519_noclamp(n, point)
        except SodiumRuntimeError:
            pass  # not canonical, not on the curve, or not in the subgroup
    elif crypto_core_ed25519_is_valid_point(point):
        return IDENTITY_ENCODING
    decoded = ref.decode_point(point)
    if decoded is None:
        return None
    return ref.encode_point(ref.scalar_mult(int.from_bytes(n, "little"), decoded))


def _key_is_valid(public_key: bytes) -> bool:
    """ECVRF_validate_key (RFC 9381 5.4.5); libsodium settles the usual case."""
    if crypto_core_ed25519_is_valid_point(public_key):
        return True
    return ref.validate_key(public_key) is not None


_P = 2**255 - 19
_Y_MASK = (1 << 255) - 1


def _encode_to_curve(salt: bytes, alpha: bytes) -> bytes | None:
    """point_to_string(H), H in the prime-order subgroup; see ref.encode_to_curve.

    libsodium's point addition decodes any point on the curve (it does not
    insist on the prime-order subgroup), so three doublings both decode a
    candidate and clear its cofactor, about four times faster than decoding
    in Python. What RFC 8032 decoding rejects and libsodium does not check
    (y >= p; x = 0 with the sign bit set) is rejected here first; the tests
    check this against the reference on random inputs.
    """
    for ctr in range(256):
        candidate = encode_to_curve_candidate(salt, alpha, ctr)
        y = int.from_bytes(candidate, "little") & _Y_MASK
        if y >= _P or (candidate[31] & 0x80 and y in (1, _P - 1)):
            continue
        try:
            p2 = crypto_core_ed25519_add(candidate, candidate)
        except SodiumRuntimeError:
            continue  # not on the curve
        p4 = crypto_core_ed25519_add(p2, p2)
        h = crypto_core_ed25519_add(p4, p4)
        if h != IDENTITY_ENCODING:
            return h
    return None


class FastVrf(Vrf):
    """ECVRF-EDWARDS25519-SHA512-TAI on libsodium's edwards25519 operations."""

    name = "ecvrf-edwards25519-sha512-tai/libsodium"

    def public_key(self, secret_key: bytes) -> bytes:
        x_string, _ = expand_secret_key(secret_key)
        return _base_mult(x_string)

    def prove(self, secret_key: bytes, alpha: bytes) -> bytes:
        return self.prove_transcript(secret_key, alpha).proof()

    def prove_transcript(self, secret_key: bytes, alpha: bytes) -> ProveTranscript:
        """ECVRF_prove (RFC 9381 5.1) with every intermediate value."""
        x_string, nonce_key = expand_secret_key(secret_key)
        public_key = _base_mult(x_string)
        h = _encode_to_curve(public_key, alpha)
        if h is None:
            raise CryptoError()
        gamma = _mult_subgroup(x_string, h)
        k_string = nonce_string(nonce_key, h)
        k = crypto_core_ed25519_scalar_reduce(k_string)
        u = _base_mult(k)
        v = _mult_subgroup(k, h)
        c = challenge(public_key, h, gamma, u, v)
        cx = crypto_core_ed25519_scalar_mul(c + _C_PADDING, x_string)
        s = crypto_core_ed25519_scalar_add(k, cx)
        return ProveTranscript(public_key, h, gamma, k_string, u, v, c, s)

    def prove_with_output(self, secret_key: bytes, alpha: bytes) -> tuple[bytes, bytes]:
        """Gamma is known to be in the subgroup here: no decoding needed."""
        t = self.prove_transcript(secret_key, alpha)
        return t.proof(), output_from(_mult_subgroup(_COFACTOR_SCALAR, t.gamma))

    def verify(self, public_key: bytes, alpha: bytes, proof: bytes) -> bytes:
        if len(public_key) != VRF_PUBLIC_KEY_SIZE:
            raise VerificationError("vrf", "public key has the wrong length")
        if not _key_is_valid(public_key):
            raise VerificationError("vrf", "public key is not a curve point of large order")
        try:
            parts = split_proof_untrusted(proof)
        except DecodeError as exc:
            raise VerificationError("vrf", str(exc)) from None
        cofactor_gamma = _mult(_COFACTOR_SCALAR, parts.gamma)
        if cofactor_gamma is None:
            raise VerificationError("vrf", "VRF proof: Gamma is not a curve point")
        h = _encode_to_curve(public_key, alpha)
        if h is None:
            raise VerificationError("vrf", "encode_to_curve found no point")
        c = parts.c + _C_PADDING
        c_y = _mult(c, public_key)
        c_gamma = _mult(c, parts.gamma)
        if c_y is None or c_gamma is None:  # unreachable: both decoded above
            raise VerificationError("vrf", "point decoding disagreed")
        u = crypto_core_ed25519_sub(_base_mult(parts.s), c_y)
        v = crypto_core_ed25519_sub(_mult_subgroup(parts.s, h), c_gamma)
        if not ct_equal(challenge(public_key, h, parts.gamma, u, v), parts.c):
            raise VerificationError("vrf", "challenge does not match")
        return output_from(cofactor_gamma)

    def proof_to_hash(self, proof: bytes) -> bytes:
        parts = split_proof_untrusted(proof)
        cofactor_gamma = _mult(_COFACTOR_SCALAR, parts.gamma)
        if cofactor_gamma is None:
            raise DecodeError("VRF proof: Gamma is not a curve point")
        return output_from(cofactor_gamma)
