"""Key files: plain and sealed encodings, corruption, truncation, Argon2 bounds."""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Iterator
from unittest import mock

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import chhaya.identity._keyfile as keyfile_module
from chhaya import DecodeError
from chhaya.crypto import REFERENCE, Argon2Params, sha256
from chhaya.identity import (
    MAX_KEY_FILE_SIZE,
    PassphraseRequired,
    PrivateIdentity,
    WrongPassphrase,
    decode_key_file_untrusted,
    encode_key_file,
    key_file_is_sealed_untrusted,
)

from ._helpers import CHEAP, det_rng, identities_st, identity, no_rng

SETTINGS = settings(deadline=None, max_examples=200)
ARGON2 = settings(deadline=None, max_examples=25)

MAGIC = b"CHHYKEY1"
PLAIN_SIZE = 8 + 1 + 128 + 16
SEALED_SIZE = 8 + 1 + 4 + 4 + 1 + 16 + 12 + 128 + 16
# Offsets in a sealed file.
TIME_AT, MEMORY_AT, LANES_AT, SALT_AT, NONCE_AT, SEALED_AT = 9, 13, 17, 18, 34, 46
PASSPHRASE = b"correct horse battery staple"


def plain_file(ident: PrivateIdentity | None = None) -> bytes:
    return encode_key_file(ident or identity(b"alice"), no_rng)


def sealed_file(
    ident: PrivateIdentity | None = None,
    passphrase: bytes = PASSPHRASE,
    params: Argon2Params = CHEAP,
    seed: bytes = b"seal",
) -> bytes:
    return encode_key_file(ident or identity(b"alice"), det_rng(seed), passphrase, params)


def sealed_header(time_cost: int, memory_kib: int, lanes: int) -> bytes:
    return MAGIC + b"\x01" + struct.pack(">IIB", time_cost, memory_kib, lanes)


def _argon2_must_not_run(*args: object, **kwargs: object) -> bytes:
    raise AssertionError("Argon2 ran on a file that should have been refused first")


@contextlib.contextmanager
def argon2_forbidden() -> Iterator[None]:
    with mock.patch.object(keyfile_module, "argon2id", _argon2_must_not_run):
        yield


@contextlib.contextmanager
def argon2_fake() -> Iterator[None]:
    """A fast stand-in, so arbitrary in-bounds parameters cost nothing."""

    def fake(passphrase: bytes, salt: bytes, params: Argon2Params, length: int = 32) -> bytes:
        assert params.in_bounds()
        return sha256(passphrase, salt)[:length]

    with mock.patch.object(keyfile_module, "argon2id", fake):
        yield


# ---------------------------------------------------------------- plain


@given(identities_st)
@SETTINGS
def test_plain_round_trip(ident: PrivateIdentity) -> None:
    data = encode_key_file(ident, no_rng)
    assert len(data) == PLAIN_SIZE
    assert data.startswith(MAGIC + b"\x00")
    assert encode_key_file(ident, no_rng) == data  # deterministic
    assert key_file_is_sealed_untrusted(data) is False
    back = decode_key_file_untrusted(data)
    assert back.secret_bytes() == ident.secret_bytes()
    assert back.public == ident.public
    # A passphrase given for a plain file is simply not needed.
    assert decode_key_file_untrusted(data, b"unused").public == ident.public


def test_plain_decodes_under_the_reference_suite() -> None:
    ident = identity(b"alice")
    back = decode_key_file_untrusted(plain_file(ident), suite=REFERENCE)
    assert back.public == ident.public
    assert back.suite is REFERENCE


@pytest.mark.parametrize("mask", [0x01, 0x80, 0xFF])
def test_plain_flipped_byte_anywhere(mask: int) -> None:
    data = plain_file()
    for pos in range(len(data)):
        corrupt = bytearray(data)
        corrupt[pos] ^= mask
        with pytest.raises(DecodeError):
            decode_key_file_untrusted(bytes(corrupt))


@given(st.integers(0, PLAIN_SIZE - 1), st.integers(1, 255))
@SETTINGS
def test_plain_flipped_byte_hypothesis(pos: int, mask: int) -> None:
    corrupt = bytearray(plain_file())
    corrupt[pos] ^= mask
    with pytest.raises(DecodeError):
        decode_key_file_untrusted(bytes(corrupt))


def test_plain_checksum_catches_swapped_bytes() -> None:
    data = bytearray(plain_file())
    data[9], data[10] = data[10], data[9]
    assert bytes(data) != plain_file()
    with pytest.raises(DecodeError, match="checksum"):
        decode_key_file_untrusted(bytes(data))


# --------------------------------------------------------------- sealed


@given(identities_st, st.binary(max_size=64), st.binary(min_size=1, max_size=8))
@ARGON2
def test_sealed_round_trip(ident: PrivateIdentity, passphrase: bytes, seed: bytes) -> None:
    data = sealed_file(ident, passphrase, CHEAP, seed)
    assert len(data) == SEALED_SIZE
    assert key_file_is_sealed_untrusted(data) is True
    assert decode_key_file_untrusted(data, passphrase).secret_bytes() == ident.secret_bytes()
    with pytest.raises(PassphraseRequired):
        decode_key_file_untrusted(data)
    with pytest.raises(WrongPassphrase):
        decode_key_file_untrusted(data, passphrase + b"!")


