"""Tenancy: organisations, API keys, namespaces (and, later, per-tenant data planes)."""

from mixpeek_orchestration.tenancy.accounts import Accounts as Accounts
from mixpeek_orchestration.tenancy.accounts import Caller as Caller
from mixpeek_orchestration.tenancy.accounts import Namespace as Namespace

__all__ = ["Accounts", "Caller", "Namespace"]
