"""The OpenAPI document against a real server: a client generated from it parses real
answers, and a bounded schemathesis run (examples, coverage, fuzzing and stateful phases,
following the document's links) finds no server error and no answer that contradicts it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import RunningStack, create_tenant
from tests.unit.api.test_openapi import generated_client

pytestmark = pytest.mark.integration

CHECKS = ",".join(
    (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
    )
)


def test_a_client_generated_from_the_document_parses_real_answers(
    stack: RunningStack, tmp_path: Path
) -> None:
    tenant = create_tenant(stack, "generated-client")
    spec = httpx.get(f"{stack.api_url}/openapi.json").json()
    models = generated_client(spec, tmp_path)
    http = httpx.Client(
        base_url=tenant.base_url,
        headers=tenant.headers | {"X-Namespace": tenant.namespace_id},
        timeout=30,
    )
    schema = {"properties": {"content": {"type": "text"}, "title": {"type": "string"}}}
    bucket = models.BucketOut.model_validate(
        http.post("/buckets", json={"bucket_name": "gen", "bucket_schema": schema}).json()
    )
    made = http.post(f"/buckets/{bucket.bucket_id}/objects",
                     json={"blobs": [{"property": "content", "data": "hello"}]})  # fmt: skip
    assert models.ObjectOut.model_validate(made.json()).bucket_id == bucket.bucket_id
    objects = models.ObjectList.model_validate(
        http.get(f"/buckets/{bucket.bucket_id}/objects").json()
    )
    assert objects.total_count == 1 and objects.pagination.has_more is False
    assert (
        models.BucketList.model_validate(http.get("/buckets").json()).results[0].object_count == 1
    )
    assert models.NamespaceList.model_validate(http.get("/namespaces").json()).total_count >= 1
    missing = http.get("/buckets/missing")
    assert models.ErrorResponse.model_validate(missing.json()).error.type == "NotFoundError"
    assert models.TaskList.model_validate(http.post("/tasks/list").json()).total_count == 0
    http.close()


def test_schemathesis_finds_no_server_error_and_no_answer_against_the_document(
    stack: RunningStack, tmp_path: Path
) -> None:
    tenant = create_tenant(stack, "fuzzing")
    run = subprocess.run(
        [
            str(Path(sys.executable).with_name("schemathesis")), "run",
            f"{stack.api_url}/openapi.json",
            "--header", f"Authorization: Bearer {tenant.api_key}",
            "--header", f"X-Namespace: {tenant.namespace_id}",
            "--phases", "examples,coverage,fuzzing,stateful",
            "--checks", CHECKS,
            # per operation and phase: about a minute here (no --max-time: it would make
            # fuzzing and stateful testing repeat until the budget is spent)
            "--max-examples", os.environ.get("MIXPEEK_FUZZ_EXAMPLES", "10"),
            "--workers", "1",
            "--seed", "1",
            "--request-timeout", "60",
        ],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    summary = run.stdout[-6000:]
    assert run.returncode == 0, summary + run.stderr[-2000:]
    for phase in ("Coverage", "Fuzzing", "Stateful"):  # each phase ran and passed
        assert f"✅  {phase}" in run.stdout, summary
