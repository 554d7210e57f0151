"""What plugin code may import and call: the seed guide's rules are the floor.

Imports are denied by default: a module is importable only when its top-level package is in
:data:`ALLOWED_IMPORTS` (or an operator adds it through ``ScanPolicy.extra_allowed_imports``),
or it is the platform SDK / a hosted-product compatibility path, or it is the plugin's own module.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Top-level packages plugin code may import (seed guide, "Allowed Imports"), plus `os` whose
# harmless parts (os.path, os.environ.get) ordinary ML code uses; its dangerous functions are
# denied one by one by the scanner, and the runtime guard blocks them again at run time.
ALLOWED_IMPORTS: frozenset[str] = frozenset(
    {
        # data
        "numpy", "pandas", "polars", "pyarrow",
        # ML
        "torch", "transformers", "sentence_transformers", "onnxruntime", "safetensors",
        # image
        "PIL", "cv2", "imageio",
        # audio / video
        "librosa", "soundfile", "ffmpeg",
        # HTTP
        "requests", "httpx", "aiohttp",
        # utilities
        "json", "re", "typing", "dataclasses", "pydantic", "logging",
        # small, computational stdlib helpers ordinary plugins use (no file, process or
        # network access of their own)
        "math", "time", "datetime", "collections", "functools", "itertools", "enum", "abc",
        "uuid", "hashlib", "base64", "contextlib", "random", "statistics", "string",
        "textwrap", "typing_extensions", "__future__", "copy", "decimal", "fractions",
        "numbers", "bisect", "heapq", "warnings", "mimetypes",
        # restricted: only os.path, os.environ reads, os.getenv, os.cpu_count and constants
        "os",
    }
)  # fmt: skip

# Hosted-product import paths that resolve to the platform SDK while a plugin loads.
COMPAT_PREFIXES: tuple[str, ...] = (
    "engine.plugins.extractors.pipeline",
    "engine.inference",
    "shared.models.loader",
)
SDK_PREFIXES: tuple[str, ...] = ("mixpeek_orchestration.sdk",)

# Explicitly forbidden (seed guide, "Forbidden Imports"); reported with their own message.
FORBIDDEN_IMPORTS: frozenset[str] = frozenset(
    {
        "subprocess", "ctypes", "pty", "fcntl", "resource", "multiprocessing", "threading",
        "socket", "commands", "popen2",
    }
)  # fmt: skip

FORBIDDEN_BUILTINS: frozenset[str] = frozenset(
    {
        "eval", "exec", "compile", "open", "__import__", "globals", "locals", "vars",
        "getattr", "setattr", "delattr", "hasattr",
    }
)  # fmt: skip


@dataclass(frozen=True)
class ScanPolicy:
    """Operator knobs over the default rules.

    Args:
        extra_allowed_imports: top-level packages an operator allows beyond the defaults.
        strict: treat warnings as errors.
    """

    extra_allowed_imports: frozenset[str] = field(default_factory=frozenset)
    strict: bool = False

    def is_allowed_top_level(self, name: str) -> bool:
        return name in ALLOWED_IMPORTS or name in self.extra_allowed_imports
