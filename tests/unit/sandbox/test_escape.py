"""The OS sandbox on its own: arbitrary code in it, with neither the scanner nor the runtime
guard, as if an attack had got past both.

The code runs where a plugin host would (the same backend command, the same mounts and
environment) and tries what a plugin that owns its interpreter would: read the data dir and
the supervisor's environment, write outside its scratch, connect to a listener this test runs,
signal the supervisor, mount, ptrace, start a child that tries again. What it managed is looked
for from outside: files, accepted connections, the planted secret anywhere in its output.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mixpeek_orchestration.sandbox.backends import (
    PLUGIN_MOUNT,
    Backend,
    Bubblewrap,
    GVisor,
    HostSpec,
    Launch,
)
from tests.sandbox_corpus import Outside

ESCAPE = r"""
import ctypes, errno, glob, json, os, socket, subprocess, sys
args = json.loads(sys.argv[1])
out = {}
def attempt(name, fn):
    try:
        value = fn()
        out[name] = ["done", value if isinstance(value, (str, int, list)) else None]
    except Exception as exc:
        out[name] = ["failed", type(exc).__name__ + ": " + str(exc)[:120]]
def write(path):
    with open(path, "w") as f:
        f.write("pwned")
def environs():
    found = []
    for path in glob.glob("/proc/[0-9]*/environ"):
        try:
            found.append(open(path, "rb").read().decode(errors="replace"))
        except OSError:
            pass
    return found
def connect(host, port):
    s = socket.create_connection((host, port), timeout=3)
    return s.recv(64).decode()
def syscall(name, *a):
    libc = ctypes.CDLL(None, use_errno=True)
    if getattr(libc, name)(*a) != 0:
        raise OSError(ctypes.get_errno(), errno.errorcode.get(ctypes.get_errno(), "?"))
attempt("read_data_dir", lambda: open(args["secret_file"]).read())
attempt("list_data_dir", lambda: os.listdir(os.path.dirname(args["secret_file"])))
attempt("read_environs", environs)
attempt("own_environ", lambda: dict(os.environ).get("MIXPEEK_PLANTED_SECRET", ""))
attempt("write_outside", lambda: write(args["target"]))
attempt("write_plugin_dir", lambda: write(args["plugin"] + "/pwned-escape"))
attempt("write_root", lambda: write("/pwned-escape"))
attempt("connect_loopback", lambda: connect("127.0.0.1", args["port"]))
attempt("connect_host_address", lambda: connect(args["host_address"], args["port"]))
attempt("kill_supervisor", lambda: os.kill(args["supervisor"], 0))
attempt("processes", lambda: sorted(int(p) for p in os.listdir("/proc") if p.isdigit()))
attempt("mount", lambda: syscall("mount", b"none", b"/tmp", b"tmpfs", 0, None))
attempt("ptrace_attach", lambda: syscall("ptrace", 16, 1, None, None))
attempt("child_write", lambda: subprocess.run(
    [sys.executable, "-c", "open(%r, 'w').write('x')" % (args["target"] + "-child")],
    check=True, capture_output=True).returncode)
attempt("home", lambda: os.listdir(os.path.expanduser("~")))
print("ESCAPE " + json.dumps(out))
"""

BACKENDS = [
    pytest.param(Bubblewrap, marks=pytest.mark.skipif(not shutil.which("bwrap"), reason="bwrap")),
    pytest.param(GVisor, marks=pytest.mark.skipif(not shutil.which("runsc"), reason="no runsc")),
]


def run_unguarded(backend: Backend, spec: HostSpec, code: str, arg: str) -> str:
    """Run ``code`` where the backend would run a plugin host, without the host (no guard)."""
    launch: Launch = backend.launch(spec, channel_fd=0)
    if launch.listen_path is None:  # bwrap: the command ends with python -m <host>
        argv = [*launch.argv[: launch.argv.index("-m")], "-c", code, arg]
    else:  # gVisor: the bundle names the process
        config_path = launch.cleanup[0] / "config.json"
        config = json.loads(config_path.read_text())
        config["process"]["args"] = [sys.executable, "-c", code, arg]
        config_path.write_text(json.dumps(config))
        argv = launch.argv
    try:
        result = subprocess.run(
            argv, env=launch.env, pass_fds=launch.pass_fds, capture_output=True, text=True,
            timeout=120,
        )  # fmt: skip
    finally:
        for fd in launch.close_after_start:
            os.close(fd)
        if launch.stop_argv:
            subprocess.run(launch.stop_argv, capture_output=True, timeout=60)
        for path in launch.cleanup:
            shutil.rmtree(path, ignore_errors=True)
    lines = [line for line in result.stdout.splitlines() if line.startswith("ESCAPE ")]
    assert lines, result.stderr[-2000:]
    return lines[-1].removeprefix("ESCAPE ")


def host_address() -> str:
    """An address of this machine that is not loopback (its default route's source)."""
    import socket

    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))  # no packet is sent
        return str(probe.getsockname()[0])
    except OSError:
        return "127.0.0.1"
    finally:
        probe.close()


@pytest.mark.parametrize("backend_type", BACKENDS)
def test_arbitrary_code_in_the_sandbox_reaches_nothing_outside(
    backend_type: type[Backend], tmp_path: Path
) -> None:
    backend = backend_type()
    if backend.available() is not None:
        pytest.skip(backend.available())
    outside = Outside(tmp_path / "machine")
    plugin, scratch = tmp_path / "plugin", tmp_path / "scratch"
    plugin.mkdir()
    scratch.mkdir()
    try:
        raw = run_unguarded(
            backend,
            HostSpec(plugin_dir=plugin, scratch_dir=scratch),
            ESCAPE,
            json.dumps(
                {
                    "secret_file": outside.secret_file,
                    "target": outside.target("escape"),
                    "plugin": PLUGIN_MOUNT,
                    "port": outside.listener.port,
                    "host_address": host_address(),
                    "supervisor": os.getpid(),
                }
            ),
        )
        seen = json.loads(raw)
        # from outside: nothing written, nothing accepted, the secret nowhere in what it got
        assert outside.written() == []
        assert not list(plugin.iterdir())
        assert outside.listener.accepted == 0
        assert outside.token not in raw
    finally:
        outside.close()
    # and the code saw each attempt fail (its own environment and home are empty of secrets)
    for name in (
        "read_data_dir", "list_data_dir", "write_outside", "write_plugin_dir", "write_root",
        "connect_loopback", "connect_host_address", "kill_supervisor", "mount", "ptrace_attach",
        "child_write",
    ):  # fmt: skip
        assert seen[name][0] == "failed", (name, seen[name])
    assert seen["own_environ"] == ["done", ""]
    assert max(seen["processes"][1]) < 100, "the sandbox has its own PID namespace"
    assert seen["home"] == ["done", []] or seen["home"][0] == "failed"
