"""A second Ray node for a local stack, as a real cluster's worker would be: it joins the head
over the network, offers the ``batch`` resource (batch actors land on it) and cannot see the
stack's data dir, so plugin archives and blobs reach it only through presigned URLs and results
reach the stores only through the ingestion service.

The node runs in namespaces of its own: the host's file system, except the data dir (an empty
tmpfs in its place), and a PID namespace with its own ``/proc`` (no ``/proc/<pid>/root`` of the
head's processes).
Used by ``tests/integration/test_multinode.py`` and ``bench/ingest.py --nodes 2``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from mixpeek_orchestration.compute.resources import BATCH_RESOURCE
from mixpeek_orchestration.stack.processes import stop_process_tree


@dataclass
class WorkerNode:
    process: subprocess.Popen[bytes]
    temp_dir: Path
    log: Path

    def stop(self) -> None:
        import psutil

        if self.process.poll() is None:
            stop_process_tree(
                self.process.pid, psutil.Process(self.process.pid).create_time(), grace_s=10
            )
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def start_worker_node(
    address: str, *, data_dir: Path, env: dict[str, str], num_cpus: int = 2
) -> WorkerNode:
    """Join ``address`` (the head's GCS) with a node that offers ``batch`` and cannot see
    ``data_dir``; returns once the node is up."""
    temp_dir = Path(tempfile.mkdtemp(prefix="mixpeek-node-"))
    log = temp_dir / "node.log"
    ray = str(Path(sys.executable).parent / "ray")
    # util-linux's unshare rather than bwrap: bwrap's /proc has read-only mounts over
    # /proc/sys and friends, and a proc that is not fully visible keeps the plugin hosts' own
    # bwrap from mounting one (EPERM)
    argv = [
        shutil.which("unshare") or "unshare",
        "--mount", "--propagation", "private",
        "--pid", "--fork", "--mount-proc", "--kill-child",
        "--", "sh", "-c", 'mount -t tmpfs tmpfs "$0" && exec "$@"', str(data_dir),
        ray, "start", "--address", address, "--block",
        "--num-cpus", str(num_cpus),
        "--resources", json.dumps({BATCH_RESOURCE: 1000}),
        "--temp-dir", str(temp_dir / "ray"),
        "--disable-usage-stats",
    ]  # fmt: skip
    process = subprocess.Popen(
        argv,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    node = WorkerNode(process, temp_dir, log)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the worker node exited: {log.read_text()[-2000:]}")
        if "Ray runtime started" in log.read_text(errors="replace"):
            return node
        time.sleep(0.5)
    node.stop()
    raise RuntimeError(f"the worker node did not start: {log.read_text()[-2000:]}")
