"""The runtime context of plugin code: which namespace it serves, its scratch space, secrets,
namespace models and guard policy.

The platform sets it where plugin code runs (a batch actor, a realtime replica, the CLI test
runner); SDK helpers (``load_namespace_model``, ``run_tool``, ``download_asset``) read it.
"""

from __future__ import annotations

import contextvars
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mixpeek_orchestration.errors import ErrorCode, MixpeekError

if TYPE_CHECKING:
    from mixpeek_orchestration.plugins.guard import GuardPolicy
    from mixpeek_orchestration.sdk.models import ModelSource


class PluginSecrets:
    """Read-only access to the secrets a namespace granted this plugin (``container.secrets``)."""

    def __init__(self, values: Mapping[str, str] | None = None) -> None:
        self._values = dict(values or {})

    def get(self, key: str, default: str | None = None) -> str | None:
        return self._values.get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self._values

    def keys(self) -> list[str]:
        return sorted(self._values)

    def __repr__(self) -> str:  # never print values
        return f"PluginSecrets(keys={self.keys()})"


@dataclass
class PluginContext:
    """Where and for whom plugin code is running."""

    org_id: str = "local"
    namespace_id: str = "local"
    scratch_dir: Path = field(
        default_factory=lambda: Path(tempfile.mkdtemp(prefix="mixpeek-scratch-"))
    )
    secrets: PluginSecrets = field(default_factory=PluginSecrets)
    models: ModelSource | None = None
    guard: GuardPolicy | None = None
    asset_url_prefixes: tuple[str, ...] = ()
    """URL prefixes of the platform's own object store (signed URLs it hands to plugins)."""


@dataclass
class PluginContainer:
    """The ``container`` argument of ``build_steps``: platform services for plugin code."""

    secrets: PluginSecrets
    namespace_id: str
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_context(cls, context: PluginContext) -> PluginContainer:
        return cls(secrets=context.secrets, namespace_id=context.namespace_id)


_current: contextvars.ContextVar[PluginContext | None] = contextvars.ContextVar(
    "mixpeek_plugin_context", default=None
)
_process_default: PluginContext | None = None


def set_process_context(context: PluginContext | None) -> None:
    """The context of a process dedicated to one plugin (batch actor, realtime replica)."""
    global _process_default
    _process_default = context


@contextmanager
def use_context(context: PluginContext) -> Iterator[PluginContext]:
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)


def current_context() -> PluginContext:
    context = _current.get() or _process_default
    if context is None:
        raise MixpeekError(
            ErrorCode.UNSUPPORTED_OPERATION,
            "No plugin context: this helper works inside the platform (batch, realtime or "
            "`mixpeek plugin test`)",
        )
    return context
