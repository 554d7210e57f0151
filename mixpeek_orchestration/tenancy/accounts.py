"""Organisations, API keys and namespaces, in the metadata store.

* An organisation owns API keys and namespaces; every record the platform keeps carries its
  ``org_id`` and every query filters on it, so another organisation's ids answer 404.
* API keys (``mxp_sk_...``) are 256-bit random tokens; only their SHA-256 is stored (with a short
  prefix for display), so a leaked database does not leak keys.
* Namespaces (``ns_...``) partition an organisation's plugins, buckets and collections; callers
  may name them by id or by ``namespace_name``.

Example:
    >>> accounts = Accounts(platform.metadata)
    >>> org, key = accounts.create_organization("acme")
    >>> caller = accounts.authenticate(key)
    >>> ns = accounts.create_namespace(caller, "prod")
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.storage.ids import new_id, now

if TYPE_CHECKING:
    from mixpeek_orchestration.storage.metadata import MetadataStore

KEY_PREFIX = "mxp_sk_"
NAMESPACE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
ORG_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,99}$")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class Caller:
    """Who is calling: the organisation, the key used, and the tenant whose data plane serves
    the organisation (``None``: the shared plane)."""

    org_id: str
    org_name: str
    key_id: str
    key_prefix: str
    tenant: str | None = None


@dataclass(frozen=True)
class Namespace:
    namespace_id: str
    namespace_name: str
    org_id: str
    description: str
    created_at: datetime
    llm_budget_usd: float | None = None
    """What the namespace's LLM calls may cost in a calendar month (``None``: no limit)."""

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Namespace:
        return cls(
            doc["namespace_id"],
            doc["namespace_name"],
            doc["org_id"],
            doc.get("description", ""),
            doc["created_at"],
            doc.get("llm_budget_usd"),
        )


