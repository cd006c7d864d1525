"""Network-namespace tests: leftovers of earlier sessions are swept first, ours last."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ._netns import sweep_leftovers, unregister


@pytest.fixture(scope="session", autouse=True)
def _netns_sweep() -> Iterator[None]:
    sweep_leftovers()
    try:
        yield
    finally:
        sweep_leftovers()  # this session's too: each test deletes its own, this is a backstop
        unregister()
