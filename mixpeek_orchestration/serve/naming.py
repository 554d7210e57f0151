"""Names of realtime deployments (namespaced, so tenants never collide)."""

from __future__ import annotations


def app_name(namespace_id: str, plugin_id: str) -> str:
    """The Serve application name of a plugin version: ``custom_plugin_{ns}_{plugin_id}``."""
    return f"custom_plugin_{namespace_id}_{plugin_id}"


def route_prefix(namespace_id: str, plugin_id: str) -> str:
    """``/inference/custom_plugin_{namespace}_{plugin_id}`` (SPEC §5)."""
    return f"/inference/{app_name(namespace_id, plugin_id)}"
