"""Helpers for plugin code: media tools, assets.

* :func:`run_tool` runs a pre-installed media tool (ffmpeg, ffprobe, exiftool, mediainfo,
  ImageMagick, sox) without a shell, in the plugin's scratch dir, with a scrubbed environment;
  it is the only way plugin code starts a process.
* :func:`download_asset` / :func:`open_asset` fetch a blob (a platform signed URL, an allowed
  host, or a local file the platform handed over) into the scratch dir.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.parse import urlparse

from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.plugins.guard import GuardViolation, scrubbed_environ, trusted
from mixpeek_orchestration.sdk.context import PluginContext, current_context

TOOLS: dict[str, tuple[str, ...]] = {
    "ffmpeg": ("ffmpeg",),
    "ffprobe": ("ffprobe",),
    "exiftool": ("exiftool",),
    "mediainfo": ("mediainfo",),
    "magick": ("magick", "convert"),
    "convert": ("convert", "magick"),
    "identify": ("identify",),
    "sox": ("sox",),
}

__all__ = ["TOOLS", "ToolResult", "available_tools", "download_asset", "open_asset", "run_tool"]


@dataclass(frozen=True)
class ToolResult:
    returncode: int
    stdout: bytes
    stderr: bytes
    duration_s: float


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


def _check_arg(arg: str, context: PluginContext) -> None:
    if "://" in arg:
        host = urlparse(arg).hostname or ""
        policy = context.guard
        if policy is None or not policy.host_allowed(host):
            raise GuardViolation(
                "network", f"tool argument reaches {host or arg!r}, which is not allowed"
            )
    elif arg.startswith("/") or ".." in arg.split("/"):
        path = Path(os.path.realpath(arg))
        roots = [context.scratch_dir.resolve()]
        if context.guard is not None:
            roots += list(context.guard.readable_roots)
        if not any(path == r or r in path.parents for r in roots):
            raise GuardViolation(
                "write", f"tool argument {arg!r} is outside the plugin's scratch dir"
            )


def run_tool(
    name: str, args: list[str], *, timeout_s: float = 300.0, stdin: bytes | None = None
) -> ToolResult:
    """Run a pre-installed media tool.

    Args:
        name: one of :data:`TOOLS` (``ffmpeg``, ``ffprobe``, ``exiftool``, ``mediainfo``,
            ``magick``/``convert``, ``identify``, ``sox``).
        args: arguments (no shell); paths must be inside the scratch dir or the plugin's inputs.
        timeout_s: the process is killed after this long.
        stdin: bytes fed to the tool.

    Returns:
        Exit code, stdout, stderr and duration. A non-zero exit code is returned, not raised.

    Example:
        >>> result = run_tool("ffprobe", ["-v", "quiet", "-print_format", "json", "-show_format", path])
    """
    context = current_context()
    if name not in TOOLS:
        raise MixpeekError(
            ErrorCode.TOOL_UNAVAILABLE, f"Unknown tool {name!r}; tools: {sorted(TOOLS)}"
        )
    executable = available_tools().get(name)
    if executable is None:
        raise MixpeekError(ErrorCode.TOOL_UNAVAILABLE, f"{name} is not installed on this worker")
    if not all(isinstance(a, str) for a in args):
        raise MixpeekError(ErrorCode.INVALID_REQUEST, "run_tool arguments must be strings")
    for arg in args:
        _check_arg(arg, context)
    start = time.perf_counter()
    with trusted():
        try:
            completed = subprocess.run(
                [executable, *args],
                input=stdin,
                capture_output=True,
                timeout=timeout_s,
                cwd=context.scratch_dir,
                env={**scrubbed_environ(), "TMPDIR": str(context.scratch_dir)},
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise MixpeekError(
                ErrorCode.PLUGIN_RUNTIME_ERROR, f"{name} timed out after {timeout_s}s"
            ) from None
    return ToolResult(
        completed.returncode, completed.stdout, completed.stderr, time.perf_counter() - start
    )


def download_asset(url: str, *, timeout_s: float = 120.0, max_bytes: int = 2 * 1024**3) -> Path:
    """Make a blob available as a local file in the scratch dir and return its path.

    ``url`` is what the platform put in the batch's ``data`` column for binary blobs: a signed
    URL of the platform's object store, a URL of an operator-allowed host, or a local path the
    platform staged.
    """
    context = current_context()
    parsed = urlparse(url)
    if parsed.scheme in ("", "file"):
        path = Path(os.path.realpath(parsed.path if parsed.scheme else url))
        policy = context.guard
        if policy is not None and not policy.may_read(path):
            raise GuardViolation("read", f"reading {path} is not allowed")
        if not path.is_file():
            raise MixpeekError(ErrorCode.NOT_FOUND, f"Asset {url!r} not found")
        return path
    if parsed.scheme not in ("http", "https"):
        raise MixpeekError(
            ErrorCode.INVALID_REQUEST, f"Unsupported asset URL scheme {parsed.scheme!r}"
        )
    own = any(url.startswith(prefix) for prefix in context.asset_url_prefixes)
    policy = context.guard
    if not own and policy is not None and not policy.host_allowed(parsed.hostname or ""):
        raise GuardViolation("network", f"downloading from {parsed.hostname} is not allowed")
    import httpx

    suffix = Path(parsed.path).suffix[:16]
    target = context.scratch_dir / "assets" / f"{uuid.uuid4().hex}{suffix}"
    with trusted():
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
    return target


def open_asset(url: str) -> IO[bytes]:
    """Open a blob for reading (see :func:`download_asset`)."""
    path = download_asset(url)
    with trusted():
        return path.open("rb")
