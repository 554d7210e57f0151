"""``mixpeek deploy ...``: Kubernetes manifests for a tenant (SPEC §10)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from mixpeek_orchestration.errors import MixpeekError

deploy_app = typer.Typer(help="Kubernetes manifests for a tenant.", no_args_is_help=True)
console = Console()
err_console = Console(stderr=True)


@deploy_app.command("render")
def render_command(
    tenant: Annotated[str, typer.Option("--tenant", help="Tenant name (a Kubernetes name).")],
    overrides: Annotated[Path, typer.Option("--overrides", help="The tenant's overrides YAML.")],
    out: Annotated[Path, typer.Option("--out", help="Directory to write the manifests to.")],
    extractor: Annotated[
        list[str] | None,
        typer.Option(
            "--extractor",
            help="A custom extractor of the tenant (repeatable); built-ins are known.",
        ),
    ] = None,
    image: Annotated[str | None, typer.Option(help="Platform container image.")] = None,
    plane: Annotated[
        Path | None,
        typer.Option("--plane", help="The tenant's data-plane YAML (as `admin tenant set`)."),
    ] = None,
) -> None:
    """Write the tenant's RayService, Dagster Helm values, API and namespace manifests."""
    from mixpeek_orchestration.deploy.render import (
        IMAGE,
        PLANE_SECRET,
        namespace_name,
        plane_env,
        render,
        write,
    )
    from mixpeek_orchestration.extractors.registry import BUILTIN_EXTRACTORS
    from mixpeek_orchestration.tenancy.overrides import load_overrides
    from mixpeek_orchestration.tenancy.planes import parse_plane, read_plane_file

    registry = list(BUILTIN_EXTRACTORS) + [
        e for e in extractor or [] if e not in BUILTIN_EXTRACTORS
    ]
    try:
        endpoints = parse_plane(read_plane_file(plane)) if plane is not None else None
        files = render(
            tenant,
            load_overrides(overrides, known=registry),
            registry,
            image=image or IMAGE,
            plane=endpoints,
        )
    except MixpeekError as exc:
        err_console.print(f"[red]error:[/red] {exc.detail}")
        raise typer.Exit(1) from None
    for path in write(files, out):
        console.print(f"wrote {path}")
    secrets = plane_env(tenant, endpoints).secrets
    if secrets:
        console.print(
            f"create the Secret {PLANE_SECRET} in {namespace_name(tenant)} with the keys "
            + ", ".join(secrets)
        )
