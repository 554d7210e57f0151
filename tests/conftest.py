"""Shared test configuration: keep the caller's MIXPEEK_* environment out of the tests."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True, scope="session")
def _clean_mixpeek_environment() -> None:
    for key in [k for k in os.environ if k.startswith("MIXPEEK_") or k == "RAY_ADDRESS"]:
        del os.environ[key]
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
