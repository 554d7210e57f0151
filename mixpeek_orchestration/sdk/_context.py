"""The runtime context of plugin code: which namespace it serves, its scratch space, its
secrets, and the host that acts for it.

The platform sets it where plugin code runs (a batch actor, a realtime replica, the CLI test
runner). SDK helpers (``load_namespace_model``, ``run_tool``, ``download_asset``) only check
their arguments and ask the context's :class:`PluginHost`: everything a plugin may do beyond
computing (start a media tool, fetch a blob, load a namespace model) is a host service, so the
SDK itself holds no platform internals and no way to lift the guard.
"""

from __future__ import annotations

import contextvars
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from mixpeek_orchestration.errors import ErrorCode, MixpeekError


@dataclass(frozen=True)
class ToolResult:
    """What a media tool run by :func:`~mixpeek_orchestration.sdk.run_tool` did."""

    returncode: int
    stdout: bytes
    stderr: bytes
    duration_s: float


class PluginHost(Protocol):
    """The platform side of plugin code: the services it may use, each checked by the host.

    The platform's implementation (``sandbox/host_services.py``) enforces the plugin's runtime
    guard policy; an SDK helper never reaches past this interface.
    """

    def guarded(self) -> AbstractContextManager[None]:
        """Run the body under the plugin's runtime guard (in this thread)."""

    def may_connect(self, host: str) -> bool:
        """Whether plugin code may reach ``host`` (an operator-allowed host)."""

    def run_tool(
        self, name: str, args: list[str], *, timeout_s: float, stdin: bytes | None
    ) -> ToolResult:
        """Run pre-installed media tool ``name`` with ``args`` in the scratch dir."""

    def fetch_asset(self, url: str, *, timeout_s: float, max_bytes: int) -> Path:
        """A blob (platform signed URL, allowed host, or staged local file) as a local file."""

    def load_model(self, name: str) -> Any:
        """The namespace model stored under ``name``, loaded."""

    def llm(self, request: dict[str, Any]) -> dict[str, Any]:
        """One LLM call (``sdk.llm``), made and metered by the platform."""


class NoHost:
    """The host of a context built outside the platform: no guard, and every service says it
    needs the platform."""

    def guarded(self) -> AbstractContextManager[None]:
        return nullcontext()

    def may_connect(self, host: str) -> bool:
        return True  # nothing is guarded here

    def _refuse(self, what: str) -> MixpeekError:
        return MixpeekError(
            ErrorCode.UNSUPPORTED_OPERATION,
            f"{what} needs the platform: run the plugin under `mixpeek plugin test`, a batch "
            "worker or a realtime replica",
        )

    def run_tool(
        self, name: str, args: list[str], *, timeout_s: float, stdin: bytes | None
    ) -> ToolResult:
        raise self._refuse(f"run_tool({name!r})")

    def fetch_asset(self, url: str, *, timeout_s: float, max_bytes: int) -> Path:
        raise self._refuse("download_asset")

    def load_model(self, name: str) -> Any:
        raise MixpeekError(ErrorCode.NOT_FOUND, f"No model registry serves model {name!r} here")

    def llm(self, request: dict[str, Any]) -> dict[str, Any]:
        raise self._refuse("sdk.llm")


_NO_DEFAULT: Any = object()


class PluginSecrets:
    """Read-only access to the organisation secrets the plugin's manifest declares
    (``container.secrets``, ``current_context().secrets``).

    In the platform each :meth:`get` asks the plugin host's supervisor, which reads the
    organisation's store (a changed value arrives within seconds). A name the manifest does not
    declare is refused; a declared one the organisation has not stored raises an error naming
    it (the row or request fails with it), unless a ``default`` is given. Where nothing can
    be read (an upload's check) declared secrets read as ``default``.

    Args:
        values: fixed values (a local test, or a context built by hand).
        declared: the manifest's ``secrets``; with ``fetch``, only these are readable.
        fetch: how a declared secret's value is read (the host's channel).
    """

    def __init__(
        self,
        values: Mapping[str, str] | None = None,
        *,
        declared: Sequence[str] | None = None,
        fetch: Callable[[str], str] | None = None,
    ) -> None:
        self._values = dict(values or {})
        self._declared = None if declared is None else frozenset(declared)
        self._fetch = fetch

    def get(self, key: str, default: str | None = _NO_DEFAULT) -> str | None:
        if self._declared is not None and key not in self._declared:
            raise MixpeekError(
                ErrorCode.PERMISSION_DENIED,
                f"secret {key!r} is not declared by this plugin's manifest: add it to "
                f"`secrets = [...]` (declared: {sorted(self._declared)})",
            )
        if key in self._values:
            return self._values[key]
        if self._fetch is not None:
            try:
                return self._fetch(key)
            except MixpeekError as exc:
                if exc.code is ErrorCode.NOT_FOUND and default is not _NO_DEFAULT:
                    return default
                raise
        return None if default is _NO_DEFAULT else default

    def __contains__(self, key: object) -> bool:
        return key in self._values or (self._declared is not None and key in self._declared)

    def keys(self) -> list[str]:
        return sorted(set(self._values) | (self._declared or set()))

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
    host: PluginHost = field(default_factory=NoHost, repr=False)


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


def context_or_none() -> PluginContext | None:
    """The current plugin context, or ``None`` outside plugin code."""
    return _current.get() or _process_default


def current_context() -> PluginContext:
    """The plugin context of the code running now (a ``MixpeekError`` outside the platform)."""
    context = context_or_none()
    if context is None:
        raise MixpeekError(
            ErrorCode.UNSUPPORTED_OPERATION,
            "No plugin context: this helper works inside the platform (batch, realtime or "
            "`mixpeek plugin test`)",
        )
    return context
