"""The code location follows the platform: reloaded when its collections, buckets, plugin
versions or namespaces change.

``mixpeek up`` runs one ``dagster code-server start`` that the webserver and the daemon both
connect to (``grpc_server`` in the workspace), with its address in ``MIXPEEK_DAGSTER_CODE_SERVER``.
The ``platform_state_sensor`` reads the platform's state every tick; when its fingerprint is not
the one the definitions were built from, it asks that code server to reload (``ReloadCode``:
a fresh process builds the definitions from the new state). Both the webserver and the daemon
watch the server's id and pick up the new definitions within a second, so a new collection is
in the UI, and its objects are ingested, a few seconds after it was created, with nothing
restarted. Without a code server (``dagster dev -w workspace.yaml``) the sensor says what
changed and that the location wants a reload (the UI's "Reload" button).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from typing import Any

from dagster import DefaultSensorStatus, SensorEvaluationContext, SkipReason, sensor

from plugin_assets.resources import PlatformResource
from plugin_assets.state import PlatformState, read_state

CODE_SERVER_ENV = "MIXPEEK_DAGSTER_CODE_SERVER"
RELOAD_TIMEOUT_S = 300
RETRY_AFTER_S = 60.0  # a reload that did not take (this process still runs) is asked again
_asked_at: float | None = None


def request_reload(address: str) -> None:
    """Ask the code server at ``host:port`` to reload, in the background: the reply comes once
    the new process has loaded, by which time this one is being shut down."""
    from dagster._grpc.client import DagsterGrpcClient

    host, _, port = address.rpartition(":")

    def reload() -> None:
        # this process is usually replaced before the reply comes
        with contextlib.suppress(Exception):
            DagsterGrpcClient(port=int(port), host=host or "localhost").reload_code(
                timeout=RELOAD_TIMEOUT_S
            )

    threading.Thread(target=reload, name="mixpeek-reload", daemon=True).start()


def platform_state_sensor(state: PlatformState) -> Any:
    """Reload the code location when the platform's state is not ``state`` any more."""

    @sensor(
        minimum_interval_seconds=5,  # the daemon looks at its sensors every 5 s anyway
        default_status=DefaultSensorStatus.RUNNING,
        description="Collections, buckets, plugin versions or namespaces changed -> the code "
        "location is reloaded, so its assets are the platform's as it is now.",
    )
    def platform_state_sensor(
        context: SensorEvaluationContext, platform: PlatformResource
    ) -> SkipReason:
        global _asked_at
        current = read_state(platform.get_platform())
        if current.fingerprint == state.fingerprint:
            return SkipReason(f"definitions are current (state {state.fingerprint})")
        change = describe_change(state, current)
        address = os.environ.get(CODE_SERVER_ENV)
        if not address:
            return SkipReason(f"{change}: reload the code location to see it")
        if _asked_at is not None and time.monotonic() - _asked_at < RETRY_AFTER_S:
            return SkipReason(f"{change}: reload under way")
        _asked_at = time.monotonic()
        context.log.info("%s: reloading the code location at %s", change, address)
        request_reload(address)
        return SkipReason(f"{change}: reloading ({state.fingerprint} -> {current.fingerprint})")

    return platform_state_sensor


def describe_change(old: PlatformState, new: PlatformState) -> str:
    """What differs between two states, in a few words (``+2 collections, -1 bucket``)."""
    parts = []
    for kind, a, b in (
        ("namespaces", old.namespaces, new.namespaces),
        ("buckets", old.buckets, new.buckets),
        ("plugin versions", old.versions, new.versions),
        ("collections", old.collections, new.collections),
    ):
        added, removed = len(set(b) - set(a)), len(set(a) - set(b))
        if added:
            parts.append(f"+{added} {kind}")
        if removed:
            parts.append(f"-{removed} {kind}")
    if new.available != old.available:
        parts.append("the metadata store " + ("answers" if new.available else "is unreachable"))
    return ", ".join(parts) or "the platform's state changed"
