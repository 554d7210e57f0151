"""Runtime guard: what plugin code may do while it runs, enforced by a PEP 578 audit hook.

Static scanning is not a sandbox. Wherever plugin code runs (the CLI's test runner, batch actors,
realtime replicas) the platform enters :func:`guarded` around it; while a thread is guarded the
audit hook refuses:

* process spawning (``subprocess``, ``os.system``, ``os.exec*``, ``os.posix_spawn``, ``fork``,
  ``pty.spawn``);
* network connections except to operator-allowed hosts (``socket.getaddrinfo`` / ``connect``
  / ``sendto``; binding a socket is never allowed);
* writes, renames, deletes and permission changes outside the plugin's scratch directory;
* reads under protected roots (the platform data dir: other tenants' data, keys, metadata) and
  of process secrets (``/proc/*/environ``, ``/proc/*/mem``);
* loading native code from writable places (``ctypes.dlopen`` under the scratch or data dir);
* unpickling globals from modules that execute code (``os``, ``subprocess``, ``builtins``...).

A refused action raises :class:`GuardViolation` (a ``MixpeekError`` with code
``blocked_by_guard``) inside the plugin call; the step runner records it as that row's error and
the realtime path answers it as a 403. Threads started while guarded inherit the guard.
Platform helpers that must act on the plugin's behalf (``run_tool``, ``download_asset``) lift it
with :func:`trusted`. Secrets are kept out of reach by :func:`scrubbed_environ`.

This is defence in depth inside one process; production adds kernel-level isolation (a gVisor
runtime class for the plugin worker groups, see docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import errno
import fnmatch
import functools
import ipaddress
import logging
import os
import re
import socket
import sys
import threading
import weakref
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mixpeek_orchestration.errors import ErrorCode, MixpeekError

logger = logging.getLogger(__name__)

_SPAWN_EVENTS = frozenset(
    {
        "subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork",
        "os.forkpty", "pty.spawn", "os.startfile", "os.kill", "os.killpg",
    }
)  # fmt: skip
_PATH_WRITE_EVENTS = {
    # event -> indexes of path arguments that are written
    "os.remove": (0,), "os.rename": (0, 1), "os.mkdir": (0,), "os.rmdir": (0,),
    "os.chmod": (0,), "os.chown": (0,), "os.symlink": (0, 1), "os.link": (0, 1),
    "os.truncate": (0,), "os.utime": (0,), "shutil.rmtree": (0,), "shutil.copyfile": (1,),
    "shutil.copytree": (1,), "shutil.move": (0, 1), "os.chflags": (0,), "os.mkfifo": (0,),
    "os.mknod": (0,), "os.setxattr": (0,), "os.removexattr": (0,),
}  # fmt: skip
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_SECRET_PROC = re.compile(r"^/proc/(self|thread-self|\d+)(/task/\d+)?/(environ|mem|maps|auxv)$")
_UNPICKLE_DENIED = frozenset(
    {
        "os", "posix", "nt", "subprocess", "builtins", "sys", "importlib", "ctypes", "socket",
        "shutil", "pty", "runpy", "code", "pickle", "_pickle", "marshal", "types", "io", "_io",
        "multiprocessing", "threading", "_thread", "signal", "webbrowser", "eval", "exec",
    }
)  # fmt: skip
_SECRET_ENV = re.compile(
    r"^(MIXPEEK_.*|AWS_.*|AZURE_.*|GOOGLE_.*|GCP_.*|DAGSTER_.*|RAY_ADDRESS|.*SECRET.*|.*TOKEN.*"
    r"|.*PASSWORD.*|.*PASSWD.*|.*API_KEY.*|.*_KEY|.*CREDENTIALS.*|MONGO.*|DATABASE_URL|REDIS_URL)$",
    re.IGNORECASE,
)
_KEEP_ENV = frozenset(
    {"HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HOME", "SENTENCE_TRANSFORMERS_HOME"}
)


class GuardViolation(MixpeekError, PermissionError):
    """A plugin tried something its runtime guard does not allow.

    It is also a ``PermissionError``, so libraries that tolerate an unwritable cache or a
    refused file (as they would under a read-only file system) keep working.
    """

    def __init__(self, action: str, detail: str) -> None:
        super().__init__(
            ErrorCode.BLOCKED_BY_GUARD,
            f"Blocked by the plugin runtime guard: {detail}",
            action=action,
        )


@dataclass(frozen=True)
class GuardPolicy:
    """What guarded plugin code may touch (immutable: nothing can widen it once it is built).

    Args:
        scratch_dir: the only place it may write (its temp dir; ``TMPDIR`` points here).
        protected_roots: directories it may not read (the platform data dir, other tenants').
        readable_roots: exceptions inside ``protected_roots`` (its own code, the model cache).
        allowed_hosts: hostnames / IPs / CIDRs / ``*.suffix`` patterns it may connect to.
        allow_spawn: let it start processes (never for uploaded plugins).
        proxy: the egress forwarder's ``(host, port)``: the one local endpoint it may reach.
        plugin_root: the plugin's own files: native code reached from them is refused.
    """

    scratch_dir: Path
    protected_roots: tuple[Path, ...] = ()
    readable_roots: tuple[Path, ...] = ()
    allowed_hosts: frozenset[str] = frozenset()
    allow_spawn: bool = False
    proxy: tuple[str, int] | None = None
    plugin_root: Path | None = None

    def __post_init__(self) -> None:
        real = functools.partial(object.__setattr__, self)
        real("scratch_dir", Path(os.path.realpath(self.scratch_dir)))
        real("protected_roots", tuple(Path(os.path.realpath(p)) for p in self.protected_roots))
        real("readable_roots", tuple(Path(os.path.realpath(p)) for p in self.readable_roots))
        real("allowed_hosts", frozenset(self.allowed_hosts))

    def may_connect(self, host: str, port: int) -> bool:
        if self.proxy is not None and host == self.proxy[0]:
            return port == self.proxy[1]
        return self.host_allowed(host)

    def host_allowed(self, host: str) -> bool:
        host = host.strip("[]").lower()
        if self.proxy is not None and host == self.proxy[0]:
            return True  # resolving the proxy's address; connecting is checked by port
        for pattern in self.allowed_hosts:
            pattern = pattern.lower()
            if host == pattern or fnmatch.fnmatch(host, pattern):
                return True
            try:
                if ipaddress.ip_address(host) in ipaddress.ip_network(pattern, strict=False):
                    return True
            except ValueError:
                continue
        return host in _RESOLVED.get(self, ())

    def may_write(self, path: Path) -> bool:
        return _is_under(path, (self.scratch_dir,)) or str(path) == os.devnull

    def may_read(self, path: Path) -> bool:
        if _SECRET_PROC.match(str(path)):
            return False
        if _is_under(path, (self.scratch_dir, *self.readable_roots)):
            return True
        return not _is_under(path, self.protected_roots)


def _is_under(path: Path, roots: tuple[Path, ...]) -> bool:
    return any(path == root or root in path.parents for root in roots)


def _resolve(path: Any) -> Path | None:
    if isinstance(path, int):
        return None  # an already-open descriptor: checked when it was opened
    try:
        raw = os.fsdecode(os.fspath(path))
    except TypeError:
        return None
    return Path(os.path.realpath(raw))


_CTYPES_EVENTS = frozenset(
    {
        "ctypes.dlsym", "ctypes.dlsym/handle", "ctypes.cdata", "ctypes.cdata/buffer",
        "ctypes.addressof", "ctypes.string_at", "ctypes.wstring_at", "ctypes.call_function",
        "ctypes.create_string_buffer", "ctypes.create_unicode_buffer", "ctypes.PyObj_FromPtr",
        "ctypes.set_errno", "ctypes.set_last_error", "ctypes.seh_exception",
    }
)  # fmt: skip


def _called_from_plugin(policy: GuardPolicy) -> bool:
    """Whether the nearest caller outside ctypes and this module is the plugin's own code."""
    if policy.plugin_root is None:
        return False
    root = str(policy.plugin_root) + os.sep
    frame = sys._getframe(2)
    while frame is not None:
        filename = frame.f_code.co_filename
        if filename.startswith(root):
            return True
        if not (filename == __file__ or os.sep + "ctypes" + os.sep in filename):
            return False  # a library (or the platform) is the one calling
        frame = frame.f_back  # type: ignore[assignment]
    return False


class _State(threading.local):
    policy: GuardPolicy | None = None
    trusted: int = 0
    in_hook: bool = False


_state = _State()
_install_lock = threading.Lock()
_installed = False


def _audit(event: str, args: tuple[Any, ...]) -> None:
    policy = _state.policy
    if policy is None or _state.trusted or _state.in_hook:
        return
    _state.in_hook = True
    try:
        _check(policy, event, args)
    finally:
        _state.in_hook = False


def _check(policy: GuardPolicy, event: str, args: tuple[Any, ...]) -> None:
    if event in _SPAWN_EVENTS:
        if not policy.allow_spawn:
            raise GuardViolation("spawn", f"starting processes is not allowed ({event})")
    elif event == "open":
        path, mode, flags = (list(args) + [None, None, None])[:3]
        target = _resolve(path)
        if target is None:
            return
        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and bool(flags & _WRITE_FLAGS)
        )
        if writing and not policy.may_write(target):
            raise GuardViolation(
                "write", f"writing {target} (only {policy.scratch_dir} is writable)"
            )
        if not writing and not policy.may_read(target):
            raise GuardViolation("read", f"reading {target} is not allowed")
    elif event in _PATH_WRITE_EVENTS:
        for index in _PATH_WRITE_EVENTS[event]:
            if index < len(args):
                target = _resolve(args[index])
                if target is not None and not policy.may_write(target):
                    raise GuardViolation("write", f"{event} on {target} (outside the scratch dir)")
    elif event == "socket.getaddrinfo":
        host = args[0]
        if isinstance(host, bytes):
            host = host.decode(errors="replace")
        if host and not policy.host_allowed(str(host)):
            raise GuardViolation("network", f"network access to {host} is not allowed")
        if host:
            _remember_ips(policy, str(host))
    elif event in ("socket.connect", "socket.sendto", "socket.sendmsg"):
        address = args[1] if len(args) > 1 else None
        if isinstance(address, tuple) and address:
            host = str(address[0])
            port = int(address[1]) if len(address) > 1 else 0
            if not policy.may_connect(host, port):
                raise GuardViolation("network", f"connecting to {host}:{port} is not allowed")
        elif address is not None:
            raise GuardViolation("network", f"connecting to {address!r} is not allowed")
    elif event == "socket.bind":
        raise GuardViolation("network", "listening on a socket is not allowed")
    elif event == "urllib.Request":
        from urllib.parse import urlparse

        host = urlparse(str(args[0])).hostname or ""
        if not policy.host_allowed(host):
            raise GuardViolation("network", f"network access to {host or args[0]} is not allowed")
    elif event == "ctypes.dlopen":
        target = _resolve(args[0]) if args and args[0] and os.sep in str(args[0]) else None
        if target is not None and (
            policy.may_write(target) or _is_under(target, policy.protected_roots)
        ):
            raise GuardViolation("native", f"loading native code from {target} is not allowed")
        if _called_from_plugin(policy):
            raise GuardViolation(
                "native", f"loading native code ({args[0] if args else None!r}) is not allowed"
            )
    elif event in _CTYPES_EVENTS and _called_from_plugin(policy):
        # libraries use ctypes for their own native parts; plugin code reaching it (through
        # a library's re-export) may not call foreign functions or touch raw memory
        raise GuardViolation("native", f"foreign calls are not allowed ({event})")
    elif event == "pickle.find_class":
        module = str(args[0]).split(".", 1)[0]
        if module in _UNPICKLE_DENIED:
            raise GuardViolation("unpickle", f"unpickling {args[0]}.{args[1]} is not allowed")
    elif event in ("sys.addaudithook", "webbrowser.open"):
        raise GuardViolation("system", f"{event} is not allowed")


