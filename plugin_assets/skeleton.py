"""Skeleton assets proving the orchestration -> compute path: Dagster runs a Ray Data job."""

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset, define_asset_job

from plugin_assets.resources import RayResource


@asset(
    group_name="skeleton",
    kinds={"ray", "python"},
    description="Submits a small Ray Data job (map_batches over 10,000 rows) to the configured "
    "Ray cluster and records what it did.",
)
def ray_data_smoke(context: AssetExecutionContext, ray: RayResource) -> MaterializeResult:
    cluster = ray.get_client()
    context.log.info("submitting a Ray Data job to %s", cluster.address)
    result = cluster.run_smoke_job(rows=10_000)
    context.log.info("Ray Data job done: %s", result)
    return MaterializeResult(
        metadata={
            "ray_address": MetadataValue.text(cluster.address),
            "rows": MetadataValue.int(result["rows"]),
            "sum_of_squares": MetadataValue.int(result["sum_of_squares"]),
            "duration_s": MetadataValue.float(result["duration_s"]),
            "rows_per_s": MetadataValue.float(result["rows_per_s"] or 0.0),
            "cluster_cpus": MetadataValue.float(result["cluster_cpus"]),
            "nodes": MetadataValue.int(result["nodes"]),
        }
    )


ray_smoke_job = define_asset_job("ray_smoke_job", selection=[ray_data_smoke])
