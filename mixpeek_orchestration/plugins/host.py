"""The plugin host: the process, inside the OS sandbox, where plugin code runs.

``python -m mixpeek_orchestration.plugins.host`` is started by a supervisor
(:class:`~mixpeek_orchestration.sandbox.supervisor.PluginHostProcess`) inside the sandbox its
backend builds. First thing, before any thread exists, it applies Landlock to itself (when its
backend asks, ``MIXPEEK_HOST_LANDLOCK``), then connects its channel (an inherited descriptor,
``MIXPEEK_HOST_FD``, or a unix socket, ``MIXPEEK_HOST_SOCKET``), starts the egress forwarder when
it was given a proxy (``MIXPEEK_HOST_EGRESS``), and serves requests until the channel closes:

``open``
    load the plugin (``MIXPEEK_HOST_PLUGIN``) with its context and grants: the manifest import,
    under the runtime guard;
``inspect``
    what an upload's confirm checks (manifest, ``build_steps`` dry run);
``steps``, ``stage``, ``process``
    the steps ``build_steps`` makes of some parameters; one step set up as a stage; a batch
    (Arrow IPC in, Arrow IPC out) through a stage;
``realtime``, ``infer``, ``infer_batch``
    the realtime handler and its calls (concurrent requests are served concurrently);
``test``
    ``mixpeek plugin test``'s whole run.

Plugin code never sees the channel or the supervisor: it gets the SDK's context, whose host
services (namespace models) are calls over the channel that the supervisor answers.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from itertools import count
from pathlib import Path
from typing import Any


def _apply_landlock() -> None:
    spec = os.environ.get("MIXPEEK_HOST_LANDLOCK")
    if not spec:
        return
    from mixpeek_orchestration.sandbox import landlock
    from mixpeek_orchestration.sandbox.egress import FORWARD_PORT

    rules = json.loads(spec)
    landlock.restrict(ro=rules["ro"], rw=rules["rw"], tcp_ports=[FORWARD_PORT])


def _learn_view() -> None:
    view = os.environ.get("MIXPEEK_HOST_VIEW")
    if view:
        from mixpeek_orchestration.sandbox.guard import set_sandbox_view

        set_sandbox_view([*json.loads(view), os.environ.get("MIXPEEK_HOST_SCRATCH", "/scratch")])


def _channel() -> socket.socket:
    fd = os.environ.get("MIXPEEK_HOST_FD")
    if fd is not None:
        return socket.socket(fileno=int(fd))
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(os.environ["MIXPEEK_HOST_SOCKET"])
    return sock


class Host:
    """Serves one supervisor over ``sock``."""

    def __init__(self, sock: socket.socket) -> None:
        from mixpeek_orchestration.sandbox import channel

        self.sock = sock
        self.channel = channel
        self.send_lock = threading.Lock()
        self.root = Path(os.environ.get("MIXPEEK_HOST_PLUGIN", "/plugin"))
        self.scratch = Path(os.environ.get("MIXPEEK_HOST_SCRATCH", "/scratch"))
        self.runtime: Any = None
        self.stages: dict[int, Any] = {}
        self.adapter: Any = None
        # All plugin code runs on the loop's thread: batches one at a time (their frameworks
        # use the cores), async realtime handlers many at once (sync ones in threads). One
        # thread matters: an OpenMP runtime keeps a thread team per calling thread, and a model
        # called from two threads pays for two (measured: +4 ms a MiniLM query).
        self.loop = asyncio.new_event_loop()
        self.calls: dict[int, Future[tuple[dict[str, Any], bytes]]] = {}
        self.call_ids = count(1)

    # -- the channel --------------------------------------------------------------------------

    def serve(self) -> None:
        threading.Thread(target=self.loop.run_forever, name="host-loop", daemon=True).start()
        self.channel.send(self.sock, {"kind": "hello", "pid": os.getpid()}, lock=self.send_lock)
        while True:
            try:
                header, payload = self.channel.recv(self.sock)
            except self.channel.ChannelClosed:
                return
            if header.get("kind") == "reply":
                future = self.calls.pop(int(header["id"]), None)
                if future is not None:
                    future.set_result((header, payload))
                continue
            asyncio.run_coroutine_threadsafe(self._answer(header, payload), self.loop)

    async def _answer(self, header: dict[str, Any], payload: bytes) -> None:
        op = header.get("op", "")
        reply: dict[str, Any] = {"kind": "response", "id": header.get("id")}
        out = b""
        try:
            handler = getattr(self, f"op_{op}", None)
            if handler is None:
                raise ValueError(f"unknown request {op!r}")
            result = await handler(header, payload)
            if isinstance(result, tuple):
                result, out = result
            reply |= {"ok": True, **result}
        except BaseException as exc:  # every failure is an answer, never a dead host
            reply |= {"ok": False, "error": self.channel.error_header(_classified(exc))}
        self.channel.send(self.sock, reply, out, lock=self.send_lock)

    def call(self, kind: str, header: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
        """Ask the supervisor for a service (blocking the calling thread)."""
        call_id = next(self.call_ids)
        future: Future[tuple[dict[str, Any], bytes]] = Future()
        self.calls[call_id] = future
        self.channel.send(
            self.sock, {"kind": "call", "id": call_id, "call": kind, **header}, lock=self.send_lock
        )
        answer, payload = future.result(timeout=600)
        if not answer.get("ok"):
            self.channel.raise_error(answer.get("error") or {})
        return answer, payload

    def _llm_calls(self, request: dict[str, Any]) -> dict[str, Any]:
        """An ``sdk.llm`` call, made by the supervisor's gateway."""
        answer, _ = self.call("llm", {"request": request})
        return answer["result"]  # type: ignore[no-any-return]

    async def _compute(self, function: Callable[..., Any], *args: Any) -> Any:
        """Run plugin code on the loop's thread (blocking the loop while it runs)."""
        return function(*args)

    # -- requests -------------------------------------------------------------------------------

    async def op_ping(self, header: dict[str, Any], payload: bytes) -> dict[str, Any]:
        return {"pid": os.getpid()}

    async def op_open(self, header: dict[str, Any], payload: bytes) -> dict[str, Any]:
        self.runtime = await self._compute(self._open, header)
        description = self.runtime.manifest.describe()
        description["has_realtime"] = self.runtime.plugin.realtime_module is not None
        return {"description": description}

    def _open(self, header: dict[str, Any]) -> Any:
        from mixpeek_orchestration.plugins.runtime import PluginRuntime
        from mixpeek_orchestration.sdk._context import PluginContext

        context = PluginContext(
            org_id=header.get("org_id", "local"),
            namespace_id=header.get("namespace_id", "local"),
            scratch_dir=self.scratch / "work",
            secrets=_channel_secrets(self, header),
        )
        return PluginRuntime.open(
            self.root,
            context=context,
            allowed_hosts=header.get("allowed_hosts", ()),
            asset_url_prefixes=header.get("asset_url_prefixes", ()),
            models=_ChannelModels(self) if "model" in header.get("services", ()) else None,
            llm_calls=self._llm_calls if "llm" in header.get("services", ()) else None,
            proxy=_proxy_address(),
            dedicated_process=True,
        )

    async def op_inspect(self, header: dict[str, Any], payload: bytes) -> dict[str, Any]:
        return {"outcome": await self._compute(self._inspect, header)}

    def _inspect(self, header: dict[str, Any]) -> dict[str, Any]:
        from mixpeek_orchestration.errors import MixpeekError

        outcome: dict[str, Any] = {
            "passed": False, "stage": "manifest", "errors": [], "description": None,
        }  # fmt: skip
        try:
            self.runtime = self._open(header)
        except MixpeekError as exc:
            outcome["errors"] = exc.fields.get("errors") or [
                {"field": exc.fields.get("file", "plugin"), "message": exc.detail}
            ]
            return outcome
        runtime = self.runtime
        outcome["description"] = runtime.manifest.describe()
        outcome["description"]["has_realtime"] = runtime.plugin.realtime_module is not None
        if header.get("dry_run", True):
            outcome["stage"] = "pipeline"
            try:
                built = runtime.plugin.build_steps(None, context=runtime.context)
            except MixpeekError as exc:
                outcome["errors"] = exc.fields.get("errors") or [
                    {"field": "pipeline.py", "message": exc.detail}
                ]
                return outcome
            outcome["description"]["steps"] = [
                _step(s) | {"condition": s.condition.value} for s in built.steps
            ]
        outcome["passed"] = True
        return outcome

    async def op_steps(self, header: dict[str, Any], payload: bytes) -> dict[str, Any]:
        built = await self._compute(self._build, header)
        return {"steps": [_step(s) for s in built.steps]}

    def _build(self, header: dict[str, Any]) -> Any:
        return self.runtime.plugin.build_steps(
            header.get("parameters") or {},
            context=self.runtime.context,
            collection_id=header.get("collection_id"),
        )

    async def op_stage(self, header: dict[str, Any], payload: bytes) -> dict[str, Any]:
        index = int(header["index"])
        self.stages[index] = await self._compute(self._stage, header, index)
        return {"stage": index}

    def _stage(self, header: dict[str, Any], index: int) -> Any:
        from mixpeek_orchestration.batch.steps import OutputValidator, StepExecutor

        threads = header.get("threads")
        if threads:  # before the plugin's framework sizes its thread pools
            os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
            if "torch" in sys.modules:
                sys.modules["torch"].set_num_threads(int(threads))
        built = self._build(header)
        runtime = self.runtime
        return _Stage(
            StepExecutor(built.steps[index], guard=runtime.guard, context=runtime.context),
            built.prepare if index == 0 else None,
            OutputValidator(runtime.manifest) if index == int(header["steps"]) - 1 else None,
            runtime,
        )

    async def op_process(
        self, header: dict[str, Any], payload: bytes
    ) -> tuple[dict[str, Any], bytes]:
        stage = self.stages[int(header["stage"])]
        batch = self.channel.ipc_to_frame(payload)
        out = await self._compute(stage, batch)
        return {"rows": len(out)}, self.channel.frame_to_ipc(out)

    async def op_realtime(self, header: dict[str, Any], payload: bytes) -> dict[str, Any]:
        self.adapter = await self._compute(self.runtime.realtime)
        if self.adapter is None:
            from mixpeek_orchestration.errors import ErrorCode, MixpeekError

            raise MixpeekError(ErrorCode.INVALID_PLUGIN, "the plugin has no realtime.py handler")
        return {"batch_capable": self.adapter.batch_capable}

    async def op_infer(self, header: dict[str, Any], payload: bytes) -> dict[str, Any]:
        answer = await self.adapter(header.get("inputs") or {}, header.get("parameters") or {})
        return {"answer": answer}

    async def op_infer_batch(self, header: dict[str, Any], payload: bytes) -> dict[str, Any]:
        return {"answers": await self.adapter.call_batch(header.get("inputs") or [])}

    async def op_test(self, header: dict[str, Any], payload: bytes) -> dict[str, Any]:
        from mixpeek_orchestration.plugins.testing import run_plugin_test

        report = await asyncio.to_thread(  # one thread of its own: it runs its own event loop
            lambda: run_plugin_test(
                self.root,
                records=header.get("records"),
                parameters=header.get("parameters"),
                realtime_calls=int(header.get("realtime_calls", 5)),
                allowed_hosts=tuple(header.get("allowed_hosts", ())),
                models=_ChannelModels(self) if "model" in header.get("services", ()) else None,
                proxy=_proxy_address(),
                scratch=self.scratch / "work",
            )
        )
        return {"report": report.to_dict(full=True)}


