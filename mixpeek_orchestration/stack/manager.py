"""The local stack: start every component that is not configured as external, wait for health.

``Stack.up()`` starts, in order: the metadata server (unless ``MIXPEEK_MONGO_URI`` is set), a Ray
head (unless ``MIXPEEK_RAY_ADDRESS`` is set), Ray Serve with the skeleton application, the API,
and the Dagster webserver and daemon. Each runs as its own detached process with its log under
``<data_dir>/logs``; ``Stack.down()`` stops what ``up`` started. Two stacks with different data
dirs and ports run side by side: every port a stack uses is either configured or picked free,
and recorded in ``<data_dir>/run/stack.json``.

Example:
    >>> stack = Stack(load_settings(data_dir="/tmp/mxp", api_port=8100))
    >>> state = stack.up()
    >>> state.urls["api"]
    'http://127.0.0.1:8100'
    >>> stack.down()
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import yaml

from mixpeek_orchestration.compute.ray_cluster import split_host_port, tcp_reachable
from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.health import ComponentHealth, check_all
from mixpeek_orchestration.platform import Platform
from mixpeek_orchestration.settings import MixpeekSettings
from mixpeek_orchestration.stack.processes import (
    free_port,
    port_in_use,
    process_create_time,
    process_matches,
    spawn,
    stop_process_tree,
    wait_until,
)
from mixpeek_orchestration.stack.state import ProcessRecord, StackState

# Stop order is the reverse of start order.
START_ORDER = ("metadata", "ray", "api", "dagster-code", "dagster-webserver", "dagster-daemon")
CODE_LOCATION_MODULE = "plugin_assets.definitions"
CODE_LOCATION = "plugin_assets"
CODE_SERVER_ENV = "MIXPEEK_DAGSTER_CODE_SERVER"

Reporter = Callable[[str], None]


def _bin(name: str) -> str:
    """A console script installed beside this interpreter (the venv's ``ray``, ``dagster-*``)."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise MixpeekError(ErrorCode.STACK_ERROR, f"`{name}` is not installed in this environment")
    return found


def workspace_yaml(
    *, executable: str | None = None, code_server: tuple[str, int] | None = None
) -> dict[str, object]:
    """The Dagster workspace of the ``plugin_assets`` code location: the code server at
    ``code_server`` (what ``mixpeek up`` runs: the webserver and the daemon share it, and it
    reloads when the platform's state changes), else the module loaded by each process."""
    if code_server is not None:
        host, port = code_server
        server = {"host": host, "port": port, "location_name": CODE_LOCATION}
        return {"load_from": [{"grpc_server": server}]}
    module: dict[str, object] = {
        "module_name": CODE_LOCATION_MODULE,
        "location_name": CODE_LOCATION,
    }
    if executable:
        module["executable_path"] = executable
    return {"load_from": [{"python_module": module}]}


def dagster_instance_yaml(dagster_home: Path) -> dict[str, object]:
    """Dagster instance config: SQLite storage under the data dir, queued runs, no telemetry."""
    return {
        "storage": {"sqlite": {"base_dir": str(dagster_home / "storage")}},
        "local_artifact_storage": {
            "module": "dagster.core.storage.root",
            "class": "LocalArtifactStorage",
            "config": {"base_dir": str(dagster_home / "artifacts")},
        },
        "run_coordinator": {
            "module": "dagster.core.run_coordinator",
            "class": "QueuedRunCoordinator",
            # Ingestion runs each start Ray actors with models: two at a time keep a small
            # machine responsive while deploy and plugin runs still get through.
            "config": {
                "max_concurrent_runs": 4,
                "tag_concurrency_limits": [
                    {"key": "mixpeek/kind", "value": "ingestion", "limit": 2}
                ],
                # a queued run starts within a second (the default looks every 5 s)
                "dequeue_interval_seconds": 1,
                "dequeue_use_threads": True,
            },
        },
        "telemetry": {"enabled": False},
        "code_servers": {"local_startup_timeout": 180},
        # the ingestion sensor waits for objects within its ticks: the others get workers too;
        # a tick's runs are created side by side (each is a few SQLite writes and two calls to
        # the code server), so a tick asking for six runs does not take six times as long
        "sensors": {"use_threads": True, "num_workers": 4, "num_submit_workers": 4},
    }


class Stack:
    """One local stack, identified by its data dir.

    Args:
        settings: the stack's settings; components with an external endpoint configured are
            checked, not started.
        report: called with one line per step (the CLI prints them).
    """

    kill_wait_s = 20.0
    """How long ``down`` waits for killed processes to be gone (a loaded machine is slow)."""

    def __init__(self, settings: MixpeekSettings, *, report: Reporter | None = None) -> None:
        self.settings = settings
        self.report = report or (lambda _line: None)

    # -- public --------------------------------------------------------------------------------

    def up(self, *, timeout_s: float = 240.0) -> StackState:
        """Start every local component, wait until all are healthy, and return the state.

        Components already running for this data dir are kept. If anything fails, the
        processes this call started are stopped again and a ``stack_error`` names the component.
        """
        s = self.settings
        for directory in (
            s.data_dir,
            s.logs_dir,
            s.run_dir,
            s.dagster_home,
            s.objects_dir,
            s.vectors_dir,
        ):
            directory.mkdir(parents=True, exist_ok=True)
        with self._lock():
            previous = StackState.load(s.run_dir)
            state = self._reuse(previous)
            started: list[str] = []
            try:
                self._preflight(state)
                self._start_metadata(state, started)
                self._start_ray(state, started)
                self._start_serve(state)
                self._write_dagster_files(state)
                self._start_api(state, started)
                self._start_dagster(state, started)
                state.save(s.run_dir)
                self._wait_healthy(state, timeout_s=timeout_s)
            except BaseException:
                for name in reversed(START_ORDER):
                    if name in started:
                        self._stop(name, state)
                if not state.processes:
                    StackState.path_for(s.run_dir).unlink(missing_ok=True)
                else:
                    state.save(s.run_dir)
                raise
            state.save(s.run_dir)
            return state

    def down(self) -> list[str]:
        """Stop every process ``up`` started for this data dir and check they are gone;
        returns the names stopped.

        A component with a process that would not stop keeps its record (and the processes
        left over) in the stack's state, and ``down`` fails naming them: running it again
        tries again, instead of losing track of them.
        """
        with self._lock():
            state = StackState.load(self.settings.run_dir)
            if state is None:
                return []
            stopped, stuck = [], {}
            for name in reversed(START_ORDER):
                if name in state.processes:
                    left = self._stop(name, state)
                    if left:
                        stuck[name] = left
                    else:
                        stopped.append(name)
            if stuck:
                state.save(self.settings.run_dir)
                raise MixpeekError(
                    ErrorCode.STACK_ERROR,
                    "could not stop "
                    + "; ".join(f"{n} (pids {', '.join(map(str, p))})" for n, p in stuck.items())
                    + ": run `mixpeek down` again",
                )
            StackState.path_for(self.settings.run_dir).unlink(missing_ok=True)
            return stopped

    def state(self) -> StackState | None:
        return StackState.load(self.settings.run_dir)

    def status(self) -> dict[str, ComponentHealth]:
        """Health of each component of the running stack (all ``error`` when it is down)."""
        state = self.state()
        if state is None:
            return {
                name: ComponentHealth.error("stack is not running (run `mixpeek up`)")
                for name in ("metadata", "objects", "vectors", "ray", "serve", "dagster", "api")
            }
        platform = Platform(self.settings_for(state))
        checks = platform.health_checks()
        checks["api"] = lambda: self._api_health(state)
        try:
            return check_all(checks)
        finally:
            platform.close()

    def settings_for(self, state: StackState) -> MixpeekSettings:
        """The settings the stack's processes run with (this stack's resolved endpoints)."""
        overrides = {
            key.removeprefix("MIXPEEK_").lower(): value
            for key, value in state.env.items()
            if key.startswith("MIXPEEK_")
        }
        return self.settings.model_copy(
            update=MixpeekSettings(**overrides).model_dump(exclude_unset=True)  # type: ignore[arg-type]
        )

    # -- steps ---------------------------------------------------------------------------------

    def _reuse(self, previous: StackState | None) -> StackState:
        s = self.settings
        state = StackState(data_dir=str(s.data_dir))
        state.env = {
            "MIXPEEK_DATA_DIR": str(s.data_dir),
            "MIXPEEK_HOST": s.host,
            "MIXPEEK_API_PORT": str(s.api_port),
            "MIXPEEK_SERVE_PORT": str(s.serve_port),
            "MIXPEEK_DAGSTER_PORT": str(s.dagster_port),
            "DAGSTER_HOME": str(s.dagster_home),
        }
        if s.mongo_uri:
            state.env["MIXPEEK_MONGO_URI"] = s.mongo_uri
        if s.ray_address:
            state.env["MIXPEEK_RAY_ADDRESS"] = s.ray_address
            if s.ray_dashboard_url:
                state.env["MIXPEEK_RAY_DASHBOARD_URL"] = s.ray_dashboard_url
        if s.dagster_url:
            state.env["MIXPEEK_DAGSTER_URL"] = s.dagster_url
        if previous is None:
            return state
        for name, record in previous.processes.items():
            if process_matches(record.pid, record.create_time):
                state.processes[name] = record
                self.report(f"{name}: already running (pid {record.pid})")
        # Endpoints of components that are still running stay as they were.
        if "metadata" in state.processes and "MIXPEEK_MONGO_URI" in previous.env:
            state.env["MIXPEEK_MONGO_URI"] = previous.env["MIXPEEK_MONGO_URI"]
        if "dagster-code" in state.processes and CODE_SERVER_ENV in previous.env:
            state.env[CODE_SERVER_ENV] = previous.env[CODE_SERVER_ENV]
        if "ray" in state.processes:
            for key in ("MIXPEEK_RAY_ADDRESS", "MIXPEEK_RAY_DASHBOARD_URL"):
                if key in previous.env:
                    state.env[key] = previous.env[key]
            state.ray_temp_dir = previous.ray_temp_dir
        state.started_at = previous.started_at
        return state

    def _preflight(self, state: StackState) -> None:
        """Fail fast on unreachable external components and on ports taken by someone else;
        pick the plugin sandbox (the strongest that works here, unless one is configured)."""
        s = self.settings
        backend = Platform(s).sandbox.resolve()  # a MixpeekError naming why none works
        self.report(f"sandbox: plugin hosts run in {backend.describe()}")
        state.env["MIXPEEK_SANDBOX"] = backend.kind.value  # every process uses the same one
        if s.mongo_uri:
            self.report(f"metadata: external at {s.mongo_uri}")
            self._require_healthy("metadata", Platform(s).metadata.health)
        if s.ray_address:
            self.report(f"ray: external at {s.ray_address}")
            host, port = split_host_port(s.ray_address)

            def ray_reachable() -> ComponentHealth:
                tcp_reachable(host, port)
                return ComponentHealth.ok()

            self._require_healthy("ray", ray_reachable)
        if s.s3_bucket:
            self.report(f"objects: external S3 bucket {s.s3_bucket}")
            self._require_healthy("objects", Platform(s).objects.health)
        if s.dagster_url:
            raise MixpeekError(
                ErrorCode.STACK_ERROR,
                "dagster: MIXPEEK_DAGSTER_URL points at an external Dagster; `mixpeek up` runs "
                "Dagster locally. Deploy plugin_assets to that instance instead (see README).",
                component="dagster",
            )
        owned = {
            "api": ("api", s.api_port, "MIXPEEK_API_PORT"),
            "dagster-webserver": ("dagster", s.dagster_port, "MIXPEEK_DAGSTER_PORT"),
        }
        for process, (component, port, variable) in owned.items():
            if process not in state.processes and port_in_use(s.host, port):
                raise MixpeekError(
                    ErrorCode.STACK_ERROR,
                    f"{component}: port {port} ({variable}) is already in use by another process",
                    component=component,
                    field=variable,
                )
        if "ray" not in state.processes and not s.ray_address and port_in_use(s.host, s.serve_port):
            raise MixpeekError(
                ErrorCode.STACK_ERROR,
                f"serve: port {s.serve_port} (MIXPEEK_SERVE_PORT) is already in use by another process",
                component="serve",
                field="MIXPEEK_SERVE_PORT",
            )

    def _require_healthy(self, component: str, check: Callable[[], ComponentHealth]) -> None:
        report = check_all({component: check}, timeout_s=15.0)[component]
        if report.status != "ok":
            raise MixpeekError(
                ErrorCode.STACK_ERROR,
                f"{component}: external service unreachable: {report.detail}",
                component=component,
            )

    def _start_metadata(self, state: StackState, started: list[str]) -> None:
        s = self.settings
        if s.mongo_uri or "metadata" in state.processes:
            return
        if importlib.util.find_spec("secantus") is None:
            raise MixpeekError(
                ErrorCode.STACK_ERROR,
                "metadata: no MIXPEEK_MONGO_URI is set and the local MongoDB-compatible server is "
                "not installed; `pip install 'mixpeek-orchestration[local]'` or set MIXPEEK_MONGO_URI",
                component="metadata",
            )
        port = free_port(s.host)
        s.metadata_dir.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable, "-m", "secantus",
            "--host", s.host,
            "--port", str(port),
            "--storage-path", str(s.metadata_dir),
            "--log-level", "WARNING",
        ]  # fmt: skip
        uri = f"mongodb://{s.host}:{port}"
        self._launch("metadata", command, state, started, env=os.environ)
        state.env["MIXPEEK_MONGO_URI"] = uri
        from mixpeek_orchestration.storage.metadata import MetadataStore

        store = MetadataStore(uri, s.mongo_database, timeout_ms=1000)
        try:
            self._wait("metadata", lambda: bool(store.ping()), state, timeout_s=60)
        finally:
            store.close()
        self.report(f"metadata: MongoDB-wire server at {uri} (data in {s.metadata_dir})")

    def _start_ray(self, state: StackState, started: list[str]) -> None:
        s = self.settings
        if s.ray_address or "ray" in state.processes:
            return
        # Ray puts Unix sockets under its temp dir, whose paths must stay short: keep it in /tmp,
        # named after the data dir, and link its logs into the data dir.
        digest = hashlib.sha256(str(s.data_dir).encode()).hexdigest()[:10]
        temp_dir = Path(tempfile.gettempdir()) / f"mixpeek-ray-{digest}"
        ports = {name: free_port(s.host) for name in (
            "port", "node-manager-port", "object-manager-port", "ray-client-server-port",
            "dashboard-agent-listen-port", "dashboard-agent-grpc-port", "runtime-env-agent-port",
            "metrics-export-port",
        )}  # fmt: skip
        ports["dashboard-port"] = s.ray_dashboard_port or free_port(s.host)
        command = [
            _bin("ray"), "start", "--head", "--block", "--disable-usage-stats",
            "--node-ip-address", s.host,
            "--dashboard-host", s.host,
            "--include-dashboard", "true",
            "--temp-dir", str(temp_dir),
            # Logical CPUs: a local stack oversubscribes a small machine rather than leaving
            # realtime replicas and batch actors pending on each other.
            "--num-cpus", str(s.ray_num_cpus or max(os.cpu_count() or 1, 4)),
            "--object-store-memory", str(s.ray_object_store_memory_mb * 1024 * 1024),
        ]  # fmt: skip
        for flag, port in ports.items():
            command += [f"--{flag}", str(port)]
        address = f"{s.host}:{ports['port']}"
        dashboard = f"http://{s.host}:{ports['dashboard-port']}"
        state.env["MIXPEEK_RAY_ADDRESS"] = address
        state.env["MIXPEEK_RAY_DASHBOARD_URL"] = dashboard
        # the stack's endpoints (metadata, data dir, ports) reach every Ray worker, as a
        # cluster's containers get them: the ingestion service builds its stores from them
        env = self._child_env(state)
        # Ray turns token authentication on by itself when a token file exists (~/.ray/auth_token,
        # left by any earlier `ray.init`), and drivers without RAY_AUTH_MODE=token are then
        # refused. The local head follows the operator's RAY_AUTH_MODE, off unless they set it.
        env.setdefault("RAY_AUTH_MODE", "disabled")
        self._launch("ray", command, state, started, env=env)
        state.ray_temp_dir = str(temp_dir)

        def gcs_ready() -> bool:
            return httpx.get(f"{dashboard}/api/gcs_healthz", timeout=2.0).status_code == 200

        self._wait("ray", gcs_ready, state, timeout_s=120)
        link = s.logs_dir / "ray"
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(temp_dir / "session_latest" / "logs")
        self.report(f"ray: head at {address}, dashboard {dashboard}")

    def _start_serve(self, state: StackState) -> None:
        """Start Serve on the cluster and deploy the skeleton app, from a short-lived driver."""
        s = self.settings
        log = s.logs_dir / "serve.log"
        with log.open("ab") as handle:
            result = subprocess.run(
                [sys.executable, "-m", "mixpeek_orchestration.platform.bootstrap"],
                env=self._child_env(state),
                stdout=handle,
                stderr=subprocess.STDOUT,
                timeout=300,
                check=False,
            )
        if result.returncode != 0:
            from mixpeek_orchestration.stack.processes import log_tail

            raise MixpeekError(
                ErrorCode.STACK_ERROR,
                f"serve: starting Ray Serve failed (log: {log})\n{log_tail(log)}",
                component="serve",
            )
        self.report(f"serve: HTTP proxy at {s.serve_url}, skeleton app at {s.serve_url}/skeleton")

    def _write_dagster_files(self, state: StackState) -> None:
        home = self.settings.dagster_home
        home.mkdir(parents=True, exist_ok=True)
        (home / "dagster.yaml").write_text(
            yaml.safe_dump(dagster_instance_yaml(home), sort_keys=False)
        )
        if CODE_SERVER_ENV not in state.env:
            state.env[CODE_SERVER_ENV] = f"{self.settings.host}:{free_port(self.settings.host)}"
        host, _, port = state.env[CODE_SERVER_ENV].rpartition(":")
        (home / "workspace.yaml").write_text(
            yaml.safe_dump(workspace_yaml(code_server=(host, int(port))), sort_keys=False)
        )

    def _start_api(self, state: StackState, started: list[str]) -> None:
        s = self.settings
        if "api" in state.processes:
            return
        command = [
            sys.executable, "-m", "uvicorn", "mixpeek_orchestration.api.app:create_app",
            "--factory", "--host", s.host, "--port", str(s.api_port),
            "--log-level", s.log_level.lower(), "--no-access-log",
        ]  # fmt: skip
        self._launch("api", command, state, started, env=self._child_env(state))

        def live() -> bool:
            return httpx.get(f"{s.api_url}/livez", timeout=2.0).status_code == 200

        self._wait("api", live, state, timeout_s=60)
        self.report(f"api: {s.api_url} (docs at {s.api_url}/docs)")

    def _start_dagster(self, state: StackState, started: list[str]) -> None:
        s = self.settings
        home = s.dagster_home
        workspace = str(home / "workspace.yaml")
        env = self._child_env(state)
        if "dagster-webserver" not in state.processes and "dagster-daemon" not in state.processes:
            # Create / migrate the SQLite instance storage once, before two processes race to do
            # it (concurrent first starts can leave two alembic heads and a broken instance).
            log = s.logs_dir / "dagster-migrate.log"
            with log.open("ab") as handle:
                result = subprocess.run(
                    [_bin("dagster"), "instance", "migrate"],
                    env=env, cwd=home, stdout=handle, stderr=subprocess.STDOUT, timeout=300, check=False,
                )  # fmt: skip
            if result.returncode != 0:
                from mixpeek_orchestration.stack.processes import log_tail

                raise MixpeekError(
                    ErrorCode.STACK_ERROR,
                    f"dagster: migrating the instance storage failed (log: {log})\n{log_tail(log)}",
                    component="dagster",
                )
        if "dagster-code" not in state.processes:
            host, _, port = state.env[CODE_SERVER_ENV].rpartition(":")
            command = [
                _bin("dagster"), "code-server", "start", "-h", host, "-p", port,
                "-m", CODE_LOCATION_MODULE, "--location-name", CODE_LOCATION,
                "--use-python-environment-entry-point", "--startup-timeout", "180",
            ]  # fmt: skip
            self._launch("dagster-code", command, state, started, env=env, cwd=home)
            self._wait("dagster-code", lambda: port_in_use(host, int(port)), state, timeout_s=180)
            self.report(f"dagster: code server at {host}:{port}")
        if "dagster-webserver" not in state.processes:
            command = [
                _bin("dagster-webserver"),
                "-h",
                s.host,
                "-p",
                str(s.dagster_port),
                "-w",
                workspace,
            ]
            self._launch("dagster-webserver", command, state, started, env=env, cwd=home)
        if "dagster-daemon" not in state.processes:
            command = [_bin("dagster-daemon"), "run", "-w", workspace]
            self._launch("dagster-daemon", command, state, started, env=env, cwd=home)

        def serving() -> bool:
            return httpx.get(f"{s.dagster_ui_url}/server_info", timeout=2.0).status_code == 200

        self._wait("dagster-webserver", serving, state, timeout_s=180)
        self.report(f"dagster: UI at {s.dagster_ui_url}")

    def _wait_healthy(self, state: StackState, *, timeout_s: float) -> None:
        platform = Platform(self.settings_for(state))
        last: dict[str, ComponentHealth] = {}

        def all_ok() -> bool:
            nonlocal last
            last = platform.health(timeout_s=10.0)
            return all(report.status == "ok" for report in last.values())

        try:
            wait_until(all_ok, name="stack", timeout_s=timeout_s, poll_s=1.0)
        except MixpeekError:
            failing = {n: r.detail for n, r in last.items() if r.status != "ok"}
            names = ", ".join(failing) or "unknown"
            raise MixpeekError(
                ErrorCode.STACK_ERROR,
                f"{names}: not healthy after {timeout_s:.0f}s: {failing}",
                component=names,
            ) from None
        finally:
            platform.close()
        s = self.settings
        state.urls = {
            "api": s.api_url,
            "api_docs": f"{s.api_url}/docs",
            "dagster": s.dagster_ui_url,
            "serve": s.serve_url,
        }
        if "MIXPEEK_RAY_DASHBOARD_URL" in state.env:
            state.urls["ray_dashboard"] = state.env["MIXPEEK_RAY_DASHBOARD_URL"]

    # -- helpers -------------------------------------------------------------------------------

    def _child_env(self, state: StackState) -> dict[str, str]:
        env = {**os.environ, **state.env, "RAY_USAGE_STATS_ENABLED": "0"}
        # Children must not inherit a `RAY_ADDRESS` that points elsewhere.
        env.pop("RAY_ADDRESS", None)
        return env

    def _launch(
        self,
        name: str,
        command: list[str],
        state: StackState,
        started: list[str],
        *,
        env: object,
        cwd: Path | None = None,
    ) -> None:
        log = self.settings.logs_dir / f"{name}.log"
        process = spawn(command, log_path=log, env=env, cwd=cwd)  # type: ignore[arg-type]
        state.processes[name] = ProcessRecord(
            pid=process.pid,
            create_time=process_create_time(process.pid),
            command=command,
            log=str(log),
        )
        started.append(name)
        self._popen = getattr(self, "_popen", {})
        self._popen[name] = process

    def _wait(
        self, name: str, check: Callable[[], bool], state: StackState, *, timeout_s: float
    ) -> None:
        popen = getattr(self, "_popen", {}).get(name)
        record = state.processes.get(name)
        wait_until(
            check,
            name=name,
            timeout_s=timeout_s,
            process=popen,
            log_path=Path(record.log) if record else None,
        )

    def _stop(self, name: str, state: StackState) -> list[int]:
        """Stop one component's process tree; the pids still alive (its record stays then)."""
        record = state.processes.get(name)
        if record is None:
            return []
        left = stop_process_tree(
            record.pid,
            record.create_time,
            grace_s=10.0 if name == "ray" else 6.0,
            leftovers=record.leftovers,
            kill_wait_s=self.kill_wait_s,
        )
        if left:
            record.leftovers = left
            self.report(f"{name}: {len(left)} process(es) would not stop")
            return [pid for pid, _ in left]
        state.processes.pop(name)
        self.report(f"{name}: stopped (pid {record.pid})")
        return []

    def _api_health(self, state: StackState) -> ComponentHealth:
        url = f"http://{state.env['MIXPEEK_HOST']}:{state.env['MIXPEEK_API_PORT']}"
        response = httpx.get(f"{url}/livez", timeout=3.0)
        if response.status_code != 200:
            return ComponentHealth.error(f"API answered HTTP {response.status_code}")
        return ComponentHealth.ok(f"API at {url}")

    @contextmanager
    def _lock(self) -> Iterator[None]:
        """Serialise ``up`` / ``down`` for one data dir across processes."""
        self.settings.run_dir.mkdir(parents=True, exist_ok=True)
        with (self.settings.run_dir / "stack.lock").open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
