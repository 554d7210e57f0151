"""The platform side of a plugin host: start it in its sandbox, talk to it, replace it.

:class:`PluginHostProcess` owns one host process and its channel. Requests may be sent from any
thread (``request``) or event loop (``arequest``) and several may be in flight; a reader thread
matches answers to requests and answers the host's service calls (a namespace model) with the
``services`` it was given. When the host dies (a crash, the kernel's OOM killer, a kill after a
request ran past its time limit) every request in flight fails with ``plugin_host_crashed`` and
the next request starts a fresh host, replaying the setup requests (``open``, a stage...) the
owner registered, so a bad row or request costs its own answer and a host start, nothing more.

Example:
    >>> host = PluginHostProcess(resolve_backend("auto"), spec)
    >>> host.setup("open", {"org_id": "org_1", "namespace_id": "ns_1"})
    >>> answer, _ = host.request("steps", {"parameters": {}})
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from itertools import count
from pathlib import Path
from typing import Any

from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.sandbox import channel
from mixpeek_orchestration.sandbox.backends import Backend, HostSpec

logger = logging.getLogger(__name__)

START_TIMEOUT_S = 120.0
Service = Callable[[dict[str, Any]], dict[str, Any]]
"""Answers one kind of host call: ``{...call fields}`` -> ``{...reply fields}``."""


def _died(process: subprocess.Popen[bytes] | None, during: str) -> MixpeekError:
    code = process.poll() if process is not None else None
    if code is not None and code < 0:
        name = signal.Signals(-code).name
        why = f"killed by {name}" + (" (out of memory?)" if name == "SIGKILL" else "")
    elif code is not None:
        why = f"exited with status {code}"
    else:
        why = "stopped answering"
    return MixpeekError(
        ErrorCode.PLUGIN_HOST_CRASHED,
        f"The plugin host {why} during {during}; it is replaced for the next call",
        exit_status=code,
    )


class PluginHostProcess:
    """One sandboxed host process (started on first use, restarted after it dies).

    Args:
        backend: the sandbox it runs in.
        spec: its mounts and environment.
        services: answers to the host's calls, by kind (``{"model": ...}``).
        log: where the host's stdout / stderr lines go.
        start_timeout_s: how long a start may take (gVisor on ptrace is slow).
    """

    def __init__(
        self,
        backend: Backend,
        spec: HostSpec,
        *,
        services: dict[str, Service] | None = None,
        log: logging.Logger = logger,
        start_timeout_s: float = START_TIMEOUT_S,
    ) -> None:
        self.backend = backend
        self.spec = spec
        self.services = services or {}
        self.log = log
        self.start_timeout_s = start_timeout_s
        self.process: subprocess.Popen[bytes] | None = None
        self.sock: socket.socket | None = None
        self.starts = 0
        self.start_seconds: list[float] = []
        self._setup: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.RLock()
        self._send_lock = threading.Lock()
        self._pending: dict[int, Future[tuple[dict[str, Any], bytes]]] = {}
        self._ids = count(1)
        self._cleanup: list[Path] = []
        self._stop_argv: list[str] | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None and self.sock is not None

    def setup(self, op: str, header: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send ``op`` now and again to every host that replaces this one."""
        answer, _ = self.request(op, header)
        self._setup.append((op, dict(header or {})))
        return answer

    def _start(self) -> None:
        started = time.perf_counter()
        self.spec.scratch_dir.mkdir(parents=True, exist_ok=True)
        (self.spec.scratch_dir / "tmp").mkdir(exist_ok=True)
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        launch = self.backend.launch(self.spec, channel_fd=child.fileno())
        listener = None
        if launch.listen_path is not None:  # the host connects to us (no inherited fds)
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listener.bind(str(launch.listen_path))
            os.chmod(launch.listen_path, 0o666)
            listener.listen(1)
            listener.settimeout(self.start_timeout_s)
        try:
            self.process = subprocess.Popen(
                launch.argv,
                env=launch.env,
                pass_fds=launch.pass_fds,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            child.close()
            for fd in launch.close_after_start:
                os.close(fd)
        self._cleanup = launch.cleanup
        self._stop_argv = launch.stop_argv
        threading.Thread(target=self._drain, args=(self.process,), daemon=True).start()
        try:
            if listener is not None:
                parent.close()
                parent, _ = listener.accept()
                listener.close()
            parent.settimeout(self.start_timeout_s)
            header, _ = channel.recv(parent)
            if header.get("kind") != "hello":
                raise channel.ChannelClosed(f"unexpected first frame {header}")
        except (OSError, channel.ChannelClosed) as exc:
            self._kill()
            raise MixpeekError(
                ErrorCode.PLUGIN_HOST_CRASHED,
                f"The plugin host did not start in {self.backend.describe()}: {exc}",
            ) from None
        parent.settimeout(None)
        self.sock = parent
        self.starts += 1
        self.start_seconds.append(time.perf_counter() - started)
        threading.Thread(target=self._read, args=(parent,), name="host-reader", daemon=True).start()
        for op, header in self._setup:  # a replacement host is set up as the first one was
            self._send_and_wait(op, header, b"", timeout_s=None)

    def ensure_started(self) -> None:
        with self._lock:
            if not self.alive:
                self._kill()
                self._start()

    def _drain(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        for raw in process.stdout:
            line = raw.decode(errors="replace").rstrip()
            if line:
                self.log.info("[plugin host %s] %s", process.pid, line[:2000])

    def _read(self, sock: socket.socket) -> None:
        while True:
            try:
                header, payload = channel.recv(sock)
            except channel.ChannelClosed:
                break
            kind = header.get("kind")
            if kind == "response":
                future = self._pending.pop(int(header.get("id", -1)), None)
                if future is not None and not future.done():
                    future.set_result((header, payload))
            elif kind == "call":
                threading.Thread(target=self._serve_call, args=(sock, header), daemon=True).start()
        process = self.process
        if process is not None:  # the channel closes as the host dies: learn how it died
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(5)
        error = _died(process, "a request")
        for future in list(self._pending.values()):
            if not future.done():
                future.set_exception(error)
        self._pending.clear()

    def _serve_call(self, sock: socket.socket, header: dict[str, Any]) -> None:
        reply: dict[str, Any] = {"kind": "reply", "id": header.get("id")}
        service = self.services.get(str(header.get("call")))
        try:
            if service is None:
                raise MixpeekError(
                    ErrorCode.NOT_FOUND, f"the platform offers no {header.get('call')!r} here"
                )
            reply |= {"ok": True, **service(header)}
        except Exception as exc:
            reply |= {"ok": False, "error": channel.error_header(exc)}
        with contextlib.suppress(OSError):
            channel.send(sock, reply, lock=self._send_lock)

    # -- requests -------------------------------------------------------------------------------

    def _send(
        self, op: str, header: dict[str, Any], payload: bytes
    ) -> Future[tuple[dict[str, Any], bytes]]:
        request_id = next(self._ids)
        future: Future[tuple[dict[str, Any], bytes]] = Future()
        self._pending[request_id] = future
        sock = self.sock
        if sock is None:
            raise _died(self.process, op)
        try:
            channel.send(
                sock, {"kind": "request", "id": request_id, "op": op, **header}, payload,
                lock=self._send_lock,
            )  # fmt: skip
        except OSError:
            self._pending.pop(request_id, None)
            raise _died(self.process, op) from None
        return future

    def _send_and_wait(
        self, op: str, header: dict[str, Any], payload: bytes, *, timeout_s: float | None
    ) -> tuple[dict[str, Any], bytes]:
        future = self._send(op, header, payload)
        try:
            answer, out = future.result(timeout=timeout_s)
        except TimeoutError:
            raise self._timed_out(op, timeout_s) from None
        return self._checked(answer), out

    def _timed_out(self, op: str, timeout_s: float | None) -> MixpeekError:
        """Stop a host that ran past a request's time limit; the error its callers get."""
        self._kill()
        return MixpeekError(
            ErrorCode.PLUGIN_TIMEOUT,
            f"The plugin did not answer {op} within {timeout_s or 0:.0f}s; its host was stopped",
        )

    @staticmethod
    def _checked(answer: dict[str, Any]) -> dict[str, Any]:
        if not answer.get("ok"):
            channel.raise_error(answer.get("error") or {})
        return answer

    def request(
        self,
        op: str,
        header: dict[str, Any] | None = None,
        payload: bytes = b"",
        *,
        timeout_s: float | None = None,
    ) -> tuple[dict[str, Any], bytes]:
        """Send a request and wait for its answer (a ``MixpeekError`` for an error answer)."""
        self.ensure_started()
        return self._send_and_wait(op, dict(header or {}), payload, timeout_s=timeout_s)

    async def arequest(
        self,
        op: str,
        header: dict[str, Any] | None = None,
        payload: bytes = b"",
        *,
        timeout_s: float | None = None,
    ) -> tuple[dict[str, Any], bytes]:
        """:meth:`request` for an event loop: the loop never blocks on the host."""
        if not self.alive:
            await asyncio.to_thread(self.ensure_started)
        future = self._send(op, dict(header or {}), payload)
        try:
            answer, out = await asyncio.wait_for(asyncio.wrap_future(future), timeout_s)
        except TimeoutError:
            raise self._timed_out(op, timeout_s) from None
        return self._checked(answer), out

    # -- the end --------------------------------------------------------------------------------

    def _kill(self) -> None:
        process, self.process = self.process, None
        sock, self.sock = self.sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(10)
        if self._stop_argv is not None:
            subprocess.run(self._stop_argv, capture_output=True, timeout=30, check=False)
            self._stop_argv = None
        for path in self._cleanup:
            shutil.rmtree(path, ignore_errors=True)
        self._cleanup = []

    def close(self) -> None:
        """Stop the host and remove its scratch."""
        with self._lock:
            self._kill()
        shutil.rmtree(self.spec.scratch_dir, ignore_errors=True)

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self._kill()
