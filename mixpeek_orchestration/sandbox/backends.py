"""OS sandboxes a plugin host runs in: gVisor, bubblewrap, or (by explicit choice) none.

A backend turns a :class:`HostSpec` (the plugin directory, a private scratch, extra read-only
paths such as the model cache, the egress proxy's socket directory) into the command that starts
the host, ``python -m mixpeek_orchestration.plugins.host``, inside the sandbox:

* ``bwrap`` (bubblewrap): new user, mount, PID, network, IPC, UTS and cgroup namespaces, all
  capabilities dropped and nested user namespaces disabled (the host may run as root), a mount
  tree of read-only system, Python environment, platform package, plugin and model cache, a
  writable scratch and ``/tmp`` and nothing else (no data dir, no home, no other process's
  ``/proc``), a cleared environment, die-with-parent, the seccomp filter of
  :mod:`~mixpeek_orchestration.sandbox.seccomp`; the host then applies Landlock to itself.
* ``gvisor``: gVisor's ``runsc run`` over a generated OCI bundle with the same mounts, no
  network, no capabilities; the channel is a unix socket in a directory bound into the sandbox
  (``--host-uds=open``: this runsc forwards no other descriptors). The strongest local option,
  and the production model (plugin worker groups on a gVisor ``RuntimeClass``).
* ``none``: the host is an ordinary child process with a cleared environment; only the runtime
  guard stands between plugin code and the machine. An operator must choose it explicitly.

Inside bwrap and gVisor the plugin is at ``/plugin``, the scratch at ``/scratch`` and the egress
socket directory at ``/run/egress``; the host learns its paths from its environment.

Example:
    >>> backend = resolve_backend("auto")        # the strongest one that works here
    >>> launch = backend.launch(spec, channel_fd=child.fileno())
    >>> subprocess.Popen(launch.argv, env=launch.env, pass_fds=launch.pass_fds)
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Protocol

from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.health import ComponentHealth
from mixpeek_orchestration.sandbox import seccomp

logger = logging.getLogger(__name__)

HOST_MODULE = "mixpeek_orchestration.plugins.host"
PLUGIN_MOUNT, SCRATCH_MOUNT, EGRESS_MOUNT, CHANNEL_MOUNT = (
    "/plugin", "/scratch", "/run/egress", "/run/channel",
)  # fmt: skip
CHANNEL_SOCKET = "channel.sock"
EGRESS_SOCKET = "egress.sock"
# certificates for TLS through the egress proxy, and what the C library reads
SYSTEM_FILES = ("/etc/ssl", "/etc/ca-certificates", "/etc/localtime", "/etc/mime.types")
PASS_ENV = ("LANG", "LC_ALL", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "OMP_NUM_THREADS",
            "MKL_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES",
            "NVIDIA_DRIVER_CAPABILITIES", "LD_LIBRARY_PATH")  # fmt: skip
# what the CUDA driver reads besides its device nodes and libraries (under /usr, where the
# NVIDIA container toolkit also puts them): the PCI topology, for NVML
GPU_FILES = ("/sys",)


class SandboxBackend(str, Enum):
    GVISOR = "gvisor"
    BWRAP = "bwrap"
    NONE = "none"


@dataclass(frozen=True)
class HostSpec:
    """What one plugin host sees.

    Args:
        plugin_dir: the extracted plugin (read-only).
        scratch_dir: the host's private, writable directory.
        ro_paths: more read-only paths, mounted at the same place (the model cache).
        egress_dir: the directory holding the egress proxy's socket (``None``: no egress).
        devices: device nodes to pass through (a GPU step's ``/dev/nvidia*``).
        env: extra environment variables for the host (never a secret).
    """

    plugin_dir: Path
    scratch_dir: Path
    ro_paths: tuple[Path, ...] = ()
    egress_dir: Path | None = None
    devices: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Launch:
    """How to start a host: its command, environment and inherited descriptors, and the
    socket it will connect to when it cannot inherit one (gVisor)."""

    argv: list[str]
    env: dict[str, str]
    pass_fds: tuple[int, ...] = ()
    listen_path: Path | None = None
    cleanup: list[Path] = field(default_factory=list)
    close_after_start: tuple[int, ...] = ()
    stop_argv: list[str] | None = None  # what removes the sandbox once its process is gone


def gpu_devices(dev: Path = Path("/dev")) -> tuple[str, ...]:
    """The NVIDIA device nodes of this machine a GPU host needs: the control and unified-memory
    nodes and every ``nvidiaN`` (``CUDA_VISIBLE_DEVICES``, passed through, selects among them).
    Empty on a machine without the NVIDIA driver."""
    nodes = sorted(p for p in dev.glob("nvidia*") if p.is_char_device())
    caps = dev / "nvidia-caps"
    if caps.is_dir():
        nodes += sorted(p for p in caps.iterdir() if p.is_char_device())
    return tuple(str(p) for p in nodes)


def _installation() -> set[Path]:
    return {
        Path(sys.prefix),
        Path(sys.base_prefix),
        Path(os.path.realpath(sys.executable)).parents[1],
    }


def _source_package() -> Path | None:
    """The platform's own package when it runs from a source tree (an editable install, a
    checkout on ``PYTHONPATH``) rather than from the environment."""
    import mixpeek_orchestration

    package = Path(mixpeek_orchestration.__file__).resolve().parent
    if any(root in package.parents for root in _installation()):
        return None
    return package


def _python_roots() -> list[Path]:
    """What the interpreter needs: the environment, the base installation, the platform's own
    package (only that directory of a source tree)."""
    package = _source_package()
    return sorted(_installation() | ({package} if package else set()))


def _base_env(spec: HostSpec, *, plugin: str, scratch: str, egress: str | None) -> dict[str, str]:
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": scratch,
        "TMPDIR": f"{scratch}/tmp",
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
        "PYTHONUNBUFFERED": "1",
        "MIXPEEK_HOST_PLUGIN": plugin,
        "MIXPEEK_HOST_SCRATCH": scratch,
    }
    env |= {key: os.environ[key] for key in PASS_ENV if key in os.environ}
    package = _source_package()
    if package is not None:  # the host imports the platform from the same place
        env["PYTHONPATH"] = str(package.parent)
    if egress is not None:
        env["MIXPEEK_HOST_EGRESS"] = f"{egress}/{EGRESS_SOCKET}"
    return env | spec.env


def _system_binds() -> list[str]:
    """bwrap arguments for ``/usr`` (read-only) and the top-level directories that are links
    into it on merged-/usr systems (or are their own directories elsewhere)."""
    argv = ["--ro-bind", "/usr", "/usr"]
    for name in ("lib", "lib64", "bin", "sbin"):
        top = Path("/") / name
        if top.is_symlink():
            argv += ["--symlink", os.readlink(top).lstrip("/"), str(top)]
        elif top.is_dir():
            argv += ["--ro-bind", str(top), str(top)]
    return argv


def _view(spec: HostSpec, egress: str | None) -> list[str]:
    """The paths a sandboxed host sees, read-only (its scratch and /dev/shm come on top)."""
    return [
        "/usr", *SYSTEM_FILES, "/proc", "/dev/urandom", "/dev/random", "/dev/null", PLUGIN_MOUNT,
        *(str(p) for p in (*_python_roots(), *spec.ro_paths)), *spec.devices,
        *(GPU_FILES if spec.devices else ()), *([egress] if egress else []),
    ]  # fmt: skip


class Backend:
    kind: SandboxBackend
    isolated = True  # plugin code cannot see the machine beyond what it was given

    def available(self) -> str | None:
        """``None`` when this backend works here, else why not."""
        raise NotImplementedError

    def launch(self, spec: HostSpec, *, channel_fd: int) -> Launch:
        raise NotImplementedError

    def describe(self) -> str:
        return self.kind.value

    def scratch_mount(self, spec: HostSpec) -> str:
        """Where the host sees its scratch directory."""
        return SCRATCH_MOUNT


class NoSandbox(Backend):
    """The host as a plain child process (cleared environment, runtime guard only)."""

    kind = SandboxBackend.NONE
    isolated = False

    def available(self) -> str | None:
        return None

    def launch(self, spec: HostSpec, *, channel_fd: int) -> Launch:
        env = _base_env(
            spec,
            plugin=str(spec.plugin_dir),
            scratch=str(spec.scratch_dir),
            egress=str(spec.egress_dir) if spec.egress_dir else None,
        )
        env["MIXPEEK_HOST_FD"] = str(channel_fd)
        return Launch([sys.executable, "-m", HOST_MODULE], env, (channel_fd,))

    def describe(self) -> str:
        return "none (plugin code runs unsandboxed, under the runtime guard only)"

    def scratch_mount(self, spec: HostSpec) -> str:
        return str(spec.scratch_dir)


class Bubblewrap(Backend):
    kind = SandboxBackend.BWRAP

    def describe(self) -> str:
        return "bwrap (bubblewrap namespaces, seccomp filter, Landlock)"

    def __init__(self, binary: str = "bwrap") -> None:
        self.binary = shutil.which(binary) or binary

    @functools.cache  # noqa: B019 -- one probe per backend object (they live for the process)
    def available(self) -> str | None:
        if shutil.which(self.binary) is None:
            return "bubblewrap is not installed (Debian package bubblewrap)"
        if not seccomp.supported():
            return f"no seccomp filter for this architecture ({os.uname().machine})"
        probe = subprocess.run(
            [self.binary, "--unshare-all", "--unshare-user", "--disable-userns", "--cap-drop",
             "ALL", *_system_binds(), "--", "/usr/bin/true"],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        if probe.returncode != 0:
            return f"bwrap cannot create namespaces here: {probe.stderr.strip()[:300]}"
        return None

    def launch(self, spec: HostSpec, *, channel_fd: int) -> Launch:
        egress = EGRESS_MOUNT if spec.egress_dir else None
        env = _base_env(spec, plugin=PLUGIN_MOUNT, scratch=SCRATCH_MOUNT, egress=egress)
        env["MIXPEEK_HOST_FD"] = str(channel_fd)
        view = _view(spec, egress)
        env["MIXPEEK_HOST_VIEW"] = json.dumps(view)
        # not /tmp: only the scratch is writable (TMPDIR points into it)
        rw = [SCRATCH_MOUNT, "/dev/null", "/dev/shm", *spec.devices]
        env["MIXPEEK_HOST_LANDLOCK"] = json.dumps({"ro": view, "rw": rw})
        argv = [
            self.binary,
            "--unshare-all", "--unshare-user", "--disable-userns", "--cap-drop", "ALL",
            "--die-with-parent", "--new-session", "--hostname", "sandbox", *_system_binds(),
            # the kernel file systems first: a bind below /tmp must stay visible above them
            "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp",
        ]  # fmt: skip
        for path in (*SYSTEM_FILES, *(str(p) for p in _python_roots()), *map(str, spec.ro_paths)):
            argv += ["--ro-bind-try", path, path]
        argv += ["--ro-bind", str(spec.plugin_dir), PLUGIN_MOUNT]
        argv += ["--bind", str(spec.scratch_dir), SCRATCH_MOUNT]
        if spec.egress_dir is not None:
            argv += ["--ro-bind", str(spec.egress_dir), EGRESS_MOUNT]
        for device in spec.devices:
            argv += ["--dev-bind", device, device]
        for path in GPU_FILES if spec.devices else ():
            argv += ["--ro-bind-try", path, path]
        argv += ["--remount-ro", "/", "--chdir", SCRATCH_MOUNT, "--clearenv"]
        for key, value in env.items():
            argv += ["--setenv", key, value]
        filter_fd = seccomp.filter_fd()
        argv += ["--seccomp", str(filter_fd), "--", sys.executable, "-m", HOST_MODULE]
        return Launch(argv, {}, (channel_fd, filter_fd), close_after_start=(filter_fd,))


class GVisor(Backend):
    kind = SandboxBackend.GVISOR

    def __init__(
        self, binary: str = "runsc", *, platform: str = "ptrace", state_dir: Path | None = None
    ) -> None:
        self.binary = shutil.which(binary) or binary
        self.platform = platform
        self.state_dir = state_dir or Path(tempfile.gettempdir()) / "mixpeek-runsc"

    @functools.cache  # noqa: B019
    def available(self) -> str | None:
        if shutil.which(self.binary) is None:
            return "gVisor is not installed (Debian package runsc)"
        if os.geteuid() != 0:
            return "runsc needs root here"
        return None

    def describe(self) -> str:
        return f"gvisor (runsc, platform {self.platform})"

    @functools.cache  # noqa: B019
    def gpu_proxy(self) -> bool:
        """Whether this runsc has nvproxy, gVisor's NVIDIA driver proxy (GPU hosts need it)."""
        flags = subprocess.run(
            [self.binary, "flags"], capture_output=True, text=True, timeout=30, check=False
        )
        return "-nvproxy" in flags.stdout + flags.stderr

    def _devices(self, spec: HostSpec) -> tuple[list[str], list[dict[str, object]]]:
        """The runsc flags and OCI device entries that hand ``spec.devices`` to the sandbox."""
        if not spec.devices:
            return [], []
        if not self.gpu_proxy():
            raise MixpeekError(
                ErrorCode.INVALID_SETTINGS,
                f"this runsc ({self.binary}) has no nvproxy, so a GPU host cannot run under "
                "gVisor here: install a runsc with nvproxy, or run GPU workers with "
                "MIXPEEK_SANDBOX=bwrap",
                field="MIXPEEK_SANDBOX",
            )
        devices: list[dict[str, object]] = []
        for path in spec.devices:
            node = os.stat(path)
            devices.append(
                {"path": path, "type": "c", "major": os.major(node.st_rdev),
                 "minor": os.minor(node.st_rdev), "fileMode": 0o666, "uid": 0, "gid": 0}
            )  # fmt: skip
        return ["--nvproxy=true"], devices

    def launch(self, spec: HostSpec, *, channel_fd: int) -> Launch:
        gpu_flags, devices = self._devices(spec)
        bundle = Path(tempfile.mkdtemp(prefix="mixpeek-gvisor-"))
        channel_dir = bundle / "channel"
        channel_dir.mkdir()
        egress = EGRESS_MOUNT if spec.egress_dir else None
        env = _base_env(spec, plugin=PLUGIN_MOUNT, scratch=SCRATCH_MOUNT, egress=egress)
        env["MIXPEEK_HOST_SOCKET"] = f"{CHANNEL_MOUNT}/{CHANNEL_SOCKET}"
        env["MIXPEEK_HOST_VIEW"] = json.dumps([*_view(spec, egress), SCRATCH_MOUNT, CHANNEL_MOUNT])
        mounts = [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]},
            # read-only: only the scratch is writable (TMPDIR points into it)
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "ro"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev"]},
        ]  # fmt: skip

        def bind(source: str, target: str, mode: str = "ro") -> None:
            if os.path.exists(source):
                mounts.append(
                    {"destination": target, "type": "bind", "source": source,
                     "options": ["rbind", mode]}
                )  # fmt: skip

        for name in ("usr", "lib", "lib64", "bin", "sbin"):
            top = Path("/") / name
            bind(os.path.realpath(top), str(top))
        for path in (*SYSTEM_FILES, *(str(p) for p in _python_roots()), *map(str, spec.ro_paths)):
            bind(os.path.realpath(path), path)
        bind(str(spec.plugin_dir), PLUGIN_MOUNT)
        bind(str(spec.scratch_dir), SCRATCH_MOUNT, "rw")
        bind(str(channel_dir), CHANNEL_MOUNT)
        if spec.egress_dir is not None:
            bind(str(spec.egress_dir), EGRESS_MOUNT)
        (bundle / "rootfs").mkdir()
        config = {
            "ociVersion": "1.0.0",
            "process": {
                "terminal": False,
                "user": {"uid": 0, "gid": 0},
                "args": [sys.executable, "-m", HOST_MODULE],
                "env": [f"{k}={v}" for k, v in env.items()],
                "cwd": SCRATCH_MOUNT,
                "capabilities": {
                    k: [] for k in ("bounding", "effective", "inheritable", "permitted", "ambient")
                },
                "noNewPrivileges": True,
                "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 4096, "soft": 4096}],
            },
            "root": {"path": "rootfs", "readonly": True},
            "hostname": "sandbox",
            "mounts": mounts,
            "linux": {
                "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
                "devices": devices,
            },
        }
        (bundle / "config.json").write_text(json.dumps(config))
        self.state_dir.mkdir(parents=True, exist_ok=True)
        container = f"mixpeek-{uuid.uuid4().hex[:12]}"
        runsc = [self.binary, f"--root={self.state_dir}"]
        argv = [
            *runsc, f"--platform={self.platform}", "--network=none", "--host-uds=open",
            "--ignore-cgroups", *gpu_flags, "run", "--bundle", str(bundle), container,
        ]  # fmt: skip
        return Launch(
            argv,
            {},
            (),
            listen_path=channel_dir / CHANNEL_SOCKET,
            cleanup=[bundle],
            stop_argv=[*runsc, "delete", "--force", container],
        )