class _Stage:
    """One step of a pipeline as a batch stage: ``prepare`` first, output checks last."""

    def __init__(self, executor: Any, prepare: Any, validator: Any, runtime: Any) -> None:
        self.executor, self.prepare, self.validator, self.runtime = (
            executor, prepare, validator, runtime,
        )  # fmt: skip

    def __call__(self, batch: Any) -> Any:
        from mixpeek_orchestration.batch.steps import apply_prepare, arrow_safe
        from mixpeek_orchestration.sdk._context import use_context

        if self.prepare is not None:
            with use_context(self.runtime.context), self.runtime.context.host.guarded():
                batch = apply_prepare(self.prepare, batch)
        size = max(1, int(self.executor.step.batch_size))
        if len(batch) <= size:
            out = self.executor(batch)
        else:  # a block larger than the step's batches (an earlier step's size): in slices
            import pandas as pd

            parts = [self.executor(batch.iloc[i : i + size]) for i in range(0, len(batch), size)]
            out = pd.concat(parts, ignore_index=True, sort=False)
        if self.validator is not None:
            out = self.validator(out)
        return arrow_safe(out)


def _channel_secrets(host: Host, header: dict[str, Any]) -> Any:
    """The manifest's secrets, each read through the channel when asked for (the supervisor
    checks the name and reads the organisation's store); without the service (an upload's
    check) declared secrets read as ``None``."""
    from mixpeek_orchestration.sdk._context import PluginSecrets

    declared = header.get("secrets")
    if "secret" not in header.get("services", ()):
        return PluginSecrets(declared=declared)
    declared = list(declared or [])

    def fetch(name: str) -> str:
        answer, _ = host.call("secret", {"name": name})
        return str(answer["value"])

    return PluginSecrets(declared=declared, fetch=fetch)


