"""A plugin ready to run in this process: loaded, guarded, with its context.

:class:`PluginRuntime` is what every plugin host uses, the CLI's ``test``, batch actors and
realtime replicas, so a plugin runs the same way everywhere:

1. compatibility imports and the offline model cache are activated;
2. a scratch directory is created and ``TMPDIR`` points at it;
3. the plugin is loaded in an isolated namespace under the runtime guard;
4. steps and the realtime handler run under the same guard and plugin context.

Example:
    >>> runtime = PluginRuntime.open(Path("examples/plugins/my_extractor"))
    >>> runner, built = runtime.pipeline({"threshold": 0.7})
    >>> out, report = runner.run(sample_batch(sample_records(...), runtime.manifest))
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mixpeek_orchestration.batch.steps import PipelineRunner
from mixpeek_orchestration.models.cache import activate_model_cache
from mixpeek_orchestration.models.namespace import ModelSource
from mixpeek_orchestration.plugins.loader import BuiltPipeline, LoadedPlugin, load_plugin
from mixpeek_orchestration.sandbox.guard import GuardPolicy, install_guard
from mixpeek_orchestration.sandbox.host_services import GuardedHost
from mixpeek_orchestration.sdk._context import PluginContext
from mixpeek_orchestration.sdk._contracts import RealtimeAdapter
from mixpeek_orchestration.sdk._manifest import PluginManifest


@dataclass
class PluginRuntime:
    plugin: LoadedPlugin
    context: PluginContext
    guard: GuardPolicy | None

    @classmethod
    def open(
        cls,
        root: Path,
        *,
        context: PluginContext | None = None,
        guard: bool = True,
        protected_roots: Iterable[Path] = (),
        allowed_hosts: Iterable[str] = (),
        asset_url_prefixes: Iterable[str] = (),
        models: ModelSource | None = None,
        llm_calls: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        proxy: tuple[str, int] | None = None,
        model_cache: Path | None = None,
        dedicated_process: bool = False,
    ) -> PluginRuntime:
        """Load the plugin at ``root`` for running.

        Args:
            root: the plugin directory (an extracted archive, never a developer's tree in
                production).
            context: namespace and secrets of the caller (a local one by default); its
                ``host`` is set here, from the guard and the arguments below.
            guard: install the runtime guard (always, except in trusted platform tests).
            protected_roots: directories plugin code may not read (the platform data dir).
            allowed_hosts: hosts plugin code may connect to.
            asset_url_prefixes: URL prefixes of the platform's object store (its signed URLs
                of the namespace's blobs), which ``download_asset`` may fetch.
            models: where ``load_namespace_model`` finds the namespace's models.
            llm_calls: where ``sdk.llm`` calls go (the platform's gateway, over the channel).
            proxy: the egress forwarder's address, the one local endpoint plugin code reaches.
            model_cache: the offline model cache directory.
            dedicated_process: this process exists to run the plugin (a batch actor, a
                replica, the CLI): point ``TMPDIR`` at the scratch dir so libraries' temporary
                files land where the guard lets them write.
        """
        cache_home = activate_model_cache(model_cache)
        context = context or PluginContext(
            scratch_dir=Path(tempfile.mkdtemp(prefix="mixpeek-plugin-"))
        )
        context.scratch_dir.mkdir(parents=True, exist_ok=True)
        policy = None
        if guard:
            install_guard()
            policy = GuardPolicy(
                scratch_dir=context.scratch_dir,
                protected_roots=tuple(protected_roots),
                readable_roots=(root.resolve(), cache_home.resolve()),
                allowed_hosts=frozenset(allowed_hosts),
                proxy=proxy,
                plugin_root=root.resolve(),
            )
        context.host = GuardedHost(
            policy,
            context.scratch_dir,
            asset_url_prefixes=tuple(asset_url_prefixes),
            models=models,
            llm_calls=llm_calls,
        )
        if dedicated_process:
            os.environ["TMPDIR"] = str(context.scratch_dir)
            tempfile.tempdir = None
        plugin = load_plugin(root, guard=policy)
        return cls(plugin, context, policy)

    @property
    def manifest(self) -> PluginManifest:
        return self.plugin.manifest

    def pipeline(
        self, parameters: Mapping[str, Any] | None = None, *, collection_id: str | None = None
    ) -> tuple[PipelineRunner, BuiltPipeline]:
        """Build the plugin's steps for ``parameters`` and a runner over them."""
        built = self.plugin.build_steps(
            parameters, context=self.context, collection_id=collection_id
        )
        runner = PipelineRunner(built.steps, self.manifest, guard=self.guard, context=self.context)
        return runner, built

    def realtime(self) -> RealtimeAdapter | None:
        return self.plugin.realtime_handler(context=self.context)
