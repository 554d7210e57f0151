"""The end-to-end demo, run by `make demo` after `mixpeek up`.

For now it walks the skeleton through every connection of the running stack: component health,
a signed upload and download through the API, a call to the realtime (Ray Serve) skeleton app,
and a Dagster run (through the daemon) that submits a Ray Data job. It grows with the platform.
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
    status = platform.dagster.wait_for_run(run_id, timeout_s=300)
    console.print(f"run {run_id}: [bold]{status}[/bold]  ({settings.dagster_ui_url}/runs/{run_id})")
    platform.close()

    console.rule("The stack stays up")
    for name, url in state.urls.items():
        console.print(f"  {name:14} {url}")
    console.print(
        "Stop it with `.venv/bin/mixpeek down` (data is kept under", str(settings.data_dir) + ")."
    )
    return 0 if status == "SUCCESS" else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except MixpeekError as exc:
        console.print(f"[red]error:[/red] {exc.detail}")
        sys.exit(1)
