"""Helpers for plugin code: media tools, assets.

* :func:`run_tool` runs a pre-installed media tool (ffmpeg, ffprobe, exiftool, mediainfo,
  ImageMagick, sox) without a shell, in the plugin's scratch dir, with a scrubbed environment;
  it is the only way plugin code starts a process.
* :func:`download_asset` / :func:`open_asset` fetch a blob (a platform signed URL, an allowed
  host, or a local file the platform handed over) into the scratch dir.

Both are services of the plugin's host (:class:`~mixpeek_orchestration.sdk.PluginContext`'s
``host``), which checks every argument against the plugin's runtime guard policy before acting.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO

from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.sdk._context import ToolResult, current_context

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
"""Tool names plugins may run, each with the executables that provide it (first found wins)."""

__all__ = ["TOOLS", "ToolResult", "download_asset", "open_asset", "run_tool"]


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
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise MixpeekError(
            ErrorCode.INVALID_REQUEST, "run_tool arguments must be a list of strings"
        )
    return context.host.run_tool(name, list(args), timeout_s=timeout_s, stdin=stdin)


def download_asset(url: str, *, timeout_s: float = 120.0, max_bytes: int = 2 * 1024**3) -> Path:
    """Make a blob available as a local file in the scratch dir and return its path.

    ``url`` is what the platform put in the batch's ``data`` column for binary blobs: a signed
    URL of the platform's object store, a URL of an operator-allowed host, or a local path the
    platform staged.

    Example:
        >>> path = download_asset(batch["data"].iat[0])
        >>> image = PIL.Image.open(path)
    """
    if not isinstance(url, str) or not url:
        raise MixpeekError(ErrorCode.INVALID_REQUEST, "download_asset needs a URL or a path")
    return current_context().host.fetch_asset(url, timeout_s=timeout_s, max_bytes=max_bytes)


def open_asset(url: str) -> IO[bytes]:
    """Open a blob for reading (see :func:`download_asset`)."""
    return download_asset(url).open("rb")
