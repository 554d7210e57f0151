"""How this installation sandboxes plugin code: what workers are told, from settings.

The composition root builds one :class:`SandboxConfig` from the ``MIXPEEK_*`` settings; it
travels inside every plugin spec handed to a worker (a batch actor, a Serve replica), so a
worker needs no settings of its own to start its hosts the way the operator chose.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mixpeek_orchestration.sandbox.backends import Backend, resolve_backend


@dataclass(frozen=True)
class SandboxConfig:
    """Args:
    backend: ``MIXPEEK_SANDBOX``: ``auto``, ``gvisor``, ``bwrap`` or ``none``.
    gvisor_platform: runsc's ``--platform`` (``ptrace`` works on every machine).
    egress_hosts: hosts the operator allows every plugin to reach (through the egress proxy).
    denied_endpoints: the platform's own services, never reachable from a plugin.
    timeout_s: how long one batch or one ``build_steps`` may run before its host is stopped.
    """

    backend: str = "auto"
    gvisor_platform: str = "ptrace"
    egress_hosts: tuple[str, ...] = ()
    denied_endpoints: tuple[tuple[str, int], ...] = ()
    timeout_s: float = 900.0

    def resolve(self) -> Backend:
        return resolve_backend(self.backend, gvisor_platform=self.gvisor_platform)

    def as_dict(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "gvisor_platform": self.gvisor_platform,
            "egress_hosts": list(self.egress_hosts),
            "denied_endpoints": [list(e) for e in self.denied_endpoints],
            "timeout_s": self.timeout_s,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> SandboxConfig:
        raw = raw or {}
        return cls(
            backend=str(raw.get("backend", "auto")),
            gvisor_platform=str(raw.get("gvisor_platform", "ptrace")),
            egress_hosts=tuple(raw.get("egress_hosts", ())),
            denied_endpoints=tuple((str(h), int(p)) for h, p in raw.get("denied_endpoints", ())),
            timeout_s=float(raw.get("timeout_s", 900.0)),
        )
