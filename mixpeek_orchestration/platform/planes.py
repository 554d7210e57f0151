"""Each dedicated tenant's :class:`Platform`, built from the control plane's settings with the
tenant's data-plane endpoints put over them (:class:`~mixpeek_orchestration.tenancy.planes.DataPlane`).

Example:
    >>> Planes(control).for_org(org_id).settings.mongo_database
    'acme'
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from mixpeek_orchestration.tenancy.planes import parse_plane

if TYPE_CHECKING:
    from mixpeek_orchestration.platform.root import Platform

CONFIG_TTL_S = 5.0
"""How long a process trusts a tenant config it read; a change made with the admin CLI reaches
every API replica and sensor within this time."""


class Planes:
    """Each tenant's :class:`Platform`, built once per config and shared by every request of
    the process (so their clients and connection pools are reused)."""

    def __init__(self, control: Platform) -> None:
        self.control = control
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, dict[str, Any], Platform]] = {}

    def get(self, tenant: str | None) -> Platform:
        """The data plane of ``tenant``; the control (shared) plane for ``None``."""
        if tenant is None:
            return self.control
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(tenant)
        if cached is not None and now - cached[0] < CONFIG_TTL_S:
            return cached[2]
        raw = self.control.tenants.config(tenant)
        if cached is not None and cached[1] == raw:
            platform = cached[2]
        else:
            from mixpeek_orchestration.platform.root import Platform

            settings = parse_plane(raw).settings_over(self.control.settings, tenant)
            # the previous one is left to requests still holding it (closing it could cut
            # them off); its clients go with it once nothing refers to it
            platform = Platform(settings, tenant=tenant)
        with self._lock:
            self._cache[tenant] = (now, raw, platform)
        return platform

    def for_org(self, org_id: str) -> Platform:
        return self.get(self.control.accounts.tenant_of(org_id))

    def all(self) -> Iterator[Platform]:
        """The shared plane, then every dedicated one (a sensor's walk over all of them)."""
        yield self.control
        for name in self.control.tenants.names():
            yield self.get(name)

    def close(self) -> None:
        with self._lock:
            cached, self._cache = list(self._cache.values()), {}
        for _, _, platform in cached:
            platform.close()
