"""PublicIdentity, PrivateIdentity, .pub files and fingerprints."""

from __future__ import annotations

import base64
import contextlib
import re
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chhaya import DecodeError
from chhaya.crypto import FAST, REFERENCE
from chhaya.identity import (
    FINGERPRINT_GROUPS,
    MAX_NAME_LENGTH,
    MAX_PUB_FILE_SIZE,
    PUBLIC_IDENTITY_SIZE,
    SECRET_IDENTITY_SIZE,
    PrivateIdentity,
    PublicIdentity,
    decode_pub_file_untrusted,
    encode_pub_file,
    fingerprint,
    format_fingerprint,
    valid_name,
)

from ._helpers import det_rng, identities_st, identity, names_st, secrets_st

SETTINGS = settings(deadline=None, max_examples=200)
FEW = settings(deadline=None, max_examples=25)

_TAG = b"CPI1"


# --------------------------------------------------------- PublicIdentity


@given(identities_st)
@SETTINGS
def test_public_identity_round_trip(ident: PrivateIdentity) -> None:
    encoded = ident.public.encode()
    assert len(encoded) == PUBLIC_IDENTITY_SIZE
    assert encoded.startswith(_TAG)
    assert PublicIdentity.decode_untrusted(encoded) == ident.public


@given(
    st.binary(min_size=32, max_size=32),
    st.binary(min_size=32, max_size=32),
    st.binary(min_size=1568, max_size=1568),
)
@SETTINGS
def test_public_identity_round_trip_any_field_bytes(sig: bytes, dh: bytes, kem: bytes) -> None:
    # Decoding checks structure only; key validity is checked where keys are used.
    public = PublicIdentity(sig, dh, kem)
    encoded = public.encode()
    assert encoded == _TAG + sig + dh + kem
    assert PublicIdentity.decode_untrusted(encoded) == public


