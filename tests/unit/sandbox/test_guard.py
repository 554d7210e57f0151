"""The runtime guard blocks what plugin code may not do, in guarded threads only."""

from __future__ import annotations

import os
import pickle
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from mixpeek_orchestration.sandbox.guard import (
    GuardPolicy,
    GuardViolation,
    guarded,
    scrubbed_environ,
    scrubbed_process_environment,
    trusted,
)


@pytest.fixture
def policy(tmp_path: Path) -> GuardPolicy:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    protected = tmp_path / "data"
    (protected / "keys").mkdir(parents=True)
    (protected / "keys" / "secret").write_text("s3cr3t")
    readable = protected / "plugin_code"
    readable.mkdir()
    (readable / "ok.txt").write_text("fine")
    return GuardPolicy(
        scratch_dir=scratch,
        protected_roots=(protected,),
        readable_roots=(readable,),
        allowed_hosts=frozenset({"127.0.0.2"}),
    )


@pytest.fixture
def listener() -> Iterator[int]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    yield server.getsockname()[1]
    server.close()


def test_process_spawning_is_blocked(policy: GuardPolicy) -> None:
    with guarded(policy):
        with pytest.raises(GuardViolation) as info:
            subprocess.run(["true"], check=False)
        assert info.value.fields["action"] == "spawn"
        with pytest.raises(GuardViolation):
            os.system("true")
    assert subprocess.run(["true"], check=False).returncode == 0  # unguarded again


def test_writes_only_in_scratch(policy: GuardPolicy, tmp_path: Path) -> None:
    with guarded(policy):
        (policy.scratch_dir / "out.txt").write_text("ok")
        for action in (
            lambda: (tmp_path / "elsewhere.txt").write_text("no"),
            lambda: os.mkdir(tmp_path / "newdir"),
            lambda: os.remove(policy.protected_roots[0] / "keys" / "secret"),
            lambda: os.rename(policy.scratch_dir / "out.txt", tmp_path / "moved.txt"),
        ):
            with pytest.raises(GuardViolation):
                action()
    assert not (tmp_path / "elsewhere.txt").exists()
    assert (policy.protected_roots[0] / "keys" / "secret").exists()


def test_reads_of_protected_data_and_process_secrets(policy: GuardPolicy) -> None:
    protected = policy.protected_roots[0]
    with guarded(policy):
        with pytest.raises(GuardViolation) as info:
            (protected / "keys" / "secret").read_text()
        assert info.value.fields["action"] == "read"
        with pytest.raises(GuardViolation):
            Path("/proc/self/environ").read_bytes()
        assert (protected / "plugin_code" / "ok.txt").read_text() == "fine"
        assert Path(os.__file__).read_text()  # installed libraries stay readable


def test_network_only_to_allowed_hosts(policy: GuardPolicy, listener: int) -> None:
    with guarded(policy):
        with pytest.raises(GuardViolation) as info:
            socket.create_connection(("127.0.0.1", listener), timeout=2)
        assert info.value.fields["action"] == "network"
        with pytest.raises(GuardViolation):
            socket.socket().bind(("127.0.0.1", 0))
    socket.create_connection(("127.0.0.1", listener), timeout=2).close()
    allowing = GuardPolicy(scratch_dir=policy.scratch_dir, allowed_hosts=frozenset({"127.0.0.0/8"}))
    with guarded(allowing):
        socket.create_connection(("127.0.0.1", listener), timeout=2).close()


def test_threads_started_while_guarded_inherit_the_guard(policy: GuardPolicy) -> None:
    errors: list[BaseException] = []

    def spawn() -> None:
        try:
            subprocess.run(["true"], check=False)
        except BaseException as exc:
            errors.append(exc)

    with guarded(policy):
        thread = threading.Thread(target=spawn)
        thread.start()
    thread.join()
    assert errors and isinstance(errors[0], GuardViolation)


def test_trusted_platform_code_is_not_blocked(policy: GuardPolicy) -> None:
    with guarded(policy), trusted():
        assert subprocess.run(["true"], check=False).returncode == 0


def test_unpickling_code_execution_is_blocked(policy: GuardPolicy) -> None:
    payload = pickle.dumps(os.system)  # a reference to os.system (posix.system)
    with guarded(policy), pytest.raises(GuardViolation, match="unpickling"):
        pickle.loads(payload)


def test_violation_is_a_permission_error() -> None:
    assert issubclass(GuardViolation, PermissionError)


def test_secrets_are_scrubbed(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "PATH": "/usr/bin",
        "MIXPEEK_SECRET_KEY": "x",
        "AWS_SECRET_ACCESS_KEY": "y",
        "OPENAI_API_KEY": "z",
        "HF_HUB_OFFLINE": "1",
        "MIXPEEK_MONGO_URI": "mongodb://u:p@h",
    }
    assert scrubbed_environ(env) == {"PATH": "/usr/bin", "HF_HUB_OFFLINE": "1"}
    monkeypatch.setenv("MIXPEEK_API_KEY", "secret")
    with scrubbed_process_environment():
        assert "MIXPEEK_API_KEY" not in os.environ
    assert os.environ["MIXPEEK_API_KEY"] == "secret"


def test_guard_is_per_thread(policy: GuardPolicy) -> None:
    results: list[int] = []
    gate = threading.Event()

    def other() -> None:
        gate.wait(5)
        results.append(subprocess.run([sys.executable, "-c", "pass"], check=False).returncode)

    thread = threading.Thread(target=other)
    thread.start()  # started unguarded
    with guarded(policy):
        gate.set()
        thread.join()
    assert results == [0]


def test_the_policy_cannot_be_widened_once_built(policy: GuardPolicy) -> None:
    import dataclasses

    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.allow_spawn = True  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.allowed_hosts = frozenset({"*"})  # type: ignore[misc]
    assert isinstance(policy.allowed_hosts, frozenset) and isinstance(policy.protected_roots, tuple)


def test_only_the_proxy_port_of_the_proxy_host_is_reachable(tmp_path: Path, listener: int) -> None:
    """With an egress forwarder on 127.0.0.1:<port>, plugin code may connect there and nowhere
    else on that host (the machine's own services listen on its other ports)."""
    proxied = GuardPolicy(scratch_dir=tmp_path, proxy=("127.0.0.1", listener))
    with guarded(proxied):
        socket.create_connection(("127.0.0.1", listener), timeout=2).close()
        with pytest.raises(GuardViolation):
            socket.create_connection(("127.0.0.1", 1), timeout=2)


def test_foreign_calls_from_plugin_code_are_refused_but_not_from_libraries(
    tmp_path: Path,
) -> None:
    """ctypes reached by plugin code (through a library's re-export) may not load or call
    native code; libraries that load their own native parts keep working."""
    import ctypes

    plugin = tmp_path / "plugin"
    plugin.mkdir()
    (plugin / "evil.py").write_text("def go(ctypes):\n    return ctypes.CDLL(None).getpid()\n")
    sys.path.insert(0, str(plugin))
    try:
        import evil  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(plugin))
    policy = GuardPolicy(scratch_dir=tmp_path, plugin_root=plugin)
    with guarded(policy):
        with pytest.raises(GuardViolation) as info:
            evil.go(ctypes)
        assert info.value.fields["action"] == "native"
        assert ctypes.CDLL(None).getpid() == os.getpid()  # platform / library code: allowed
