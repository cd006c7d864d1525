"""The protocol packages stay sans-IO: no sockets, files, clocks or randomness.

Two checks. A strict one parses every module under ``chhaya/``, ``quorum/``
and ``vkd/`` and rejects imports of I/O, clock and randomness modules (and any
``os.urandom``). A runtime one imports the packages in a fresh interpreter and
checks that no networking, async or database module got loaded through a
dependency. The runtime check cannot cover ``os``, ``time`` or ``random``:
pyca/cryptography and kyber-py import those themselves.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SANS_IO_PACKAGES = ("chhaya", "quorum", "vkd")

#: Top-level modules the protocol core must never import.
FORBIDDEN_IMPORTS = frozenset(
    {
        "aiosqlite",
        "asyncio",
        "libp2p",
        "os",
        "random",
        "secrets",
        "socket",
        "sqlite3",
        "time",
        "trio",
    }
)

#: Modules that must not be loaded, even indirectly, by importing the core.
#: (Our dependencies legitimately load os, time and random.)
FORBIDDEN_AT_RUNTIME = frozenset(
    {"aiosqlite", "asyncio", "libp2p", "multiaddr", "secrets", "socket", "sqlite3", "trio"}
)


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.what}"


def source_files() -> list[Path]:
    files = [p for pkg in SANS_IO_PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))]
    assert files, "no sources found"
    return files


def _top(name: str) -> str:
    return name.split(".", maxsplit=1)[0]


def violations_in(source: str, path: str) -> list[Violation]:
    """Forbidden imports and ``os.urandom`` uses in one module's source."""
    found: list[Violation] = []
    for node in ast.walk(ast.parse(source, filename=path)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _top(alias.name) in FORBIDDEN_IMPORTS:
                    found.append(Violation(path, node.lineno, f"import {alias.name}"))
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module and _top(node.module) in FORBIDDEN_IMPORTS:
                found.append(Violation(path, node.lineno, f"from {node.module} import ..."))
            for alias in node.names:
                if alias.name == "urandom":
                    found.append(Violation(path, node.lineno, "imports urandom"))
        elif isinstance(node, ast.Attribute) and node.attr == "urandom":
            found.append(Violation(path, node.lineno, "uses .urandom"))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "__import__"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and _top(node.args[0].value) in FORBIDDEN_IMPORTS
        ):
            found.append(Violation(path, node.lineno, f"__import__({node.args[0].value!r})"))
    return found


def test_sources_import_no_io_clock_or_randomness() -> None:
    found: list[Violation] = []
    for path in source_files():
        found += violations_in(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    assert not found, "sans-IO violations:\n" + "\n".join(map(str, found))


@pytest.mark.parametrize(
    "source",
    [
        "import os",
        "import os.path",
        "import time as _t",
        "from time import monotonic",
        "import random",
        "from secrets import token_bytes",
        "import socket",
        "import trio",
        "from libp2p.host import basic_host",
        "import sqlite3",
        "import aiosqlite",
        "import asyncio",
        "def f():\n    import trio\n",
        "x = os.urandom(16)",
        "from os import urandom",
        "__import__('socket')",
    ],
)
def test_checker_catches(source: str) -> None:
    assert violations_in(source, "<test>")


@pytest.mark.parametrize(
    "source",
    [
        "import struct",
        "import hashlib",
        "from . import time",
        "from .os import x",
        "from ..random import Rng",
        "import timeit_free_name",
        "rng(16)",
    ],
)
def test_checker_allows(source: str) -> None:
    assert violations_in(source, "<test>") == []


def test_import_loads_no_io_modules() -> None:
    forbidden = sorted(FORBIDDEN_AT_RUNTIME)
    code = (
        "import sys\n"
        "import chhaya, chhaya.channel, chhaya.crypto, chhaya.identity, chhaya.safety\n"
        "import chhaya.wire, quorum, vkd\n"
        f"forbidden = {forbidden!r}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in forbidden))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        timeout=60,
    )
    assert proc.stdout.strip() == "[]", proc.stdout
