"""The services a plugin's host gives its code: the SDK helpers' platform side.

:class:`GuardedHost` implements :class:`~mixpeek_orchestration.sdk.PluginHost`. Plugin code
never holds the guard's ``trusted()``: it asks the host, which checks the request against the
plugin's :class:`~mixpeek_orchestration.sandbox.guard.GuardPolicy` (hosts it may reach, files it
may read or write) and only then acts, with the guard lifted for its own work.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.models.namespace import ModelSource, load_model_file
from mixpeek_orchestration.sandbox.guard import (
    GuardPolicy,
    GuardViolation,
    guarded,
    scrubbed_environ,
    trusted,
)
from mixpeek_orchestration.sdk._context import ToolResult
from mixpeek_orchestration.sdk._helpers import TOOLS


def available_tools() -> dict[str, str]:
    """Tools present on this worker, by name -> executable path."""
    found = {}
    for name, candidates in TOOLS.items():
        for candidate in candidates:
            path = shutil.which(candidate)
            if path:
                found[name] = path
                break
    return found


@dataclass(frozen=True)
class GuardedHost:
    """The host of one plugin's code in this process.

    Args:
        policy: the plugin's runtime guard policy (``None``: trusted platform tests only).
        scratch_dir: where tools run and assets land.
        asset_url_prefixes: URL prefixes of the platform's own object store (signed URLs it
            hands to plugins), downloadable whatever the allowed hosts.
        models: where namespace models come from.
        llm_calls: how ``sdk.llm`` calls reach the platform's gateway.
    """

    policy: GuardPolicy | None
    scratch_dir: Path
    asset_url_prefixes: tuple[str, ...] = ()
    models: ModelSource | None = None
    llm_calls: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    """The platform's LLM gateway (over the host's channel), when the platform offers one."""

    def guarded(self) -> AbstractContextManager[None]:
        return guarded(self.policy)

    def may_connect(self, host: str) -> bool:
        return self.policy is None or self.policy.host_allowed(host)

    def _check_tool_arg(self, arg: str) -> None:
        if "://" in arg:
            host = urlparse(arg).hostname or ""
            if self.policy is None or not self.policy.host_allowed(host):
                raise GuardViolation(
                    "network", f"tool argument reaches {host or arg!r}, which is not allowed"
                )
        elif arg.startswith("/") or ".." in arg.split("/"):
            path = Path(os.path.realpath(arg))
            roots = [self.scratch_dir.resolve()]
            if self.policy is not None:
                roots += list(self.policy.readable_roots)
            if not any(path == r or r in path.parents for r in roots):
                raise GuardViolation(
                    "write", f"tool argument {arg!r} is outside the plugin's scratch dir"
                )

    def run_tool(
        self, name: str, args: list[str], *, timeout_s: float, stdin: bytes | None
    ) -> ToolResult:
        executable = available_tools().get(name)
        if executable is None:
            raise MixpeekError(
                ErrorCode.TOOL_UNAVAILABLE, f"{name} is not installed on this worker"
            )
        for arg in args:
            self._check_tool_arg(arg)
        start = time.perf_counter()
        with trusted():
            try:
                completed = subprocess.run(
                    [executable, *args],
                    input=stdin,
                    capture_output=True,
                    timeout=timeout_s,
                    cwd=self.scratch_dir,
                    env={**scrubbed_environ(), "TMPDIR": str(self.scratch_dir)},
                    check=False,
                )
            except subprocess.TimeoutExpired:
                raise MixpeekError(
                    ErrorCode.PLUGIN_RUNTIME_ERROR, f"{name} timed out after {timeout_s}s"
                ) from None
        return ToolResult(
            completed.returncode, completed.stdout, completed.stderr, time.perf_counter() - start
        )

    def fetch_asset(self, url: str, *, timeout_s: float, max_bytes: int) -> Path:
        parsed = urlparse(url)
        if parsed.scheme in ("", "file"):
            path = Path(os.path.realpath(parsed.path if parsed.scheme else url))
            if self.policy is not None and not self.policy.may_read(path):
                raise GuardViolation("read", f"reading {path} is not allowed")
            if not path.is_file():
                raise MixpeekError(ErrorCode.NOT_FOUND, f"Asset {url!r} not found")
            return path
        if parsed.scheme not in ("http", "https"):
            raise MixpeekError(
                ErrorCode.INVALID_REQUEST, f"Unsupported asset URL scheme {parsed.scheme!r}"
            )
        own = any(url.startswith(prefix) for prefix in self.asset_url_prefixes)
        if not own and not self.may_connect(parsed.hostname or ""):
            raise GuardViolation("network", f"downloading from {parsed.hostname} is not allowed")
        suffix = Path(parsed.path).suffix[:16]
        target = self.scratch_dir / "assets" / f"{uuid.uuid4().hex}{suffix}"
        with trusted():
            _download(url, target, timeout_s=timeout_s, max_bytes=max_bytes)
        return target

    def load_model(self, name: str) -> Any:
        if self.models is None:
            raise MixpeekError(ErrorCode.NOT_FOUND, f"No model registry serves model {name!r}")
        with trusted():  # the platform fetches on the plugin's behalf
            return load_model_file(self.models.resolve(name))

    def llm(self, request: dict[str, Any]) -> dict[str, Any]:
        if self.llm_calls is None:
            raise MixpeekError(
                ErrorCode.UNSUPPORTED_OPERATION,
                "sdk.llm needs the platform's LLM gateway: it is offered to plugins in batch "
                "and realtime (not in an upload's check or a local test)",
            )
        return self.llm_calls(request)


def _download(url: str, target: Path, *, timeout_s: float, max_bytes: int) -> None:
    import httpx

    target.parent.mkdir(parents=True, exist_ok=True)
    size = 0
    with httpx.stream("GET", url, timeout=timeout_s, follow_redirects=False) as response:
        if response.status_code != 200:
            raise MixpeekError(
                ErrorCode.NOT_FOUND,
                f"Asset {url.split('?')[0]} answered HTTP {response.status_code}",
            )
        with target.open("wb") as out:
            for chunk in response.iter_bytes(1 << 20):
                size += len(chunk)
                if size > max_bytes:
                    raise MixpeekError(
                        ErrorCode.PAYLOAD_TOO_LARGE, f"Asset exceeds {max_bytes} bytes"
                    )
                out.write(chunk)
