"""A plugin opened in a sandboxed host, as the platform side sees it.

:class:`PluginSession` is what a batch actor, a Serve replica, the API's upload check and
``mixpeek plugin test`` hold: the extracted plugin (read-only), a private scratch, the egress
proxy when the plugin may reach any host, and the host process
(:class:`~mixpeek_orchestration.sandbox.supervisor.PluginHostProcess`) that runs the plugin
inside the sandbox (:mod:`~mixpeek_orchestration.plugins.host` serves the other side). Every
method is one request over the host's channel; a crashed or hung host fails that request
(``plugin_host_crashed`` / ``plugin_timeout``) and is replaced for the next.

Example:
    >>> session = PluginSession.start(root, sandbox=SandboxConfig(), context={"org_id": "org_1"})
    >>> steps = session.steps({"threshold": 0.5})
    >>> out = session.process(session.stage({}, index=0, steps=1), batch)
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mixpeek_orchestration.sandbox import channel
from mixpeek_orchestration.sandbox.backends import Backend, HostSpec
from mixpeek_orchestration.sandbox.config import SandboxConfig
from mixpeek_orchestration.sandbox.egress import EgressProxy, EgressRules
from mixpeek_orchestration.sandbox.supervisor import PluginHostProcess, Service

if TYPE_CHECKING:
    import pandas as pd

    from mixpeek_orchestration.models.namespace import ModelSource
    from mixpeek_orchestration.tenancy.secrets import SecretSource

logger = logging.getLogger("mixpeek.plugin_host")


class PluginSession:
    """One plugin in one sandboxed host (see the module docstring)."""

    def __init__(
        self,
        host: PluginHostProcess,
        *,
        work_dir: Path,
        proxy: EgressProxy | None,
        timeout_s: float,
    ) -> None:
        self.host = host
        self.work_dir = work_dir
        self.proxy = proxy
        self.timeout_s = timeout_s

    @classmethod
    def start(
        cls,
        plugin_dir: Path,
        *,
        sandbox: SandboxConfig,
        allowed_hosts: Sequence[str] = (),
        asset_url_prefixes: Sequence[str] = (),
        models: ModelSource | None = None,
        secrets: SecretSource | None = None,
        llm: Service | None = None,
        work_dir: Path | None = None,
        devices: Sequence[str] = (),
    ) -> PluginSession:
        """A host for the plugin at ``plugin_dir`` (not started until the first request).

        Args:
            plugin_dir: the extracted plugin; mounted read-only.
            sandbox: the operator's sandbox choice and egress rules.
            allowed_hosts: hosts this plugin may reach besides the operator's (its manifest's
                ``egress_hosts``, ``--allow-host`` of a local test).
            asset_url_prefixes: the namespace's signed blob URL prefixes (downloadable).
            models: where namespace models come from (mounted read-only as they are fetched).
            secrets: where the organisation secrets the plugin declares are read (each value
                goes over the channel when plugin code asks for it).
            llm: the LLM gateway ``sdk.llm`` calls are made by (its request in, its answer
                out).
            work_dir: holds the scratch and the proxy socket (a new temp dir by default).
            devices: device nodes a GPU step needs.
        """
        from mixpeek_orchestration.models.cache import default_cache_dir, prepare_model_cache

        backend: Backend = sandbox.resolve()
        work = work_dir or Path(tempfile.mkdtemp(prefix="mixpeek-host-"))
        work.mkdir(parents=True, exist_ok=True)
        rules = EgressRules(
            allowed_hosts=tuple(sandbox.egress_hosts) + tuple(allowed_hosts),
            url_prefixes=tuple(asset_url_prefixes),
            denied_endpoints=sandbox.denied_endpoints,
        )
        proxy = None
        egress_dir = None
        if rules.enabled:
            egress_dir = work / "egress"
            egress_dir.mkdir(exist_ok=True)
            proxy = EgressProxy(egress_dir / "egress.sock", rules)
            proxy.start()
        # the bundled hub models, laid out outside the sandbox (inside they are read-only)
        model_cache = default_cache_dir()
        hf_home = prepare_model_cache(model_cache)
        ro_paths = [model_cache.resolve()]
        services: dict[str, Service] = {}
        if models is not None:
            models_dir = work / "models"
            models_dir.mkdir(exist_ok=True)
            ro_paths.append(models_dir)
            services["model"] = _model_service(models, models_dir)
        if secrets is not None:
            services["secret"] = lambda call: {"value": secrets.value(str(call.get("name", "")))}
        if llm is not None:
            services["llm"] = lambda call: {"result": llm(call.get("request") or {})}
        spec = HostSpec(
            plugin_dir=plugin_dir.resolve(),
            scratch_dir=work / "scratch",
            ro_paths=tuple(ro_paths),
            egress_dir=egress_dir,
            devices=tuple(devices),
            env={"MIXPEEK_MODEL_CACHE": str(model_cache.resolve()), "HF_HOME": str(hf_home)},
        )
        host = PluginHostProcess(backend, spec, services=services, log=logger)
        return cls(host, work_dir=work, proxy=proxy, timeout_s=sandbox.timeout_s)

    def _services(self) -> dict[str, list[str]]:
        """The services the host may ask for (``model``, ``secret``, ``llm``), as its ``open``
        and ``test`` headers say."""
        return {"services": sorted(self.host.services)}

    @property
    def backend(self) -> str:
        return self.host.backend.kind.value

    # -- requests -------------------------------------------------------------------------------

    def open(self, **context: Any) -> dict[str, Any]:
        """Load the plugin (its manifest import) with its context; returns its description.
        A replacement host is opened the same way."""
        answer = self.host.setup("open", {**context, **self._services()})
        return answer["description"]  # type: ignore[no-any-return]

    def inspect(self, *, dry_run: bool, **context: Any) -> dict[str, Any]:
        """What an upload's confirm checks: the manifest, and a ``build_steps`` dry run."""
        answer, _ = self.host.request(
            "inspect", {**context, "dry_run": dry_run}, timeout_s=self.timeout_s
        )
        return answer["outcome"]  # type: ignore[no-any-return]

    def steps(
        self, parameters: dict[str, Any], *, collection_id: str | None = None
    ) -> list[dict[str, Any]]:
        answer, _ = self.host.request(
            "steps",
            {"parameters": parameters, "collection_id": collection_id},
            timeout_s=self.timeout_s,
        )
        return answer["steps"]  # type: ignore[no-any-return]

    def stage(
        self,
        parameters: dict[str, Any],
        *,
        index: int,
        steps: int,
        collection_id: str | None = None,
        threads: int | None = None,
    ) -> int:
        """Set up step ``index`` of ``steps`` as a batch stage (again in a replacement host)."""
        answer = self.host.setup(
            "stage",
            {
                "parameters": parameters,
                "collection_id": collection_id,
                "index": index,
                "steps": steps,
                "threads": threads,
            },
        )
        return int(answer["stage"])

    def process(self, stage: int, batch: pd.DataFrame) -> pd.DataFrame:
        """One batch through a stage (rows that fail carry ``_error``)."""
        return channel.ipc_to_frame(self.process_ipc(stage, channel.frame_to_ipc(batch)))

    def process_ipc(self, stage: int, batch: bytes) -> bytes:
        """:meth:`process` for a batch already in Arrow IPC, answered in Arrow IPC: what an
        ingestion actor forwards without reading it."""
        _, out = self.host.request("process", {"stage": stage}, batch, timeout_s=self.timeout_s)
        return out

    def realtime(self) -> bool:
        """Set up the realtime handler; returns whether it takes batches."""
        return bool(self.host.setup("realtime")["batch_capable"])

    async def infer(
        self, inputs: dict[str, Any], parameters: dict[str, Any], *, timeout_s: float = 60.0
    ) -> dict[str, Any]:
        answer, _ = await self.host.arequest(
            "infer", {"inputs": inputs, "parameters": parameters}, timeout_s=timeout_s
        )
        return answer["answer"]  # type: ignore[no-any-return]

    async def infer_batch(
        self, inputs: list[dict[str, Any]], *, timeout_s: float = 60.0
    ) -> list[dict[str, Any]]:
        answer, _ = await self.host.arequest("infer_batch", {"inputs": inputs}, timeout_s=timeout_s)
        return answer["answers"]  # type: ignore[no-any-return]

    def test(self, **options: Any) -> dict[str, Any]:
        """``mixpeek plugin test``'s run inside the host; returns its report."""
        answer, _ = self.host.request(
            "test", {**options, **self._services()}, timeout_s=self.timeout_s
        )
        return answer["report"]  # type: ignore[no-any-return]

    @property
    def scratch_inside(self) -> str:
        """Where the scratch directory appears to the host."""
        return self.host.backend.scratch_mount(self.host.spec)

    def close(self) -> None:
        self.host.close()
        if self.proxy is not None:
            self.proxy.close()
        shutil.rmtree(self.work_dir, ignore_errors=True)

    def __enter__(self) -> PluginSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _model_service(models: ModelSource, target: Path) -> Service:
    """Fetch a namespace model (outside the sandbox) into the directory the host sees
    read-only, and answer its path there."""

    def serve(call: dict[str, Any]) -> dict[str, Any]:
        name = str(call.get("name", ""))
        source = models.resolve(name)  # checks the name
        local = target / name / source.name
        if not local.exists():
            local.parent.mkdir(parents=True, exist_ok=True)
            partial = local.with_name(local.name + ".part")
            if source.is_dir():  # a sentence-transformers directory
                shutil.rmtree(partial, ignore_errors=True)
                shutil.copytree(source, partial)
            else:
                shutil.copyfile(source, partial)
            partial.replace(local)
        return {"path": str(local)}

    return serve
