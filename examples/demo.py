"""The end-to-end demo, run by `make demo` after `mixpeek up`.

It walks every connection of the running stack (component health, a signed upload, the Serve
skeleton app, a Dagster run submitting a Ray Data job), then the plugin author's loop: an API key
and a namespace, publishing the hosted product's example plugin (upload URL -> PUT -> confirm),
deploying it to Ray Serve through the Dagster deployer, and calling it in realtime. It grows
with the platform.
"""

from __future__ import annotations

import sys
import time

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
    deadline = time.monotonic() + 300
    status = client.status(plugin_id)
    while status["status"] not in ("DEPLOYED", "FAILED") and time.monotonic() < deadline:
        time.sleep(2)
        status = client.status(plugin_id)
    console.print(f"status: [bold]{status['status']}[/bold] {status.get('error') or ''}")
    if status["status"] == "DEPLOYED":
        answer = client.request(
            "POST", f"{base}/realtime", json={"inputs": {"text": "a sunny day at the beach"}}
        )
        console.print(
            f"realtime: {len(answer['embedding'])}-d embedding, label {answer['label']!r}"
        )
    console.print(f"API key for this demo organisation ({org_id}): {api_key}")
    platform.close()

    console.rule("The stack stays up")
    for name, url in state.urls.items():
        console.print(f"  {name:14} {url}")
    console.print(
        "Stop it with `.venv/bin/mixpeek down` (data is kept under", str(settings.data_dir) + ")."
    )
    return 0 if status["status"] == "DEPLOYED" else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except MixpeekError as exc:
        console.print(f"[red]error:[/red] {exc.detail}")
        sys.exit(1)