_RESOLVED: weakref.WeakKeyDictionary[GuardPolicy, set[str]] = weakref.WeakKeyDictionary()
"""Addresses allowed hosts resolved to, per policy (kept outside the frozen policy)."""


def _remember_ips(policy: GuardPolicy, host: str) -> None:
    """Resolve an allowed host so the connect that follows is recognised by IP."""
    try:
        for info in socket.getaddrinfo(host, None):
            _RESOLVED.setdefault(policy, set()).add(str(info[4][0]))
    except OSError:
        pass


def install_guard() -> None:
    """Install the audit hook (once per process; audit hooks cannot be removed)."""
    global _installed
    with _install_lock:
        if _installed:
            return
        sys.addaudithook(_audit)
        _patch_threads()
        _installed = True


def _patch_threads() -> None:
    """Threads started by guarded code run guarded too."""
    original_start = threading.Thread.start
    original_run = threading.Thread.run

    def start(self: threading.Thread) -> None:
        self._mixpeek_guard = _state.policy  # type: ignore[attr-defined]
        original_start(self)

    def run(self: threading.Thread) -> None:
        policy = getattr(self, "_mixpeek_guard", None)
        if policy is None:
            original_run(self)
            return
        _state.policy = policy
        try:
            original_run(self)
        finally:
            _state.policy = None

    threading.Thread.start = start  # type: ignore[method-assign]
    threading.Thread.run = run  # type: ignore[method-assign]


