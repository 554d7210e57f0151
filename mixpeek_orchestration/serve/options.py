"""Ray Serve deployment options of a plugin version, from its manifest and the operator's
overrides: the one function the local deployer and the rendered manifests both use."""

from __future__ import annotations

from typing import Any


def serve_options(
    manifest: dict[str, Any], app: str, override: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Deployment options from the manifest's ``serve_config`` (autoscaling, resources), with
    the operator's ``override`` (the tenant's overrides file, SPEC §10) on top."""
    config = (manifest.get("serve_config") or {}) | (override or {})
    if override and ("min_replicas" in override or "max_replicas" in override):
        config.pop("num_replicas", None)  # the operator asked for autoscaling
    actor: dict[str, Any] = {"num_cpus": float(config.get("num_cpus", 1.0))}
    num_gpus = float(config.get("num_gpus", 0.0))
    if num_gpus:
        actor["num_gpus"] = num_gpus
    if config.get("memory_gb"):
        actor["memory"] = int(float(config["memory_gb"]) * 1024**3)
    options: dict[str, Any] = {"name": app, "ray_actor_options": actor, "max_ongoing_requests": 64}
    if config.get("num_replicas") is not None:
        options["num_replicas"] = int(config["num_replicas"])
    else:
        autoscaling = {
            "min_replicas": int(config.get("min_replicas", 1)),
            "max_replicas": int(config.get("max_replicas", 1)),
            "target_ongoing_requests": float(config.get("target_ongoing_requests", 2.0)),
            "downscale_delay_s": float(config.get("downscale_delay_s", 600.0)),
            "upscale_delay_s": float(config.get("upscale_delay_s", 5.0)),
        }
        if autoscaling["min_replicas"] == 0:
            # scale to zero: start with one replica, so the rollout proves the handler loads,
            # and let it go after downscale_delay_s without requests
            autoscaling["initial_replicas"] = 1
        options["autoscaling_config"] = autoscaling
    return options


def initial_need(options: dict[str, Any]) -> dict[str, float]:
    """What a Serve application's first replicas ask of the cluster."""
    replicas = options.get("num_replicas") or (options.get("autoscaling_config") or {}).get(
        "min_replicas", 1
    )
    actor = options.get("ray_actor_options") or {}
    return {
        "CPU": float(actor.get("num_cpus", 1.0)) * max(1, int(replicas)),
        "GPU": float(actor.get("num_gpus", 0.0)) * max(1, int(replicas)),
    }