class Accounts:
    """Organisations, keys and namespaces over the metadata store."""

    def __init__(self, metadata: MetadataStore) -> None:
        self.metadata = metadata
        self.orgs = metadata.collection("organizations")
        self.keys = metadata.collection("api_keys")
        self.namespaces = metadata.collection("namespaces")

    def ensure_indexes(self) -> None:
        self.orgs.create_index("org_id", unique=True)
        self.orgs.create_index("name", unique=True)
        self.keys.create_index("key_hash", unique=True)
        self.keys.create_index("org_id")
        self.namespaces.create_index("namespace_id", unique=True)
        self.namespaces.create_index([("org_id", 1), ("namespace_name", 1)], unique=True)

    # -- organisations and keys -----------------------------------------------------------------

    def org_names(self) -> dict[str, str]:
        """Every organisation's name by id."""
        return {
            o["org_id"]: o["name"] for o in self.orgs.find({}, {"_id": 0, "org_id": 1, "name": 1})
        }

    def every_namespace(self) -> list[Namespace]:
        """Every namespace of every organisation."""
        return [Namespace.from_doc(d) for d in self.namespaces.find({}, {"_id": 0})]

    def create_organization(self, name: str) -> tuple[str, str]:
        """Create an organisation (or reuse one of that name) and a new API key for it.

        Returns:
            ``(org_id, api_key)``; the key is shown once and only its hash is stored.
        """
        if not ORG_NAME.fullmatch(name):
            raise MixpeekError(
                ErrorCode.INVALID_REQUEST, f"Invalid organisation name {name!r}", field="org"
            )
        existing = self.orgs.find_one({"name": name})
        if existing is None:
            org_id = new_id("org")
            self.orgs.insert_one({"org_id": org_id, "name": name, "created_at": now()})
        else:
            org_id = existing["org_id"]
        return org_id, self.create_key(org_id)

    def create_key(self, org_id: str, *, name: str = "default") -> str:
        if self.orgs.find_one({"org_id": org_id}) is None:
            raise MixpeekError(ErrorCode.NOT_FOUND, f"Organisation {org_id!r} not found")
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        self.keys.insert_one(
            {
                "key_id": new_id("key"),
                "key_hash": hash_key(key),
                "key_prefix": key[: len(KEY_PREFIX) + 6],
                "org_id": org_id,
                "name": name,
                "created_at": now(),
                "revoked_at": None,
            }
        )
        return key

    def org_id_of(self, ref: str) -> str:
        """An organisation's id from its id or name; 404 otherwise."""
        org = self.orgs.find_one({"$or": [{"org_id": ref}, {"name": ref}]})
        if org is None:
            raise MixpeekError(ErrorCode.NOT_FOUND, f"Organisation {ref!r} not found", field="org")
        return str(org["org_id"])

    def tenant_of(self, org_id: str) -> str | None:
        """The tenant whose data plane serves ``org_id`` (``None``: the shared plane)."""
        org = self.orgs.find_one({"org_id": org_id}, {"tenant": 1})
        return (org or {}).get("tenant")

    def route_orgs(self, org_ids: list[str], tenant: str | None) -> None:
        """Route organisations to ``tenant``'s data plane (``None``: the shared one)."""
        if org_ids:
            self.orgs.update_many({"org_id": {"$in": org_ids}}, {"$set": {"tenant": tenant}})

    def orgs_of_tenant(self, tenant: str) -> list[str]:
        return [o["org_id"] for o in self.orgs.find({"tenant": tenant}, {"org_id": 1})]

    def revoke_key(self, org_id: str, key_prefix: str) -> int:
        result = self.keys.update_many(
            {"org_id": org_id, "key_prefix": key_prefix, "revoked_at": None},
            {"$set": {"revoked_at": now()}},
        )
        return result.modified_count

    def authenticate(self, key: str | None) -> Caller:
        """Resolve a bearer key to its organisation; ``unauthorized`` when unknown or revoked."""
        if not key:
            raise MixpeekError(
                ErrorCode.UNAUTHORIZED, "Missing API key: send Authorization: Bearer <key>"
            )
        return self.caller_of(hash_key(key))

    def caller_of(self, key_hash: str) -> Caller:
        """The organisation of the key with this hash; ``unauthorized`` when unknown or revoked."""
        record = self.keys.find_one({"key_hash": key_hash, "revoked_at": None})
        if record is None:
            raise MixpeekError(ErrorCode.UNAUTHORIZED, "Invalid or revoked API key")
        org = self.orgs.find_one({"org_id": record["org_id"]})
        if org is None:
            raise MixpeekError(ErrorCode.UNAUTHORIZED, "The key's organisation no longer exists")
        return Caller(
            org["org_id"], org["name"], record["key_id"], record["key_prefix"], org.get("tenant")
        )

    # -- namespaces -----------------------------------------------------------------------------

    def _check_name_free(self, caller: Caller, name: str) -> None:
        if not NAMESPACE_NAME.fullmatch(name):
            raise MixpeekError(
                ErrorCode.INVALID_REQUEST,
                f"Invalid namespace_name {name!r}: letters, digits, '_', '-', '.' (max 63)",
                field="namespace_name",
            )
        if self.namespaces.find_one({"org_id": caller.org_id, "namespace_name": name}):
            raise MixpeekError(
                ErrorCode.CONFLICT, f"Namespace {name!r} already exists", field="namespace_name"
            )

    def create_namespace(self, caller: Caller, name: str, *, description: str = "") -> Namespace:
        self._check_name_free(caller, name)
        doc = {
            "namespace_id": new_id("ns"),
            "namespace_name": name,
            "org_id": caller.org_id,
            "description": description,
            "created_at": now(),
        }
        self.namespaces.insert_one(doc)
        return Namespace.from_doc(doc)

    def namespaces_of(self, org_id: str) -> list[Namespace]:
        return [Namespace.from_doc(d) for d in self.namespaces.find({"org_id": org_id}, {"_id": 0})]

    def list_namespaces(self, caller: Caller) -> list[Namespace]:
        cursor = self.namespaces.find({"org_id": caller.org_id}).sort("created_at", 1)
        return [Namespace.from_doc(doc) for doc in cursor]

    def resolve_namespace(self, caller: Caller, ref: str | None) -> Namespace:
        """A namespace of the caller's organisation by id or name; 404 otherwise."""
        if not ref:
            raise MixpeekError(
                ErrorCode.INVALID_REQUEST,
                "No namespace: pass it in the path or the X-Namespace header",
                field="X-Namespace",
            )
        doc = self.namespaces.find_one(
            {"org_id": caller.org_id, "$or": [{"namespace_id": ref}, {"namespace_name": ref}]}
        )
        if doc is None:
            raise MixpeekError(ErrorCode.NOT_FOUND, f"Namespace {ref!r} not found", namespace=ref)
        return Namespace.from_doc(doc)

    def update_namespace(self, caller: Caller, ref: str, changes: dict[str, Any]) -> Namespace:
        """Change a namespace's ``namespace_name``, ``description`` and / or ``llm_budget_usd``
        (``None`` lifts the budget); what ``changes`` leaves out stays."""
        namespace = self.resolve_namespace(caller, ref)
        allowed = {"namespace_name", "description", "llm_budget_usd"}
        unknown = sorted(set(changes) - allowed)
        if unknown:
            raise MixpeekError(
                ErrorCode.INVALID_REQUEST,
                f"namespace fields {unknown} cannot be changed; changeable: {sorted(allowed)}",
            )
        budget = changes.get("llm_budget_usd")
        if budget is not None and (not isinstance(budget, (int, float)) or budget < 0):
            raise MixpeekError(
                ErrorCode.INVALID_REQUEST, "llm_budget_usd must be a number >= 0, or null",
                field="llm_budget_usd",
            )  # fmt: skip
        name = changes.get("namespace_name")
        if name == namespace.namespace_name:
            changes = {k: v for k, v in changes.items() if k != "namespace_name"}
        elif name is not None:
            self._check_name_free(caller, name)
        if changes:
            self.namespaces.update_one(
                {"org_id": caller.org_id, "namespace_id": namespace.namespace_id},
                {"$set": changes},
            )
        return self.resolve_namespace(caller, namespace.namespace_id)

    def llm_budget(self, namespace_id: str) -> float | None:
        doc = self.namespaces.find_one({"namespace_id": namespace_id}, {"llm_budget_usd": 1})
        return None if doc is None else doc.get("llm_budget_usd")

    def delete_namespace(self, caller: Caller, ref: str) -> Namespace:
        namespace = self.resolve_namespace(caller, ref)
        self.namespaces.delete_one(
            {"org_id": caller.org_id, "namespace_id": namespace.namespace_id}
        )
        return namespace
