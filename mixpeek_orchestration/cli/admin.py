"""``mixpeek admin ...``: operator commands that talk to the metadata store directly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.platform import Platform
from mixpeek_orchestration.settings import MixpeekSettings, load_settings

admin_app = typer.Typer(
    help="Operator commands (organisations, API keys, tenants).", no_args_is_help=True
)
console = Console()
err_console = Console(stderr=True)


def stack_settings() -> MixpeekSettings:
    """Settings of the running local stack (its resolved endpoints), or the configured ones."""
    from mixpeek_orchestration.stack import Stack

    settings = load_settings()
    state = Stack(settings).state()
    resolved = Stack(settings).settings_for(state) if state else settings
    if not resolved.mongo_uri:
        raise MixpeekError(
            ErrorCode.COMPONENT_UNAVAILABLE,
            "No metadata store: start the stack (`mixpeek up`) or set MIXPEEK_MONGO_URI",
        )
    return resolved


@admin_app.command("create-key")
def create_key(
    org: Annotated[str, typer.Option("--org", help="Organisation name (created if new).")],
    as_json: Annotated[bool, typer.Option("--json", help='Print {"api_key", "org_id"}.')] = False,
) -> None:
    """Bootstrap an organisation and an API key (the key is shown once)."""
    try:
        platform = Platform(stack_settings())
        platform.accounts.ensure_indexes()
        org_id, key = platform.accounts.create_organization(org)
    except MixpeekError as exc:
        err_console.print(f"[red]error:[/red] {exc.detail}")
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps({"api_key": key, "org_id": org_id}))
    else:
        console.print(f"organisation [bold]{org}[/bold] ({org_id})")
        console.print(f"API key (shown once): [bold]{key}[/bold]")


@admin_app.command("rotate-secrets")
def rotate_secrets(
    new_key: Annotated[
        bool, typer.Option("--new-key", help="Print a fresh Fernet key and change nothing.")
    ] = False,
) -> None:
    """Re-encrypt every organisation secret, in every data plane, under the first key of
    MIXPEEK_SECRETS_KEY.

    To rotate: put a new key first (``MIXPEEK_SECRETS_KEY=new,old``), restart the stack, run
    this, then drop the old key and restart again.
    """
    if new_key:
        from cryptography.fernet import Fernet

        typer.echo(Fernet.generate_key().decode())
        return
    try:
        control = Platform(stack_settings())
        for platform in control.planes.all():
            count = platform.secrets.reencrypt()
            plane = platform.tenant or "shared"
            console.print(f"plane [bold]{plane}[/bold]: {count} secret(s) re-encrypted")
    except MixpeekError as exc:
        err_console.print(f"[red]error:[/red] {exc.detail}")
        raise typer.Exit(1) from None


tenant_app = typer.Typer(
    help="Tenants with a dedicated data plane, and which organisations they serve.",
    no_args_is_help=True,
)
admin_app.add_typer(tenant_app, name="tenant")


def _fail(exc: MixpeekError) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {exc.detail}")
    return typer.Exit(1)


def _plane_fields(plane_file: Path | None, assignments: list[str]) -> dict[str, object]:
    from mixpeek_orchestration.tenancy.planes import read_plane_file

    fields: dict[str, object] = read_plane_file(plane_file) if plane_file is not None else {}
    for assignment in assignments:
        key, sep, value = assignment.partition("=")
        if not sep or not key.strip():
            raise MixpeekError(
                ErrorCode.INVALID_REQUEST, f"--set {assignment!r}: expected KEY=VALUE", field="set"
            )
        fields[key.strip()] = value
    return fields


@tenant_app.command("set")
def tenant_set(
    name: Annotated[str, typer.Argument(help="Tenant name (lowercase, digits, '-').")],
    org: Annotated[
        list[str], typer.Option("--org", help="Organisation (name or id) to route to it.")
    ] = [],  # noqa: B006 (typer reads the default)
    plane_file: Annotated[
        Path | None, typer.Option("--plane", help="YAML of the data plane's endpoints.")
    ] = None,
    assignments: Annotated[
        list[str], typer.Option("--set", help="One endpoint, KEY=VALUE (over --plane).")
    ] = [],  # noqa: B006
) -> None:
    """Create or replace a tenant's data plane and route organisations to it.

    The plane is checked first (its settings, its metadata store answering, its object store
    writable) and its indexes created; nothing is recorded when a check fails.
    """
    from mixpeek_orchestration.tenancy.planes import parse_plane

    try:
        control = Platform(stack_settings())
        plane = parse_plane(_plane_fields(plane_file, assignments))
        dedicated = Platform(plane.settings_over(control.settings, name), tenant=name)
        for component in ("metadata", "objects"):
            health = dedicated.health_checks()[component]()
            if health.status != "ok":
                raise MixpeekError(
                    ErrorCode.COMPONENT_UNAVAILABLE,
                    f"The plane's {component} store is not usable: {health.detail}",
                    field=component,
                )
        dedicated.ensure_indexes()
        tenants = control.tenants
        tenants.ensure_indexes()
        doc = tenants.configure(name, plane, orgs=org)
    except MixpeekError as exc:
        raise _fail(exc) from None
    except Exception as exc:  # an unreachable store: pymongo / boto errors
        raise _fail(MixpeekError(ErrorCode.COMPONENT_UNAVAILABLE, str(exc))) from None
    console.print(
        f"tenant [bold]{name}[/bold]: database {doc['plane']['mongo_database']}, "
        f"{len(doc['orgs'])} organisation(s) routed"
    )


@tenant_app.command("list")
def tenant_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print the configs as JSON.")] = False,
) -> None:
    """Every tenant, its data plane (secrets hidden) and its organisations."""
    from mixpeek_orchestration.tenancy.planes import SECRET_FIELDS

    try:
        tenants = Platform(stack_settings()).tenants.list()
    except MixpeekError as exc:
        raise _fail(exc) from None
    for doc in tenants:
        for secret in SECRET_FIELDS:
            if doc["plane"].get(secret):
                doc["plane"][secret] = "**********"
    if as_json:
        typer.echo(json.dumps(tenants, default=str))
        return
    for doc in tenants:
        endpoints = ", ".join(f"{k}={v}" for k, v in doc["plane"].items() if v not in (None, ""))
        console.print(f"[bold]{doc['name']}[/bold] orgs={doc['orgs']} {endpoints}")


@tenant_app.command("route")
def tenant_route(
    org: Annotated[str, typer.Option("--org", help="Organisation (name or id).")],
    tenant: Annotated[
        str | None, typer.Option("--tenant", help="Tenant to route to (omit: the shared plane).")
    ] = None,
) -> None:
    """Route one organisation to a tenant's plane, or back to the shared plane.

    Records stay where they were written: moving an organisation does not copy its data.
    """
    try:
        Platform(stack_settings()).tenants.route(org, tenant)
    except MixpeekError as exc:
        raise _fail(exc) from None
    console.print(f"{org} -> {tenant or 'the shared plane'}")


@tenant_app.command("remove")
def tenant_remove(name: Annotated[str, typer.Argument(help="Tenant name.")]) -> None:
    """Delete a tenant config (refused while organisations are routed to it)."""
    try:
        Platform(stack_settings()).tenants.remove(name)
    except MixpeekError as exc:
        raise _fail(exc) from None
    console.print(f"tenant {name} removed")
