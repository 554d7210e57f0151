"""The S3 object-store backend against a real S3-compatible server process (moto_server)."""

from __future__ import annotations

import uuid

import httpx
import pytest

from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.settings import load_settings
from mixpeek_orchestration.storage.objects import S3ObjectStore, object_store_from_settings
from tests.integration.conftest import MotoServer

pytestmark = pytest.mark.integration


@pytest.fixture
def store(moto_s3: MotoServer, tmp_path) -> S3ObjectStore:  # type: ignore[no-untyped-def]
    settings = load_settings(
        data_dir=tmp_path,
        s3_bucket=f"bucket-{uuid.uuid4().hex[:8]}",
        s3_endpoint_url=moto_s3.endpoint_url,
        s3_access_key_id="test",
        s3_secret_access_key="test",
        s3_prefix="stack-a",
    )
    store = object_store_from_settings(settings)
    assert isinstance(store, S3ObjectStore)
    store.client.create_bucket(Bucket=settings.s3_bucket)
    return store


def test_put_get_list_delete(store: S3ObjectStore) -> None:
    store.put_bytes("org/ns/a.txt", b"hello")
    store.put_stream("org/ns/b.bin", [b"ab", b"cd"])
    assert store.get_bytes("org/ns/b.bin") == b"abcd"
    assert store.stat("org/ns/a.txt").size == 5  # type: ignore[union-attr]
    assert store.stat("org/ns/none") is None
    assert [i.key for i in store.list("org/ns/")] == ["org/ns/a.txt", "org/ns/b.bin"]
    raw = store.client.list_objects_v2(Bucket=store.bucket)["Contents"]
    assert all(item["Key"].startswith("stack-a/") for item in raw)
    assert store.delete_prefix("org/") == 2
    with pytest.raises(MixpeekError) as info:
        store.get_bytes("org/ns/a.txt")
    assert info.value.code is ErrorCode.NOT_FOUND


def test_limit_is_enforced_before_upload(store: S3ObjectStore) -> None:
    with pytest.raises(MixpeekError) as info:
        store.put_stream("org/ns/big", [b"x" * 100], max_bytes=10)
    assert info.value.code is ErrorCode.PAYLOAD_TOO_LARGE
    assert store.stat("org/ns/big") is None


def test_presigned_put_and_get(store: S3ObjectStore) -> None:
    upload = store.presign_put("org/ns/up.zip", expires_in=60, content_type="application/zip")
    response = httpx.put(upload.url, content=b"PK\x03\x04zip", headers=upload.headers, timeout=30)
    assert response.status_code == 200, response.text
    assert store.get_bytes("org/ns/up.zip") == b"PK\x03\x04zip"
    download = httpx.get(store.presign_get("org/ns/up.zip", expires_in=60).url, timeout=30)
    assert download.content == b"PK\x03\x04zip"


def test_health(store: S3ObjectStore) -> None:
    assert store.health().status == "ok"
    assert list(store.list()) == []


def test_health_of_missing_bucket_is_error(moto_s3: MotoServer) -> None:
    store = S3ObjectStore(
        "does-not-exist",
        endpoint_url=moto_s3.endpoint_url,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        region_name="us-east-1",
    )
    from mixpeek_orchestration.health import timed_check

    assert timed_check(store.health).status == "error"
