"""The skeleton Serve application: echoes its input with the replica that answered.

Kept in its own module so that ``ray.serve`` is imported only where a deployment is built.
"""

from __future__ import annotations

import os
from typing import Any

from ray import serve
from starlette.requests import Request


@serve.deployment(num_replicas=1, ray_actor_options={"num_cpus": 0})
class SkeletonEcho:
    """Answers ``{"ok": true, "echo": <body>, "pid": <replica pid>}``."""

    async def __call__(self, request: Request) -> dict[str, Any]:
        body = await request.json() if request.method == "POST" else dict(request.query_params)
        return {"ok": True, "echo": body, "pid": os.getpid()}


def build_skeleton_app() -> Any:
    return SkeletonEcho.bind()  # type: ignore[attr-defined]
