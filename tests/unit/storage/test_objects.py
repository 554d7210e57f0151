from __future__ import annotations

import asyncio
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.storage.objects import LocalObjectStore, validate_key


@pytest.fixture
def store(tmp_path: Path) -> LocalObjectStore:
    return LocalObjectStore(
        tmp_path / "objects", signing_key=b"k" * 32, public_url="http://api.test"
    )


def test_put_get_stat_list_delete(store: LocalObjectStore) -> None:
    info = store.put_bytes("org/ns/a.txt", b"hello")
    assert info.size == 5 and info.etag
    store.put_stream("org/ns/sub/b.bin", [b"ab", b"cd"])
    store.put_bytes("org/other/c.txt", b"c")
    assert store.get_bytes("org/ns/sub/b.bin") == b"abcd"
    assert store.stat("org/ns/a.txt").size == 5  # type: ignore[union-attr]
    assert store.stat("org/ns/missing") is None
    assert [i.key for i in store.list("org/ns/")] == ["org/ns/a.txt", "org/ns/sub/b.bin"]
    assert [i.key for i in store.list("org/ns/a")] == ["org/ns/a.txt"]
    assert store.delete("org/ns/a.txt") is True
    assert store.delete("org/ns/a.txt") is False
    assert store.delete_prefix("org/") == 2
    assert list(store.list()) == []


def test_listing_skips_partial_writes_and_links_out_of_the_store(
    store: LocalObjectStore, tmp_path: Path
) -> None:
    store.put_bytes("org/ns/files/b/2.txt", b"22")
    store.put_bytes("org/ns/files/a.txt", b"1")
    files = store.root / "org" / "ns" / "files"
    (files / ".upload-123").write_bytes(b"half written")
    outside = tmp_path / "outside"
    (outside / "deep").mkdir(parents=True)
    (outside / "secret.txt").write_text("not the store's")
    (files / "link.txt").symlink_to(outside / "secret.txt")
    (files / "linked").symlink_to(outside, target_is_directory=True)
    listed = list(store.list("org/ns/files/"))
    assert [(i.key, i.size) for i in listed] == [
        ("org/ns/files/a.txt", 1),
        ("org/ns/files/b/2.txt", 2),
    ]
    assert all(i.last_modified is not None for i in listed)


def test_missing_object_is_not_found(store: LocalObjectStore) -> None:
    with pytest.raises(MixpeekError) as info:
        store.get_bytes("org/ns/nope")
    assert info.value.code is ErrorCode.NOT_FOUND


BAD_KEYS = [
    "",
    "/abs/path",
    "a/../b",
    "..",
    "a//b",
    "a/./b",
    "a\\b",
    "a/b/",
    "nul\x00byte",
    "x" * 1100,
]


@pytest.mark.parametrize("key", BAD_KEYS, ids=repr)
def test_unsafe_keys_are_refused(key: str) -> None:
    with pytest.raises(MixpeekError) as info:
        validate_key(key)
    assert info.value.code is ErrorCode.INVALID_OBJECT_KEY


def test_limit_exceeded_leaves_nothing_behind(store: LocalObjectStore) -> None:
    with pytest.raises(MixpeekError) as info:
        store.put_stream("org/ns/big", [b"x" * 6, b"x" * 6], max_bytes=10)
    assert info.value.code is ErrorCode.PAYLOAD_TOO_LARGE
    assert store.stat("org/ns/big") is None
    assert not any(p.name.startswith(".upload-") for p in store.root.rglob("*"))


def test_failed_rewrite_keeps_previous_version(store: LocalObjectStore) -> None:
    store.put_bytes("org/ns/f", b"v1")
    with pytest.raises(MixpeekError):
        store.put_stream("org/ns/f", [b"v2-too-long"], max_bytes=3)
    assert store.get_bytes("org/ns/f") == b"v1"


def _params(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}


def test_presigned_put_verifies_and_rejects_tampering(store: LocalObjectStore) -> None:
    upload = store.presign_put(
        "org/ns/up.zip", expires_in=60, content_type="application/zip", max_bytes=100
    )
    assert upload.url.startswith("http://api.test/v1/storage/org/ns/up.zip?")
    assert upload.headers == {"Content-Type": "application/zip"}
    p = _params(upload.url)
    good = {
        "expires": int(p["expires"]),
        "signature": p["signature"],
        "max_bytes": int(p["max_bytes"]),
        "content_type": p["content_type"],
    }
    store.verify("PUT", "org/ns/up.zip", **good)  # type: ignore[arg-type]
    tampered = [
        ("PUT", "org/ns/other.zip", good),
        ("GET", "org/ns/up.zip", good),
        ("PUT", "org/ns/up.zip", {**good, "max_bytes": 10**9}),
        ("PUT", "org/ns/up.zip", {**good, "expires": good["expires"] + 3600}),
        ("PUT", "org/ns/up.zip", {**good, "content_type": "text/plain"}),
        ("PUT", "org/ns/up.zip", {**good, "signature": "0" * 64}),
    ]
    for method, key, params in tampered:
        with pytest.raises(MixpeekError) as info:
            store.verify(method, key, **params)  # type: ignore[arg-type]
        assert info.value.code is ErrorCode.SIGNATURE_INVALID, (method, key, params)


def test_expired_url_is_refused(store: LocalObjectStore, monkeypatch: pytest.MonkeyPatch) -> None:
    upload = store.presign_put("org/ns/late", expires_in=1)
    p = _params(upload.url)
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 10)
    with pytest.raises(MixpeekError) as info:
        store.verify("PUT", "org/ns/late", expires=int(p["expires"]), signature=p["signature"])
    assert info.value.code is ErrorCode.SIGNATURE_EXPIRED


def test_receive_streams_chunks(store: LocalObjectStore) -> None:
    async def body():  # type: ignore[no-untyped-def]
        for _ in range(10):
            yield b"z" * 1000

    info = asyncio.run(store.receive("org/ns/stream", body(), max_bytes=10_000))
    assert info.size == 10_000
    with pytest.raises(MixpeekError):
        asyncio.run(store.receive("org/ns/stream2", body(), max_bytes=9_999))
    assert store.stat("org/ns/stream2") is None


def test_health_probe_leaves_no_object(store: LocalObjectStore) -> None:
    assert store.health().status == "ok"
    assert list(store.list()) == []
