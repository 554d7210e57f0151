"""``mixpeek admin ...``: operator commands that talk to the metadata store directly."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console

from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.platform import Platform
from mixpeek_orchestration.settings import MixpeekSettings, load_settings

admin_app = typer.Typer(help="Operator commands (organisations, API keys).", no_args_is_help=True)
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