BACKENDS: dict[SandboxBackend, type[Backend]] = {
    SandboxBackend.GVISOR: GVisor,
    SandboxBackend.BWRAP: Bubblewrap,
    SandboxBackend.NONE: NoSandbox,
}
AUTO_ORDER = (SandboxBackend.BWRAP, SandboxBackend.GVISOR)
"""What ``auto`` tries, in order: bubblewrap (native speed, measured in ``bench/sandbox.py``),
then gVisor. gVisor is stronger, and the production model; choose it with
``MIXPEEK_SANDBOX=gvisor`` where its syscall cost is acceptable (on these VMs only its slow
ptrace platform works)."""


@functools.cache
def resolve_backend(choice: str, *, gvisor_platform: str = "ptrace") -> Backend:
    """The backend ``MIXPEEK_SANDBOX`` names (``auto``: the first of :data:`AUTO_ORDER` that
    works here). A named backend that does not work here, or ``auto`` with none working, is an
    error naming why: plugin code never runs unsandboxed unless ``none`` is chosen."""
    if choice == "auto":
        reasons = []
        for kind in AUTO_ORDER:
            backend = _build(kind, gvisor_platform)
            problem = backend.available()
            if problem is None:
                return backend
            reasons.append(f"{kind.value}: {problem}")
        raise MixpeekError(
            ErrorCode.INVALID_SETTINGS,
            "No plugin sandbox works on this machine ("
            + "; ".join(reasons)
            + "); install bubblewrap, or set MIXPEEK_SANDBOX=none to run plugins unsandboxed",
            field="MIXPEEK_SANDBOX",
        )
    try:
        kind = SandboxBackend(choice)
    except ValueError:
        raise MixpeekError(
            ErrorCode.INVALID_SETTINGS,
            f"MIXPEEK_SANDBOX={choice!r} is not one of auto, gvisor, bwrap, none",
            field="MIXPEEK_SANDBOX",
        ) from None
    backend = _build(kind, gvisor_platform)
    problem = backend.available()
    if problem is not None:
        raise MixpeekError(
            ErrorCode.INVALID_SETTINGS,
            f"MIXPEEK_SANDBOX={choice}: {problem}",
            field="MIXPEEK_SANDBOX",
        )
    if kind is SandboxBackend.NONE:
        logger.warning(
            "MIXPEEK_SANDBOX=none: plugin code runs WITHOUT an OS sandbox, under the in-process "
            "guard only. Never do this with plugins you do not trust."
        )
    return backend


def sandbox_health(config: SandboxConfigLike) -> ComponentHealth:
    """The plugin sandbox as a health component: which backend hosts run in (``none`` says
    plainly that plugin code runs unsandboxed)."""
    backend = resolve_backend(config.backend, gvisor_platform=config.gvisor_platform)
    if not backend.isolated:
        return ComponentHealth.ok(
            "NONE: plugin code runs without an OS sandbox (MIXPEEK_SANDBOX=none, the operator's "
            "choice); only the in-process guard applies"
        )
    return ComponentHealth.ok(f"plugin hosts run in {backend.describe()}")


class SandboxConfigLike(Protocol):
    @property
    def backend(self) -> str: ...

    @property
    def gvisor_platform(self) -> str: ...


def _build(kind: SandboxBackend, gvisor_platform: str) -> Backend:
    if kind is SandboxBackend.GVISOR:
        return GVisor(platform=gvisor_platform)
    return BACKENDS[kind]()
