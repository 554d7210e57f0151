"""The API's signed storage routes, in process (local object store only, no servers)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mixpeek_orchestration.api.app import create_app
from mixpeek_orchestration.settings import load_settings


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    settings = load_settings(data_dir=tmp_path, public_url="http://testserver")
    return TestClient(create_app(settings))


def _store(client: TestClient):  # type: ignore[no-untyped-def]
    return client.app.state.platform.objects  # type: ignore[attr-defined]


def test_signed_put_then_get(client: TestClient) -> None:
    store = _store(client)
    upload = store.presign_put("org/ns/file.bin", expires_in=60, max_bytes=1_000_000)
    body = b"0123456789" * 10_000

    def chunks():  # type: ignore[no-untyped-def]
        for i in range(0, len(body), 7_000):
            yield body[i : i + 7_000]

    response = client.put(upload.url, content=chunks())
    assert response.status_code == 200, response.text
    assert response.json()["size"] == len(body)
    download = store.presign_get("org/ns/file.bin", expires_in=60)
    got = client.get(download.url)
    assert got.status_code == 200 and got.content == body


def test_tampered_expired_oversize_and_bad_keys(client: TestClient) -> None:
    store = _store(client)
    upload = store.presign_put("org/ns/a", expires_in=60, max_bytes=10)
    tampered = upload.url.replace("org/ns/a", "org/ns/b")
    response = client.put(tampered, content=b"x")
    assert response.status_code == 403 and response.json()["code"] == "signature_invalid"

    response = client.put(upload.url, content=b"x" * 11)
    assert response.status_code == 413 and response.json()["code"] == "payload_too_large"
    assert "10 bytes" in response.json()["detail"]
    assert store.stat("org/ns/a") is None

    response = client.put("/v1/storage/org/ns/a?expires=1&signature=abc", content=b"x")
    assert response.status_code == 403 and response.json()["code"] == "signature_invalid"

    response = client.put("/v1/storage/org/ns/a", content=b"x")
    assert response.status_code == 422
    assert "expires" in response.json()["detail"]

    response = client.put("/v1/storage/org/ns//a?expires=1&signature=x", content=b"x")
    assert response.status_code == 400 and response.json()["code"] == "invalid_object_key"


def test_expired_url(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    store = _store(client)
    upload = store.presign_put("org/ns/late", expires_in=1)
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 5)
    response = client.put(upload.url, content=b"x")
    assert response.status_code == 403 and response.json()["code"] == "signature_expired"


def test_unknown_route_is_json_404(client: TestClient) -> None:
    response = client.get("/v1/nothing-here")
    assert response.status_code == 404 and response.json()["code"] == "not_found"


def test_healthz_reports_unconfigured_components_as_errors(client: TestClient) -> None:
    body = client.get("/healthz").json()
    assert set(body["components"]) == {
        "metadata", "objects", "vectors", "ray", "serve", "dagster", "sandbox",
    }  # fmt: skip
    assert body["components"]["objects"]["status"] == "ok"
    assert body["components"]["sandbox"]["detail"].startswith("plugin hosts run in bwrap")
    assert body["components"]["vectors"]["status"] == "ok"
    assert body["components"]["metadata"]["status"] == "error"
    assert "MIXPEEK_MONGO_URI" in body["components"]["metadata"]["detail"]
    assert body["status"] == "degraded"


@pytest.mark.parametrize("method", ["GET", "PUT"])
@pytest.mark.parametrize(
    "params",
    [
        {"signature": "é" * 64},  # compare_digest refuses a non-ASCII str: was a 500
        {"expires": str(-(10**20))},  # no date that far back: was a 500
    ],
)
def test_a_mangled_signed_url_is_refused_not_an_error(
    client: TestClient, method: str, params: dict[str, str]
) -> None:
    store = _store(client)
    signed = store.presign_get("org/ns/file.bin", expires_in=60)
    query = {"expires": signed.url.split("expires=")[1].split("&")[0], "signature": "0" * 64}
    response = client.request(method, "/v1/storage/org/ns/file.bin", params=query | params)
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["error"]["message"]
