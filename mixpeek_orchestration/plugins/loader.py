"""Load a plugin from its directory into an isolated module namespace.

Each load gets a fresh, unique package name (``_mixpeek_plugin_<name>_<id>``) whose
``__path__`` is the plugin's directory, so ``manifest``, ``pipeline``, ``realtime`` and
``processors.core`` of two plugins, or two versions of one, never collide in ``sys.modules``.
Relative imports (``from .manifest import metadata``) work as in a package, with or without an
``__init__.py``; absolute imports of the plugin's own modules (``from processors.core import X``)
are resolved while the plugin loads. Hosted-product import paths (``engine...``, ``shared...``)
resolve through :mod:`mixpeek_orchestration.plugins.compat`.

Plugin module code runs under the runtime guard when a policy is given.

Example:
    >>> plugin = load_plugin(Path("examples/plugins/text_embedder"))
    >>> plugin.manifest.plugin_id
    'text_embedder_1_0_0'
    >>> built = plugin.build_steps({"normalize": True})
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import re
import sys
import threading
import types
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.plugins.compat import install_compat_imports
from mixpeek_orchestration.sandbox.guard import GuardPolicy, guarded
from mixpeek_orchestration.sandbox.host_services import GuardedHost
from mixpeek_orchestration.sdk._context import PluginContainer, PluginContext, use_context
from mixpeek_orchestration.sdk._contracts import RealtimeAdapter, find_realtime_handler
from mixpeek_orchestration.sdk._manifest import PluginManifest, manifest_from_namespace
from mixpeek_orchestration.sdk._pipeline import (
    PipelineDefinition,
    PipelineStep,
    StepDefinition,
    build_pipeline_steps,
)

PACKAGE_PREFIX = "_mixpeek_plugin_"
_load_lock = threading.RLock()


@dataclass(frozen=True)
class ExtractorConfig:
    """``extractor_request.extractor_config`` as plugins see it."""

    parameters: dict[str, Any]
    feature_extractor_name: str
    version: str


@dataclass(frozen=True)
class ExtractorRequest:
    """The ``extractor_request`` argument of ``build_steps``."""

    extractor_config: ExtractorConfig
    namespace_id: str = "local"
    collection_id: str | None = None


@dataclass
class BuiltPipeline:
    """What ``build_steps`` produced: the steps to run and an optional ``prepare`` hook."""

    steps: list[PipelineStep]
    prepare: Callable[[Any], Any] | None = None
    parameters: dict[str, Any] = field(default_factory=dict)


class _OwnModuleFinder(importlib.abc.MetaPathFinder):
    """Resolves a plugin's absolute imports of its own modules while it loads."""

    def __init__(self, package: str, own: frozenset[str]) -> None:
        self.package = package
        self.own = own

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None = None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname.split(".", 1)[0] not in self.own:
            return None
        real = importlib.import_module(f"{self.package}.{fullname}")
        return importlib.util.spec_from_loader(fullname, _ExistingModuleLoader(real))


class _ExistingModuleLoader(importlib.abc.Loader):
    def __init__(self, module: types.ModuleType) -> None:
        self.module = module

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return self.module

    def exec_module(self, module: types.ModuleType) -> None:
        return None


def own_module_names(root: Path) -> frozenset[str]:
    """Top-level module and package names a plugin directory defines."""
    names = set()
    for entry in root.iterdir():
        if entry.name.startswith((".", "__pycache__")):
            continue
        if entry.is_file() and entry.suffix == ".py" and entry.stem != "__init__":
            names.add(entry.stem)
        elif entry.is_dir() and re.fullmatch(r"[A-Za-z_]\w*", entry.name):
            names.add(entry.name)
    return frozenset(names)


@dataclass
class LoadedPlugin:
    """A plugin loaded in this process."""

    root: Path
    package: str
    manifest: PluginManifest
    pipeline_module: types.ModuleType
    realtime_module: types.ModuleType | None
    guard: GuardPolicy | None = None

    def build_steps(
        self,
        parameters: Mapping[str, Any] | None = None,
        *,
        context: PluginContext | None = None,
        collection_id: str | None = None,
    ) -> BuiltPipeline:
        """Validate ``parameters`` and call the plugin's ``build_steps``.

        Raises:
            MixpeekError: ``invalid_parameters`` for parameters outside ``parameter_schema``;
                ``invalid_plugin`` when ``build_steps`` fails or returns something unusable.
        """
        validated = self.manifest.validate_parameters(parameters)
        context = context or PluginContext()
        request = ExtractorRequest(
            ExtractorConfig(validated, self.manifest.name, self.manifest.version),
            namespace_id=context.namespace_id,
            collection_id=collection_id,
        )
        build = getattr(self.pipeline_module, "build_steps", None)
        if not callable(build):
            raise MixpeekError(ErrorCode.INVALID_PLUGIN, "pipeline.py must define build_steps(...)")
        try:
            with guarded(self.guard):
                result = build(
                    request, container=PluginContainer.from_context(context), base_steps=None
                )
        except MixpeekError:
            raise
        except Exception as exc:
            raise MixpeekError(
                ErrorCode.INVALID_PLUGIN, f"build_steps failed: {type(exc).__name__}: {exc}"
            ) from exc
        return BuiltPipeline(_coerce_steps(result, self.manifest), _prepare(result), validated)

    def realtime_handler(self, *, context: PluginContext | None = None) -> RealtimeAdapter | None:
        """Instantiate ``realtime.py``'s handler (``None`` when the plugin has none); calls
        through the adapter run under this plugin's guard and ``context``."""
        if self.realtime_module is None:
            return None
        handler_class = find_realtime_handler(vars(self.realtime_module))
        if handler_class is None:
            raise MixpeekError(
                ErrorCode.INVALID_PLUGIN,
                "realtime.py defines no handler (a RealtimeHandler class with predict(request), "
                "or a class with async run_inference(inputs, parameters))",
            )
        if context is None:  # calls still run under this plugin's guard
            context = PluginContext()
            context.host = GuardedHost(self.guard, context.scratch_dir)
        try:
            with use_context(context), guarded(self.guard):
                handler = handler_class()
            return RealtimeAdapter(handler, context=context)
        except MixpeekError:
            raise
        except Exception as exc:
            raise MixpeekError(
                ErrorCode.INVALID_PLUGIN,
                f"realtime handler failed to start: {type(exc).__name__}: {exc}",
            ) from exc

    def unload(self) -> None:
        for name in [
            n for n in sys.modules if n == self.package or n.startswith(self.package + ".")
        ]:
            del sys.modules[name]


