"""The kernel layers under bubblewrap's namespaces: the seccomp filter and Landlock, each
checked in a real child process."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mixpeek_orchestration.sandbox import landlock, seccomp
from mixpeek_orchestration.sandbox.backends import Bubblewrap, HostSpec

PROBE = r"""
import ctypes, errno, json, os, socket
libc = ctypes.CDLL(None, use_errno=True)
out = {}
def attempt(name, fn):
    try:
        fn()
        out[name] = "allowed"
    except OSError as exc:
        out[name] = errno.errorcode.get(exc.errno, str(exc.errno))
def call(function, *args):
    if function(*args) != 0:
        raise OSError(ctypes.get_errno(), "")
attempt("unshare", lambda: call(libc.unshare, 0x40000000))  # CLONE_NEWNET
attempt("ptrace", lambda: call(libc.ptrace, 0, 0, 0, 0))  # PTRACE_TRACEME
attempt("raw_socket", lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP))
attempt("vsock", lambda: socket.socket(40, socket.SOCK_STREAM))
attempt("tcp_socket", lambda: socket.socket().close())
attempt("thread", lambda: __import__("threading").Thread(target=print).start())
print(json.dumps(out))
"""


@pytest.mark.skipif(not shutil.which("bwrap") or not seccomp.supported(), reason="no bwrap")
def test_the_seccomp_filter_refuses_what_plugins_never_need(tmp_path: Path) -> None:
    (tmp_path / "plugin").mkdir()
    (tmp_path / "scratch").mkdir()
    backend = Bubblewrap()
    launch = backend.launch(
        HostSpec(plugin_dir=tmp_path / "plugin", scratch_dir=tmp_path / "scratch"), channel_fd=0
    )
    argv = launch.argv[: launch.argv.index("-m")] + ["-c", PROBE]
    result = subprocess.run(
        argv, pass_fds=launch.pass_fds, capture_output=True, text=True, timeout=60
    )
    for fd in launch.close_after_start:
        __import__("os").close(fd)
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen == {
        "unshare": "EPERM", "ptrace": "EPERM", "raw_socket": "EPERM", "vsock": "EPERM",
        "tcp_socket": "allowed", "thread": "allowed",
    }, result.stderr  # fmt: skip


def test_the_filter_is_built_for_both_architectures() -> None:
    for machine in ("x86_64", "aarch64"):
        program = seccomp.build_filter(machine)
        assert len(program) % 8 == 0 and len(program) // 8 > 100


LANDLOCKED = r"""
import json, os, socket, sys
from mixpeek_orchestration.sandbox import landlock
roots = json.loads(sys.argv[1])
abi = landlock.restrict(ro=roots["ro"], rw=roots["rw"], tcp_ports=[roots["port"]])
out = {"abi": abi}
def attempt(name, fn):
    try:
        fn()
        out[name] = "allowed"
    except OSError as exc:
        out[name] = type(exc).__name__
attempt("write_rw", lambda: open(os.path.join(roots["rw"][0], "ok"), "w").write("x"))
attempt("write_elsewhere", lambda: open(roots["elsewhere"], "w").write("x"))
attempt("read_elsewhere", lambda: open(roots["secret"]).read())
s = socket.socket(); s.settimeout(2)
attempt("connect_other_port", lambda: s.connect(("127.0.0.1", 9)))
print(json.dumps(out))
"""


@pytest.mark.skipif(landlock.abi_version() < 4, reason="Landlock with network rules needed")
def test_landlock_confines_the_host_to_its_roots_and_port(tmp_path: Path) -> None:
    rw, outside = tmp_path / "rw", tmp_path / "outside"
    rw.mkdir()
    outside.mkdir()
    (outside / "secret").write_text("s")
    import mixpeek_orchestration

    package = str(Path(mixpeek_orchestration.__file__).resolve().parents[1])
    roots = {
        "ro": ["/usr", "/proc", "/dev", sys.prefix, sys.base_prefix, package, "/etc"],
        "rw": [str(rw)],
        "port": 3128,
        "elsewhere": str(outside / "x"),
        "secret": str(outside / "secret"),
    }
    result = subprocess.run(
        [sys.executable, "-c", LANDLOCKED, json.dumps(roots)],
        capture_output=True, text=True, timeout=60, env={"PYTHONPATH": package, "PATH": "/usr/bin"},
    )  # fmt: skip
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["abi"] >= 4, result.stderr
    assert seen["write_rw"] == "allowed"
    assert seen["write_elsewhere"] == seen["read_elsewhere"] == "PermissionError"
    assert seen["connect_other_port"] == "PermissionError"
    assert not (outside / "x").exists()
