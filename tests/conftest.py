"""Shared test settings."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# CI runs on a shared 2-core machine: no per-example deadlines, and a fixed
# database-free profile so that a run is repeatable from its printed seed.
settings.register_profile(
    "ci",
    deadline=None,
    database=None,
    derandomize=True,  # CI must be repeatable; local runs explore
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
