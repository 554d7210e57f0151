"""``mixpeek plugin ...``: the plugin author's loop (init, validate, scan, test, builtins)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from mixpeek_orchestration.errors import MixpeekError

plugin_app = typer.Typer(help="Author, check and test plugins.", no_args_is_help=True)
console = Console()
err_console = Console(stderr=True)

TEMPLATES = Path(__file__).parent / "templates"
TEMPLATE_FOR_CATEGORY = {"text": "text", "document": "text", "image": "image"}


def _fail(message: str, code: int = 1) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {message}")
    return typer.Exit(code)


@plugin_app.command()
def init(
    name: Annotated[str, typer.Argument(help="Plugin name (lowercase letters, digits, _).")],
    category: Annotated[str, typer.Option(help="text | document | image")] = "text",
    directory: Annotated[Path | None, typer.Option("--dir", help="Parent directory.")] = None,
) -> None:
    """Create a working plugin from a template; `mixpeek plugin test` passes on it as is."""
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,62}", name):
        raise _fail(
            f"plugin name {name!r} must be lowercase letters, digits and _ (starting with a letter)"
        )
    template = TEMPLATE_FOR_CATEGORY.get(category)
    if template is None:
        raise _fail(
            f"no template for category {category!r}; choose one of {sorted(TEMPLATE_FOR_CATEGORY)}"
        )
    target = (directory or Path.cwd()) / name
    if target.exists():
        raise _fail(f"{target} already exists")
    values = {
        "name": name,
        "Class": "".join(p.title() for p in name.split("_")),
        "category": category,
    }
    for source in sorted((TEMPLATES / template).rglob("*.tmpl")):
        relative = source.relative_to(TEMPLATES / template).with_suffix("")
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_text(source.read_text().format(**values))
    console.print(
        f"Created [bold]{target}[/bold] ({category}). Next: cd {name} && mixpeek plugin test"
    )


def _violations_table(violations: list[dict]) -> Table:
    table = Table("severity", "file", "line", "col", "message")
    for v in violations:
        colour = "red" if v["severity"] == "error" else "yellow"
        table.add_row(
            f"[{colour}]{v['severity']}[/{colour}]",
            v["file"],
            str(v["line"]),
            str(v["column"]),
            v["message"],
        )
    return table


@plugin_app.command()
def scan(
    path: Annotated[Path, typer.Argument(help="Plugin directory or zip archive.")] = Path("."),
    strict: Annotated[bool, typer.Option("--strict", help="Warnings fail the scan too.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Archive gate + security scan; exits 0 only when the plugin may be deployed."""
    from mixpeek_orchestration.plugins.archive import ArchiveRejected, open_plugin_archive
    from mixpeek_orchestration.plugins.policy import ScanPolicy
    from mixpeek_orchestration.plugins.report import Violation
    from mixpeek_orchestration.plugins.scanner import scan_directory
    from mixpeek_orchestration.plugins.validation import as_archive

    policy = ScanPolicy(strict=strict)
    violations: list[Violation] = []
    sha256 = None
    files = 0
    if not path.exists():
        raise _fail(f"{path} is neither a plugin directory nor a zip archive", 2)
    try:
        with as_archive(path) as archive, open_plugin_archive(archive) as extracted:
            report = scan_directory(extracted.root, policy=policy)
            violations, sha256, files = (
                list(report.violations),
                extracted.sha256,
                report.files_scanned,
            )
            passed = report.passed
    except ArchiveRejected as exc:
        violations, passed = list(exc.violations), False
    payload = [v.model_dump() for v in violations]
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "passed": passed,
                    "strict": strict,
                    "sha256": sha256,
                    "files_scanned": files,
                    "violations": payload,
                },
                indent=2,
            )
        )
    else:
        if violations:
            console.print(_violations_table(payload))
        verdict = "[green]passed[/green]" if passed else "[red]Security scan failed[/red]"
        console.print(
            f"{verdict}: {files} files scanned, {len(violations)} violation(s)"
            + (" (strict)" if strict else "")
        )
    raise typer.Exit(0 if passed else 1)


