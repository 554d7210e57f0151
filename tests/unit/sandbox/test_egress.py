"""The egress proxy's rules, through the in-sandbox forwarder, against servers this test runs."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mixpeek_orchestration.sandbox.egress import (
    EgressProxy,
    EgressRules,
    Forwarder,
    denied_endpoints,
)


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"hello {self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[int]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd.server_address[1]
    httpd.shutdown()


def through(tmp_path: Path, rules: EgressRules) -> tuple[httpx.Client, EgressProxy]:
    socket_path = tmp_path / "egress.sock"
    proxy = EgressProxy(socket_path, rules)
    proxy.start()
    forwarder = Forwarder(str(socket_path), port=0)
    forwarder.start()
    return httpx.Client(proxy=forwarder.url, timeout=10, trust_env=False), proxy


def test_a_name_that_resolves_inside_is_refused_whatever_the_allow_list(
    tmp_path: Path, server: int
) -> None:
    client, proxy = through(tmp_path, EgressRules(allowed_hosts=("localhost",)))
    answer = client.get(f"http://localhost:{server}/x")
    assert answer.status_code == 403 and answer.text.startswith("blocked_by_sandbox")
    assert "internal address" in answer.text and answer.headers["X-Mixpeek-Blocked"] == "egress"
    assert client.get(f"http://example.invalid:{server}/").status_code == 403
    proxy.close()


def test_an_operator_may_allow_an_internal_address_literally(tmp_path: Path, server: int) -> None:
    client, proxy = through(tmp_path, EgressRules(allowed_hosts=("127.0.0.1",)))
    answer = client.get(f"http://127.0.0.1:{server}/ping")
    assert answer.status_code == 200 and answer.text == "hello /ping"
    proxy.close()


def test_the_platforms_own_services_are_refused_but_its_signed_blob_urls_pass(
    tmp_path: Path, server: int
) -> None:
    prefix = f"http://127.0.0.1:{server}/v1/storage/org_1/ns_1/buckets/"
    rules = EgressRules(
        allowed_hosts=("127.0.0.1",),
        url_prefixes=(prefix,),
        denied_endpoints=denied_endpoints([f"http://127.0.0.1:{server}"]),
    )
    client, proxy = through(tmp_path, rules)
    assert client.get(prefix + "b/files/cat.png?signature=s").status_code == 200
    refused = client.get(f"http://127.0.0.1:{server}/v1/collections")
    assert refused.status_code == 403 and "platform service" in refused.text
    other_namespace = f"http://127.0.0.1:{server}/v1/storage/org_2/ns_9/buckets/b/files/x"
    assert client.get(other_namespace).status_code == 403
    proxy.close()


@pytest.mark.parametrize(
    ("host", "address", "why"),
    [
        ("169.254.169.254", "169.254.169.254", "metadata"),  # allowed literally, still refused
        ("api.internal", "10.0.0.7", "internal"),  # an allowed name resolving to a private IP
        ("api.example.com", "93.184.216.34", "allowed"),  # not on the list
    ],
)
def test_metadata_private_and_unlisted_targets_are_refused(
    host: str, address: str, why: str
) -> None:
    rules = EgressRules(allowed_hosts=("169.254.169.254", "api.internal"))
    check = rules.check(host, 80, url=f"http://{host}/")
    if check is None:
        check = rules.check_address(host, 80, address, url=f"http://{host}/")
    assert check is not None and why in check


def test_https_is_tunnelled_only_to_allowed_hosts(tmp_path: Path) -> None:
    client, proxy = through(tmp_path, EgressRules(allowed_hosts=("api.example.com",)))
    with pytest.raises(httpx.ProxyError):
        client.get("https://not-allowed.example.com/")
    assert any("not an allowed host" in r for r in proxy.refused)
    proxy.close()
