"""Plugin versions in Dagster: assets, the sensor, and a run through the daemon."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from dagster import DagsterInstance, SensorResult, build_sensor_context, materialize

from mixpeek_orchestration.plugins.archive import build_archive
from plugin_assets.definitions import defs
from plugin_assets.plugins import (
    partition_key,
    plugin_archive,
    plugin_scan_report,
    plugin_version,
    plugin_version_sensor,
    plugin_versions_partitions,
)
from plugin_assets.resources import PlatformResource
from tests.integration.conftest import RunningStack, Tenant

pytestmark = pytest.mark.integration

SEED = Path(__file__).resolve().parents[2] / "examples" / "plugins" / "my_extractor"


def publish(tenant: Tenant, tmp_path: Path, name: str) -> dict[str, object]:
    root = tmp_path / name
    shutil.copytree(SEED, root)
    manifest = root / "manifest.py"
    manifest.write_text(manifest.read_text().replace("my_extractor", name))
    archive = tmp_path / f"{name}.zip"
    build_archive(root, archive)
    return tenant.client().publish_archive(
        archive, name=name, version="1.0.0", message="for dagster"
    )


def resource(stack: RunningStack) -> PlatformResource:
    return PlatformResource(
        data_dir=str(stack.settings.data_dir), mongo_uri=stack.settings.mongo_uri or ""
    )


def test_assets_materialise_a_version_with_its_metadata(
    stack: RunningStack, tenant: Tenant, tmp_path: Path
) -> None:
    result = publish(tenant, tmp_path, "dagster_assets")
    key = partition_key(tenant.namespace_id, str(result["plugin_id"]))
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(plugin_versions_partitions.name, [key])
    run = materialize(
        [plugin_archive, plugin_scan_report, plugin_version],
        partition_key=key,
        resources={"platform": resource(stack)},
        instance=instance,
    )
    assert run.success
    archive = run.asset_materializations_for_node("plugin_archive")[0].metadata
    assert archive["sha256"].value == result["sha256"]
    scan = run.asset_materializations_for_node("plugin_scan_report")[0].metadata
    assert scan["passed"].value is True and scan["errors"].value == 0
    version = run.asset_materializations_for_node("plugin_version")[0].metadata
    assert version["feature_uris"].value == result["feature_uris"]
    assert version["parameter_schema"].value["properties"]["threshold"]["default"] == 0.5


def test_sensor_turns_new_versions_into_partitions_and_runs(
    stack: RunningStack, tenant: Tenant, tmp_path: Path
) -> None:
    result = publish(tenant, tmp_path, "dagster_sensor")
    key = partition_key(tenant.namespace_id, str(result["plugin_id"]))
    instance = DagsterInstance.ephemeral()
    context = build_sensor_context(
        instance=instance, resources={"platform": resource(stack)}, definitions=defs
    )
    first = plugin_version_sensor(context)
    assert isinstance(first, SensorResult)
    keys = [r.partition_key for r in first.run_requests or []]
    assert key in keys
    assert key in first.dynamic_partitions_requests[0].partition_keys  # type: ignore[index, union-attr]
    # Re-evaluated from its cursor (as after a daemon restart): nothing is requested twice.
    again = plugin_version_sensor(
        build_sensor_context(
            instance=instance,
            cursor=first.cursor,
            resources={"platform": resource(stack)},
            definitions=defs,
        )
    )
    assert not isinstance(again, SensorResult) or not again.run_requests
    cursor = json.loads(first.cursor or "{}")
    assert cursor["shared"]["after"]  # one cursor per data plane


def test_confirmed_upload_shows_up_in_dagster_through_the_daemon(
    stack: RunningStack, tenant: Tenant, tmp_path: Path
) -> None:
    result = publish(tenant, tmp_path, "dagster_e2e")
    key = partition_key(tenant.namespace_id, str(result["plugin_id"]))
    dagster = stack.platform().dagster
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if key in dagster.materialized_partitions("plugin_version"):
            break
        time.sleep(2)
    else:
        pytest.fail(f"{key} was not materialised by the sensor's run within 180 s")
    assert key in dagster.materialized_partitions("plugin_scan_report")
