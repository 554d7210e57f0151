"""The Ray Serve deployment hosting one plugin version's realtime handler.

A replica never reads a developer's tree or the platform's stores: it is given a presigned URL
of the version's archive and its sha256, downloads and verifies the bytes, extracts them through
the archive gate into its scratch directory, removes platform secrets from its environment, and
loads the plugin with :class:`PluginRuntime` under the runtime guard. Requests
(``{"inputs": {...}, "parameters": {...}}``) are answered by the handler; when it accepts lists
(``predict_batch``), concurrent requests are batched with ``@serve.batch``.

This module imports Ray Serve; only the deployer and replicas import it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from ray import serve
from starlette.requests import Request
from starlette.responses import JSONResponse

from mixpeek_orchestration.errors import ErrorCode, MixpeekError

logger = logging.getLogger("mixpeek.serve")
MAX_BATCH_SIZE = 32
BATCH_WAIT_S = 0.004


def _download(url: str, sha256: str, target: Path) -> None:
    import httpx

    digest = hashlib.sha256()
    with httpx.stream("GET", url, timeout=120) as response, target.open("wb") as out:
        if response.status_code != 200:
            raise RuntimeError(f"archive download answered HTTP {response.status_code}")
        for chunk in response.iter_bytes(1 << 20):
            digest.update(chunk)
            out.write(chunk)
    if digest.hexdigest() != sha256:
        raise RuntimeError(
            f"archive sha256 {digest.hexdigest()} does not match the registered {sha256}"
        )


def _error(exc: BaseException) -> JSONResponse:
    if isinstance(exc, MixpeekError):
        body = exc.to_response()
        status = exc.http_status if exc.code is not ErrorCode.INVALID_REQUEST else 400
    else:
        body = {
            "detail": f"handler raised {type(exc).__name__}: {exc}",
            "code": "plugin_runtime_error",
        }
        status = 500
    return JSONResponse(body, status_code=status)


@serve.deployment(name="plugin", health_check_period_s=10, health_check_timeout_s=30)
class PluginDeployment:
    """One plugin version's realtime handler, loaded from its archive."""

    def __init__(self, spec: dict[str, Any]) -> None:
        from mixpeek_orchestration.plugins.archive import extract_archive
        from mixpeek_orchestration.plugins.guard import scrubbed_environ
        from mixpeek_orchestration.plugins.runtime import PluginRuntime
        from mixpeek_orchestration.sdk.context import PluginContext

        start = time.perf_counter()
        self.plugin_id = spec["plugin_id"]
        scratch = Path(tempfile.mkdtemp(prefix=f"mixpeek-replica-{self.plugin_id}-"))
        archive = scratch / "archive.zip"
        _download(spec["archive_url"], spec["sha256"], archive)
        extracted = extract_archive(archive, scratch / "plugin")
        archive.unlink()
        # A replica is a dedicated process: its plugin never sees platform secrets.
        for key in set(os.environ) - set(scrubbed_environ()):
            del os.environ[key]
        context = PluginContext(
            org_id=spec["org_id"], namespace_id=spec["namespace_id"], scratch_dir=scratch / "work"
        )
        self.runtime = PluginRuntime.open(
            extracted.root,
            context=context,
            allowed_hosts=spec.get("allowed_hosts", ()),
            dedicated_process=True,
        )
        adapter = self.runtime.realtime()
        if adapter is None:
            raise MixpeekError(
                ErrorCode.INVALID_PLUGIN, f"{self.plugin_id} has no realtime.py handler"
            )
        self.adapter = adapter
        logger.info(
            "%s ready in %.2fs (batching: %s)",
            self.plugin_id,
            time.perf_counter() - start,
            adapter.batch_capable,
        )

    async def __call__(self, request: Request) -> JSONResponse:
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse(
                {"detail": "body must be JSON {inputs, parameters}", "code": "invalid_request"},
                status_code=400,
            )
        if not isinstance(body, dict) or not isinstance(body.get("inputs", {}), dict):
            return JSONResponse(
                {"detail": "inputs must be an object", "code": "invalid_request"}, status_code=400
            )
        inputs = body.get("inputs") or {}
        parameters = body.get("parameters") or {}
        try:
            if self.adapter.batch_capable and not parameters:
                result = await self._batched(inputs)
                if isinstance(result, Exception):
                    raise result
            else:
                result = await self.adapter(inputs, parameters)
        except Exception as exc:
            return _error(exc)
        return JSONResponse(result)

    @serve.batch(max_batch_size=MAX_BATCH_SIZE, batch_wait_timeout_s=BATCH_WAIT_S)
    async def _batched(self, inputs: list[dict[str, Any]]) -> list[Any]:
        try:
            return list(await self.adapter.call_batch(inputs))
        except Exception as exc:  # one failure answers every request of the batch with it
            return [exc for _ in inputs]

    def check_health(self) -> None:
        if self.adapter is None:
            raise RuntimeError("no realtime handler")


def build_application(spec: dict[str, Any], *, options: dict[str, Any]) -> Any:
    """The Serve application of one plugin version, with its resources and autoscaling."""
    return PluginDeployment.options(**options).bind(spec)
