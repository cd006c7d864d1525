"""BLS signatures for the witness quorum, behind one interface with two backends.

Ciphersuite ``BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_``: public keys in
G1 (48 bytes), signatures in G2 (96 bytes), proofs of possession against
rogue-key attacks. :class:`BlstBackend` (blst, through pyblst) is the fast
one and the default; :class:`PyEccBackend` (py_ecc) is the pure-Python
reference that the tests check it against.

``PyEccBackend`` is imported on first use: py_ecc loads ``socket`` and
``secrets`` through eth_utils, which the sans-IO core must not pull in just by
being imported.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING

from ._api import (
    BLS_DST_POP,
    BLS_DST_SIG,
    BLS_PUBLIC_KEY_SIZE,
    BLS_SECRET_KEY_SIZE,
    BLS_SIGNATURE_SIZE,
    CURVE_ORDER,
    BlsBackend,
    ParsedPublicKey,
)
from ._blst import BlstBackend
from ._keygen import KEYGEN_MIN_IKM_SIZE, key_gen

if TYPE_CHECKING:
    from ._py_ecc import PyEccBackend

__all__ = [
    "BACKEND_ENV_VAR",
    "BACKEND_NAMES",
    "BLS_DST_POP",
    "BLS_DST_SIG",
    "BLS_PUBLIC_KEY_SIZE",
    "BLS_SECRET_KEY_SIZE",
    "BLS_SIGNATURE_SIZE",
    "CURVE_ORDER",
    "KEYGEN_MIN_IKM_SIZE",
    "BlsBackend",
    "BlstBackend",
    "ParsedPublicKey",
    "PyEccBackend",
    "default_backend",
    "get_backend",
    "key_gen",
]

#: The environment variable that overrides the backend choice.
BACKEND_ENV_VAR = "CHHAYA_BLS_BACKEND"
#: Backend names, the default first.
BACKEND_NAMES = ("blst", "py_ecc")


def __getattr__(name: str) -> object:
    # PEP 562: load py_ecc only when PyEccBackend is asked for.
    if name == "PyEccBackend":
        from ._py_ecc import PyEccBackend

        return PyEccBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@cache
def get_backend(name: str) -> BlsBackend:
    """The backend called ``name`` ("blst" or "py_ecc"); backends are stateless and shared."""
    if name == "blst":
        return BlstBackend()
    if name == "py_ecc":
        from ._py_ecc import PyEccBackend

        return PyEccBackend()
    raise ValueError(f"unknown BLS backend {name!r}: expected one of {', '.join(BACKEND_NAMES)}")


def default_backend(env: Mapping[str, str]) -> BlsBackend:
    """blst, unless ``env[CHHAYA_BLS_BACKEND]`` names another backend.

    The core reads no environment of its own: the node passes ``os.environ``.
    An unset or empty variable means the default; an unknown name is a
    ValueError rather than a silent fallback.
    """
    name = env.get(BACKEND_ENV_VAR, "")
    if not name:
        return get_backend(BACKEND_NAMES[0])
    if name not in BACKEND_NAMES:
        raise ValueError(
            f"{BACKEND_ENV_VAR}={name!r} is not a BLS backend: "
            f"expected one of {', '.join(BACKEND_NAMES)}"
        )
    return get_backend(name)
