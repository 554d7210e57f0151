"""The plugin lifecycle API (SPEC §5) against a real stack, as the seed guide's curl flow runs it."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import httpx
import pytest

from mixpeek_orchestration.client import ApiError
from mixpeek_orchestration.plugins.archive import build_archive
from tests.integration.conftest import RunningStack, Tenant

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SEED = REPO / "examples" / "plugins" / "my_extractor"


def zip_dir(root: Path) -> bytes:
    data = build_archive(root)
    assert isinstance(data, bytes)
    return data


def plugin_copy(tmp_path: Path, name: str = "my_extractor", **replace: str) -> Path:
    target = tmp_path / name
    shutil.copytree(SEED, target)
    manifest = target / "manifest.py"
    text = manifest.read_text()
    for old, new in replace.items():
        text = text.replace(old, new)
    manifest.write_text(text)
    return target


def test_seed_guide_sequence(tenant: Tenant) -> None:
    """upload -> PUT -> confirm -> status -> delete, with the documented fields."""
    base = f"{tenant.base_url}/namespaces/{tenant.namespace_id}/plugins"
    upload = httpx.post(
        f"{base}/uploads", headers=tenant.headers, json={"name": "my_extractor", "version": "1.0.0"}
    )
    assert upload.status_code == 200, upload.text
    ticket = upload.json()
    assert (
        ticket["upload_id"].startswith("plu_") and ticket["presigned_url"] and ticket["expires_at"]
    )

    put = httpx.put(
        ticket["presigned_url"], content=zip_dir(SEED), headers={"Content-Type": "application/zip"}
    )
    assert put.status_code == 200, put.text

    confirm = httpx.post(
        f"{base}/uploads/{ticket['upload_id']}/confirm", headers=tenant.headers, timeout=120
    )
    assert confirm.status_code == 200, confirm.text
    body = confirm.json()
    assert body["success"] is True and body["validation_status"] == "passed"
    assert body["plugin_id"] == "my_extractor_1_0_0"
    assert body["feature_uri"] == "mixpeek://my_extractor@1.0.0/my_extractor_embedding"

    again = httpx.post(
        f"{base}/uploads/{ticket['upload_id']}/confirm", headers=tenant.headers, timeout=120
    )
    assert (
        again.status_code == 200 and again.json()["plugin_id"] == "my_extractor_1_0_0"
    )  # idempotent

    status = httpx.get(f"{base}/my_extractor_1_0_0/status", headers=tenant.headers).json()
    assert status["status"] == "NOT_DEPLOYED"
    assert (
        status["route_prefix"]
        == f"/inference/custom_plugin_{tenant.namespace_id}_my_extractor_1_0_0"
    )
    assert status["feature_uri"] == body["feature_uri"]

    listed = httpx.get(base, headers=tenant.headers).json()
    assert "my_extractor_1_0_0" in [p["plugin_id"] for p in listed["results"]]

    deleted = httpx.delete(f"{base}/my_extractor_1_0_0", headers=tenant.headers)
    assert deleted.status_code == 200 and deleted.json()["deployment_removed"] is False
    gone = httpx.get(f"{base}/my_extractor_1_0_0", headers=tenant.headers)
    assert gone.status_code == 404 and gone.json()["code"] == "not_found"


def test_archive_is_stored_under_the_tenant_prefix(
    stack: RunningStack, tenant: Tenant, tmp_path: Path
) -> None:
    client = tenant.client()
    root = plugin_copy(tmp_path, "stored_plugin", my_extractor="stored_plugin")
    archive = tmp_path / "p.zip"
    archive.write_bytes(zip_dir(root))
    result = client.publish_archive(archive, name="stored_plugin", version="1.0.0")
    keys = [
        i.key
        for i in stack.platform().objects.list(
            f"{tenant.org_id}/{tenant.namespace_id}/plugin_custom/stored_plugin/"
        )
    ]
    assert len(keys) == 1 and keys[0].startswith(
        f"{tenant.org_id}/{tenant.namespace_id}/plugin_custom/stored_plugin/1.0.0/"
    )
    target = tmp_path / "download.zip"
    assert client.download_source(result["plugin_id"], target) == result["sha256"]
    assert target.read_bytes() == archive.read_bytes()  # the bytes scanned are the bytes served
    client.delete(result["plugin_id"])


def test_a_plugin_importing_subprocess_is_refused_and_nothing_registered(
    tenant: Tenant, tmp_path: Path
) -> None:
    root = plugin_copy(tmp_path, "sneaky", my_extractor="sneaky")
    core = root / "processors" / "core.py"
    core.write_text("import subprocess\n" + core.read_text())
    base = f"{tenant.base_url}/namespaces/{tenant.namespace_id}/plugins"
    ticket = httpx.post(
        f"{base}/uploads", headers=tenant.headers, json={"name": "sneaky", "version": "1.0.0"}
    ).json()
    httpx.put(
        ticket["presigned_url"], content=zip_dir(root), headers={"Content-Type": "application/zip"}
    )
    confirm = httpx.post(
        f"{base}/uploads/{ticket['upload_id']}/confirm", headers=tenant.headers, timeout=120
    )
    assert confirm.status_code == 422
    body = confirm.json()
    assert body["detail"] == "Security scan failed" and body["validation_status"] == "failed"
    violation = next(v for v in body["violations"] if "subprocess" in v["message"])
    assert violation == violation | {"file": "processors/core.py", "line": 1, "severity": "error"}
    assert set(violation) >= {"file", "line", "column", "message", "severity"}
    assert httpx.get(f"{base}/sneaky_1_0_0", headers=tenant.headers).status_code == 404
    versions = httpx.get(f"{base}/by-name/sneaky/versions", headers=tenant.headers)
    assert versions.status_code == 404


def test_other_organisations_get_404_everywhere(
    tenant: Tenant, other_tenant: Tenant, tmp_path: Path
) -> None:
    client = tenant.client()
    root = plugin_copy(tmp_path, "private_plugin", my_extractor="private_plugin")
    archive = tmp_path / "p.zip"
    archive.write_bytes(zip_dir(root))
    client.publish_archive(archive, name="private_plugin", version="1.0.0")
    base = f"{tenant.base_url}/namespaces/{tenant.namespace_id}/plugins"
    intruder = other_tenant.headers
    probes = [
        ("GET", base, None),
        ("GET", f"{base}/private_plugin_1_0_0", None),
        ("GET", f"{base}/private_plugin_1_0_0/status", None),
        ("GET", f"{base}/private_plugin_1_0_0/source", None),
        ("DELETE", f"{base}/private_plugin_1_0_0", None),
        ("GET", f"{base}/by-name/private_plugin/versions", None),
        ("GET", f"{base}/by-name/private_plugin/log", None),
        ("GET", f"{base}/by-name/private_plugin/diff?v1=1.0.0&v2=1.0.0", None),
        ("POST", f"{base}/by-name/private_plugin/rollback", {"version": "1.0.0"}),
        ("POST", f"{base}/uploads", {"name": "x", "version": "1.0.0"}),
        ("GET", f"{tenant.base_url}/namespaces/{tenant.namespace_id}", None),
        ("DELETE", f"{tenant.base_url}/namespaces/{tenant.namespace_id}", None),
    ]
    for method, url, body in probes:
        response = httpx.request(method, url, headers=intruder, json=body)
        assert response.status_code == 404, (method, url, response.text)
        assert response.json()["code"] == "not_found"
    # the intruder's own namespace never sees the plugin either
    own = httpx.get(
        f"{other_tenant.base_url}/namespaces/{other_tenant.namespace_id}/plugins", headers=intruder
    ).json()
    assert all(p["name"] != "private_plugin" for p in own["results"])
    assert client.get_plugin("private_plugin_1_0_0")["name"] == "private_plugin"


def test_requests_without_a_valid_key_are_401(tenant: Tenant) -> None:
    url = f"{tenant.base_url}/namespaces/{tenant.namespace_id}/plugins"
    assert httpx.get(url).status_code == 401
    wrong = httpx.get(url, headers={"Authorization": "Bearer mxp_sk_nope"})
    assert wrong.status_code == 401 and wrong.json()["code"] == "unauthorized"


def _confirm(tenant: Tenant, archive: bytes, name: str, version: str) -> httpx.Response:
    base = f"{tenant.base_url}/namespaces/{tenant.namespace_id}/plugins"
    ticket = httpx.post(
        f"{base}/uploads", headers=tenant.headers, json={"name": name, "version": version}
    ).json()
    httpx.put(ticket["presigned_url"], content=archive, headers={"Content-Type": "application/zip"})
    return httpx.post(
        f"{base}/uploads/{ticket['upload_id']}/confirm", headers=tenant.headers, timeout=120
    )


def test_bad_inputs_get_a_clear_4xx(tenant: Tenant, tmp_path: Path) -> None:
    base = f"{tenant.base_url}/namespaces/{tenant.namespace_id}/plugins"
    post = lambda body: httpx.post(f"{base}/uploads", headers=tenant.headers, json=body)  # noqa: E731

    bad_version = post({"name": "x", "version": "1.x"})
    assert bad_version.status_code == 422 and bad_version.json()["field"] == "version"
    assert "1.x" in bad_version.json()["detail"]
    bad_name = post({"name": "Bad-Name", "version": "1.0.0"})
    assert bad_name.status_code == 422 and bad_name.json()["field"] == "name"
    oversize = post({"name": "x", "version": "1.0.0", "file_size_bytes": 10**10})
    assert oversize.status_code == 413 and "file_size_bytes" in oversize.json()["detail"]
    missing_field = post({"version": "1.0.0"})
    assert missing_field.status_code == 422 and "name" in missing_field.json()["detail"]

    unknown = httpx.post(f"{base}/uploads/plu_doesnotexist/confirm", headers=tenant.headers)
    assert unknown.status_code == 404 and "plu_doesnotexist" in unknown.json()["detail"]

    never_put = post({"name": "x", "version": "1.0.0"}).json()
    not_uploaded = httpx.post(
        f"{base}/uploads/{never_put['upload_id']}/confirm", headers=tenant.headers
    )
    assert not_uploaded.status_code == 422 and "PUT" in not_uploaded.json()["detail"]

    short = post({"name": "x", "version": "1.0.0", "presigned_url_expiration": 1}).json()
    time.sleep(2.1)
    expired = httpx.put(
        short["presigned_url"], content=b"PK", headers={"Content-Type": "application/zip"}
    )
    assert expired.status_code == 403 and expired.json()["code"] == "signature_expired"
    tampered = httpx.put(short["presigned_url"].replace("signature=", "signature=0"), content=b"PK")
    assert tampered.status_code == 403

    no_manifest = io.BytesIO()
    with zipfile.ZipFile(no_manifest, "w") as zf:
        zf.writestr("pipeline.py", "x = 1\n")
    answer = _confirm(tenant, no_manifest.getvalue(), "x", "1.0.0")
    assert answer.status_code == 422 and any(
        v["rule"] == "no-manifest" for v in answer.json()["violations"]
    )

    misspelled = plugin_copy(
        tmp_path, "typo", my_extractor="typo", **{'"embedding_dim"': '"embeding_dim"'}
    )
    answer = _confirm(tenant, zip_dir(misspelled), "typo", "1.0.0")
    assert answer.status_code == 422
    assert "embeding_dim" in json.dumps(answer.json()["validation_errors"])

    mismatch = _confirm(tenant, zip_dir(SEED), "other_name", "1.0.0")
    assert mismatch.status_code == 422 and "other_name" in json.dumps(
        mismatch.json()["validation_errors"]
    )
    assert httpx.get(base, headers=tenant.headers).json()["total"] == len(
        [
            p
            for p in httpx.get(base, headers=tenant.headers).json()["results"]
            if p["name"] not in ("x", "typo", "other_name")
        ]
    )


def mixpeek(
    tenant: Tenant, *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIXPEEK_")}
    env |= {
        "MIXPEEK_API_KEY": tenant.api_key,
        "MIXPEEK_NAMESPACE": tenant.namespace_id,
        "MIXPEEK_BASE_URL": tenant.base_url,
    }
    return subprocess.run(
        [sys.executable, "-m", "mixpeek_orchestration.cli.main", "plugin", *args],
        capture_output=True, text=True, env=env, cwd=cwd, timeout=300, check=False,
    )  # fmt: skip


def test_versions_through_the_cli(tenant: Tenant, tmp_path: Path) -> None:
    root = plugin_copy(tmp_path, "versioned", my_extractor="versioned")
    published = mixpeek(tenant, "publish", str(root), "-m", "first cut")
    assert published.returncode == 0, published.stdout + published.stderr
    assert "versioned_1_0_0" in published.stdout

    core = root / "processors" / "core.py"
    core.write_text(core.read_text().replace('"positive"', '"upbeat"'))
    pushed = mixpeek(tenant, "push", str(root), "-m", "friendlier labels")
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    assert "versioned_1_0_1" in pushed.stdout  # patch auto-bumped

    client = tenant.client()
    versions = client.versions("versioned")
    assert [v["version"] for v in versions["versions"]] == ["1.0.0", "1.0.1"]
    assert versions["active_version"] == "1.0.1"

    diff = mixpeek(tenant, "diff", "versioned", "1.0.0", "1.0.1")
    assert diff.returncode == 0 and '+        batch["label"] = ["upbeat"' in diff.stdout
    assert "processors/core.py" in diff.stdout and "manifest.py" not in diff.stdout

    rolled = mixpeek(tenant, "rollback", "versioned", "1.0.0", "-m", "labels confused users")
    assert rolled.returncode == 0, rolled.stderr
    assert client.versions("versioned")["active_version"] == "1.0.0"

    entries = client.log("versioned")
    assert [(e["action"], e["version"], e["message"]) for e in entries] == [
        ("publish", "1.0.0", "first cut"),
        ("publish", "1.0.1", "friendlier labels"),
        ("rollback", "1.0.0", "labels confused users"),
    ]
    assert all(e["actor"].startswith("mxp_sk_") and e["at"] for e in entries)

    pulled = mixpeek(tenant, "pull", "versioned", "--out", str(tmp_path / "pulled"))
    assert pulled.returncode == 0, pulled.stderr
    assert (
        '"positive"' in (tmp_path / "pulled" / "processors" / "core.py").read_text()
    )  # the active 1.0.0

    listing = mixpeek(tenant, "list", "--json")
    assert {p["plugin_id"] for p in json.loads(listing.stdout)} >= {
        "versioned_1_0_0",
        "versioned_1_0_1",
    }
    refused = mixpeek(tenant, "delete", "versioned_9_9_9")
    assert refused.returncode == 1 and "not found" in refused.stderr


def test_cli_publish_shows_violations_and_uploads_nothing(tenant: Tenant, tmp_path: Path) -> None:
    root = plugin_copy(tmp_path, "evil_cli", my_extractor="evil_cli")
    (root / "processors" / "core.py").write_text(
        "import socket\n" + (SEED / "processors" / "core.py").read_text()
    )
    result = mixpeek(tenant, "publish", str(root))
    assert result.returncode == 1
    assert "Security scan failed" in result.stderr and "socket" in result.stderr
    with pytest.raises(ApiError) as info:
        tenant.client().versions("evil_cli")
    assert info.value.status == 404


def test_one_shot_upload(tenant: Tenant, tmp_path: Path) -> None:
    root = plugin_copy(tmp_path, "oneshot", my_extractor="oneshot")
    base = f"{tenant.base_url}/namespaces/{tenant.namespace_id}/plugins"
    raw = httpx.post(
        base,
        headers=tenant.headers | {"Content-Type": "application/zip"},
        content=zip_dir(root),
        timeout=120,
    )
    assert raw.status_code == 200, raw.text
    assert raw.json()["plugin_id"] == "oneshot_1_0_0"
    files = {"file": ("p.zip", zip_dir(root), "application/zip")}
    multipart = httpx.post(
        base, headers=tenant.headers, files=files, data={"version": "2.0.0"}, timeout=120
    )
    assert multipart.status_code == 200, multipart.text
    assert multipart.json()["plugin_id"] == "oneshot_2_0_0"


def test_same_version_with_other_content_conflicts(tenant: Tenant, tmp_path: Path) -> None:
    root = plugin_copy(tmp_path, "conflicted", my_extractor="conflicted")
    assert _confirm(tenant, zip_dir(root), "conflicted", "1.0.0").status_code == 200
    (root / "processors" / "core.py").write_text(
        (root / "processors" / "core.py").read_text() + "\n# changed\n"
    )
    again = _confirm(tenant, zip_dir(root), "conflicted", "1.0.0")
    assert again.status_code == 409 and "already exists" in again.json()["detail"]


def variant(tmp_path: Path, name: str) -> Path:
    """The seed plugin renamed (its feature too), so it registers anywhere afresh."""
    root = plugin_copy(tmp_path, name, my_extractor=name)
    core = root / "processors" / "core.py"
    core.write_text(core.read_text().replace('"my_extractor_embedding"', f'"{name}_embedding"'))
    return root


def typed_client(tenant: Tenant) -> object:
    import mixpeek

    client = mixpeek.ApiClient(
        mixpeek.Configuration(host=tenant.base_url.removesuffix("/v1"), access_token=tenant.api_key)
    )
    client.set_default_header("X-Namespace", tenant.namespace_id)
    return client


def test_the_newest_clients_extractors_api_submits_publishes_and_installs(
    tenant: Tenant, other_tenant: Tenant, tmp_path: Path
) -> None:
    """Submissions checked as uploads are, a passed one published, and installed by another
    organisation into its namespace, where it is a plugin version like any other."""
    import mixpeek
    from mixpeek import models as m
    from mixpeek.exceptions import ConflictException, NotFoundException

    ours, theirs = typed_client(tenant), typed_client(other_tenant)
    submissions = mixpeek.ExtractorsApi(ours)

    def submit(root: Path, name: str) -> tuple[object, object]:
        ticket = submissions.generate_upload_url_extractors_submissions(
            m.CreateSubmissionUploadRequest(name=name, version="1.0.0")
        )
        put = httpx.put(
            ticket.presigned_url, content=zip_dir(root),
            headers={"Content-Type": ticket.required_content_type},
        )  # fmt: skip
        assert put.status_code == 200, put.text
        checked = submissions.confirm_submission_extractors_uploads(
            ticket.submission_id, m.ConfirmSubmissionRequest()
        )
        return ticket, checked

    ticket, checked = submit(variant(tmp_path, "market_extractor"), "market_extractor")
    assert checked.status == "approved" and checked.security_scan_passed is True
    sneaky = variant(tmp_path / "bad", "market_sneaky")
    (sneaky / "processors" / "core.py").write_text(
        "import subprocess\n" + (sneaky / "processors" / "core.py").read_text()
    )
    bad_ticket, refused = submit(sneaky, "market_sneaky")
    assert refused.status == "rejected" and refused.security_scan_passed is False
    assert any("subprocess" in v["message"] for v in refused.security_violations)
    listed = {
        s.submission_id: s.status for s in submissions.list_submissions_extractors().submissions
    }
    assert listed[ticket.submission_id] == "approved"
    assert listed[bad_ticket.submission_id] == "rejected"
    assert (
        submissions.get_submission_extractors(ticket.submission_id).submission["version"] == "1.0.0"
    )
    theirs_listed = mixpeek.ExtractorsApi(theirs).list_submissions_extractors().submissions
    assert ticket.submission_id not in [s.submission_id for s in theirs_listed]

    publishing = mixpeek.ExtractorPublishingApi(ours)
    with pytest.raises(ConflictException):  # a rejected submission is never listed
        publishing.publish_extractor(bad_ticket.submission_id, m.PublishExtractorRequest())
    public = f"market-{os.urandom(3).hex()}"
    published = publishing.publish_extractor(
        ticket.submission_id, m.PublishExtractorRequest(public_name=public, description="text")
    )
    assert published.public_name == public and published.extractor_id == ticket.submission_id
    tagged = publishing.update_published_extractor_id_publish(
        ticket.submission_id, m.UpdatePublishedExtractorRequest(tags=["text"])
    )
    assert tagged.tags == ["text"]

    installed = mixpeek.ExtractorPublishingApi(theirs).install_extractor(
        m.InstallExtractorRequest(public_name=public)
    )
    assert installed.installed_extractor_id == "market_extractor_1_0_0"
    assert installed.feature_uri == "mixpeek://market_extractor@1.0.0/market_extractor_embedding"
    version = httpx.get(
        f"{other_tenant.base_url}/namespaces/{other_tenant.namespace_id}/plugins/market_extractor_1_0_0",
        headers=other_tenant.headers,
    )
    assert version.status_code == 200 and version.json()["is_active"] is True
    catalogue = mixpeek.ExtractorsApi(theirs).list_org_extractors()
    assert "market_extractor" in [e.feature_extractor_name for e in catalogue.extractors]
    assert catalogue.builtin_count >= 2 and catalogue.namespace_id == other_tenant.namespace_id
    builtin = mixpeek.NamespaceExtractorsApi(theirs).get_extractor_namespaces(
        other_tenant.namespace_id, "text_extractor"
    )
    assert builtin.source.value == "builtin"
    assert publishing.get_published_extractor_id_publish(ticket.submission_id).install_count == 1

    publishing.unpublish_extractor_id_publish(ticket.submission_id)
    with pytest.raises(NotFoundException):
        mixpeek.ExtractorPublishingApi(theirs).install_extractor(
            m.InstallExtractorRequest(public_name=public)
        )


CLIENT_131_SCRIPT = """
import sys, httpx, mixpeek
from mixpeek import models as m
assert mixpeek.__file__.startswith(sys.argv[5]), mixpeek.__file__
key, host, namespace, archive = sys.argv[1:5]
auth = "Bearer " + key
plugins = mixpeek.CustomPluginsNamespaceApi(mixpeek.ApiClient(mixpeek.Configuration(host=host)))
data = open(archive, "rb").read()
ticket = plugins.generate_upload_url_namespaces_id_plugins(
    namespace, m.ApiNamespacesPluginsModelsCreatePluginUploadRequest(name="era_one", version="1.0.0"),
    authorization=auth)