def test_sealed_layout() -> None:
    data = sealed_file(params=Argon2Params(time_cost=2, memory_kib=72, lanes=3))
    assert data[:TIME_AT] == MAGIC + b"\x01"
    assert struct.unpack(">IIB", data[TIME_AT:SALT_AT]) == (2, 72, 3)
    # The secret is not in the file in the clear.
    assert identity(b"alice").secret_bytes()[:16] not in data


def test_sealed_salt_and_nonce_come_from_rng() -> None:
    a = sealed_file(seed=b"one")
    b = sealed_file(seed=b"two")
    assert a[SALT_AT:NONCE_AT] != b[SALT_AT:NONCE_AT]
    assert a[NONCE_AT:SEALED_AT] != b[NONCE_AT:SEALED_AT]
    assert a[SEALED_AT:] != b[SEALED_AT:]
    assert sealed_file(seed=b"one") == a
    for data in (a, b):
        assert decode_key_file_untrusted(data, PASSPHRASE).public == identity(b"alice").public


def test_wrong_passphrase() -> None:
    data = sealed_file()
    for wrong in (b"", b"Correct horse battery staple", PASSPHRASE + b"\x00", PASSPHRASE[:-1]):
        with pytest.raises(WrongPassphrase):
            decode_key_file_untrusted(data, wrong)


def test_empty_passphrase_is_a_passphrase() -> None:
    data = sealed_file(passphrase=b"")
    assert key_file_is_sealed_untrusted(data)
    with pytest.raises(PassphraseRequired):
        decode_key_file_untrusted(data)
    assert decode_key_file_untrusted(data, b"").public == identity(b"alice").public
    with pytest.raises(WrongPassphrase):
        decode_key_file_untrusted(data, b"x")


def test_passphrase_errors_are_decode_errors() -> None:
    assert issubclass(PassphraseRequired, DecodeError)
    assert issubclass(WrongPassphrase, DecodeError)


@pytest.mark.parametrize("mask", [0x01, 0xFF])
def test_sealed_flipped_byte_anywhere(mask: int) -> None:
    data = sealed_file()
    for pos in range(len(data)):
        corrupt = bytearray(data)
        corrupt[pos] ^= mask
        with pytest.raises(DecodeError) as info:
            decode_key_file_untrusted(bytes(corrupt), PASSPHRASE)
        if pos >= SALT_AT:
            # Salt, nonce, ciphertext and tag: the AEAD check catches it.
            assert isinstance(info.value, WrongPassphrase)
        assert not isinstance(info.value, PassphraseRequired)


def _params_after_flip(data: bytes, pos: int, mask: int) -> Argon2Params:
    corrupt = bytearray(data)
    corrupt[pos] ^= mask
    t, m, lanes = struct.unpack(">IIB", corrupt[TIME_AT:SALT_AT])
    return Argon2Params(time_cost=t, memory_kib=m, lanes=lanes)


@given(st.integers(0, SEALED_SIZE - 1), st.integers(1, 255))
@ARGON2
def test_sealed_flipped_byte_hypothesis(pos: int, mask: int) -> None:
    data = sealed_file()
    params = _params_after_flip(data, pos, mask)
    # Flips that leave the parameters in bounds but costly would only be slow.
    assume(not params.in_bounds() or params.memory_kib * params.time_cost <= 70_000)
    corrupt = bytearray(data)
    corrupt[pos] ^= mask
    with pytest.raises(DecodeError):
        decode_key_file_untrusted(bytes(corrupt), PASSPHRASE)


# ------------------------------------------------- truncation and length


@pytest.mark.parametrize("kind", ["plain", "sealed"])
def test_every_truncation_is_a_decode_error(kind: str) -> None:
    data = plain_file() if kind == "plain" else sealed_file()
    with argon2_forbidden():
        for n in range(len(data)):
            for passphrase in (None, PASSPHRASE):
                with pytest.raises(DecodeError) as info:
                    decode_key_file_untrusted(data[:n], passphrase)
                # Truncated means corrupt, not "needs a passphrase".
                assert not isinstance(info.value, PassphraseRequired)


@pytest.mark.parametrize("kind", ["plain", "sealed"])
@pytest.mark.parametrize("extra", [b"\x00", b"\n", b"\xff" * 40])
def test_trailing_bytes_are_a_decode_error(kind: str, extra: bytes) -> None:
    data = plain_file() if kind == "plain" else sealed_file()
    with argon2_forbidden(), pytest.raises(DecodeError, match="trailing"):
        decode_key_file_untrusted(data + extra, PASSPHRASE)


def test_too_large_is_refused_first() -> None:
    data = plain_file()
    big = data + bytes(MAX_KEY_FILE_SIZE - len(data) + 1)
    with pytest.raises(DecodeError, match="too large"):
        decode_key_file_untrusted(big)