@plugin_app.command()
def validate(
    path: Annotated[Path, typer.Argument(help="Plugin directory or zip archive.")] = Path("."),
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Gate, scan, manifest and a `build_steps` dry run: everything an upload's confirm checks."""
    from mixpeek_orchestration.plugins.validation import check_plugin_path

    try:
        check = check_plugin_path(path)
    except MixpeekError as exc:
        raise _fail(exc.detail, 2) from None
    if as_json:
        typer.echo(json.dumps(check.to_dict(), indent=2, default=str))
    elif check.passed:
        description = check.description or {}
        console.print(f"[green]valid[/green]: {check.plugin_id} ({description.get('category')})")
        for uri in check.feature_uris:
            console.print(f"  feature {uri}")
        console.print(f"  sha256 {check.sha256}")
    else:
        err_console.print(f"[red]{check.detail}[/red] (stage: {check.stage})")
        if check.violations:
            err_console.print(_violations_table([v.model_dump() for v in check.violations]))
        for error in check.errors:
            err_console.print(f"  {error.get('field')}: {error.get('message')}")
    raise typer.Exit(0 if check.passed else 1)


@plugin_app.command("test")
def test_plugin(
    path: Annotated[Path, typer.Option("--path", help="Plugin directory.")] = Path("."),
    sample_data: Annotated[
        Path | None, typer.Option("--sample-data", help="JSON / JSON-lines rows.")
    ] = None,
    parameters: Annotated[
        str | None, typer.Option("--parameters", help="Collection parameters as JSON.")
    ] = None,
    skip_scan: Annotated[
        bool, typer.Option("--skip-scan", help="Run even if the scan fails.")
    ] = False,
    allow_host: Annotated[
        list[str] | None,
        typer.Option("--allow-host", help="Host the plugin may connect to (repeatable)."),
    ] = None,
    models_dir: Annotated[
        Path | None,
        typer.Option("--models-dir", help="Namespace models as <name>.safetensors / .onnx."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Scan, then run the pipeline on sample rows and call the realtime handler, in the
    sandboxed plugin host; report timings."""
    from mixpeek_orchestration.plugins.testing import test_plugin as run_test
    from mixpeek_orchestration.sandbox.config import SandboxConfig
    from mixpeek_orchestration.settings import load_settings

    if not (path / "manifest.py").is_file():
        raise _fail(f"{path.resolve()} is not a plugin directory (no manifest.py)", 2)
    params = None
    if parameters:
        try:
            params = json.loads(parameters)
        except json.JSONDecodeError as exc:
            raise _fail(f"--parameters is not JSON: {exc}", 2) from None
    if not skip_scan:
        from mixpeek_orchestration.plugins.validation import check_plugin_path

        check = check_plugin_path(path, dry_run=False)
        if not check.passed:
            err_console.print(f"[red]{check.detail}[/red]")
            if check.violations:
                err_console.print(_violations_table([v.model_dump() for v in check.violations]))
            for error in check.errors:
                err_console.print(f"  {error.get('field')}: {error.get('message')}")
            raise typer.Exit(1)
    try:
        settings = load_settings()
        report = run_test(
            path,
            sandbox=SandboxConfig(
                backend=settings.sandbox, gvisor_platform=settings.gvisor_platform
            ),
            sample_data=sample_data,
            parameters=params,
            allowed_hosts=tuple(allow_host or ()),
            models_dir=models_dir,
        )
    except MixpeekError as exc:
        raise _fail(exc.detail) from None
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
        raise typer.Exit(0 if report.passed else 1)
    table = Table("check", "result")
    table.add_row("plugin", report.plugin_id)
    table.add_row("features", "\n".join(report.feature_uris))
    table.add_row("load", f"{report.load_s:.2f}s")
    table.add_row("batch rows", f"{report.rows_ok}/{report.rows} ok")
    if report.first_batch_s is not None:
        table.add_row("first batch (model load)", f"{report.first_batch_s:.2f}s")
    table.add_row("batch throughput (warm)", f"{report.rows_per_s:.1f} rows/s")
    if report.realtime is not None:
        rt = report.realtime
        table.add_row(
            "realtime", "ok" if not rt.problems else "[red]" + "; ".join(rt.problems) + "[/red]"
        )
        if rt.p50_ms is not None:
            table.add_row(
                "realtime latency",
                f"first {rt.first_call_ms} ms, p50 {rt.p50_ms} ms ({rt.calls} calls)",
            )
    else:
        table.add_row("realtime", "no realtime.py (batch only)")
    console.print(table)
    for row_error in report.row_errors:
        err_console.print(f"  [red]row error[/red] {row_error}")
    console.print("[green]passed[/green]" if report.passed else "[red]failed[/red]")
    raise typer.Exit(0 if report.passed else 1)


@plugin_app.command()
def builtins(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List the built-in extractors (usable as steps and deployable on their own)."""
    from mixpeek_orchestration.extractors import BUILTIN_EXTRACTORS

    described = [e.describe() for e in BUILTIN_EXTRACTORS.values()]
    if as_json:
        typer.echo(json.dumps(described, indent=2))
        return
    table = Table("name", "model", "features", "service")
    for e in described:
        table.add_row(e["name"], e["model"], "\n".join(e["feature_uris"]), e["service"])
    console.print(table)


# -- talking to a running API -------------------------------------------------------------------

BaseUrl = Annotated[
    str | None,
    typer.Option("--base-url", help="API base URL (default $MIXPEEK_BASE_URL or the local stack)."),
]
ApiKey = Annotated[
    str | None, typer.Option("--api-key", help="API key (default $MIXPEEK_API_KEY).")
]
NamespaceOpt = Annotated[
    str | None,
    typer.Option("--namespace", "-n", help="Namespace id or name (default $MIXPEEK_NAMESPACE)."),
]


def _client(base_url: str | None, api_key: str | None, namespace: str | None):  # type: ignore[no-untyped-def]
    from mixpeek_orchestration.client import PlatformClient
    from mixpeek_orchestration.settings import load_settings

    settings = load_settings()
    key = api_key or (settings.api_key.get_secret_value() if settings.api_key else None)
    if not key:
        raise _fail("no API key: pass --api-key or set MIXPEEK_API_KEY", 2)
    return PlatformClient(
        base_url or settings.client_base_url, key, namespace=namespace or settings.namespace
    )


@contextmanager
def _api(base_url: str | None, api_key: str | None, namespace: str | None) -> Iterator[Any]:
    """A client of the API; its errors end the command with the detail (and violations)."""
    try:
        with _client(base_url, api_key, namespace) as client:
            yield client
    except MixpeekError as exc:
        raise _api_error(exc) from None


def _api_error(exc: MixpeekError) -> typer.Exit:
    violations = exc.fields.get("violations") or []
    errors = exc.fields.get("validation_errors") or exc.fields.get("errors") or []
    err_console.print(f"[red]error:[/red] {exc.detail}")
    if violations:
        err_console.print(_violations_table(violations))
    for error in errors:
        err_console.print(f"  {error.get('field')}: {error.get('message')}")
    return typer.Exit(1)


def _upload(path: Path, client, *, version: str | None, message: str, auto_bump: bool) -> dict:  # type: ignore[no-untyped-def]
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    from mixpeek_orchestration.plugins.validation import as_archive, check_plugin_path

    check = check_plugin_path(path)
    if not check.passed:
        err_console.print(f"[red]{check.detail}[/red] (checked locally; nothing was uploaded)")
        if check.violations:
            err_console.print(_violations_table([v.model_dump() for v in check.violations]))
        for error in check.errors:
            err_console.print(f"  {error.get('field')}: {error.get('message')}")
        raise typer.Exit(1)
    description = check.description or {}
    name = description["name"]
    if version is None:
        version = (
            client.next_version(name, description["version"])
            if auto_bump
            else description["version"]
        )
    with as_archive(path) as archive:
        size = archive.stat().st_size
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            console=console,
            transient=True,
        ) as bar:
            task = bar.add_task(f"uploading {name} {version}", total=size)
            return client.publish_archive(  # type: ignore[no-any-return]
                archive,
                name=name,
                version=version,
                message=message,
                progress=lambda n: bar.advance(task, n),
            )


def _print_published(result: dict) -> None:  # type: ignore[type-arg]
    verb = "already registered" if result.get("already_registered") else "published"
    console.print(
        f"[green]{verb}[/green] {result['plugin_id']} (sha256 {result['sha256'][:12]}...)"
    )
    for uri in result.get("feature_uris", []):
        console.print(f"  feature {uri}")
    for warning in result.get("violations", []):
        console.print(
            f"  [yellow]warning[/yellow] {warning['file']}:{warning['line']} {warning['message']}"
        )


@plugin_app.command()
def publish(
    path: Annotated[Path, typer.Argument(help="Plugin directory or zip.")] = Path("."),
    message: Annotated[str, typer.Option("--message", "-m")] = "",
    base_url: BaseUrl = None,
    api_key: ApiKey = None,
    namespace: NamespaceOpt = None,
) -> None:
    """Validate locally, upload (with progress) and confirm the manifest's version."""
    with _api(base_url, api_key, namespace) as client:
        _print_published(_upload(path, client, version=None, message=message, auto_bump=False))


@plugin_app.command()
def push(
    path: Annotated[Path, typer.Argument(help="Plugin directory or zip.")] = Path("."),
    version: Annotated[
        str | None, typer.Option("--version", help="Default: latest + patch.")
    ] = None,
    message: Annotated[str, typer.Option("--message", "-m")] = "",
    base_url: BaseUrl = None,
    api_key: ApiKey = None,
    namespace: NamespaceOpt = None,
) -> None:
    """Publish a new version; the patch version is bumped when --version is omitted."""
    with _api(base_url, api_key, namespace) as client:
        _print_published(_upload(path, client, version=version, message=message, auto_bump=True))


@plugin_app.command("list")
def list_plugins(
    as_json: Annotated[bool, typer.Option("--json")] = False,
    base_url: BaseUrl = None,
    api_key: ApiKey = None,
    namespace: NamespaceOpt = None,
) -> None:
    """Plugins (every version) in the namespace."""
    with _api(base_url, api_key, namespace) as client:
        plugins = client.list_plugins()
    if as_json:
        typer.echo(json.dumps(plugins, indent=2))
        return
    table = Table("plugin_id", "version", "active", "status", "features", "published")
    for p in plugins:
        table.add_row(
            p["plugin_id"],
            p["version"],
            "*" if p["is_active"] else "",
            p["status"],
            "\n".join(p["feature_uris"]),
            p["created_at"][:19],
        )
    console.print(table)


@plugin_app.command()
def pull(
    name: Annotated[str, typer.Argument(help="Plugin name.")],
    version: Annotated[
        str | None, typer.Option("--version", help="Default: the active version.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Directory to create (default ./NAME).")
    ] = None,
    base_url: BaseUrl = None,
    api_key: ApiKey = None,
    namespace: NamespaceOpt = None,
) -> None:
    """Download a version's sources into a directory (through the archive gate)."""
    import hashlib
    import shutil
    import tempfile

    from mixpeek_orchestration.plugins.archive import open_plugin_archive
    from mixpeek_orchestration.sdk._manifest import plugin_id_for

    target = out or Path(name)
    if target.exists():
        raise _fail(f"{target} already exists")
    with _api(base_url, api_key, namespace) as client:
        versions = client.versions(name)
        chosen = version or versions["active_version"]
        plugin_id = plugin_id_for(name, chosen)
        with tempfile.TemporaryDirectory() as tmp:
            archive = Path(tmp) / "source.zip"
            expected = client.download_source(plugin_id, archive)
            actual = hashlib.sha256(archive.read_bytes()).hexdigest()
            if expected and expected != actual:
                raise _fail(f"downloaded archive sha256 {actual} does not match {expected}")
            with open_plugin_archive(archive) as extracted:
                shutil.copytree(extracted.root, target)
    console.print(f"pulled {plugin_id} into {target}")


@plugin_app.command()
def log(
    name: Annotated[str, typer.Argument(help="Plugin name.")],
    base_url: BaseUrl = None,
    api_key: ApiKey = None,
    namespace: NamespaceOpt = None,
) -> None:
    """History of a plugin: publishes, rollbacks, deletions, with who and why."""
    with _api(base_url, api_key, namespace) as client:
        entries = client.log(name)
    table = Table("when", "action", "version", "who", "message")
    for e in entries:
        table.add_row(e["at"][:19], e["action"], e["version"] or "", e["actor"], e["message"])
    console.print(table)


@plugin_app.command()
def status(
    plugin: Annotated[str, typer.Argument(help="plugin_id, or a name for its active version.")],
    base_url: BaseUrl = None,
    api_key: ApiKey = None,
    namespace: NamespaceOpt = None,
) -> None:
    """Deployment status of a plugin version."""
    from mixpeek_orchestration.sdk._manifest import plugin_id_for

    with _api(base_url, api_key, namespace) as client:
        plugin_id = plugin
        if not re.search(r"_\d+_\d+_\d+$", plugin):
            plugin_id = plugin_id_for(plugin, client.versions(plugin)["active_version"])
        typer.echo(json.dumps(client.status(plugin_id), indent=2))


@plugin_app.command()
def rollback(
    name: Annotated[str, typer.Argument(help="Plugin name.")],
    version: Annotated[str, typer.Argument(help="Version to make active.")],
    message: Annotated[str, typer.Option("--message", "-m")] = "",
    base_url: BaseUrl = None,
    api_key: ApiKey = None,
    namespace: NamespaceOpt = None,
) -> None:
    """Make an earlier version the active one."""
    with _api(base_url, api_key, namespace) as client:
        result = client.rollback(name, version, message=message)
    console.print(f"{result['name']}: active version is now {result['active_version']}")


@plugin_app.command()
def diff(
    name: Annotated[str, typer.Argument(help="Plugin name.")],
    v1: Annotated[str, typer.Argument()],
    v2: Annotated[str, typer.Argument()],
    base_url: BaseUrl = None,
    api_key: ApiKey = None,
    namespace: NamespaceOpt = None,
) -> None:
    """Per-file unified diff of two versions."""
    with _api(base_url, api_key, namespace) as client:
        result = client.diff(name, v1, v2)
    if not result["files"]:
        console.print("no differences")
    for change in result["files"]:
        typer.echo(change["diff"], nl=False)


@plugin_app.command()
def delete(
    plugin_id: Annotated[str, typer.Argument(help="plugin_id, e.g. my_extractor_1_0_0")],
    base_url: BaseUrl = None,
    api_key: ApiKey = None,
    namespace: NamespaceOpt = None,
) -> None:
    """Delete a plugin version (its archive and record)."""
    with _api(base_url, api_key, namespace) as client:
        result = client.delete(plugin_id)
    typer.echo(json.dumps(result))