@given(st.binary(max_size=2000))
@SETTINGS
def test_public_identity_arbitrary_bytes_raise_only_decode_error(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        PublicIdentity.decode_untrusted(data)


@given(st.binary(min_size=1600, max_size=1700))
@SETTINGS
def test_public_identity_tagged_bytes_decode_iff_right_length(body: bytes) -> None:
    data = _TAG + body
    if len(data) == PUBLIC_IDENTITY_SIZE:
        assert PublicIdentity.decode_untrusted(data).encode() == data
    else:
        with pytest.raises(DecodeError):
            PublicIdentity.decode_untrusted(data)


def test_public_identity_truncations_and_extensions() -> None:
    encoded = identity(b"alice").public.encode()
    for n in range(len(encoded)):
        with pytest.raises(DecodeError):
            PublicIdentity.decode_untrusted(encoded[:n])
    for extra in (b"\x00", b"\xff" * 7):
        with pytest.raises(DecodeError, match="trailing"):
            PublicIdentity.decode_untrusted(encoded + extra)


@pytest.mark.parametrize("pos", range(len(_TAG)))
def test_public_identity_bad_tag(pos: int) -> None:
    encoded = bytearray(identity(b"alice").public.encode())
    encoded[pos] ^= 0x20
    with pytest.raises(DecodeError, match="tag"):
        PublicIdentity.decode_untrusted(bytes(encoded))


@pytest.mark.parametrize("field", ["signing_key", "agreement_key", "kem_key"])
def test_public_identity_encode_rejects_wrong_lengths(field: str) -> None:
    fields = {"signing_key": bytes(32), "agreement_key": bytes(32), "kem_key": bytes(1568)}
    fields[field] += b"\x00"
    with pytest.raises(ValueError, match="expected"):
        PublicIdentity(**fields).encode()


# -------------------------------------------------------- PrivateIdentity


@given(secrets_st)
@SETTINGS
def test_private_identity_secret_bytes_round_trip(secret: bytes) -> None:
    ident = PrivateIdentity.from_secret_bytes(secret)
    assert ident.secret_bytes() == secret
    again = PrivateIdentity.from_secret_bytes(ident.secret_bytes())
    assert again.public == ident.public


@given(st.binary(max_size=300).filter(lambda b: len(b) != SECRET_IDENTITY_SIZE))
@SETTINGS
def test_private_identity_wrong_secret_length(secret: bytes) -> None:
    with pytest.raises(DecodeError):
        PrivateIdentity.from_secret_bytes(secret)


def test_generate_is_a_function_of_the_rng() -> None:
    a = PrivateIdentity.generate(det_rng(b"same"))
    b = PrivateIdentity.generate(det_rng(b"same"))
    c = PrivateIdentity.generate(det_rng(b"other"))
    assert a.secret_bytes() == b.secret_bytes()
    assert a.public == b.public
    assert a.public != c.public


def test_reference_suite_derives_the_same_public_identity() -> None:
    secret = identity(b"alice").secret_bytes()
    fast = PrivateIdentity.from_secret_bytes(secret, FAST)
    ref = PrivateIdentity.from_secret_bytes(secret, REFERENCE)
    assert fast.public == ref.public


def test_sign_verifies_under_the_public_signing_key() -> None:
    ident = identity(b"alice")
    sig = ident.sign(b"message")
    FAST.sig.verify(ident.public.signing_key, b"message", sig)


# ---------------------------------------------------------------- reprs


def _secret_windows(ident: PrivateIdentity) -> list[str]:
    """Every 8-byte window of every secret, in hex (lower and upper case)."""
    out: list[str] = []
    for part in (ident.signing_key.seed, ident.agreement.private_bytes, ident.kem.seed):
        hexed = part.hex()
        for i in range(0, len(hexed) - 15, 2):
            out += [hexed[i : i + 16], hexed[i : i + 16].upper()]
    return out


@given(identities_st)
@FEW
def test_reprs_contain_no_secret_hex(ident: PrivateIdentity) -> None:
    texts = [
        repr(ident),
        str(ident),
        f"{ident!r} {ident}",
        repr(ident.signing_key),
        repr(ident.agreement),
        repr(ident.kem),
        str(ident.signing_key),
        str(ident.agreement),
        str(ident.kem),
    ]
    windows = _secret_windows(ident)
    for text in texts:
        assert "redacted" in text
        for window in windows:
            assert window not in text, text


def test_repr_names_the_identity_by_its_public_key() -> None:
    ident = identity(b"alice")
    assert ident.public.signing_key.hex()[:16] in repr(ident)


# ------------------------------------------------------------- .pub files


@given(names_st, identities_st)
@SETTINGS
def test_pub_file_round_trip(name: str, ident: PrivateIdentity) -> None:
    text = encode_pub_file(name, ident.public)
    b64 = base64.b64encode(ident.public.encode()).decode()
    assert text == f"chhaya-pub-v1 {name} {b64}\n"
    assert decode_pub_file_untrusted(text.encode("ascii")) == (name, ident.public)


@given(names_st)
@SETTINGS
def test_valid_names_are_valid(name: str) -> None:
    assert valid_name(name)
    assert 1 <= len(name) <= MAX_NAME_LENGTH


@pytest.mark.parametrize(
    "name",
    [
        "",
        ".hidden",
        "-dash",
        "_under",
        "a b",
        "a/b",
        "a\\b",
        "../x",
        "x" * 65,
        "caf\u00e9",
        "a\n",
        "a\x00",
        "\uff41",  # fullwidth 'a'
    ],
)
def test_invalid_names(name: str) -> None:
    public = identity(b"alice").public
    assert not valid_name(name)
    with pytest.raises(ValueError, match="invalid name"):
        encode_pub_file(name, public)
    good = encode_pub_file("x", public)
    crafted = good.replace(" x ", f" {name} ", 1)
    if crafted.isascii():
        with pytest.raises(DecodeError):
            decode_pub_file_untrusted(crafted.encode("ascii"))


@given(st.binary(max_size=3000))
@SETTINGS
def test_pub_file_arbitrary_bytes_raise_only_decode_error(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode_pub_file_untrusted(data)


@given(
    st.lists(
        st.one_of(
            st.just("chhaya-pub-v1"),
            names_st,
            st.text(alphabet="ABCabc0123+/=", max_size=40),
            st.just(base64.b64encode(bytes(PUBLIC_IDENTITY_SIZE)).decode()),
        ),
        max_size=5,
    ),
    st.sampled_from([" ", "  ", "\t", "\n", ""]),
)
@SETTINGS
def test_pub_file_token_soup_raises_only_decode_error(tokens: list[str], sep: str) -> None:
    data = sep.join(tokens).encode("ascii")
    try:
        name, public = decode_pub_file_untrusted(data)
    except DecodeError:
        return
    assert valid_name(name)
    assert decode_pub_file_untrusted(encode_pub_file(name, public).encode()) == (name, public)


def test_pub_file_surrounding_whitespace_is_tolerated() -> None:
    public = identity(b"alice").public
    text = encode_pub_file("alice", public).strip()
    for variant in (text, text + "\r\n", "  " + text + "\n\n", "\n" + text):
        assert decode_pub_file_untrusted(variant.encode()) == ("alice", public)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t.replace("chhaya-pub-v1", "chhaya-pub-v2"),
        lambda t: t.replace(" ", "  ", 1),
        lambda t: t.replace(" ", "\t", 1),
        lambda t: t.rstrip("\n") + " extra\n",
        lambda t: t.rstrip("\n")[:-4] + "\n",  # base64 of a shorter identity
        lambda t: t.rstrip("\n") + "AAAA\n",  # base64 of a longer identity
        lambda t: t.rstrip("\n")[:-1] + "\n",  # bad base64 padding
        lambda t: t.replace("A", "*", 1) if "A" in t.split()[2] else t + "*",
        lambda t: t.split()[0] + " " + t.split()[1] + "\n",
        lambda t: "",
    ],
)
def test_pub_file_malformed(mangle: Callable[[str], str]) -> None:
    text = encode_pub_file("alice", identity(b"alice").public)
    with pytest.raises(DecodeError):
        decode_pub_file_untrusted(mangle(text).encode("ascii"))


