"""Retrievers end to end: documents ingested by a plugin, queries encoded by its deployment."""

from __future__ import annotations

import io
import json
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from mixpeek_orchestration.plugins.archive import build_archive
from tests.integration.conftest import RunningStack, Tenant, create_tenant
from tests.integration.test_ingestion import SEED, Api, wait_documents
from tests.integration.test_realtime import deploy, wait_status

pytestmark = pytest.mark.integration

CORPUS = [
    ("pets", "A golden retriever chases a tennis ball across the park lawn."),
    ("finance", "The central bank raised interest rates to fight inflation."),
    ("food", "Fresh basil, tomatoes and mozzarella make a classic pizza margherita."),
    ("space", "The spacecraft entered orbit around Mars after a seven month journey."),
    ("health", "Regular stretching and strength training reduce the risk of injury."),
    ("music", "The violinist performed a Bach partita at the concert hall."),
]
URI = "mixpeek://my_extractor@1.0.0/my_extractor_embedding"


def first_stage(result: dict[str, Any]) -> dict[str, Any]:
    """The first stage's statistics of an execute answer (keyed by stage name, as hosted)."""
    return next(iter(result["stage_statistics"]["stages"].values()))  # type: ignore[no-any-return]


def search_stage(**extra: Any) -> dict[str, Any]:
    return {
        "stage_name": "search",
        "config": {
            "stage_id": "feature_search",
            "parameters": {
                "searches": [
                    {
                        "feature_uri": URI,
                        "query": {"input_mode": "text", "value": "{{INPUT.q}}"},
                        "top_k": 6,
                    }
                ],
                "final_top_k": 6,
                **extra,
            },
        },
    }


@pytest.fixture(scope="module")
def setup(
    stack: RunningStack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Api, Tenant, dict[str, Any]]]:
    tenant = create_tenant(stack, "retrieval-org")
    api = Api(tenant)
    archive = tmp_path_factory.mktemp("seed") / "my_extractor.zip"
    build_archive(SEED, archive)
    tenant.client().publish_archive(archive, name="my_extractor", version="1.0.0")
    bucket = api.call(
        "POST",
        "/buckets",
        json={
            "bucket_name": "articles",
            "bucket_schema": {"properties": {"content": {"type": "text"}}},
        },
    )
    collection = api.call(
        "POST", "/collections",
        json={"collection_name": "articles", "source": {"type": "bucket", "bucket_ids": ["articles"]},
              "feature_extractor": {"feature_extractor_name": "my_extractor", "version": "1.0.0"}},
    )  # fmt: skip
    for topic, text in CORPUS:
        api.call("POST", f"/buckets/{bucket['bucket_id']}/objects",
                 json={"blobs": [{"property": "content", "data": text}], "metadata": {"topic": topic, "length": len(text)}})  # fmt: skip
    counts = wait_documents(api, collection["collection_id"], len(CORPUS))
    failed = api.call("POST", f"/collections/{collection['collection_id']}/documents/list",
                      json={"filters": {"status": "failed"}})["results"]  # fmt: skip
    assert counts["failed"] == 0, [d.get("error") for d in failed]  # every test below needs all
    yield api, tenant, collection
    # the session's Ray is small: later modules need the replica's CPU
    api.http.post(f"/namespaces/{tenant.namespace_id}/plugins/my_extractor_1_0_0/undeploy")


@pytest.fixture()
def deployed(setup: Any) -> Any:
    """The seed plugin's realtime deployment (deployed once, by whichever test needs it first)."""
    _, tenant, _ = setup
    status = wait_status(
        tenant,
        "my_extractor_1_0_0",
        {"NOT_DEPLOYED", "DEPLOYED", "FAILED", "QUEUED", "PENDING", "IN_PROGRESS"},
    )
    if status["status"] in ("NOT_DEPLOYED", "FAILED"):
        deploy(tenant, "my_extractor_1_0_0")
    assert wait_status(tenant, "my_extractor_1_0_0", {"DEPLOYED", "FAILED"})["status"] == "DEPLOYED"
    return setup


def test_a_retriever_refuses_features_its_collections_lack(setup: Any) -> None:
    api, _, _ = setup
    stage = search_stage()
    stage["config"]["parameters"]["searches"][0]["feature_uri"] = "mixpeek://other@1.0.0/x"
    refused = api.call(
        "POST", "/retrievers", expect=422,
        json={"retriever_name": "bad", "collection_identifiers": ["articles"], "stages": [stage]},
    )  # fmt: skip
    assert "mixpeek://other@1.0.0/x" in refused["detail"]
    unknown_stage = api.call(
        "POST", "/retrievers", expect=422,
        json={"retriever_name": "bad", "collection_identifiers": ["articles"],
              "stages": [{"stage_name": "x", "config": {"stage_id": "teleport"}}]},
    )  # fmt: skip
    assert "teleport" in unknown_stage["detail"]
    assert api.call("POST", "/retrievers/list")["total"] == 0


