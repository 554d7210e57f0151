"""Ray resources shared by batch actors and Serve replicas.

Warm batch actors (``ingest/engine.py``) live in the :data:`WARM_NAMESPACE` Ray namespace and
may hold CPUs and GPUs between runs; :func:`make_room` stops idle ones when a run or a Serve
rollout needs what they hold, so a waiting actor never keeps real work from starting.
"""

from __future__ import annotations

import logging
import time
from typing import Any

logger = logging.getLogger(__name__)

WARM_NAMESPACE = "mixpeek-ingest"
"""The Ray namespace of warm step actors."""
BATCH_RESOURCE = "batch"
"""A synthetic resource only a cluster's batch worker group offers (``deploy/render.py``):
batch actors ask for it wherever a cluster has it, so ingestion never lands on Serve workers."""


def make_room(need: dict[str, float], *, keep: str = "") -> None:
    """Stop idle warm stages (other than ``keep``'s) until ``need`` (``{"CPU": 1.0, ...}``)
    fits in what the cluster has free, longest idle first. Realtime deployments call it too:
    batch actors waiting for a next run never hold a Serve replica's place."""
    import ray

    def short() -> bool:
        free = ray.available_resources()
        return any(free.get(r, 0.0) < amount for r, amount in need.items() if amount)

    if not short():
        return
    names = [
        a["name"]
        for a in ray.util.list_named_actors(all_namespaces=True)
        if a.get("namespace") == WARM_NAMESPACE and not (keep and a["name"].startswith(keep))
    ]
    idle: list[tuple[float, str, Any]] = []
    for name in names:
        try:
            handle = ray.get_actor(name, namespace=WARM_NAMESPACE)
            info: Any = ray.get(handle.info.remote(), timeout=5)
        except Exception:  # gone meanwhile, or busy beyond reason: leave it
            continue
        if info["idle_s"] > 1.0:
            idle.append((info["idle_s"], name, handle))
    for _, name, handle in sorted(idle, key=lambda item: item[0], reverse=True):
        logger.info("stopping idle warm stage %s to make room (%s)", name, need)
        ray.kill(handle, no_restart=True)
        deadline = time.monotonic() + 10
        while short() and time.monotonic() < deadline:
            time.sleep(0.2)
        if not short():
            return


def assigned_gpus() -> list[str]:
    """The GPUs Ray assigned to the calling actor or task (none outside a Ray worker)."""
    import ray

    if not ray.is_initialized():
        return []
    return [str(gpu) for gpu in ray.get_gpu_ids()]