@pytest.mark.parametrize("mode", [2, 3, 0x80, 0xFF])
def test_unknown_mode(mode: int) -> None:
    data = MAGIC + bytes([mode]) + plain_file()[9:]
    with pytest.raises(DecodeError, match="mode"):
        decode_key_file_untrusted(data)
    with pytest.raises(DecodeError, match="mode"):
        key_file_is_sealed_untrusted(data)


# ----------------------------------------------------------- Argon2 bounds


@pytest.mark.parametrize(
    ("time_cost", "memory_kib", "lanes"),
    [
        (1, 2**31, 1),
        (1, 2**32 - 1, 1),
        (1, Argon2Params.MAX_MEMORY_KIB + 1, 1),
        (0, 64, 1),
        (Argon2Params.MAX_TIME + 1, 64, 1),
        (2**32 - 1, 64, 1),
        (1, 64, 0),
        (1, 1024, Argon2Params.MAX_LANES + 1),
        (1, 1024, 255),
        (1, 31, 4),  # memory below 8 KiB per lane
        (1, 0, 1),
    ],
)
def test_out_of_bounds_argon2_params_refused_without_running_argon2(
    time_cost: int, memory_kib: int, lanes: int
) -> None:
    real = sealed_file()
    crafted = sealed_header(time_cost, memory_kib, lanes) + real[SALT_AT:]
    assert len(crafted) == SEALED_SIZE
    with argon2_forbidden():
        for passphrase in (None, PASSPHRASE):
            with pytest.raises(DecodeError, match="out of bounds") as info:
                decode_key_file_untrusted(crafted, passphrase)
            assert not isinstance(info.value, (PassphraseRequired, WrongPassphrase))
    with pytest.raises(ValueError, match="out of bounds"):
        encode_key_file(
            identity(b"alice"),
            det_rng(b"x"),
            PASSPHRASE,
            Argon2Params(time_cost=time_cost, memory_kib=memory_kib, lanes=lanes),
        )


@pytest.mark.parametrize(
    ("time_cost", "memory_kib", "lanes"),
    [
        (Argon2Params.MIN_TIME, 8, 1),
        (Argon2Params.MAX_TIME, Argon2Params.MAX_MEMORY_KIB, Argon2Params.MAX_LANES),
        (3, 64 * 1024, 4),
    ],
)
def test_in_bounds_extremes_pass_the_bounds_check(
    time_cost: int, memory_kib: int, lanes: int
) -> None:
    real = sealed_file()
    crafted = sealed_header(time_cost, memory_kib, lanes) + real[SALT_AT:]
    with argon2_forbidden(), pytest.raises(PassphraseRequired):
        decode_key_file_untrusted(crafted)


def test_default_params_are_in_bounds() -> None:
    assert Argon2Params().in_bounds()
    assert CHEAP.in_bounds()


# ------------------------------------------------------ arbitrary bytes


@given(st.binary(max_size=600))
@SETTINGS
def test_arbitrary_bytes_raise_only_decode_error(data: bytes) -> None:
    with argon2_forbidden(), contextlib.suppress(DecodeError):
        decode_key_file_untrusted(data)
    with contextlib.suppress(DecodeError):
        assert key_file_is_sealed_untrusted(data) in (True, False)


@given(st.sampled_from([0, 1]), st.binary(max_size=250))
@SETTINGS
def test_magic_prefixed_bytes_raise_only_decode_error(mode: int, tail: bytes) -> None:
    data = MAGIC + bytes([mode]) + tail
    assert key_file_is_sealed_untrusted(data) is (mode == 1)
    with argon2_forbidden(), contextlib.suppress(DecodeError):
        decode_key_file_untrusted(data)
    with argon2_fake(), contextlib.suppress(DecodeError):
        decode_key_file_untrusted(data, PASSPHRASE)


@given(
    st.integers(0, 20),
    st.integers(0, 2**21),
    st.integers(0, 20),
    st.binary(min_size=16 + 12 + 144, max_size=16 + 12 + 144),
)
@SETTINGS
def test_sealed_random_params_and_body_raise_only_decode_error(
    time_cost: int, memory_kib: int, lanes: int, body: bytes
) -> None:
    data = sealed_header(time_cost, memory_kib, lanes) + body
    params = Argon2Params(time_cost=time_cost, memory_kib=memory_kib, lanes=lanes)
    with argon2_fake(), pytest.raises(DecodeError) as info:
        decode_key_file_untrusted(data, PASSPHRASE)
    assert isinstance(info.value, WrongPassphrase) == params.in_bounds()


@given(st.binary(max_size=20))
@SETTINGS
def test_is_sealed_on_short_or_foreign_input(data: bytes) -> None:
    assume(not data.startswith(MAGIC))
    with pytest.raises(DecodeError):
        key_file_is_sealed_untrusted(data)


def test_is_sealed() -> None:
    assert key_file_is_sealed_untrusted(plain_file()) is False
    assert key_file_is_sealed_untrusted(sealed_file()) is True
    assert key_file_is_sealed_untrusted(MAGIC + b"\x01") is True
    with pytest.raises(DecodeError):
        key_file_is_sealed_untrusted(MAGIC)