@contextmanager
def guarded(policy: GuardPolicy | None) -> Iterator[None]:
    """Run the body under ``policy`` in this thread (a ``None`` policy is a no-op)."""
    if policy is None:
        yield
        return
    install_guard()
    previous, previous_trusted = _state.policy, _state.trusted
    _state.policy, _state.trusted = policy, 0
    try:
        yield
    finally:
        _state.policy, _state.trusted = previous, previous_trusted


@contextmanager
def trusted() -> Iterator[None]:
    """Lift the guard for platform code acting on a plugin's behalf."""
    _state.trusted += 1
    try:
        yield
    finally:
        _state.trusted -= 1


def current_policy() -> GuardPolicy | None:
    return _state.policy


_SANDBOX_ERRNOS = frozenset({errno.EPERM, errno.EACCES, errno.EROFS})
_NETWORK_ERRNOS = frozenset({errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ECONNREFUSED})
_view: tuple[Path, ...] | None = None


def set_sandbox_view(roots: Iterable[str]) -> None:
    """Tell this process (a plugin host) what its sandbox shows: a path outside these roots
    does not exist for it, and no network but its egress proxy does."""
    global _view
    _view = tuple(Path(r) for r in roots)


class SandboxRefusal(MixpeekError, PermissionError):
    """The OS sandbox refused an action the in-process guard let through (native code, a
    child process): ``blocked_by_sandbox``."""

    def __init__(self, detail: str) -> None:
        super().__init__(ErrorCode.BLOCKED_BY_SANDBOX, f"Blocked by the plugin sandbox: {detail}")


