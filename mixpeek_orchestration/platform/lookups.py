"""What every realtime call reads, answered from memory.

A realtime call authenticates its key, resolves its namespace and finds the plugin version it
calls: four reads of the metadata store, each a round trip and a thread hop, which together
cost more than the model's query. Each plane's :class:`Lookups` keeps those answers in
:class:`~mixpeek_orchestration.storage.refreshing.Refreshing` caches, reloaded every
``MIXPEEK_LOOKUP_REFRESH_S`` (0.5 s) while in use: a revoked key, a deleted namespace, an
undeploy, a rollback or a new serving version takes effect within that bound plus one reload,
in every API process. Each answer is keyed by what scopes it (the key's hash; the caller's
organisation and the namespace reference; the namespace and the plugin), so an answer read for
one organisation is never one another's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mixpeek_orchestration.plugins.records import PluginVersion
from mixpeek_orchestration.storage.refreshing import Refreshing
from mixpeek_orchestration.tenancy.accounts import Caller, Namespace

if TYPE_CHECKING:
    from mixpeek_orchestration.platform.root import Platform


class Lookups:
    def __init__(self, platform: Platform) -> None:
        every = platform.settings.lookup_refresh_s
        accounts, registry = platform.accounts, platform.registry
        self.callers: Refreshing[str, Caller] = Refreshing(
            accounts.caller_of, refresh_s=every, name="callers"
        )
        self.namespaces: Refreshing[tuple[Caller, str], Namespace] = Refreshing(
            lambda k: accounts.resolve_namespace(*k), refresh_s=every, name="namespaces"
        )
        self.versions: Refreshing[tuple[Namespace, str], PluginVersion] = Refreshing(
            lambda k: registry.get_version(*k), refresh_s=every, name="versions"
        )
        self.serving: Refreshing[tuple[Namespace, str], PluginVersion] = Refreshing(
            lambda k: registry.serving_version(*k), refresh_s=every, name="serving versions"
        )
        self.producers: Refreshing[tuple[Namespace, str], PluginVersion] = Refreshing(
            lambda k: registry.producer_of(*k), refresh_s=every, name="feature producers"
        )

    def forget_plugins(self, namespace_id: str) -> None:
        """At once, in this process: a deployment, rollback or removal made here."""
        for cache in (self.versions, self.serving, self.producers):
            cache.invalidate(lambda key: key[0].namespace_id == namespace_id)

    def forget_namespace(self, namespace_id: str) -> None:
        self.namespaces.invalidate(lambda key: key[1] == namespace_id)
        self.forget_plugins(namespace_id)