def test_pub_file_wrong_payload_tag() -> None:
    raw = b"XXXX" + identity(b"alice").public.encode()[4:]
    text = f"chhaya-pub-v1 alice {base64.b64encode(raw).decode()}\n"
    with pytest.raises(DecodeError, match="tag"):
        decode_pub_file_untrusted(text.encode())


def test_pub_file_not_ascii_or_too_large() -> None:
    text = encode_pub_file("alice", identity(b"alice").public).encode()
    with pytest.raises(DecodeError, match="ASCII"):
        decode_pub_file_untrusted(text.replace(b"alice", b"alic\xc3\xa9"))
    padded = text + b" " * (MAX_PUB_FILE_SIZE - len(text))
    assert decode_pub_file_untrusted(padded)[0] == "alice"
    with pytest.raises(DecodeError, match="too large"):
        decode_pub_file_untrusted(padded + b" ")


# ------------------------------------------------------------ fingerprints

_FINGERPRINT_RE = re.compile(r"\d{5}( \d{5}){11}")


@given(identities_st)
@FEW
def test_fingerprint_shape_and_determinism(ident: PrivateIdentity) -> None:
    fp = fingerprint(ident.public)
    assert FINGERPRINT_GROUPS == 12
    assert _FINGERPRINT_RE.fullmatch(fp)
    assert fingerprint(ident.public) == fp
    same = PublicIdentity.decode_untrusted(ident.public.encode())
    assert fingerprint(same) == fp


@given(identities_st, identities_st)
@FEW
def test_fingerprints_differ_for_different_identities(
    a: PrivateIdentity, b: PrivateIdentity
) -> None:
    if a.public != b.public:
        assert fingerprint(a.public) != fingerprint(b.public)


@pytest.mark.parametrize("field", ["signing_key", "agreement_key", "kem_key"])
def test_fingerprint_covers_every_key(field: str) -> None:
    public = identity(b"alice").public
    fields = {
        "signing_key": public.signing_key,
        "agreement_key": public.agreement_key,
        "kem_key": public.kem_key,
    }
    changed = bytearray(fields[field])
    changed[-1] ^= 1
    fields[field] = bytes(changed)
    assert fingerprint(PublicIdentity(**fields)) != fingerprint(public)


def test_fingerprint_is_pinned() -> None:
    # A change here changes every user's fingerprint: deliberate changes only.
    zero = PublicIdentity(bytes(32), bytes(32), bytes(1568))
    assert fingerprint(zero) == (
        "70239 20569 98680 65493 13583 25084 34889 43966 56361 10332 74706 99485"
    )


def test_format_fingerprint_gives_three_lines_of_four_groups() -> None:
    fp = fingerprint(identity(b"alice").public)
    lines = format_fingerprint(fp).split("\n")
    assert len(lines) == 3
    assert all(len(line.split(" ")) == 4 for line in lines)
    assert " ".join(lines) == fp
