"""Hosted-product import paths, resolved to the platform SDK while plugins load and run.

Archives written for the hosted product import ``engine.plugins.extractors.pipeline``,
``engine.inference.<provider>.<model>.services`` and ``shared.models.loader``. No packages named
``engine`` or ``shared`` are installed; instead :func:`install_compat_imports` puts a
meta-path finder in front of the import system of plugin-hosting processes (the CLI test runner,
batch actors, Serve replicas) that answers exactly those paths with thin alias modules over the
SDK. Anything else under ``engine.`` / ``shared.`` fails with an ImportError saying what exists.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import threading
import types
from collections.abc import Sequence

# Exact module aliases: hosted path -> platform module.
ALIASES: dict[str, str] = {
    "engine.plugins.extractors.pipeline": "mixpeek_orchestration.sdk._pipeline",
    "shared.models.loader": "mixpeek_orchestration.sdk._models",
    # Built-in inference services, by the hosted product's layout.
    "engine.inference.sentence_transformers.all_minilm_l6_v2.services": (
        "mixpeek_orchestration.extractors.text"
    ),
    "engine.inference.mixpeek.text_extractor.services": "mixpeek_orchestration.extractors.text",
    "engine.inference.mixpeek.image_extractor.services": "mixpeek_orchestration.extractors.image",
}
ROOTS = ("engine", "shared")


def _packages() -> set[str]:
    """Every dotted prefix of an alias: these become empty packages."""
    prefixes = set()
    for path in ALIASES:
        parts = path.split(".")
        for i in range(1, len(parts)):
            prefixes.add(".".join(parts[:i]))
    return prefixes


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, target: str | None) -> None:
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        module = types.ModuleType(spec.name)
        if self.target is None:
            module.__path__ = []  # an empty package: only its aliased children exist
            return module
        target = importlib.import_module(self.target)
        # only the target's public names: whatever else it imports stays out of reach
        public: list[str] = target.__all__  # type: ignore[attr-defined]  # every alias target has one
        for name in public:
            setattr(module, name, getattr(target, name))
        module.__all__ = list(public)  # type: ignore[attr-defined]
        module.__doc__ = f"Compatibility alias of {self.target} (its public names)."
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        return None


class CompatImportFinder(importlib.abc.MetaPathFinder):
    """Answers the hosted product's import paths (see :data:`ALIASES`)."""

    def __init__(self) -> None:
        self.packages = _packages()

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None = None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname.split(".", 1)[0] not in ROOTS:
            return None
        if fullname in ALIASES:
            return importlib.machinery.ModuleSpec(fullname, _AliasLoader(ALIASES[fullname]))
        if fullname in self.packages:
            return importlib.machinery.ModuleSpec(fullname, _AliasLoader(None), is_package=True)
        available = ", ".join(sorted(ALIASES))
        raise ModuleNotFoundError(
            f"{fullname} is not available in this self-hosted platform; compatible import paths "
            f"are: {available}",
            name=fullname,
        )


_lock = threading.Lock()


def install_compat_imports() -> None:
    """Install the finder in this process (idempotent)."""
    with _lock:
        if not any(isinstance(f, CompatImportFinder) for f in sys.meta_path):
            sys.meta_path.insert(0, CompatImportFinder())


def uninstall_compat_imports() -> None:
    """Remove the finder and any alias modules it created (tests use this)."""
    with _lock:
        sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, CompatImportFinder)]
        for name in [n for n in sys.modules if n.split(".", 1)[0] in ROOTS]:
            if isinstance(getattr(sys.modules[name], "__loader__", None), _AliasLoader):
                del sys.modules[name]
