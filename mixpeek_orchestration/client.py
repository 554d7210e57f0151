"""A small HTTP client for the platform API, used by the CLI, the demo and tests.

Application code can equally use the official ``mixpeek`` client; this one covers the plugin
author's loop (upload, confirm, versions) with streaming uploads and progress callbacks.

Example:
    >>> client = PlatformClient("http://127.0.0.1:8000/v1", api_key, namespace="prod")
    >>> result = client.publish_archive(Path("my_extractor.zip"), name="my_extractor", version="1.0.0")
    >>> result["plugin_id"]
    'my_extractor_1_0_0'
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from mixpeek_orchestration.errors import ERROR_ENVELOPE_KEYS, ErrorCode, MixpeekError

Progress = Callable[[int], None]
CHUNK = 1024 * 1024


class ApiError(MixpeekError):
    """An error answer of the API: its status, ``detail`` and structured body."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        detail = str(body.get("detail", f"HTTP {status}"))
        code = next(
            (c for c in ErrorCode if c.value == body.get("code")), ErrorCode.INVALID_REQUEST
        )
        fields = {k: v for k, v in body.items() if k not in ERROR_ENVELOPE_KEYS}
        super().__init__(code, detail, **fields)
        self.status = status
        self.body = body

    @property
    def http_status(self) -> int:
        return self.status


class PlatformClient:
    """Talks to ``base_url`` (``http://host:port/v1``) with a bearer key, in one namespace."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        namespace: str | None = None,
        timeout_s: float = 600.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.namespace = namespace
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout_s)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> PlatformClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _ns(self) -> str:
        if not self.namespace:
            raise MixpeekError(
                ErrorCode.INVALID_REQUEST, "No namespace: pass --namespace or set MIXPEEK_NAMESPACE"
            )
        return self.namespace

    def request(
        self, method: str, path: str, *, ok: tuple[int, ...] = (200, 201), **kwargs: Any
    ) -> Any:
        response = self.http.request(method, path, **kwargs)
        if response.status_code not in ok:
            try:
                body = response.json()
            except ValueError:
                body = {"detail": response.text or f"HTTP {response.status_code}"}
            raise ApiError(
                response.status_code, body if isinstance(body, dict) else {"detail": str(body)}
            )
        return response.json() if response.content else None

    # namespaces

    def create_namespace(self, name: str) -> dict[str, Any]:
        return self.request("POST", "/namespaces", json={"namespace_name": name})  # type: ignore[no-any-return]

    def list_namespaces(self) -> list[dict[str, Any]]:
        return self.request("GET", "/namespaces")["results"]  # type: ignore[no-any-return]

    # plugins

    @property
    def _plugins(self) -> str:
        return f"/namespaces/{self._ns()}/plugins"

    def create_upload(self, name: str, version: str, *, size: int | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"name": name, "version": version}
        if size is not None:
            body["file_size_bytes"] = size
        return self.request("POST", f"{self._plugins}/uploads", json=body)  # type: ignore[no-any-return]

    def put_archive(
        self,
        url: str,
        path: Path,
        *,
        headers: dict[str, str] | None = None,
        progress: Progress | None = None,
    ) -> None:
        size = path.stat().st_size

        def chunks() -> Iterator[bytes]:
            with path.open("rb") as handle:
                while chunk := handle.read(CHUNK):
                    if progress:
                        progress(len(chunk))
                    yield chunk

        all_headers = {
            "Content-Type": "application/zip",
            **(headers or {}),
            "Content-Length": str(size),
        }
        response = httpx.put(url, content=chunks(), headers=all_headers, timeout=self.http.timeout)
        if response.status_code not in (200, 201, 204):
            try:
                body = response.json()
            except ValueError:
                body = {"detail": response.text[:500] or f"HTTP {response.status_code}"}
            raise ApiError(response.status_code, body)

    def confirm(self, upload_id: str, *, message: str = "") -> dict[str, Any]:
        return self.request(  # type: ignore[no-any-return]
            "POST", f"{self._plugins}/uploads/{upload_id}/confirm", json={"message": message}
        )

    def publish_archive(
        self,
        path: Path,
        *,
        name: str,
        version: str,
        message: str = "",
        progress: Progress | None = None,
    ) -> dict[str, Any]:
        """Upload URL -> PUT -> confirm."""
        ticket = self.create_upload(name, version, size=path.stat().st_size)
        self.put_archive(
            ticket["presigned_url"], path, headers=ticket.get("upload_headers"), progress=progress
        )
        return self.confirm(ticket["upload_id"], message=message)

    def list_plugins(self) -> list[dict[str, Any]]:
        return self.request("GET", self._plugins)["results"]  # type: ignore[no-any-return]

    def get_plugin(self, plugin_id: str) -> dict[str, Any]:
        return self.request("GET", f"{self._plugins}/{plugin_id}")  # type: ignore[no-any-return]

    def status(self, plugin_id: str) -> dict[str, Any]:
        return self.request("GET", f"{self._plugins}/{plugin_id}/status")  # type: ignore[no-any-return]

    def versions(self, name: str) -> dict[str, Any]:
        return self.request("GET", f"{self._plugins}/by-name/{name}/versions")  # type: ignore[no-any-return]

    def next_version(self, name: str, manifest_version: str | None = None) -> str:
        params = {"manifest_version": manifest_version} if manifest_version else {}
        return self.request("GET", f"{self._plugins}/by-name/{name}/next-version", params=params)[
            "version"
        ]  # type: ignore[no-any-return]

    def log(self, name: str) -> list[dict[str, Any]]:
        return self.request("GET", f"{self._plugins}/by-name/{name}/log")["entries"]  # type: ignore[no-any-return]

    def rollback(self, name: str, version: str, *, message: str = "") -> dict[str, Any]:
        return self.request(  # type: ignore[no-any-return]
            "POST",
            f"{self._plugins}/by-name/{name}/rollback",
            json={"version": version, "message": message},
        )

    def diff(self, name: str, v1: str, v2: str) -> dict[str, Any]:
        return self.request(
            "GET", f"{self._plugins}/by-name/{name}/diff", params={"v1": v1, "v2": v2}
        )  # type: ignore[no-any-return]

    def download_source(self, plugin_id: str, target: Path) -> str:
        """Stream a version's archive to ``target``; returns the server's sha256 header."""
        with self.http.stream("GET", f"{self._plugins}/{plugin_id}/source") as response:
            if response.status_code != 200:
                response.read()
                raise ApiError(response.status_code, response.json())
            with target.open("wb") as out:
                for chunk in response.iter_bytes(CHUNK):
                    out.write(chunk)
            return response.headers.get("X-Content-SHA256", "")

    def delete(self, plugin_id: str) -> dict[str, Any]:
        return self.request("DELETE", f"{self._plugins}/{plugin_id}")  # type: ignore[no-any-return]
