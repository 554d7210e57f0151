"""Plugin versions in Dagster: assets, the sensor, and a run through the daemon."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from dagster import DagsterInstance, SensorResult, build_sensor_context, materialize

from mixpeek_orchestration.plugins.archive import build_archive
from plugin_assets.graph import build_definitions
from plugin_assets.keys import Keys
from plugin_assets.plugins import plugin_asset
from plugin_assets.resources import PlatformResource
from plugin_assets.state import read_state
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


def test_a_version_materialises_with_its_metadata(
    stack: RunningStack, tenant: Tenant, tmp_path: Path
) -> None:
    result = publish(tenant, tmp_path, "dagster_assets")
    state = read_state(stack.platform())
    versions = [v for v in state.versions if v.plugin_id == result["plugin_id"]]
    plugin = plugin_asset(versions, Keys(state))
    run = materialize(
        [plugin],
        partition_key="1.0.0",
        resources={"platform": resource(stack)},
        instance=DagsterInstance.ephemeral(),
    )
    assert run.success
    metadata = run.asset_materializations_for_node(plugin.op.name)[0].metadata
    assert metadata["sha256"].value == result["sha256"]
    assert metadata["scan_passed"].value is True and metadata["scan_errors"].value == 0
    assert metadata["feature_uris"].value == result["feature_uris"]
    assert metadata["parameter_schema"].value["properties"]["threshold"]["default"] == 0.5


def test_sensor_requests_each_version_of_the_definitions_once(
    stack: RunningStack, tenant: Tenant, tmp_path: Path
) -> None:
    result = publish(tenant, tmp_path, "dagster_sensor")
    state = read_state(stack.platform())
    defs = build_definitions(state)
    key = Keys(state).plugin(tenant.namespace_id, "dagster_sensor")
    sensor = defs.resolve_sensor_def("plugin_version_sensor")
    instance = DagsterInstance.ephemeral()
    resources = {"platform": resource(stack)}
    first = sensor(build_sensor_context(instance=instance, resources=resources, definitions=defs))
    assert isinstance(first, SensorResult)
    mine = [r for r in first.run_requests or [] if r.asset_selection == [key]]
    assert [r.partition_key for r in mine] == ["1.0.0"]
    assert mine[0].run_key == f"{tenant.namespace_id}__{result['plugin_id']}"
    # Re-evaluated from its cursor (as after a daemon restart): nothing is requested twice.
    again = sensor(
        build_sensor_context(
            instance=instance, cursor=first.cursor, resources=resources, definitions=defs
        )
    )
    assert not isinstance(again, SensorResult) or not again.run_requests


def test_a_published_version_is_materialised_through_the_daemon(
    stack: RunningStack, tenant: Tenant, tmp_path: Path
) -> None:
    publish(tenant, tmp_path, "dagster_e2e")
    key = Keys(read_state(stack.platform())).plugin(tenant.namespace_id, "dagster_e2e")
    dagster = stack.platform().dagster
    deadline = time.monotonic() + 180
    while "1.0.0" not in dagster.materialized_partitions(key.to_user_string()):
        assert time.monotonic() < deadline, f"{key} 1.0.0 was not materialised within 180 s"
        time.sleep(2)