_PATH_IN_TEXT = re.compile(r"(/[\w.@+\-/]+)")
_MISSING_WORDS = (
    "No such file",
    "does not exist",
    "not found",
    "cannot be opened",
    "Failed to open",
)
_REFUSED_WORDS = ("Read-only file system", "Permission denied", "Operation not permitted")


def _refused_in_text(exc: BaseException) -> bool:
    """Libraries with native cores report the kernel's refusal in their own words (Arrow's
    ``FileNotFoundError``, torch's ``RuntimeError``): a refusal, or a path the sandbox does not
    show reported missing, counts as the sandbox's."""
    text = str(exc)
    if any(word in text for word in _REFUSED_WORDS):
        return True
    if _view is None or not any(word in text for word in _MISSING_WORDS):
        return False
    return any(
        not _is_under(Path(os.path.normpath(m.rstrip("."))), _view)
        for m in _PATH_IN_TEXT.findall(text)
    )


def sandbox_refusal(exc: BaseException) -> SandboxRefusal | None:
    """``exc`` as a :class:`SandboxRefusal` when it is the kernel refusing a sandboxed host
    (permission, a read-only file system, a path the sandbox does not show, no network);
    ``None`` for anything else."""
    if isinstance(exc, MixpeekError):
        return None
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:  # libraries wrap OS errors
        seen.add(id(current))
        if (
            isinstance(current, OSError)
            and (
                current.errno in _SANDBOX_ERRNOS
                or (_view is not None and current.errno in _NETWORK_ERRNOS)
            )
        ) or _refused_in_text(current):
            return SandboxRefusal(f"{type(current).__name__}: {current}")
        current = current.__cause__ or current.__context__
    return None


def scrubbed_environ(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment minus platform secrets (credentials, keys, tokens, MIXPEEK_*)."""
    environ = os.environ if environ is None else environ
    return {k: v for k, v in environ.items() if k in _KEEP_ENV or not _SECRET_ENV.match(k)}


@contextmanager
def scrubbed_process_environment() -> Iterator[None]:
    """Remove secrets from ``os.environ`` for the body, restoring them afterwards."""
    saved = dict(os.environ)
    keep = scrubbed_environ(saved)
    for key in saved:
        if key not in keep:
            del os.environ[key]
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