def test_queries_are_encoded_by_the_plugins_deployment_and_find_the_right_document(
    setup: Any,
) -> None:
    api, tenant, collection = setup
    retriever = api.call(
        "POST", "/retrievers",
        json={"retriever_name": "articles-search", "collection_identifiers": ["articles"], "stages": [search_stage()]},
    )  # fmt: skip
    not_deployed = api.call(
        "POST",
        f"/retrievers/{retriever['retriever_id']}/execute",
        expect=409,
        json={"inputs": {"q": "dogs"}},
    )
    assert "my_extractor_1_0_0" in not_deployed["detail"] and "deploy" in not_deployed["detail"]

    deploy(tenant, "my_extractor_1_0_0")
    assert wait_status(tenant, "my_extractor_1_0_0", {"DEPLOYED", "FAILED"})["status"] == "DEPLOYED"
    expected = {
        "a dog playing with a ball": "pets",
        "monetary policy and inflation": "finance",
        "an italian recipe with cheese": "food",
        "a mission to the red planet": "space",
    }
    for query, topic in expected.items():
        result = api.call(
            "POST", "/retrievers/articles-search/execute", json={"inputs": {"q": query}}
        )
        assert result["status"] == "completed"
        top = result["documents"][0]
        assert top["metadata"]["topic"] == topic, (
            query,
            [d["metadata"]["topic"] for d in result["documents"]],
        )
        assert top["score"] >= result["documents"][1]["score"]
        assert top["collection_id"] == collection["collection_id"]
    again = api.call(
        "POST",
        "/retrievers/articles-search/execute",
        json={"inputs": {"q": "a dog playing with a ball"}},
    )
    stats = first_stage(again)
    assert stats["cache_hits"] == 1 and stats["output_count"] == 6 and stats["duration_ms"] > 0
    missing_input = api.call(
        "POST", "/retrievers/articles-search/execute", expect=422, json={"inputs": {}}
    )
    assert "INPUT.q" in missing_input["detail"]


def test_stages_filter_sort_limit_and_deduplicate(deployed: Any) -> None:
    api, _, _ = deployed
    stages = [
        search_stage(),
        {"stage_name": "no-music", "config": {"stage_id": "attribute_filter",
                                              "parameters": {"field": "metadata.topic", "operator": "ne", "value": "music"}}},
        {"stage_name": "longest", "config": {"stage_id": "sort_attribute",
                                             "parameters": {"field": "metadata.length", "direction": "desc"}}},
        {"stage_name": "one-per-object", "config": {"stage_id": "deduplicate", "parameters": {"field": "source_object_id"}}},
        {"stage_name": "top3", "config": {"stage_id": "limit", "parameters": {"limit": 3}}},
    ]  # fmt: skip
    api.call(
        "POST",
        "/retrievers",
        json={
            "retriever_name": "pipeline",
            "collection_identifiers": ["articles"],
            "stages": stages,
        },
    )
    deadline = time.monotonic() + 240
    while True:  # the deployment may still be rolling out when this test runs alone
        response = api.http.post(
            "/retrievers/pipeline/execute", json={"inputs": {"q": "a concert"}}
        )
        if response.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(3)
    result = response.json()
    assert response.status_code == 200, result
    topics = [d["metadata"]["topic"] for d in result["documents"]]
    lengths = [d["metadata"]["length"] for d in result["documents"]]
    assert len(topics) == 3 and "music" not in topics
    assert lengths == sorted(lengths, reverse=True)
    assert [s["output_count"] for s in result["stage_statistics"]["stages"].values()] == [
        6,
        5,
        5,
        5,
        3,
    ]
    # a search's own filters run before its top_k: one hit, and it is the food article
    filtered = search_stage()
    filtered["config"]["parameters"]["searches"][0] |= {
        "top_k": 1,
        "filters": {"AND": [{"field": "metadata.topic", "operator": "in", "value": ["food", "pets"]},
                            {"field": "metadata.topic", "operator": "ne", "value": "pets"}]},
    }  # fmt: skip
    api.call("PATCH", "/retrievers/pipeline", json={"stages": [filtered]})
    result = api.call("POST", "/retrievers/pipeline/execute", json={"inputs": {"q": "a concert"}})
    assert [d["metadata"]["topic"] for d in result["documents"]] == ["food"]
    updated = api.call("PATCH", "/retrievers/pipeline", json={"stages": stages[:1]})
    assert len(updated["stages"]) == 1
    api.call("DELETE", "/retrievers/pipeline")
    api.call("GET", "/retrievers/pipeline", expect=404)


def test_the_official_mixpeek_client_works_end_to_end(deployed: Any) -> None:
    """The PyPI ``mixpeek`` package against this stack: bucket -> collection -> uploads ->
    documents -> a feature_search retriever answering plain-language queries."""
    from mixpeek import Mixpeek

    _, tenant, _ = deployed
    mp = Mixpeek(tenant.api_key, namespace=tenant.namespace_id, base_url=tenant.base_url)
    bucket = mp.buckets.create(
        bucket_name="client-notes", bucket_schema={"properties": {"content": {"type": "text"}}}
    )
    assert any(b["bucket_id"] == bucket["bucket_id"] for b in mp.buckets.list()["results"])
    collection = mp.collections.create(
        collection_name="client-notes",
        source={"type": "bucket", "bucket_ids": [bucket["bucket_id"]]},
        feature_extractor={"feature_extractor_name": "my_extractor", "version": "1.0.0"},
    )
    notes = {
        "The ferry to the island leaves every hour from the harbour.": "travel",
        "Knead the dough and let it rise for two hours before baking bread.": "baking",
        "The striker scored twice in the final minutes of the match.": "sport",
    }
    for text, topic in notes.items():
        mp.buckets.upload(
            bucket["bucket_id"], data=text, blob_property="content", blob_type="text",
            metadata={"topic": topic},
        )  # fmt: skip
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        listed = mp.documents.list(collection["collection_id"], page_size=10)
        if len(listed["results"]) == 3 and all(
            d["status"] == "completed" for d in listed["results"]
        ):
            break
        time.sleep(2)
    assert len(listed["results"]) == 3
    assert collection["collection_id"] in [
        c["collection_id"] for c in mp.collections.list()["results"]
    ]
    assert mp.collections.trigger(collection["collection_id"])["status"] == "queued"

    retriever = mp.retrievers.create(
        retriever_name="client-search",
        collection_identifiers=[collection["collection_id"]],
        stages=[search_stage()],
    )
    deadline = time.monotonic() + 240
    while True:  # the deployment from the test before, or a fresh one when run alone
        try:
            result = mp.retrievers.execute(
                retriever["retriever_id"], inputs={"q": "football game goals"}
            )
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(3)
    assert result["documents"][0]["metadata"]["topic"] == "sport"
    assert result.documents[0].metadata.topic == "sport"  # the client's attribute access


