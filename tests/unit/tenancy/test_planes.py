"""A tenant's data plane over the control plane's settings (no servers)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.platform import Platform
from mixpeek_orchestration.settings import load_settings
from mixpeek_orchestration.storage.objects import LocalObjectStore, S3ObjectStore
from mixpeek_orchestration.tenancy.planes import parse_plane


@pytest.fixture()
def control(tmp_path: Path) -> Platform:
    return Platform(
        load_settings(
            data_dir=tmp_path, mongo_uri="mongodb://127.0.0.1:27017", ray_address="127.0.0.1:6379"
        )
    )


def test_a_plane_keeps_what_it_does_not_name_and_stores_locally_under_its_tenant(
    control: Platform,
) -> None:
    plane = parse_plane({"mongo_database": "acme"})
    settings = plane.settings_over(control.settings, "acme")
    assert settings.mongo_database == "acme"
    assert settings.mongo_uri == control.settings.mongo_uri
    assert settings.ray_address == control.settings.ray_address
    assert settings.objects_dir == control.settings.data_dir / "planes" / "acme" / "objects"
    assert settings.vectors_location == str(control.settings.data_dir / "planes/acme/vectors")
    assert settings.queue_prefix == "acme-"
    dedicated = Platform(settings, tenant="acme")
    assert isinstance(dedicated.objects, LocalObjectStore)
    assert dedicated.objects.root == settings.objects_dir
    assert dedicated.vectors.uri == settings.vectors_location
    # a dedicated plane routes to itself; the control plane has no tenant
    assert dedicated.plane_for("org_x") is dedicated and control.tenant is None


def test_a_plane_with_its_own_endpoints(control: Platform) -> None:
    plane = parse_plane(
        {
            "mongo_uri": "mongodb://db.acme.internal:27017",
            "mongo_database": "acme",
            "s3_bucket": "acme-objects",
            "s3_prefix": "prod",
            "s3_endpoint_url": "http://minio.acme.internal:9000",
            "s3_access_key_id": "AK",
            "s3_secret_access_key": "SK",
            "ray_address": "ray-head.acme.internal:6379",
            "serve_endpoint": "http://serve.acme.internal:8000",
            "redis_url": "redis://cache.acme.internal:6379/0",
            "queue_prefix": "acme-prod-",
        }
    )
    settings = plane.settings_over(control.settings, "acme")
    dedicated = Platform(settings, tenant="acme")
    assert isinstance(dedicated.objects, S3ObjectStore)
    assert dedicated.objects.bucket == "acme-objects"
    assert settings.serve_url == "http://serve.acme.internal:8000"
    assert (dedicated.serve.host, dedicated.serve.port) == ("serve.acme.internal", 8000)
    assert dedicated.ray.address == "ray-head.acme.internal:6379"
    assert settings.redis_url is not None
    assert settings.redis_url.get_secret_value().startswith("redis://cache.acme")
    assert settings.queue_prefix == "acme-prod-"


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        ({}, "mongo_database"),
        ({"mongo_database": "acme", "mongo_url": "mongodb://x"}, "mongo_url"),
        ({"mongo_database": "acme/../x"}, "mongo_database"),
    ],
)
def test_a_bad_plane_is_refused_naming_the_key(raw: dict[str, str], named: str) -> None:
    with pytest.raises(MixpeekError) as caught:
        parse_plane(raw)
    assert caught.value.code == ErrorCode.INVALID_REQUEST
    assert named in caught.value.detail


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        ({"mongo_database": "acme", "mongo_uri": "http://db:27017"}, "mongo_uri"),
        ({"mongo_database": "acme", "ray_address": "nowhere"}, "ray_address"),
        ({"mongo_database": "acme", "serve_endpoint": "serve:8000"}, "serve_endpoint"),
        ({"mongo_database": "acme", "queue_prefix": "Acme Queue"}, "queue_prefix"),
        ({"mongo_database": "acme", "s3_bucket": "b", "s3_access_key_id": "AK"}, "s3_access_key"),
    ],
)
def test_endpoints_are_checked_by_the_settings_rules(
    control: Platform, raw: dict[str, str], named: str
) -> None:
    with pytest.raises(MixpeekError) as caught:
        parse_plane(raw).settings_over(control.settings, "acme")
    assert "acme" in caught.value.detail and named in caught.value.detail
