"""Deleting a namespace: the one operation that reaches every store of a data plane.

A namespace owns plugins (versions, archives, uploads, history, step plans and their Serve
applications), buckets (objects, uploads, stored files), collections (documents, their vector
tables, ingestion batches) and retrievers. :meth:`NamespaceCascade.delete` removes all of it,
each repository deleting what it owns by the namespace's scope, and the namespace record last,
so a delete interrupted half-way can simply be repeated: the namespace still resolves until
everything under it is gone. Serve applications are removed by the deployment sensor (the API
never drives Ray), within a few seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mixpeek_orchestration.ingest.buckets import Buckets
    from mixpeek_orchestration.ingest.collections import Collections
    from mixpeek_orchestration.ingest.documents import Documents
    from mixpeek_orchestration.ingest.planner import IngestPlanner
    from mixpeek_orchestration.ingest.step_plans import StepPlans
    from mixpeek_orchestration.llm.usage import LLMUsage
    from mixpeek_orchestration.plugins.registry import PluginRegistry
    from mixpeek_orchestration.retrieval.retrievers import Retrievers
    from mixpeek_orchestration.serve.deployer import Deployer
    from mixpeek_orchestration.tenancy.accounts import Accounts, Caller, Namespace


@dataclass(frozen=True)
class NamespaceCascade:
    accounts: Accounts
    registry: PluginRegistry
    deployer: Deployer
    buckets: Buckets
    collections: Collections
    documents: Documents
    planner: IngestPlanner
    step_plans: StepPlans
    retrievers: Retrievers
    llm_usage: LLMUsage

    def delete(self, caller: Caller, ref: str) -> tuple[Namespace, dict[str, Any]]:
        """Delete namespace ``ref`` of the caller's organisation and everything in it.

        Returns:
            The deleted namespace and what was removed (counts, Serve applications queued for
            removal).
        """
        namespace = self.accounts.resolve_namespace(caller, ref)
        collection_ids = [c["collection_id"] for c in self.collections.list(namespace)]
        # collections and batches first: a batch still running sees its collection gone and
        # writes nothing more, so the documents deleted after it stay deleted
        removed = {
            "ingest_batches": self.planner.delete_namespace(namespace, collection_ids),
            "collections": self.collections.delete_namespace(namespace),
            "serve_applications": self.deployer.remove_namespace(namespace),
            "retrievers": self.retrievers.delete_namespace(namespace),
            "documents": self.documents.delete_namespace(namespace),
            "objects": self.buckets.delete_namespace(namespace),
            "step_plans": self.step_plans.delete_namespace(namespace.namespace_id),
            "plugin_versions": self.registry.delete_namespace_contents(namespace),
            "llm_usage": self.llm_usage.delete_namespace(namespace.namespace_id),
        }
        self.accounts.delete_namespace(caller, namespace.namespace_id)
        return namespace, removed