def test_the_official_clients_typed_api_works_for_every_in_scope_endpoint(
    deployed: Any, stack: RunningStack
) -> None:
    """The newest client's generated, typed API (pydantic models on both sides) through
    namespaces, buckets, objects, uploads, collections, documents, tasks, retrievers (stored and
    ad hoc), inference and the feature-extractor catalogue: every request carries the client's
    defaults, every answer parses in the client's models."""
    import httpx
    import mixpeek
    from mixpeek import models as m
    from mixpeek.exceptions import NotFoundException, UnprocessableEntityException

    _, tenant, collection_before = deployed
    client = mixpeek.ApiClient(
        mixpeek.Configuration(host=stack.api_url, access_token=tenant.api_key)
    )
    namespaces = mixpeek.NamespacesApi(client)

    # a namespace of its own: create (200), get, list, PATCH, PUT (a rename), delete at the end
    suffix = os.urandom(3).hex()  # a kept stack (TEST_STACK_DIR) still has the last run's
    ns = namespaces.create_namespace(
        create_namespace_request=m.CreateNamespaceRequest(namespace_name=f"typed-{suffix}")
    )
    assert ns.namespace_id and ns.namespace_name == f"typed-{suffix}"
    listed = namespaces.list_namespaces_get(limit=100)
    assert ns.namespace_id in [n.namespace_id for n in listed.results]
    assert listed.total_count == len(listed.results) and listed.pagination.next_cursor is None
    namespaces.patch_namespace(
        ns.namespace_id, patch_namespace_request=m.PatchNamespaceRequest(description="patched")
    )
    renamed = namespaces.update_namespace(
        ns.namespace_id,
        update_namespace_request=m.UpdateNamespaceRequest(namespace_name=f"typed-2-{suffix}"),
    )
    assert renamed.namespace_name == f"typed-2-{suffix}" and renamed.description == "patched"
    assert namespaces.get_namespace(f"typed-2-{suffix}").namespace_id == ns.namespace_id

    client.set_default_header("X-Namespace", tenant.namespace_id)
    buckets = mixpeek.BucketsApi(client)
    schema = m.BucketSchemaInput(
        properties={
            "content": m.BucketSchemaFieldInput(type="text"),
            "title": m.BucketSchemaFieldInput(type="string"),  # a plain field, not a blob
        }
    )
    bucket = buckets.create_bucket(
        bucket_create_request=m.BucketCreateRequest(bucket_name="typed", bucket_schema=schema)
    )
    assert bucket.object_count == 0 and bucket.total_size_bytes == 0
    buckets.patch_bucket(
        bucket.bucket_id, bucket_patch_request=m.BucketPatchRequest(description="d")
    )
    assert buckets.get_bucket("typed").description == "d"
    assert "typed" in [b.bucket_name for b in buckets.list_buckets_get(limit=100).results]

    objects = mixpeek.BucketObjectsApi(client)
    notes = {
        "The ferry to the island leaves every hour from the harbour.": "travel",
        "Knead the dough and let it rise for two hours before baking bread.": "baking",
    }
    made = [
        objects.create_object_buckets(
            bucket.bucket_id,
            create_object_request=m.CreateObjectRequest.from_dict(
                # hosted: the object's own fields sit at its root, beside the blobs
                {
                    "blobs": [{"property": "content", "type": "text", "data": text}],
                    "topic": topic,
                    "title": topic.title(),
                }
            ),
        )
        for text, topic in notes.items()
    ]
    first_page = objects.list_objects_get_buckets(bucket.bucket_id, limit=1)
    assert len(first_page.results) == 1 and first_page.pagination.next_cursor
    second_page = objects.list_objects_buckets(
        bucket.bucket_id, cursor=first_page.pagination.next_cursor, limit=1
    )
    assert [o.object_id for o in first_page.results + second_page.results] == [
        o.object_id for o in made
    ]
    patched = objects.patch_object_buckets(
        bucket.bucket_id, made[0].object_id,
        patch_object_request=m.PatchObjectRequest.from_dict({"reviewed": True}),
    )  # fmt: skip
    assert patched.to_dict()["metadata"] == {"topic": "travel", "title": "Travel", "reviewed": True}

    uploads = mixpeek.BucketUploadsApi(client)
    ticket = uploads.create_upload_buckets(
        bucket.bucket_id,
        create_upload_request=m.CreateUploadRequest(
            filename="match.txt", content_type="text/plain", blob_property="content",
            object_metadata={"topic": "sport"},
        ),
    )  # fmt: skip
    text = b"The striker scored twice in the final minutes of the match."
    put = httpx.put(ticket.presigned_url, content=text, headers={"Content-Type": "text/plain"})
    assert put.status_code == 200, put.text
    confirmed = uploads.confirm_upload_buckets(bucket.bucket_id, ticket.upload_id)
    assert confirmed.status == "COMPLETED" and confirmed.object_id
    assert uploads.list_uploads_buckets(bucket.bucket_id).stats.total_size_bytes == len(text)
    assert buckets.get_bucket(bucket.bucket_id).object_count == 3

    collections = mixpeek.CollectionsApi(client)
    created = collections.create_collection(
        create_collection_request=m.CreateCollectionRequest(
            collection_name="typed",
            source=m.SourceConfigInput(type="bucket", bucket_ids=[bucket.bucket_id]),
            feature_extractor=m.SharedCollectionFeaturesExtractorsModelsFeatureExtractorConfigInput(
                feature_extractor_name="my_extractor", version="1.0.0"
            ),
        )
    )
    assert created.feature_extractor.feature_extractor_id == "my_extractor_1_0_0"
    assert (
        collections.update_collection(
            created.collection_id, request_body={"description": "typed notes"}
        ).description
        == "typed notes"
    )
    assert {c.collection_id for c in collections.list_collections_get().results} >= {
        created.collection_id, collection_before["collection_id"],
    }  # fmt: skip
    features = collections.describe_collection_features(created.collection_id).features
    assert [f.feature_uri for f in features] == [URI] and features[0].vector_index.dimensions

    documents = mixpeek.CollectionDocumentsApi(client)
    deadline = time.monotonic() + 240

    def completed() -> int:
        page = documents.list_documents_0(created.collection_id, limit=10)
        return sum(d.to_dict().get("status") == "completed" for d in page.results or [])

    while completed() < 3:  # the objects made before the collection existed too
        assert time.monotonic() < deadline, "the typed client's objects were never processed"
        time.sleep(2)
    assert documents.count_documents(created.collection_id).count == 3
    task = collections.trigger_collection(created.collection_id)
    assert mixpeek.TasksApi(client).get_task(task.task_id).status.value in (
        "PENDING", "IN_PROGRESS", "COMPLETED",
    )  # fmt: skip
    assert task.task_id in [t.task_id for t in mixpeek.TasksApi(client).list_tasks().results]

    def listed_topics(filters: dict[str, Any]) -> list[str]:
        page = documents.list_documents(
            created.collection_id,
            list_documents_request=m.ListDocumentsRequest.from_dict({"filters": filters}),
        )
        return sorted(d.to_dict()["metadata"]["topic"] for d in page.results or [])

    travel = {"AND": [{"field": "metadata.topic", "operator": "eq", "value": "travel"}]}
    assert listed_topics(travel) == ["travel"]
    nothing = {"AND": [{"field": "metadata.topic", "operator": "eq", "value": "none"}]}
    assert listed_topics(nothing) == []  # a filter matching nothing returns nothing
    either = {"OR": [{"field": "metadata.topic", "operator": "in", "value": ["sport", "baking"]}]}
    assert listed_topics(either) == ["baking", "sport"]
    page = documents.list_documents_0(created.collection_id, limit=2)
    assert len(page.results) == 2 and page.pagination.next_cursor
    doc_id = page.results[0].document_id
    assert documents.get_document(created.collection_id, doc_id).document_id == doc_id
    everywhere = mixpeek.DocumentsApi(client)
    reviewed = documents.patch_document(created.collection_id, doc_id, request_body={"reviewed": 1})
    assert reviewed.to_dict()["metadata"]["reviewed"] == 1  # merged beside topic and title
    assert "topic" in reviewed.to_dict()["metadata"]
    with pytest.raises(UnprocessableEntityException):  # a field the platform wrote
        everywhere.patch_document_ns(doc_id, request_body={"status": "failed"})
    assert everywhere.get_document_ns(doc_id).collection_id == created.collection_id
    assert len(everywhere.list_documents_ns(
        namespace_list_documents_request=m.NamespaceListDocumentsRequest(
            collection_ids=[created.collection_id], limit=10
        )
    ).results) == 3  # fmt: skip

    retrievers = mixpeek.RetrieversApi(client)
    stage = m.StageConfigInput.from_dict(search_stage())
    retriever = retrievers.create_retriever(
        create_retriever_request=m.CreateRetrieverRequest(
            retriever_name="typed", stages=[stage], collection_identifiers=[created.collection_id]
        )
    )
    assert retriever.stages[0].parameters["searches"][0]["feature_uri"] == URI
    assert retrievers.get_retriever("typed").retriever_id == retriever.retriever_id
    assert "typed" in [r.retriever_name for r in retrievers.list_retrievers_get().results]
    assert (
        retrievers.patch_retriever(
            retriever.retriever_id, patch_retriever_request=m.PatchRetrieverRequest(description="p")
        ).retriever.description
        == "p"
    )
    answer = retrievers.execute_retriever(
        retriever.retriever_id,
        execute_retriever_request=m.ExecuteRetrieverRequest(inputs={"q": "football goals"}),
    )
    assert answer.documents[0]["metadata"]["topic"] == "sport"
    assert answer.stage_statistics.stages["search"].output_count >= 1
    adhoc = mixpeek.AdhocRetrieversApi(client).execute_adhoc_retriever(
        adhoc_execute_request=m.AdhocExecuteRequest(
            stages=[stage], collection_identifiers=[created.collection_id],
            inputs={"q": "baking bread"},
        )
    )  # fmt: skip
    assert adhoc["documents"][0]["metadata"]["topic"] == "baking"

    # the history: every execution is recorded once its answer is sent, ad-hoc ones apart
    def recorded(read: Any) -> Any:
        deadline = time.monotonic() + 30
        while True:
            try:
                return read()
            except NotFoundException:
                assert time.monotonic() < deadline, "an execution was never recorded"
                time.sleep(0.2)

    rid, eid = retriever.retriever_id, answer.execution_id
    detail = recorded(lambda: retrievers.get_execution_retrievers(rid, eid))
    assert detail.execution_id == eid and detail.total_returned == len(answer.documents)
    assert detail.stage_statistics.stages["search"].output_count >= 1
    assert retrievers.get_execution_status_retrievers(rid, eid)["status"] == "completed"
    assert retrievers.get_execution_profile_retrievers(rid, eid)["bottleneck_stage"] == "search"
    history = retrievers.list_executions_retrievers(rid, limit=10)
    summary = {e.execution_id: e for e in history.results}[eid]
    assert summary.query_summary == "football goals" and history.pagination.total >= 1
    adhoc_api = mixpeek.AdhocRetrieversApi(client)
    recorded(lambda: adhoc_api.get_adhoc_execution_retrievers(adhoc["execution_id"]))
    assert adhoc["execution_id"] in [
        e.execution_id for e in adhoc_api.list_adhoc_executions_retrievers().results
    ]
    with pytest.raises(NotFoundException):  # a stored retriever's history holds no ad-hoc run
        retrievers.get_execution_retrievers(rid, adhoc["execution_id"])
    batch = retrievers.execute_batch_retrievers(
        rid,
        m.ExecuteBatchRequest(queries=[
            m.BatchQueryItem(inputs={"q": "football goals"}),
            m.BatchQueryItem(inputs={"q": "baking bread"}),
        ]),
    )  # fmt: skip
    assert [r["documents"][0]["metadata"]["topic"] for r in batch["results"]] == ["sport", "baking"]
    plan = retrievers.explain_retriever_execution_id_execute(
        rid, m.ExplainRetrieverRequest(inputs={"q": "football goals"})
    )
    assert plan.execution_plan[0].stage_type == "feature_search"
    assert plan.execution_plan[0].cache_likely and plan.execution_plan[0].estimated_output >= 1
    hints = retrievers.typeahead_retrievers(q="tra", fields="topic")
    assert "travel" in hints.suggestions and hints.values[0].var_field == "topic"
    assert "football goals" in retrievers.typeahead_retrievers(q="foot").recent_searches

    inference = mixpeek.InferenceApi(client).execute_raw_inference(
        raw_inference_request=m.RawInferenceRequest(
            inputs={"text": "hello"}, inference_name="my_extractor"
        )
    )
    assert inference.model == "my_extractor_1_0_0" and len(inference.data["embedding"]) > 0

    # a document brought in whole, its vector made elsewhere: searchable like an ingested one
    volcano = (
        mixpeek.InferenceApi(client)
        .execute_raw_inference(
            raw_inference_request=m.RawInferenceRequest(
                inputs={"text": "lava pours from the erupting volcano"},
                inference_name="my_extractor",
            )
        )
        .data["embedding"]
    )
    brought = documents.create_document(
        created.collection_id,
        m.DocumentCreateRequest(metadata={"topic": "geology"}, vectors={URI: volcano}),
    )
    assert brought.collection_id == created.collection_id
    found_it = retrievers.execute_retriever(
        retriever.retriever_id,
        execute_retriever_request=m.ExecuteRetrieverRequest(inputs={"q": "volcanic eruption"}),
    )
    assert found_it.documents[0]["document_id"] == brought.document_id
    with pytest.raises(UnprocessableEntityException):  # a vector of the wrong size
        documents.create_document(
            created.collection_id,
            m.DocumentCreateRequest(vectors={"my_extractor_embedding": [0.1, 0.2]}),
        )
    documents.delete_document(created.collection_id, brought.document_id)
    # the same checks as a dry run, every reason named, nothing written
    valid = documents.validate_document_schema(created.collection_id, {"vectors": {URI: volcano}})
    assert valid["valid"] is True and valid["violations"] == []
    wrong = documents.validate_document_schema(
        created.collection_id,
        {"metadata": {"$where": 1}, "vectors": {URI: [0.1], "nope": [1.0]}},
    )
    assert wrong["valid"] is False
    assert sorted(v["field"] for v in wrong["violations"]) == [
        "metadata", f"vectors.{URI}", "vectors.nope",
    ]  # fmt: skip
    unknown = documents.validate_document_schema(created.collection_id, {"colour": "red"})
    assert [v["field"] for v in unknown["violations"]] == ["colour"]

    # another system's record, imported through the mapping inferred from it
    record = {"id": "ext-1", "caption": "lava pours from the volcano", "emb": volcano}
    inferred = collections.infer_import_schema(
        m.SchemaInferenceRequest(
            sample_rows=[record], known_index_dims={"my_extractor_embedding": len(volcano)}
        )
    )
    suggested = {f.path: f.suggested_target for f in inferred.fields}
    assert (suggested["emb"].kind, suggested["emb"].index) == ("vector", "my_extractor_embedding")
    mapping = m.ImportMapping(
        fields=[m.FieldMapping(source_field=p, target=t) for p, t in suggested.items()]
    )
    checked = collections.validate_import_mapping(
        m.MappingValidationRequest(
            mapping=mapping,
            source_fields=[m.SourceField(path=f.path, type=f.type) for f in inferred.fields],
        )
    )
    assert checked.ok is True and not checked.errors
    dry = collections.import_collection(
        created.collection_id, m.ImportRequest(export=record, mapping=mapping, dry_run=True)
    )
    assert (dry.imported, dry.reconstructed, dry.dry_run) == (0, 1, True)
    done = collections.import_collection(
        created.collection_id, m.ImportRequest(export=record, mapping=mapping)
    )
    assert done.imported == 1 and not done.errors
    hit = retrievers.execute_retriever(
        retriever.retriever_id,
        execute_retriever_request=m.ExecuteRetrieverRequest(inputs={"q": "volcanic eruption"}),
    ).documents[0]
    assert hit["metadata"]["caption"] == record["caption"] and hit["source_object_id"] == "ext-1"
    documents.delete_document(created.collection_id, hit["document_id"])

    # the catalogue answers without a key (the built-ins), and with one (the namespace's too)
    public = mixpeek.FeatureExtractorsApi(
        mixpeek.ApiClient(mixpeek.Configuration(host=stack.api_url))
    )
    assert public.get_feature_extractor_by("text_extractor").version == "1.0.0"
    scoped = httpx.get(  # the client sends no key here; with one, the namespace's plugins too
        f"{tenant.base_url}/collections/features/extractors/my_extractor",
        headers=tenant.headers | {"X-Namespace": tenant.namespace_id},
    )
    assert m.FeatureExtractorResponseModel.from_dict(scoped.json()).version == "1.0.0"

    # errors: the hosted envelope, parsed by the client; an unknown key is refused, named
    with pytest.raises(NotFoundException) as missing:
        buckets.get_bucket("no-such-bucket")
    assert missing.value.data.error.type == "NotFoundError"
    refused = httpx.post(  # the client's models drop unknown keys, so send one by hand
        f"{tenant.base_url}/buckets",
        headers=tenant.headers | {"X-Namespace": tenant.namespace_id},
        json={"bucket_name": "x", "bucket_schema": schema.to_dict(), "colour": "red"},
    )
    assert refused.status_code == 422
    assert "colour" in m.ErrorResponse.from_dict(refused.json()).error.message

    # a batch of objects: each stands alone, a refused one is listed with its index
    spare = buckets.create_bucket(
        bucket_create_request=m.BucketCreateRequest(bucket_name="typed-batch", bucket_schema=schema)
    )
    batch = objects.create_objects_batch_buckets(
        spare.bucket_id,
        create_objects_batch_request=m.CreateObjectsBatchRequest.from_dict({"objects": [
            {"blobs": [{"property": "content", "type": "text", "data": "kept"}]},
            {"blobs": [{"property": "title", "type": "text", "data": "a plain field"}]},
        ]}),
    )  # fmt: skip
    assert (batch.succeeded_count, [f.object_index for f in batch.failed]) == (1, [1])
    tickets = uploads.create_uploads_batch_buckets(
        spare.bucket_id,
        batch_upload_request=m.BatchUploadRequest(uploads=[
            m.CreateUploadRequest(filename=f"{n}.txt", content_type="text/plain") for n in "ab"
        ]),
    )  # fmt: skip
    assert tickets.total == 2 and len({t.upload_id for t in tickets.uploads}) == 2
    arrived, missing = tickets.uploads
    put = httpx.put(arrived.presigned_url, content=b"a", headers={"Content-Type": "text/plain"})
    assert put.status_code == 200, put.text
    both = uploads.confirm_uploads_batch_buckets(
        spare.bucket_id,
        m.BatchConfirmRequest(confirmations=[
            {"upload_id": arrived.upload_id}, {"upload_id": missing.upload_id},
        ]),
    )  # fmt: skip
    assert both.status.value == "COMPLETED_WITH_ERRORS" and both.confirmations_count == 2
    recorded_task = mixpeek.TasksApi(client).get_task(both.task_id)
    assert recorded_task.task_type.value == "api_buckets_uploads_batch_confirm"
    assert "has no file yet" in recorded_task.error
    assert recorded_task.inputs[0].actual_instance["bucket_id"] == spare.bucket_id
    assert namespaces.ensure_namespace_indexes(tenant.namespace_id)["success"] is True
    stats = namespaces.get_namespace_stats(tenant.namespace_id)
    assert stats.bucket_count >= 2 and stats.document_count >= 3 and stats.collection_count >= 2
    found = everywhere.batch_get(
        batch_get_documents_request=m.BatchGetDocumentsRequest(document_ids=[doc_id, "doc_none"])
    )
    assert [d.document_id for d in found.documents] == [doc_id] and found.not_found == ["doc_none"]
    lists = everywhere.list_documents_batch(
        m.BatchListDocumentsRequest(queries=[
            m.BatchListQuery(key="typed", request=m.NamespaceListDocumentsRequest(
                collection_ids=[created.collection_id], limit=2)),
            m.BatchListQuery(key="nowhere", request=m.NamespaceListDocumentsRequest(
                collection_ids=["col_none"])),
        ])
    )  # fmt: skip
    typed_page, nowhere = lists.results
    assert len(typed_page.response.results) == 2 and typed_page.response.total_documents == 3
    assert nowhere.response is None and "col_none" in nowhere.error
    kinds = objects.aggregate_objects_buckets(
        bucket.bucket_id,
        m.ObjectAggregationRequest.from_dict({
            "group_by": [{"field": "bucket_id", "alias": "bucket"}],
            "aggregations": [{"function": "count", "alias": "n"}],
        }),
    )  # fmt: skip
    assert (
        kinds.results[0].group == {"bucket": bucket.bucket_id}
        and kinds.results[0].metrics["n"] >= 3
    )
    buckets.delete_bucket(spare.bucket_id)

    # clones: a retriever's stages, a collection's source and plugin pin; a task canceled
    twin = retrievers.clone_retriever(
        retriever.retriever_id, m.CloneRetrieverRequest(retriever_name="typed-copy")
    )
    assert twin.source_retriever_id == retriever.retriever_id
    assert twin.retriever.stages[0].parameters == retriever.stages[0].parameters
    retrievers.delete_retriever(twin.retriever.retriever_id)
    copy = collections.clone_collection(
        created.collection_id, m.CloneCollectionRequest(collection_name="typed-copy")
    )
    assert copy.source_collection_id == created.collection_id
    assert copy.collection.feature_extractor.feature_extractor_id == "my_extractor_1_0_0"
    again = collections.trigger_collection(copy.collection.collection_id)
    assert mixpeek.TasksApi(client).kill_task(again.task_id).success
    assert mixpeek.TasksApi(client).get_task(again.task_id).status.value in (
        "CANCELED", "IN_PROGRESS", "COMPLETED",
    )  # fmt: skip
    collections.delete_collection(copy.collection.collection_id)

    # exports: the documents as JSON lines with their vectors, or chosen fields as Parquet
    cid = created.collection_id
    exported = collections.export_collection(
        cid, m.CollectionExportRequest(format="json", include_vectors=True)
    )
    lines = httpx.get(exported.download_url).text.splitlines()
    assert exported.document_count == len(lines) == 3
    assert {json.loads(line)["metadata"]["topic"] for line in lines} == {
        "travel",
        "sport",
        "baking",
    }
    import pyarrow.parquet as pq

    vectors = pq.read_table(io.BytesIO(httpx.get(exported.vectors_download_url).content))
    assert vectors.num_rows == 3 and set(vectors.column("feature_uri").to_pylist()) == {URI}
    table = pq.read_table(io.BytesIO(httpx.get(collections.export_collection(
        cid, m.CollectionExportRequest(format="parquet", select_fields=["metadata.topic"])
    ).download_url).content))  # fmt: skip
    assert table.column_names == ["document_id", "metadata.topic"] and table.num_rows == 3
    with pytest.raises(UnprocessableEntityException):
        collections.export_collection(cid, m.CollectionExportRequest(format="webdataset"))

    # many documents at once: analytics, batch and bulk updates, diagnostics, a batch delete
    topics = documents.distinct_document_values(
        cid, m.DistinctValuesRequest.from_dict({"field": "metadata.topic", "limit": 2})
    )
    assert topics.total_distinct == 3 and len(topics.values) == 2
    grouped = documents.aggregate_documents(
        cid,
        m.DocumentAggregationRequest.from_dict({
            "group_by": [{"field": "metadata.topic", "alias": "topic"}],
            "aggregations": [{"function": "count", "alias": "n"}],
            "filters": {"AND": [{"field": "metadata.topic", "operator": "ne", "value": "sport"}]},
            "sort_by": "topic", "sort_direction": "asc",
        }),
    )  # fmt: skip
    assert [(r.group["topic"], r.metrics["n"]) for r in grouped.results] == [
        ("baking", 1), ("travel", 1),
    ]  # fmt: skip
    bulk = documents.bulk_update(
        cid, m.BulkUpdateDocumentsRequest.from_dict({"update_data": {"shelf": "notes"}})
    )
    assert bulk.updated_count == 3
    each = documents.batch_update(
        cid,
        m.BatchUpdateDocumentsRequest.from_dict({"updates": [
            {"document_id": doc_id, "update_data": {"pinned": True}},
            {"document_id": "doc_none", "update_data": {"pinned": True}},
        ]}),
    )  # fmt: skip
    assert (each.updated_count, each.failed_count) == (1, 1)
    assert documents.get_document(cid, doc_id).to_dict()["metadata"]["pinned"] is True
    diagnosed = documents.get_document_diagnostics(cid, doc_id)
    assert diagnosed.visibility_reason.searchable is True
    gone = documents.batch_delete(
        cid, m.BatchDeleteDocumentsRequest.from_dict({"document_ids": [doc_id, "doc_none"]})
    )
    assert (gone.deleted_count, gone.failed_count) == (1, 1)
    with pytest.raises(UnprocessableEntityException):  # an empty filter deletes nothing, loudly
        documents.batch_delete(cid, m.BatchDeleteDocumentsRequest.from_dict({"filters": {}}))
    assert documents.count_documents(cid).count == 2

    # a soft-deleted object leaves every collection and is never processed again
    before = collections.reconcile_collection_reconciliation(cid).source_object_count
    kept = documents.list_documents_0(cid, limit=1).results[0].to_dict()["source_object_id"]
    soft = objects.bulk_soft_delete_objects_buckets(
        bucket.bucket_id, m.BulkSoftDeleteRequest(object_ids=[kept, "obj_none"], reason="gdpr")
    )
    assert (soft.soft_deleted, soft.requested, soft.collections) == (1, 2, 1)
    assert documents.count_documents(cid).count == 1
    assert collections.reconcile_collection_reconciliation(cid).source_object_count == before - 1
    assert objects.get_object_buckets(bucket.bucket_id, kept).to_dict()["lifecycle_state"] == (
        "disabled"
    )
    many = namespaces.get_namespace_stats_batch(
        m.NamespaceStatsBatchRequest(namespace_ids=[tenant.namespace_id, "ns_none"])
    )
    assert many.stats[tenant.namespace_id].collection_count >= 1 and "ns_none" not in many.stats

    retrievers.delete_retriever(retriever.retriever_id)
    collections.delete_collection(created.collection_id)
    for obj in made:
        objects.delete_object_buckets(bucket.bucket_id, obj.object_id)
    objects.delete_object_buckets(bucket.bucket_id, confirmed.object_id)
    buckets.delete_bucket(bucket.bucket_id)
    namespaces.delete_namespace(ns.namespace_id)
    with pytest.raises(NotFoundException):
        namespaces.get_namespace(ns.namespace_id)


