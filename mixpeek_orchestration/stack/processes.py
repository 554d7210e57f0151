"""Starting, watching and stopping the background processes of a local stack."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import psutil

from mixpeek_orchestration.errors import ErrorCode, MixpeekError

# Ports handed out by the kernel for outgoing connections and `bind(0)` (Linux: 32768-60999), and
# Ray's worker ports (10002-19999), are taken at random by other processes at any moment; a port
# picked there and bound a few seconds later can be lost to them. Stacks pick from between.
PORT_RANGE = (20000, 32000)

# A picked port stays free until its user binds it, so two picks in a row could agree; each pick
# is remembered and never handed out again by this process.
_handed_out: set[int] = set()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now on ``host``, outside the ephemeral and Ray ranges.

    Never the same port twice in one process, so several picks made before any is bound
    (a Ray head takes ten) are distinct.
    """
    for _ in range(200):
        port = random.randrange(*PORT_RANGE)
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise MixpeekError(ErrorCode.STACK_ERROR, f"no free port in {PORT_RANGE} on {host}")


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def log_tail(path: Path, *, lines: int = 20) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def spawn(
    command: Sequence[str],
    *,
    log_path: Path,
    env: Mapping[str, str],
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``command`` detached from this terminal, appending its output to ``log_path``.

    The child gets its own session, so it outlives ``mixpeek up`` and a Ctrl-C in the shell
    does not reach it; ``mixpeek down`` stops it by pid.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        log.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(command)}\n".encode())
        log.flush()
        return subprocess.Popen(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env),
            cwd=cwd,
            start_new_session=True,
        )


def process_matches(pid: int, create_time: float) -> bool:
    """Whether ``pid`` is still the process we started (not a recycled pid)."""
    try:
        proc = psutil.Process(pid)
        return abs(proc.create_time() - create_time) < 1.0 and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def process_create_time(pid: int) -> float:
    return psutil.Process(pid).create_time()


def stop_process_tree(
    pid: int,
    create_time: float,
    *,
    grace_s: float = 10.0,
    leftovers: Sequence[tuple[int, float]] = (),
    kill_wait_s: float = 20.0,
) -> list[tuple[int, float]]:
    """Stop a process and every process of its tree; returns ``(pid, create_time)`` of those
    still alive afterwards (none, normally).

    The root gets SIGTERM first so it can shut its children down cleanly (``ray start --block``
    does). Its tree is its descendants and every process of its session (each stack process
    starts one): a descendant that moved to another process group, or was re-parented when
    its parent exited first, still belongs to it. After ``grace_s`` whatever is left of the
    tree, looked up again, is killed, and waited for (up to ``kill_wait_s``: a loaded machine
    can take a while). ``leftovers`` are processes an earlier attempt could not stop.
    """
    family: dict[int, psutil.Process] = {}
    session = None
    if process_matches(pid, create_time):
        with contextlib.suppress(OSError):
            session = os.getsid(pid)
    for leftover, started in ((pid, create_time), *leftovers):
        if process_matches(leftover, started):
            family[leftover] = psutil.Process(leftover)

    def look_again() -> None:
        for proc in list(family.values()):
            with contextlib.suppress(psutil.Error):
                for child in proc.children(recursive=True):
                    family.setdefault(child.pid, child)
        if session is not None and session != os.getsid(0):
            for other in psutil.process_iter():
                with contextlib.suppress(OSError, psutil.Error):
                    if other.pid not in family and os.getsid(other.pid) == session:
                        family[other.pid] = other

    look_again()
    if pid in family:
        with contextlib.suppress(psutil.Error):
            family[pid].send_signal(signal.SIGTERM)
        psutil.wait_procs([family[pid]], timeout=grace_s / 2)
    look_again()
    for proc in _alive(family):
        with contextlib.suppress(psutil.Error):
            proc.send_signal(signal.SIGTERM)
    psutil.wait_procs(_alive(family), timeout=grace_s / 2)
    deadline = time.monotonic() + kill_wait_s
    while True:
        look_again()
        alive = _alive(family)
        if not alive or time.monotonic() > deadline:
            break
        for proc in alive:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        psutil.wait_procs(alive, timeout=min(2.0, max(0.1, deadline - time.monotonic())))
    # reap our own direct child if it was started by this process
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    survivors = []
    for proc in _alive(family):
        with contextlib.suppress(psutil.Error):
            survivors.append((proc.pid, proc.create_time()))
    return survivors


def _alive(family: Mapping[int, psutil.Process]) -> list[psutil.Process]:
    alive = []
    for proc in family.values():
        with contextlib.suppress(psutil.Error):
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc)
    return alive


def wait_until(
    check: Callable[[], bool],
    *,
    name: str,
    timeout_s: float,
    process: subprocess.Popen[bytes] | None = None,
    log_path: Path | None = None,
    poll_s: float = 0.5,
) -> None:
    """Poll ``check`` until it is true; fail early if ``process`` exits, naming the component."""
    deadline = time.monotonic() + timeout_s
    last_error = ""
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception as exc:  # a not-yet-ready component raises; keep the last reason
            last_error = f"{type(exc).__name__}: {exc}"
        if process is not None and process.poll() is not None:
            raise _start_failure(name, f"exited with code {process.returncode}", log_path)
        time.sleep(poll_s)
    raise _start_failure(name, f"not healthy after {timeout_s:.0f}s {last_error}".strip(), log_path)


def _start_failure(name: str, reason: str, log_path: Path | None) -> MixpeekError:
    detail = f"{name}: {reason}"
    if log_path is not None:
        detail += f" (log: {log_path})"
        tail = log_tail(log_path)
        if tail:
            detail += "\n" + tail
    return MixpeekError(ErrorCode.STACK_ERROR, detail, component=name)
