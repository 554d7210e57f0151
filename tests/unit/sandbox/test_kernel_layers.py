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


DEVICE_PROBE = r"""
import errno, json, os
from mixpeek_orchestration.plugins.host import _apply_landlock
_apply_landlock()
try:
    with open("/dev/full", "wb", buffering=0) as device:
        device.write(b"x")
    seen = "written"
except OSError as exc:
    seen = errno.errorcode.get(exc.errno, str(exc.errno))
print(json.dumps({"device": seen, "sys": os.path.isdir("/sys/devices")}))
"""


@pytest.mark.skipif(not shutil.which("bwrap") or not seccomp.supported(), reason="no bwrap")
@pytest.mark.parametrize("passed", [False, True])
def test_a_host_reaches_a_device_only_when_it_is_passed(tmp_path: Path, passed: bool) -> None:
    """GPU hosts get their ``/dev/nvidia*`` nodes this way; ``/dev/full`` stands in for one
    here: opened for writing only when passed (then the write fails with the device's own
    ENOSPC, not the sandbox's EACCES), and ``/sys`` (NVML's topology) comes with it."""
    (tmp_path / "plugin").mkdir()
    (tmp_path / "scratch").mkdir()
    spec = HostSpec(
        plugin_dir=tmp_path / "plugin",
        scratch_dir=tmp_path / "scratch",
        devices=("/dev/full",) if passed else (),
    )
    launch = Bubblewrap().launch(spec, channel_fd=0)
    argv = launch.argv[: launch.argv.index("-m")] + ["-c", DEVICE_PROBE]
    result = subprocess.run(
        argv, pass_fds=launch.pass_fds, capture_output=True, text=True, timeout=60
    )
    for fd in launch.close_after_start:
        __import__("os").close(fd)
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    if landlock.abi_version() >= 1:
        assert seen["device"] == ("ENOSPC" if passed else "EACCES"), result.stderr
    assert seen["sys"] is passed


def test_gpu_devices_lists_the_nvidia_nodes_of_a_machine(tmp_path: Path) -> None:
    from mixpeek_orchestration.sandbox.backends import gpu_devices

    assert gpu_devices(tmp_path) == ()  # no driver: a CPU host
    assert all(path.startswith("/dev/nvidia") for path in gpu_devices())


@pytest.mark.skipif(not shutil.which("runsc"), reason="no runsc")
def test_gvisor_without_nvproxy_refuses_a_gpu_host_by_name(tmp_path: Path) -> None:
    from mixpeek_orchestration.errors import MixpeekError
    from mixpeek_orchestration.sandbox.backends import GVisor

    backend = GVisor()
    spec = HostSpec(plugin_dir=tmp_path, scratch_dir=tmp_path, devices=("/dev/full",))
    if backend.gpu_proxy():
        launch = backend.launch(spec, channel_fd=0)
        assert "--nvproxy=true" in launch.argv
        config = json.loads((launch.cleanup[0] / "config.json").read_text())
        assert config["linux"]["devices"][0]["path"] == "/dev/full"
        return
    with pytest.raises(MixpeekError, match="nvproxy"):
        backend.launch(spec, channel_fd=0)