def test_query_vectors_are_shared_by_api_replicas_through_redis(
    deployed: Any, stack: RunningStack, redis_url: str
) -> None:
    """Two executors (two API replicas) on one real Redis: the second never encodes a query the
    first did, the cached vector ranks exactly like a fresh one, and a dead Redis only costs
    misses."""
    import asyncio

    import redis

    from mixpeek_orchestration.retrieval.cache import RedisQueryCache
    from mixpeek_orchestration.serve.relay import Relay

    api, tenant, _ = deployed
    api.call(
        "POST", "/retrievers",
        json={"retriever_name": "shared-cache", "collection_identifiers": ["articles"], "stages": [search_stage()]},
    )  # fmt: skip
    platform = stack.platform()
    caller = platform.accounts.authenticate(tenant.api_key)
    namespace = platform.accounts.resolve_namespace(caller, tenant.namespace_id)
    retriever = platform.retrievers.get(namespace, "shared-cache")
    encoded: list[str] = []

    async def run(cache: RedisQueryCache, query: str) -> dict[str, Any]:
        relay = Relay()

        async def call(prefix: str, inputs: dict[str, Any], parameters: dict[str, Any]) -> Any:
            encoded.append(inputs["text"])
            return (await relay.call(stack.settings.serve_url, prefix, inputs, parameters))[0]

        try:
            executor = platform.retrieval(call, cache=cache)
            return await executor.execute(namespace, retriever, {"q": query}, {})  # type: ignore[no-any-return]
        finally:
            await relay.close()

    query = "a mission to the red planet"
    first = asyncio.run(run(RedisQueryCache(redis_url), query))
    replica = asyncio.run(run(RedisQueryCache(redis_url), query))
    assert encoded == [query]  # the replica's lookup hit the first replica's entry
    stats = first_stage(replica)
    assert stats["cache"] == "redis" and stats["cache_hits"] == 1 and "cache_misses" not in stats
    assert [(d["document_id"], d["score"]) for d in replica["documents"]] == [
        (d["document_id"], d["score"]) for d in first["documents"]
    ]
    assert replica["documents"][0]["metadata"]["topic"] == "space"
    keys = redis.Redis.from_url(redis_url).keys("mixpeek:query-vector:*")
    assert len(keys) == 1 and 0 < redis.Redis.from_url(redis_url).ttl(keys[0]) <= 86_400

    dead = RedisQueryCache("redis://127.0.0.1:1/0", timeout_s=0.2)
    answer = asyncio.run(run(dead, query))
    stats = first_stage(answer)
    assert stats["cache_errors"] == 1 and stats["cache_misses"] == 1 and dead.errors == 2
    assert answer["documents"][0]["metadata"]["topic"] == "space"
    assert encoded == [query, query]
    api.call("DELETE", "/retrievers/shared-cache")


