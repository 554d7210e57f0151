"""The ``Definitions`` of the ``plugin_assets`` code location (loaded by ``workspace.yaml``)."""

from dagster import Definitions, EnvVar

from plugin_assets.ingestion import (
    bucket_objects_sensor,
    collection_ingestion,
    collection_ingestion_job,
)
from plugin_assets.plugins import (
    plugin_archive,
    plugin_assets_job,
    plugin_deployment,
    plugin_deployment_job,
    plugin_deployment_sensor,
    plugin_scan_report,
    plugin_version,
    plugin_version_sensor,
)
from plugin_assets.resources import PlatformResource, RayResource
from plugin_assets.skeleton import ray_data_smoke, ray_smoke_job

defs = Definitions(
    assets=[
        ray_data_smoke,
        plugin_archive,
        plugin_scan_report,
        plugin_version,
        plugin_deployment,
        collection_ingestion,
    ],
    jobs=[ray_smoke_job, plugin_assets_job, plugin_deployment_job, collection_ingestion_job],
    sensors=[plugin_version_sensor, plugin_deployment_sensor, bucket_objects_sensor],
    resources={
        "ray": RayResource(address=EnvVar("MIXPEEK_RAY_ADDRESS")),
        "platform": PlatformResource(
            data_dir=EnvVar("MIXPEEK_DATA_DIR"), mongo_uri=EnvVar("MIXPEEK_MONGO_URI")
        ),
    },
)
