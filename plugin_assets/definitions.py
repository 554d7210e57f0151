"""The ``Definitions`` of the ``plugin_assets`` code location (loaded by ``workspace.yaml``)."""

from __future__ import annotations

from dagster import Definitions, EnvVar

from plugin_assets.resources import RayResource
from plugin_assets.skeleton import ray_data_smoke, ray_smoke_job

defs = Definitions(
    assets=[ray_data_smoke],
    jobs=[ray_smoke_job],
    resources={
        "ray": RayResource(address=EnvVar("MIXPEEK_RAY_ADDRESS")),
    },
)
