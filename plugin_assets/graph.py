"""The code location's ``Definitions``, built from a :class:`~plugin_assets.state.PlatformState`.

Per namespace (one group, keys under ``{org}/{namespace}/``):

* ``buckets/{name}``: an external asset per bucket, observed by the ingestion sensor (object
  count, last upload);
* ``plugins/{name}``: an asset per plugin, one partition per version;
* ``collections/{name}``: an asset per collection, one partition per ingestion batch, downstream
  of its buckets and of the plugin version it pins, with its checks.

And the platform's own: the Ray Data smoke asset, the rollout job, the sensors.
"""

from __future__ import annotations

from itertools import groupby

from dagster import AssetSpec, Definitions, EnvVar, in_process_executor

from plugin_assets.ingestion import bucket_objects_sensor, collection_asset
from plugin_assets.keys import Keys
from plugin_assets.plugins import (
    plugin_asset,
    plugin_deployment_job,
    plugin_deployment_sensor,
    plugin_version_sensor,
)
from plugin_assets.reload import platform_state_sensor
from plugin_assets.resources import PlatformResource, RayResource
from plugin_assets.skeleton import ray_data_smoke, ray_smoke_job
from plugin_assets.state import PlatformState


def build_definitions(state: PlatformState) -> Definitions:
    keys = Keys(state)
    buckets = [
        AssetSpec(
            keys.bucket(b),
            group_name=keys.group(b.namespace_id),
            kinds={"s3"},
            tags=keys.tags(b.namespace_id, b.plane),
            description=f"Bucket {b.bucket_name!r}: objects uploaded through the API or landing "
            "under its prefix (observed by the ingestion sensor).",
            metadata={"bucket_id": b.bucket_id, "namespace_id": b.namespace_id},
        )
        for b in state.buckets
    ]
    plugins = [
        plugin_asset(list(versions), keys)
        for _, versions in groupby(state.versions, key=lambda v: (v.namespace_id, v.name))
    ]
    collections = [collection_asset(c, keys) for c in state.collections]
    return Definitions(
        assets=[ray_data_smoke, *buckets, *plugins, *collections],
        jobs=[ray_smoke_job, plugin_deployment_job],
        sensors=[
            bucket_objects_sensor(state, keys),
            plugin_version_sensor(state, keys),
            plugin_deployment_sensor,
            platform_state_sensor(state),
        ],
        resources={
            "ray": RayResource(address=EnvVar("MIXPEEK_RAY_ADDRESS")),
            "platform": PlatformResource(
                data_dir=EnvVar("MIXPEEK_DATA_DIR"), mongo_uri=EnvVar("MIXPEEK_MONGO_URI")
            ),
        },
        # one step per run: running it in the run worker saves spawning (and importing) a
        # second process
        executor=in_process_executor,
    )