def _prepare(result: Any) -> Callable[[Any], Any] | None:
    prepare = result.get("prepare") if isinstance(result, dict) else None
    if prepare is not None and not callable(prepare):
        raise MixpeekError(ErrorCode.INVALID_PLUGIN, "build_steps 'prepare' must be callable")
    return prepare  # type: ignore[no-any-return]


def _coerce_steps(result: Any, manifest: PluginManifest) -> list[PipelineStep]:
    if not isinstance(result, dict) or "steps" not in result:
        raise MixpeekError(
            ErrorCode.INVALID_PLUGIN,
            f"build_steps must return {{'steps': [...], 'prepare': fn}}, got {type(result).__name__}",
        )
    steps = result["steps"]
    if not isinstance(steps, list) or not steps:
        raise MixpeekError(ErrorCode.INVALID_PLUGIN, "build_steps returned no steps")
    coerced: list[PipelineStep] = []
    for index, step in enumerate(steps):
        if isinstance(step, PipelineStep):
            coerced.append(step)
        elif isinstance(step, StepDefinition):
            pipeline = PipelineDefinition(manifest.name, manifest.version, [step])
            coerced.extend(build_pipeline_steps(pipeline))
        else:
            raise MixpeekError(
                ErrorCode.INVALID_PLUGIN,
                f"step {index} is a {type(step).__name__}; use StepDefinition / build_pipeline_steps",
            )
    return coerced


def load_plugin(
    root: Path,
    *,
    guard: GuardPolicy | None = None,
    require_manifest: bool = True,
) -> LoadedPlugin:
    """Import a plugin directory in an isolated namespace and validate its manifest.

    Args:
        root: the plugin directory (``manifest.py``, ``pipeline.py``, ...).
        guard: runtime guard policy for the plugin's module-level code.
        require_manifest: fail when ``manifest.py`` is missing.

    Raises:
        MixpeekError: ``invalid_plugin`` (import errors, missing files) or ``invalid_manifest``.
    """
    root = root.resolve()
    if not (root / "manifest.py").is_file():
        raise MixpeekError(ErrorCode.INVALID_PLUGIN, f"{root} has no manifest.py")
    if not (root / "pipeline.py").is_file():
        raise MixpeekError(ErrorCode.INVALID_PLUGIN, f"{root} has no pipeline.py")
    install_compat_imports()
    slug = re.sub(r"\W", "_", root.name.lower())[:40]
    package = f"{PACKAGE_PREFIX}{slug}_{uuid.uuid4().hex[:12]}"
    with _load_lock:
        _create_package(package, root)
        own = own_module_names(root)
        finder = _OwnModuleFinder(package, own - {"__init__"})
        sys.meta_path.insert(0, finder)
        try:
            with guarded(guard):
                manifest_module = _import(package, "manifest")
                manifest = manifest_from_namespace(vars(manifest_module))
                pipeline_module = _import(package, "pipeline")
                realtime_module = (
                    _import(package, "realtime") if (root / "realtime.py").is_file() else None
                )
        except BaseException:
            _drop(package)
            raise
        finally:
            sys.meta_path.remove(finder)
            for name in [n for n in sys.modules if n.split(".", 1)[0] in own]:
                if sys.modules[name].__name__.startswith(package):
                    del sys.modules[name]  # drop the temporary absolute aliases
    return LoadedPlugin(root, package, manifest, pipeline_module, realtime_module, guard)


def _create_package(package: str, root: Path) -> None:
    init = root / "__init__.py"
    if init.is_file():
        spec = importlib.util.spec_from_file_location(
            package, init, submodule_search_locations=[str(root)]
        )
    else:
        spec = importlib.machinery.ModuleSpec(package, None, is_package=True)
        spec.submodule_search_locations = [str(root)]
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[package] = module
    if init.is_file():
        assert spec.loader is not None
        spec.loader.exec_module(module)


def _import(package: str, name: str) -> types.ModuleType:
    try:
        return importlib.import_module(f"{package}.{name}")
    except MixpeekError:
        raise
    except Exception as exc:
        detail = f"{type(exc).__name__}: {exc}"
        raise MixpeekError(
            ErrorCode.INVALID_PLUGIN, f"Importing {name}.py failed: {detail}", file=f"{name}.py"
        ) from exc


def _drop(package: str) -> None:
    for name in [n for n in sys.modules if n == package or n.startswith(package + ".")]:
        del sys.modules[name]
