from __future__ import annotations

from pathlib import Path

import pytest

from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.settings import load_settings


def test_defaults_and_derived_urls(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    assert settings.api_url == "http://127.0.0.1:8000"
    assert settings.client_base_url == "http://127.0.0.1:8000/v1"
    assert settings.dagster_home == tmp_path / "dagster"
    assert settings.mongo_uri is None and settings.ray_address is None


def test_reads_prefixed_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MIXPEEK_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MIXPEEK_API_PORT", "9100")
    monkeypatch.setenv("MIXPEEK_MONGO_URI", "mongodb://db.internal:27017")
    monkeypatch.setenv("MIXPEEK_RAY_ADDRESS", "ray-head:6379")
    settings = load_settings()
    assert settings.data_dir == tmp_path
    assert settings.api_port == 9100
    assert settings.mongo_uri == "mongodb://db.internal:27017"
    assert settings.ray_address == "ray-head:6379"


def test_signing_key_is_generated_once_and_private(tmp_path: Path) -> None:
    first = load_settings(data_dir=tmp_path).signing_key
    second = load_settings(data_dir=tmp_path).signing_key
    assert first == second and len(first) == 64
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


INVALID = [
    ({"api_port": 0}, "MIXPEEK_API_PORT"),
    ({"api_port": 70000}, "MIXPEEK_API_PORT"),
    ({"api_port": "eighty"}, "MIXPEEK_API_PORT"),
    ({"serve_port": 8000}, "MIXPEEK_SERVE_PORT (8000) is the same as MIXPEEK_API_PORT"),
    ({"mongo_uri": "postgres://x"}, "MIXPEEK_MONGO_URI"),
    ({"ray_address": "no-port"}, "MIXPEEK_RAY_ADDRESS"),
    ({"ray_address": "host:99999"}, "MIXPEEK_RAY_ADDRESS"),
    ({"s3_access_key_id": "AKIA"}, "s3_secret_access_key must be set together"),
    ({"s3_endpoint_url": "localhost:9000"}, "MIXPEEK_S3_ENDPOINT_URL"),
    ({"s3_prefix": "../escape"}, "s3_prefix"),
    ({"ray_object_store_memory_mb": 1}, "MIXPEEK_RAY_OBJECT_STORE_MEMORY_MB"),
    ({"log_level": "LOUD"}, "MIXPEEK_LOG_LEVEL"),
]


@pytest.mark.parametrize(("overrides", "named"), INVALID, ids=[str(o) for o, _ in INVALID])
def test_invalid_settings_fail_fast_naming_the_setting(
    overrides: dict[str, object], named: str, tmp_path: Path
) -> None:
    with pytest.raises(MixpeekError) as info:
        load_settings(data_dir=tmp_path, **overrides)
    assert info.value.code is ErrorCode.INVALID_SETTINGS
    assert named in info.value.detail


def test_data_dir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    file = tmp_path / "not-a-dir"
    file.write_text("x")
    with pytest.raises(MixpeekError, match="MIXPEEK_DATA_DIR"):
        load_settings(data_dir=file)
