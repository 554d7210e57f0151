"""The sandbox's adversarial corpus: attacks that pass the scanner, and how to look for their
effects from outside the sandbox (shared by the unit tests on a host and the integration tests
through the batch and Serve paths).

Each case names an attack of ``tests/plugins/attacker`` and its arguments; :class:`Outside`
plants what an attack would want (a secret file, a secret in the supervisor's environment, a
listener) and afterwards says whether anything of it moved.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
ATTACKER = REPO / "tests" / "plugins" / "attacker"
BENIGN = REPO / "tests" / "plugins" / "benign_stdlib"
LEAKY_MANIFEST = REPO / "tests" / "plugins" / "leaky_manifest"
BLOCKED = {"blocked_by_sandbox", "blocked_by_guard"}
READABLE = {"arrow_read-/proc/self/environ", "arrow_read-/proc/1/environ"}
"""Cases that may run: what they read must hold no secret (the host's environment is cleared)."""


class Listener:
    """A TCP server on the test's loopback that counts the connections it accepts."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            client.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nleaked")
            client.close()

    def close(self) -> None:
        self.sock.close()


@dataclass
class Outside:
    """What the attacks reach for, planted outside the sandbox."""

    root: Path
    token: str = field(default_factory=lambda: f"planted-{secrets.token_hex(8)}")
    listener: Listener = field(default_factory=Listener)

    def __post_init__(self) -> None:
        (self.root / "data").mkdir(parents=True, exist_ok=True)
        (self.root / "outside").mkdir(exist_ok=True)
        (self.root / "data" / "secret.txt").write_text(self.token)
        os.environ["MIXPEEK_PLANTED_SECRET"] = self.token  # in the supervisor's environment

    @property
    def secret_file(self) -> str:
        return str(self.root / "data" / "secret.txt")

    def target(self, name: str) -> str:
        return str(self.root / "outside" / f"pwned-{name}")

    def written(self) -> list[str]:
        """Files the attacks managed to create outside the sandbox."""
        return sorted(p.name for p in (self.root / "outside").iterdir())

    def close(self) -> None:
        self.listener.close()
        os.environ.pop("MIXPEEK_PLANTED_SECRET", None)


def cases(outside: Outside, *, plugin_dir: str = "/plugin") -> list[tuple[str, dict[str, Any]]]:
    """``(case id, attack spec)`` for every category, each aimed at ``outside``."""
    writes = ["arrow_osfile", "arrow_localfs", "parquet", "torch_save", "safetensors",
              "numpy_tofile", "pathlib_write"]  # fmt: skip
    out: list[tuple[str, dict[str, Any]]] = []
    for name in writes:  # native code in allowed libraries writing outside the scratch
        out.append((f"{name}-host-path", {"attack": name, "target": outside.target(name)}))
        out.append((f"{name}-plugin-dir", {"attack": name, "target": f"{plugin_dir}/pwned-{name}"}))
    out.append(("arrow_osfile-tmp", {"attack": "arrow_osfile", "target": "/tmp/pwned-tmp"}))
    for name in ("numpy_read", "torch_from_file", "arrow_read"):  # the data dir, secrets
        out.append((f"{name}-data-dir", {"attack": name, "target": outside.secret_file}))
    for path in ("/proc/self/environ", "/proc/1/environ"):  # the guard refuses numpy's read;
        for name in ("numpy_read", "arrow_read"):  # Arrow's native one gets a cleared environ
            out.append((f"{name}-{path}", {"attack": name, "target": path}))
    out.append(("arrow_s3-connect", {"attack": "arrow_s3", "port": outside.listener.port}))
    out.append(("requests-connect", {"attack": "requests", "port": outside.listener.port}))
    out.append(("proxy-to-loopback", {"attack": "proxy_internal", "port": outside.listener.port}))
    out.append(
        ("dataloader-workers", {"attack": "dataloader_workers", "target": outside.target("child")})
    )
    return out


def row_text(spec: dict[str, Any]) -> str:
    return json.dumps(spec)
