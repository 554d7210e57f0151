"""``mixpeek``: the one entry point for operators and plugin authors.

Commands here manage the local stack (``up``, ``down``, ``status``); later command groups
(``plugin``, ``admin``, ``deploy``) call into the same domain packages.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from mixpeek_orchestration.cli.admin import admin_app
from mixpeek_orchestration.cli.deploy import deploy_app
from mixpeek_orchestration.cli.plugin import plugin_app
from mixpeek_orchestration.errors import MixpeekError
from mixpeek_orchestration.settings import MixpeekSettings, load_settings

app = typer.Typer(
    name="mixpeek",
    help="Self-hosted Mixpeek: custom feature-extraction plugins over multimodal data.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(plugin_app, name="plugin")
app.add_typer(admin_app, name="admin")
app.add_typer(deploy_app, name="deploy")
console = Console()
err_console = Console(stderr=True)


def _settings() -> MixpeekSettings:
    try:
        return load_settings()
    except MixpeekError as exc:
        err_console.print(f"[red]error:[/red] {exc.detail}")
        raise typer.Exit(2) from None


def _fail(exc: MixpeekError) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {exc.detail}")
    return typer.Exit(1)


@app.command()
def up(
    timeout: Annotated[float, typer.Option(help="Seconds to wait for every component.")] = 300.0,
) -> None:
    """Start every local component, wait until all are healthy, print their URLs, and return."""
    from mixpeek_orchestration.stack import Stack

    settings = _settings()
    stack = Stack(settings, report=lambda line: console.print(f"  {line}"))
    console.print(f"Starting the stack in [bold]{settings.data_dir}[/bold] ...")
    start = time.monotonic()
    try:
        state = stack.up(timeout_s=timeout)
    except MixpeekError as exc:
        raise _fail(exc) from None
    console.print(
        f"[green]Stack is up[/green] in {time.monotonic() - start:.0f}s. Logs: {settings.logs_dir}"
    )
    table = Table("component", "URL")
    for name, url in state.urls.items():
        table.add_row(name, url)
    console.print(table)


@app.command()
def down() -> None:
    """Stop every process `mixpeek up` started for this data dir (data is kept)."""
    from mixpeek_orchestration.stack import Stack

    settings = _settings()
    stopped = Stack(settings, report=lambda line: console.print(f"  {line}")).down()
    if stopped:
        console.print(
            f"[green]Stopped[/green] {', '.join(stopped)}. Data kept in {settings.data_dir}"
        )
    else:
        console.print(f"No stack is running for {settings.data_dir}")


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show each component's health; exits 1 when any is not ok."""
    from mixpeek_orchestration.stack import Stack

    stack = Stack(_settings())
    reports = stack.status()
    state = stack.state()
    metadata_ok = "metadata" in reports and reports["metadata"].status == "ok"
    ingestion = _ingestion_summary(stack, state) if metadata_ok else {}
    if as_json:
        payload = {
            "components": {name: r.model_dump() for name, r in reports.items()},
            "urls": state.urls if state else {},
            "ingestion": ingestion,
        }
        typer.echo(json.dumps(payload, indent=2))
    else:
        table = Table("component", "status", "detail")
        for name, report in reports.items():
            colour = "green" if report.status == "ok" else "red"
            table.add_row(name, f"[{colour}]{report.status}[/{colour}]", report.detail)
        console.print(table)
        if ingestion:
            table = Table("tenant", "queue", "oldest waiting", "batches", "rows ok", "rows failed")
            for tenant, entry in ingestion.items():
                batches = ", ".join(f"{k} {v}" for k, v in sorted(entry["batches"].items()))
                table.add_row(
                    tenant, str(entry["queue_depth"]), f"{entry['oldest_age_s']:.0f}s", batches,
                    str(entry["rows_ok"]), str(entry["rows_failed"]),
                )  # fmt: skip
            console.print(table)
        if state:
            for name, url in state.urls.items():
                console.print(f"  {name}: {url}")
    if any(r.status != "ok" for r in reports.values()):
        raise typer.Exit(1)


def _ingestion_summary(stack: object, state: object) -> dict[str, dict[str, Any]]:
    """Ingestion per tenant over every data plane (the series ``/metrics`` exposes), when the
    metadata stores answer."""
    from mixpeek_orchestration.observability import ingest_summaries
    from mixpeek_orchestration.platform import Platform

    settings = stack.settings_for(state) if state else stack.settings  # type: ignore[attr-defined]
    platform = Platform(settings)
    try:
        return ingest_summaries([plane.planner.summary for plane in platform.planes.all()])
    except Exception:  # status reports components; a sick store already shows there
        return {}
    finally:
        platform.close()


def main() -> None:
    try:
        app()
    except MixpeekError as exc:
        err_console.print(f"[red]error:[/red] {exc.detail}")
        sys.exit(1)


if __name__ == "__main__":
    main()