class _ChannelModels:
    """Namespace models through the channel: the supervisor fetches, verifies and mounts
    the file; the host gets its path inside the sandbox."""

    def __init__(self, host: Host) -> None:
        self.host = host

    def resolve(self, name: str) -> Path:
        answer, _ = self.host.call("model", {"name": name})
        return Path(answer["path"])


def _step(step: Any) -> dict[str, Any]:
    return {
        "name": step.name,
        "resource_type": step.resource_type.value,
        "batch_size": step.batch_size,
        "concurrency": step.concurrency,
        "num_gpus": step.num_gpus,
    }


def _proxy_address() -> tuple[str, int] | None:
    url = os.environ.get("HTTPS_PROXY")
    if not url:
        return None
    host, _, port = url.removeprefix("http://").rpartition(":")
    return host, int(port)


def _classified(exc: BaseException) -> BaseException:
    """A refusal by the sandbox itself (not the in-process guard) as ``blocked_by_sandbox``."""
    from mixpeek_orchestration.sandbox.guard import sandbox_refusal

    return sandbox_refusal(exc) or exc


def _start_egress() -> None:
    socket_path = os.environ.get("MIXPEEK_HOST_EGRESS")
    if not socket_path:
        return
    from mixpeek_orchestration.sandbox.egress import FORWARD_PORT, Forwarder

    # a private network namespace has its own loopback and a fixed port; without one, any port
    isolated = "MIXPEEK_HOST_LANDLOCK" in os.environ or "MIXPEEK_HOST_SOCKET" in os.environ
    forwarder = Forwarder(socket_path, port=FORWARD_PORT if isolated else 0)
    forwarder.start()
    for key in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        os.environ[key] = forwarder.url
    for key in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        os.environ.pop(key, None)


def main() -> int:
    _apply_landlock()  # before any thread: Landlock binds the calling thread and its children
    _learn_view()
    sock = _channel()
    _start_egress()
    Host(sock).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