def test_metrics_carry_the_tenant_of_ingestion_realtime_and_queries(
    deployed: Any, stack: RunningStack
) -> None:
    import httpx

    api, tenant, _ = deployed
    api.call("POST", "/retrievers/articles-search/execute", json={"inputs": {"q": "a new query"}})
    text = httpx.get(f"{stack.api_url}/metrics", timeout=30).text

    def total(name: str, **labels: str) -> float:
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items())
        )

    org = tenant.org_id
    execute = "/v1/retrievers/{retriever_id}/execute"
    assert total("mixpeek_api_request_duration_seconds_count", tenant=org, route=execute) >= 1
    assert total("mixpeek_realtime_request_duration_seconds_count", tenant=org, outcome="ok") >= 1
    assert total("mixpeek_ingest_rows_total", tenant=org, outcome="ok") >= len(CORPUS)
    assert total("mixpeek_ingest_batches", tenant=org, status="completed") >= 1
    assert f'mixpeek_ingest_queue_depth{{tenant="{org}"}}' in text
    assert total("mixpeek_api_errors_total", tenant=org, status_class="4xx") >= 1  # the 409/422s


def test_deleting_the_namespace_leaves_nothing_of_it_anywhere(
    deployed: Any, stack: RunningStack
) -> None:
    """Last in this module: the namespace holds a bucket with objects, a collection with
    documents and vectors, a retriever and a deployed plugin. After DELETE every id answers
    404, no record, file or vector table of it is left, and its Serve application goes."""
    import httpx

    api, tenant, collection = deployed
    ns = tenant.namespace_id
    bucket = api.call("GET", "/buckets/articles")
    objects = api.call("POST", f"/buckets/{bucket['bucket_id']}/objects/list", json={})["results"]
    document = api.call("POST", f"/collections/{collection['collection_id']}/documents/list",
                        json={"limit": 1})["results"][0]  # fmt: skip
    retriever = api.call("POST", "/retrievers", json={"retriever_name": "doomed",
                         "collection_identifiers": ["articles"], "stages": [search_stage()]})  # fmt: skip
    platform = stack.platform()
    tables = [t for t in platform.vectors.table_names() if t.startswith(f"{ns}__")]
    assert tables and objects and platform.serve.routes()  # there is something to delete

    gone = api.http.delete(f"/namespaces/{ns}")
    assert gone.status_code == 200, gone.text
    assert api.http.delete(f"/namespaces/{ns}").status_code == 404  # already gone

    for path in (
        f"/namespaces/{ns}",
        f"/namespaces/{ns}/plugins/my_extractor_1_0_0",
        f"/buckets/{bucket['bucket_id']}",
        f"/buckets/{bucket['bucket_id']}/objects/{objects[0]['object_id']}",
        f"/collections/{collection['collection_id']}",
        f"/collections/{collection['collection_id']}/documents/{document['document_id']}",
        f"/retrievers/{retriever['retriever_id']}",
    ):
        assert api.http.get(path).status_code == 404, path
    # a new namespace of the same name starts empty: nothing resolves to the old records
    fresh = httpx.post(f"{tenant.base_url}/namespaces", headers=tenant.headers,
                       json={"namespace_name": "main-again"}).json()["namespace_id"]  # fmt: skip
    headers = tenant.headers | {"X-Namespace": fresh}
    for path in (f"/buckets/{bucket['bucket_id']}", f"/collections/{collection['collection_id']}",
                 f"/retrievers/{retriever['retriever_id']}"):  # fmt: skip
        assert httpx.get(f"{tenant.base_url}{path}", headers=headers).status_code == 404, path

    # its Serve application is removed by the deployment sensor, within seconds (the route goes
    # first, the queued removal once the replicas have stopped)
    deadline = time.monotonic() + 90
    while any(ns in route for route in platform.serve.routes()) or any(
        ns in app for app in platform.removals.pending()
    ):
        assert time.monotonic() < deadline, (platform.serve.routes(), platform.removals.pending())
        time.sleep(2)
    # looked for from outside: every metadata collection (the removal queue included), the
    # object store, the vector store
    db = platform.metadata.db
    leftovers = {
        name: n
        for name in db.list_collection_names()
        if (n := db[name].count_documents({"$or": [{"namespace_id": ns}, {"app": {"$regex": ns}}]}))
    }
    assert leftovers == {}
    assert list(platform.objects.list(f"{tenant.org_id}/{ns}/")) == []
    assert [t for t in platform.vectors.table_names() if t.startswith(f"{ns}__")] == []
