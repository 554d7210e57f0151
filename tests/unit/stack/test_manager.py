"""The stack manager's checks that need no running servers."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.settings import load_settings
from mixpeek_orchestration.stack import Stack, StackState
from mixpeek_orchestration.stack.manager import dagster_instance_yaml, workspace_yaml
from mixpeek_orchestration.stack.processes import (
    PORT_RANGE,
    free_port,
    process_create_time,
    spawn,
    stop_process_tree,
)
from mixpeek_orchestration.stack.state import ProcessRecord


def _ports() -> dict[str, int]:
    return {"api_port": free_port(), "dagster_port": free_port(), "serve_port": free_port()}


@pytest.mark.parametrize(
    ("overrides", "component"),
    [
        ({"mongo_uri": "mongodb://127.0.0.1:{port}"}, "metadata"),
        ({"ray_address": "127.0.0.1:{port}"}, "ray"),
    ],
)
def test_up_fails_fast_on_unreachable_external_component(
    tmp_path: Path, overrides: dict[str, str], component: str
) -> None:
    port = free_port()  # nothing listens here
    settings = load_settings(
        data_dir=tmp_path, **{k: v.format(port=port) for k, v in overrides.items()}, **_ports()
    )
    start = time.monotonic()
    with pytest.raises(MixpeekError) as info:
        Stack(settings).up(timeout_s=30)
    assert time.monotonic() - start < 20
    assert info.value.code is ErrorCode.STACK_ERROR
    assert info.value.fields["component"] == component
    assert info.value.detail.startswith(f"{component}:")
    assert StackState.load(settings.run_dir) is None


def test_up_refuses_a_port_taken_by_someone_else(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        ports = _ports() | {"api_port": taken.getsockname()[1]}
        settings = load_settings(data_dir=tmp_path, **ports)
        with pytest.raises(MixpeekError) as info:
            Stack(settings).up(timeout_s=30)
    assert info.value.fields["field"] == "MIXPEEK_API_PORT"
    assert StackState.load(settings.run_dir) is None


def test_status_of_a_stopped_stack_is_all_errors(tmp_path: Path) -> None:
    reports = Stack(load_settings(data_dir=tmp_path)).status()
    assert reports and all(r.status == "error" for r in reports.values())
    assert Stack(load_settings(data_dir=tmp_path)).down() == []


def test_state_round_trip(tmp_path: Path) -> None:
    state = StackState(data_dir=str(tmp_path), env={"MIXPEEK_API_PORT": "1"}, urls={"api": "u"})
    state.save(tmp_path)
    assert StackState.load(tmp_path) == state


def test_dagster_files_use_sqlite_under_the_data_dir(tmp_path: Path) -> None:
    instance = dagster_instance_yaml(tmp_path)
    assert instance["storage"] == {"sqlite": {"base_dir": str(tmp_path / "storage")}}
    module = workspace_yaml(executable="/venv/bin/python")["load_from"][0]["python_module"]  # type: ignore[index]
    assert module["module_name"] == "plugin_assets.definitions"
    assert module["executable_path"] == "/venv/bin/python"


def test_the_stack_workspace_points_both_dagster_processes_at_one_code_server() -> None:
    # the webserver and the daemon share one code server, which reloads on state changes
    (entry,) = workspace_yaml(code_server=("127.0.0.1", 4266))["load_from"]  # type: ignore[misc]
    assert entry == {
        "grpc_server": {"host": "127.0.0.1", "port": 4266, "location_name": "plugin_assets"}
    }


def test_stop_process_tree_stops_children_in_other_process_groups(tmp_path: Path) -> None:
    # The parent starts a grandchild in its own session, as Ray does with its workers.
    script = (
        "import subprocess, sys, time\n"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'], start_new_session=True)\n"
        "time.sleep(600)\n"
    )
    proc = spawn(
        [sys.executable, "-c", script], log_path=tmp_path / "p.log", env={"PATH": "/usr/bin"}
    )
    deadline = time.monotonic() + 10
    while not psutil.Process(proc.pid).children() and time.monotonic() < deadline:
        time.sleep(0.1)
    child = psutil.Process(proc.pid).children()[0]
    stop_process_tree(proc.pid, process_create_time(proc.pid), grace_s=2)
    assert not psutil.pid_exists(child.pid) or child.status() == psutil.STATUS_ZOMBIE
    assert proc.poll() is not None


def test_cli_status_exits_nonzero_when_down(tmp_path: Path) -> None:
    env = {"MIXPEEK_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-m", "mixpeek_orchestration.cli.main", "status", "--json"],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert '"status": "error"' in result.stdout


def test_free_port_never_hands_out_the_same_port_twice() -> None:
    # A Ray head takes ten picked ports before binding any; a repeat makes `ray start` refuse.
    picks = [free_port() for _ in range(300)]
    assert len(set(picks)) == len(picks)
    assert all(PORT_RANGE[0] <= port < PORT_RANGE[1] for port in picks)


ORPHANING = (
    # a child that ignores SIGTERM, moves to its own process group and outlives its parent
    # (re-parented to init): only its session still ties it to the stack's process
    "import os, signal, subprocess, sys, time\n"
    "child = 'import os, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "os.setpgid(0, 0); time.sleep(600)'\n"
    "p = subprocess.Popen([sys.executable, '-c', child])\n"
    "print(p.pid, flush=True)\n"
    "time.sleep(600)\n"
)


def _orphaning_stack(tmp_path: Path) -> tuple[Stack, int, int]:
    settings = load_settings(data_dir=tmp_path / "data", **_ports())
    proc = spawn(
        [sys.executable, "-c", ORPHANING], log_path=tmp_path / "p.log", env={"PATH": "/usr/bin"}
    )
    deadline = time.monotonic() + 10

    def last_line() -> str:
        return (tmp_path / "p.log").read_text().strip().splitlines()[-1]

    while not last_line().isdigit() and time.monotonic() < deadline:
        time.sleep(0.1)
    child = int(last_line())
    state = StackState(data_dir=str(settings.data_dir))
    state.processes["api"] = ProcessRecord(
        pid=proc.pid, create_time=process_create_time(proc.pid), command=["x"], log="p.log"
    )
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    state.save(settings.run_dir)
    return Stack(settings), proc.pid, child


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_down_stops_what_outlived_its_parent_in_its_session(tmp_path: Path) -> None:
    stack, root, child = _orphaning_stack(tmp_path)
    assert stack.down() == ["api"]
    assert _gone(root) and _gone(child)
    assert stack.state() is None


def test_down_keeps_track_of_processes_it_could_not_stop_and_retries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack, root, child = _orphaning_stack(tmp_path)
    real_kill = psutil.Process.kill
    # a process the kernel does not take down in time (a heavily loaded machine)
    monkeypatch.setattr(psutil.Process, "kill", lambda self: None)
    monkeypatch.setattr(Stack, "kill_wait_s", 1.0)
    with pytest.raises(MixpeekError) as stuck:
        Stack(stack.settings).down()
    assert stuck.value.code is ErrorCode.STACK_ERROR and str(child) in stuck.value.detail
    state = stack.state()
    assert state is not None and [p for p, _ in state.processes["api"].leftovers] == [child]
    monkeypatch.setattr(psutil.Process, "kill", real_kill)
    assert stack.down() == ["api"]
    assert _gone(root) and _gone(child) and stack.state() is None
