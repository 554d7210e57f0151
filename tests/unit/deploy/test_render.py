"""Overrides files and the manifests rendered from them (SPEC §10), offline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from mixpeek_orchestration.cli.main import app
from mixpeek_orchestration.deploy.render import check_manifest, render, write
from mixpeek_orchestration.errors import MixpeekError
from mixpeek_orchestration.serve.options import serve_options
from mixpeek_orchestration.tenancy.overrides import load_overrides, parse_overrides

REGISTRY = ["text_extractor", "image_extractor", "my_extractor", "web_scraper"]
SPEC_EXAMPLE = """
auto_deploy: false
disabled: [web_scraper]
overrides:
  my_extractor:
    min_replicas: 0
    max_replicas: 3
    target_ongoing_requests: 4
    downscale_delay_s: 120
    num_cpus: 1
    num_gpus: 0
    memory_gb: 2
    max_concurrency: 2
cluster:
  cpu:   {min_nodes: 1, max_nodes: 2}
  batch: {min_nodes: 0, max_nodes: 3}
  gpu:   {min_nodes: 0, max_nodes: 2, accelerator: nvidia-l4}
head: {cpu: "4", memory: 16Gi}
env: {SOME_VAR: value}
spec: {health_check_period_s: 10, health_check_timeout_s: 30}
"""


def containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    if isinstance(doc, dict):
        if "containers" in doc:
            found += doc["containers"]
        for value in doc.values():
            found += containers(value)
    elif isinstance(doc, list):
        for value in doc:
            found += containers(value)
    return found


def test_the_spec_example_renders_the_groups_autoscaling_and_env_it_asks_for(
    tmp_path: Path,
) -> None:
    path = tmp_path / "acme.yaml"
    path.write_text(SPEC_EXAMPLE)
    files = render("acme", load_overrides(path, known=REGISTRY), REGISTRY)
    written = write(files, tmp_path / "out")
    assert sorted(p.name for p in written) == [
        "api.yaml", "dagster-values.yaml", "namespace.yaml", "rayservice.yaml",
    ]  # fmt: skip
    service = yaml.safe_load((tmp_path / "out" / "rayservice.yaml").read_text())
    groups = {g["groupName"]: g for g in service["spec"]["rayClusterConfig"]["workerGroupSpecs"]}
    assert {n: (g["minReplicas"], g["maxReplicas"]) for n, g in groups.items()} == {
        "cpu": (1, 2), "batch": (0, 3), "gpu": (0, 2),
    }  # fmt: skip
    gpu = groups["gpu"]["template"]["spec"]
    assert gpu["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert gpu["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-l4"}
    assert '"batch": 1000' in groups["batch"]["rayStartParams"]["resources"]
    assert "resources" not in groups["cpu"]["rayStartParams"]  # Serve workers take no batch

    serve = yaml.safe_load(service["spec"]["serveConfigV2"])
    apps = {a["name"]: a for a in serve["applications"]}
    # auto_deploy false: only what the file names, and the ingestion service
    assert list(apps) == ["my_extractor", "mixpeek-ingest"]
    assert apps["mixpeek-ingest"]["import_path"].endswith("ingest_service:app_builder")
    deployment = apps["my_extractor"]["deployments"][0]
    assert deployment["autoscaling_config"] | {} == {
        **deployment["autoscaling_config"],
        "min_replicas": 0, "max_replicas": 3, "target_ongoing_requests": 4.0,
        "downscale_delay_s": 120.0,
    }  # fmt: skip
    assert deployment["ray_actor_options"] == {"num_cpus": 1.0, "memory": 2 * 1024**3}

    everything = [d for documents in files.values() for d in documents]
    assert "web_scraper" not in yaml.safe_dump_all(everything)
    for container in containers(everything):
        assert {"name": "SOME_VAR", "value": "value"} in container["env"], container["name"]
    values = files["dagster-values.yaml"][0]
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    code = values["dagster-user-deployments"]["deployments"][0]
    assert code["env"]["SOME_VAR"] == "value"
    # a code server that reloads when the platform's state changes, found by its service
    assert code["codeServerArgs"] == ["-m", "plugin_assets.definitions"]
    assert code["env"]["MIXPEEK_DAGSTER_CODE_SERVER"] == f"{code['name']}:{code['port']}"
    quota = files["namespace.yaml"][1]["spec"]["hard"]
    assert quota["requests.nvidia.com/gpu"] == "2" and quota["requests.cpu"] == "40"


def test_auto_deploy_serves_every_enabled_extractor_and_never_a_disabled_one() -> None:
    overrides = parse_overrides({"auto_deploy": True, "disabled": ["image_extractor"]})
    files = render("beta", overrides, REGISTRY)
    serve = yaml.safe_load(files["rayservice.yaml"][0]["spec"]["serveConfigV2"])
    assert [a["name"] for a in serve["applications"]] == [
        "text_extractor", "my_extractor", "web_scraper", "mixpeek-ingest",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("document", "named"),
    [
        ({"overrides": {"my_extractor": {"min_replicas": 3, "max_replicas": 1}}},
         "overrides.my_extractor: min_replicas (3) is above max_replicas (1)"),
        ({"cluster": {"gpu": {"min_nodes": 3, "max_nodes": 2}}},
         "cluster.gpu: min_nodes (3) is above max_nodes (2)"),
        ({"overrides": {"my_extractor": {"max_replicas": -1}}},
         "overrides.my_extractor.max_replicas"),
        ({"overides": {}}, "overides: unknown key"),
        ({"overrides": {"my_extractor": {"replicas": 2}}},
         "overrides.my_extractor.replicas: unknown key"),
        ({"head": {"cpu": "4", "gpus": 1}}, "head.gpus: unknown key"),
    ],
)  # fmt: skip
def test_a_contradictory_file_is_refused_naming_the_key(document: Any, named: str) -> None:
    with pytest.raises(MixpeekError) as caught:
        parse_overrides(document)
    assert named in caught.value.detail


def test_unknown_extractor_names_are_refused_and_nothing_is_written(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("overrides:\n  nope_extractor: {max_replicas: 2}\n")
    with pytest.raises(MixpeekError, match="overrides: unknown extractor nope_extractor"):
        load_overrides(path, known=REGISTRY)
    result = CliRunner().invoke(
        app, ["deploy", "render", "--tenant", "acme", "--overrides", str(path),
              "--out", str(tmp_path / "out")],
    )  # fmt: skip
    assert result.exit_code == 1 and "nope_extractor" in result.output
    assert not (tmp_path / "out").exists()
    path.write_text("disabled: [my_extractor]\noverrides:\n  my_extractor: {max_replicas: 2}\n")
    with pytest.raises(MixpeekError, match="also listed under disabled"):
        load_overrides(path, known=REGISTRY)


def test_the_cli_writes_a_tenant_with_its_custom_extractors(tmp_path: Path) -> None:
    path = tmp_path / "acme.yaml"
    path.write_text(SPEC_EXAMPLE.replace("[web_scraper]", "[image_extractor]"))
    result = CliRunner().invoke(
        app, ["deploy", "render", "--tenant", "acme", "--overrides", str(path),
              "--out", str(tmp_path / "out"), "--extractor", "my_extractor"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    api = list(yaml.safe_load_all((tmp_path / "out" / "api.yaml").read_text()))
    assert [d["kind"] for d in api] == ["Deployment", "Service"]
    assert api[0]["metadata"]["namespace"] == "mixpeek-acme"


def test_a_tenants_data_plane_reaches_ray_and_dagster_without_its_credentials(
    tmp_path: Path,
) -> None:
    plane = tmp_path / "plane.yaml"
    plane.write_text(
        "mongo_uri: mongodb://admin:hunter2@db.acme.internal:27017\n"
        "mongo_database: acme\ns3_bucket: acme-objects\ns3_prefix: prod\n"
        "s3_access_key_id: AKIA-ACME\ns3_secret_access_key: s3cr3t-acme\n"
    )
    overrides = tmp_path / "acme.yaml"
    overrides.write_text(SPEC_EXAMPLE.replace("[web_scraper]", "[image_extractor]"))
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["deploy", "render", "--tenant", "acme", "--overrides", str(overrides),
              "--out", str(out), "--extractor", "my_extractor", "--plane", str(plane)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "mixpeek-plane" in result.output and "MIXPEEK_S3_SECRET_ACCESS_KEY" in result.output
    written = "".join(path.read_text() for path in out.iterdir())
    assert not any(secret in written for secret in ("hunter2", "AKIA-ACME", "s3cr3t-acme"))
    service = yaml.safe_load((out / "rayservice.yaml").read_text())
    for container in containers(service):  # head and every worker group
        env = {e["name"]: e for e in container["env"]}
        assert env["MIXPEEK_MONGO_DATABASE"]["value"] == "acme"
        assert env["MIXPEEK_S3_BUCKET"]["value"] == "acme-objects"
        assert env["MIXPEEK_VECTORS_URI"]["value"] == "s3://acme-objects/prod/vectors"
        assert env["MIXPEEK_QUEUE_PREFIX"]["value"] == "acme-"
        assert env["SOME_VAR"]["value"] == "value"
        assert env["MIXPEEK_MONGO_URI"]["valueFrom"]["secretKeyRef"] == {
            "name": "mixpeek-plane", "key": "MIXPEEK_MONGO_URI"
        }  # fmt: skip
    values = yaml.safe_load((out / "dagster-values.yaml").read_text())
    assert values["dagsterDaemon"]["env"]["MIXPEEK_MONGO_DATABASE"] == "acme"
    assert values["dagsterDaemon"]["envSecrets"] == [{"name": "mixpeek-plane"}]
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    assert "MIXPEEK_S3_BUCKET=acme-objects" in launcher["envVars"]
    assert launcher["envSecrets"] == [{"name": "mixpeek-plane"}]
    # pods share no disk: a rendered plane without an S3 bucket is refused, nothing written
    plane.write_text("mongo_database: acme\n")
    refused = CliRunner().invoke(
        app, ["deploy", "render", "--tenant", "acme", "--overrides", str(overrides),
              "--out", str(tmp_path / "none"), "--extractor", "my_extractor", "--plane", str(plane)],
    )  # fmt: skip
    assert refused.exit_code == 1 and "s3_bucket" in refused.output
    assert not (tmp_path / "none").exists()


def test_manifests_are_checked_against_the_kubernetes_and_kuberay_schemas() -> None:
    files = render("acme", parse_overrides({}), REGISTRY)
    service = files["rayservice.yaml"][0]
    broken = yaml.safe_load(yaml.safe_dump(service))
    del broken["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["groupName"]
    with pytest.raises(MixpeekError, match="groupName"):
        check_manifest(broken)
    broken = yaml.safe_load(yaml.safe_dump(service))
    broken["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["maxReplicas"] = "many"
    with pytest.raises(MixpeekError, match="maxReplicas"):
        check_manifest(broken)
    deployment = yaml.safe_load(yaml.safe_dump(files["api.yaml"][0]))
    del deployment["spec"]["template"]["spec"]["containers"][0]["name"]
    with pytest.raises(MixpeekError, match="name"):
        check_manifest(deployment)
    with pytest.raises(MixpeekError, match="Kubernetes name"):
        render("Acme_Corp", parse_overrides({}), REGISTRY)


def test_the_local_deployer_merges_an_extractors_overrides_over_its_manifest() -> None:
    manifest = {"serve_config": {"num_replicas": 1, "num_cpus": 2}}
    assert serve_options(manifest, "plugin")["num_replicas"] == 1
    override = parse_overrides({"overrides": {"x": {"min_replicas": 0, "max_replicas": 4}}})
    merged = serve_options(manifest, "plugin", override.for_extractor("x").serve_config())
    assert "num_replicas" not in merged
    assert merged["autoscaling_config"]["min_replicas"] == 0
    assert merged["autoscaling_config"]["initial_replicas"] == 1  # the rollout proves it loads
    assert merged["autoscaling_config"]["max_replicas"] == 4
    assert merged["ray_actor_options"]["num_cpus"] == 2.0  # the plugin's own, not overridden


def test_a_stack_reads_its_overrides_file_on_every_call(tmp_path: Path) -> None:
    from mixpeek_orchestration.platform import Platform
    from mixpeek_orchestration.settings import load_settings

    path = tmp_path / "overrides.yaml"
    path.write_text("disabled: [image_extractor]\n")
    platform = Platform(load_settings(data_dir=tmp_path / "data", overrides_file=path))
    assert platform.overrides().disabled == ["image_extractor"]
    path.write_text("disabled: []\noverrides:\n  my_extractor: {max_concurrency: 3}\n")
    assert platform.overrides().disabled == []
    assert platform.overrides().for_extractor("my_extractor").max_concurrency == 3
    assert Platform(load_settings(data_dir=tmp_path / "data")).overrides().disabled == []


def test_a_deployment_asks_room_for_its_first_replicas() -> None:
    from mixpeek_orchestration.serve.options import initial_need

    fixed = serve_options({"serve_config": {"num_replicas": 2, "num_cpus": 0.5}}, "plugin")
    assert initial_need(fixed) == {"CPU": 1.0, "GPU": 0.0}
    scaled = serve_options({"serve_config": {"min_replicas": 0, "num_gpus": 1}}, "plugin")
    assert initial_need(scaled) == {"CPU": 1.0, "GPU": 1.0}  # the first request's replica


def test_every_worker_group_hosts_plugins_on_gvisor_and_the_head_does_not() -> None:
    files = render("acme", parse_overrides({}), REGISTRY)
    cluster = files["rayservice.yaml"][0]["spec"]["rayClusterConfig"]
    for group in cluster["workerGroupSpecs"]:
        pod = group["template"]["spec"]
        assert pod["runtimeClassName"] == "gvisor", group["groupName"]
        assert pod["automountServiceAccountToken"] is False
        security = pod["containers"][0]["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["capabilities"] == {"drop": ["ALL"]}
        assert group["template"]["metadata"]["labels"]["mixpeek.io/plugin-host"] == "true"
    assert "runtimeClassName" not in cluster["headGroupSpec"]["template"]["spec"]
    kinds = {doc["kind"]: doc for doc in files["namespace.yaml"]}
    assert kinds["RuntimeClass"]["handler"] == "runsc"
    policy = kinds["NetworkPolicy"]["spec"]
    assert policy["podSelector"] == {"matchLabels": {"mixpeek.io/plugin-host": "true"}}
    blocks = [to["ipBlock"] for rule in policy["egress"] for to in rule["to"] if "ipBlock" in to]
    assert blocks == [{"cidr": "0.0.0.0/0", "except": [
        "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "100.64.0.0/10"]}]  # fmt: skip


def test_an_operator_opens_named_private_ranges_but_never_the_metadata_service() -> None:
    overrides = parse_overrides({"sandbox": {"private_egress": ["10.20.0.0/16"]}})
    files = render("acme", overrides, REGISTRY)
    policy = next(d for d in files["namespace.yaml"] if d["kind"] == "NetworkPolicy")
    assert {"to": [{"ipBlock": {"cidr": "10.20.0.0/16"}}]} in policy["spec"]["egress"]
    with pytest.raises(MixpeekError, match=r"sandbox\.private_egress"):
        parse_overrides({"sandbox": {"private_egress": ["169.254.169.254/32"]}})
    with pytest.raises(MixpeekError, match="not a CIDR"):
        parse_overrides({"sandbox": {"private_egress": ["the office"]}})
