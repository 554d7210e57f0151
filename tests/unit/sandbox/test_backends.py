"""Choosing the sandbox: ``auto`` takes the strongest backend that works here, a named one that
does not work is refused naming why, and ``none`` is loud everywhere it shows."""

from __future__ import annotations

import logging
import shutil

import pytest

from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.sandbox.backends import (
    Bubblewrap,
    GVisor,
    SandboxBackend,
    resolve_backend,
    sandbox_health,
)
from mixpeek_orchestration.sandbox.config import SandboxConfig
from mixpeek_orchestration.settings import load_settings


@pytest.mark.skipif(not shutil.which("bwrap"), reason="no bwrap")
def test_auto_takes_bubblewrap_where_it_works() -> None:
    backend = resolve_backend("auto")
    assert backend.kind is SandboxBackend.BWRAP and backend.isolated
    assert sandbox_health(SandboxConfig()).detail.startswith("plugin hosts run in bwrap")


def test_none_is_logged_loudly_and_shows_in_health(caplog: pytest.LogCaptureFixture) -> None:
    resolve_backend.cache_clear()
    with caplog.at_level(logging.WARNING):
        backend = resolve_backend("none")
    assert not backend.isolated
    assert any("WITHOUT an OS sandbox" in r.getMessage() for r in caplog.records)
    health = sandbox_health(SandboxConfig(backend="none"))
    assert health.detail.startswith("NONE: plugin code runs without an OS sandbox")


def test_an_unknown_backend_is_refused_naming_the_setting() -> None:
    with pytest.raises(MixpeekError) as refused:
        resolve_backend("docker")
    assert refused.value.code is ErrorCode.INVALID_SETTINGS
    assert "MIXPEEK_SANDBOX='docker'" in refused.value.detail
    with pytest.raises(MixpeekError, match="MIXPEEK_SANDBOX"):
        load_settings(sandbox="docker")


def test_a_backend_that_cannot_run_here_says_why() -> None:
    assert "not installed" in (Bubblewrap("no-such-bwrap").available() or "")
    assert "not installed" in (GVisor("no-such-runsc").available() or "")


def test_the_operators_choice_travels_to_workers_unchanged() -> None:
    config = SandboxConfig(
        backend="bwrap",
        egress_hosts=("api.example.com",),
        denied_endpoints=(("127.0.0.1", 27017),),
        timeout_s=30.0,
    )
    assert SandboxConfig.from_dict(config.as_dict()) == config