httpx.put(ticket.presigned_url, content=data, headers={"Content-Type": "application/zip"}).raise_for_status()
confirmed = plugins.confirm_upload_namespaces_id_plugins(
    namespace, ticket.upload_id, authorization=auth,
    confirm_plugin_upload_request=m.ConfirmPluginUploadRequest(file_size_bytes=len(data)))
assert confirmed.success and confirmed.plugin_id == "era_one_1_0_0", confirmed
assert confirmed.deployment_status == "not_deployed"
listed = plugins.list_plugins_namespaces(namespace, authorization=auth)
assert "era_one_1_0_0" in [p.plugin_id for p in listed.plugins], listed
detail = plugins.get_plugin_namespaces(namespace, "era_one_1_0_0", authorization=auth)
assert detail.plugin.code_hash and detail.plugin.validation_status == "passed"
status = plugins.get_deployment_status_namespaces_id_plugins(namespace, "era_one_1_0_0", authorization=auth)
assert status.status == "NOT_DEPLOYED" and status.namespace_id
direct = plugins.upload_plugin_namespaces(namespace, file=data, name="era_one", version="2.0.0",
                                          authorization=auth)
assert direct.success and direct.plugin_id == "era_one_2_0_0", direct
gone = plugins.delete_plugin_namespaces(namespace, "era_one_2_0_0", authorization=auth)
assert gone.plugin_id == "era_one_2_0_0" and gone.message
print("client 1.3.1: every plugin call parsed")
"""


def test_the_seed_documents_client_1_3_1_plugin_calls_work(tenant: Tenant, tmp_path: Path) -> None:
    """The custom-plugin API as client 1.3.1 (the seed documents' era) calls it, through the
    same registry: upload URL -> PUT -> confirm, one-shot upload, list, detail, status, delete."""
    client_dir = Path(sys.prefix) / "mixpeek-client-1.3.1"
    assert (client_dir / "mixpeek").is_dir(), f"{client_dir} is missing: run `make install`"
    archive = tmp_path / "era_one.zip"
    build_archive(variant(tmp_path, "era_one"), archive)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {
        "PYTHONPATH": str(client_dir)
    }
    run = subprocess.run(
        [sys.executable, "-c", CLIENT_131_SCRIPT, tenant.api_key,
         tenant.base_url.removesuffix("/v1"), tenant.namespace_id, str(archive), str(client_dir)],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert "every plugin call parsed" in run.stdout
