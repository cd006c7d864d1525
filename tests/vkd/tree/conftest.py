"""Every tree test that takes ``store`` runs on the in-memory and the SQLite store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from vkd.tree import NodeStore

from ._helpers import STORE_KINDS, make_store


@pytest.fixture(params=STORE_KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[NodeStore]:
    with make_store(request.param, str(tmp_path / "tree.db")) as s:
        yield s
