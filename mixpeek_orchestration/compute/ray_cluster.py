"""Ray cluster adapter: connect as a driver, check health, run Ray Data jobs.

``ray`` is imported only inside the methods that need it, so importing the platform (or loading
the Dagster code location) never starts or imports Ray.

Example:
    >>> cluster = RayCluster("127.0.0.1:6379", dashboard_url="http://127.0.0.1:8265")
    >>> cluster.health().status
    'ok'
    >>> cluster.run_smoke_job(rows=1000)["rows"]
    1000
"""

from __future__ import annotations

import socket
import time
from typing import Any

import httpx

from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.health import ComponentHealth

RAY_NAMESPACE = "mixpeek"


def split_host_port(address: str) -> tuple[str, int]:
    host, _, port = address.removeprefix("ray://").rpartition(":")
    return host, int(port)


def tcp_reachable(host: str, port: int, *, timeout_s: float = 2.0) -> None:
    """Open and close a TCP connection; raises ``OSError`` naming the address on failure."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return
    except OSError as exc:
        raise OSError(f"cannot connect to {host}:{port}: {exc.strerror or exc}") from exc


class RayCluster:
    """A Ray cluster reached at ``address`` (its GCS ``host:port`` or a ``ray://`` URL).

    Args:
        address: where drivers connect.
        dashboard_url: the cluster's dashboard, used for health when known.
    """

    def __init__(self, address: str, *, dashboard_url: str | None = None) -> None:
        self.address = address
        self.dashboard_url = dashboard_url

    def health(self) -> ComponentHealth:
        host, port = split_host_port(self.address)
        tcp_reachable(host, port)
        if self.dashboard_url:
            response = httpx.get(f"{self.dashboard_url}/api/gcs_healthz", timeout=3.0)
            if response.status_code != 200:
                return ComponentHealth.error(f"GCS health answered HTTP {response.status_code}")
            return ComponentHealth.ok(f"Ray GCS at {self.address}, dashboard {self.dashboard_url}")
        return ComponentHealth.ok(f"Ray GCS at {self.address} (port open)")

    def connect(self) -> None:
        """Connect this process to the cluster as a driver (idempotent)."""
        import ray

        if ray.is_initialized():
            return
        try:
            ray.init(
                address=self.address,
                namespace=RAY_NAMESPACE,
                log_to_driver=False,
                configure_logging=False,
            )
        except Exception as exc:
            raise MixpeekError(
                ErrorCode.COMPONENT_UNAVAILABLE,
                f"Cannot connect to the Ray cluster at {self.address}: {exc}",
                component="ray",
            ) from exc

    def cluster_resources(self) -> dict[str, float]:
        import ray

        self.connect()
        return dict(ray.cluster_resources())

    def run_smoke_job(self, *, rows: int = 10_000, batch_size: int = 1_000) -> dict[str, Any]:
        """Run a small Ray Data pipeline on the cluster and report what it did.

        Squares ``rows`` integers in ``map_batches`` stages and sums them, which exercises
        scheduling, the object store and a driver round trip without any model.
        """
        import ray

        self.connect()
        start = time.perf_counter()
        dataset = ray.data.range(rows, override_num_blocks=4).map_batches(
            _square_batch, batch_size=batch_size, batch_format="pandas"
        )
        total = 0
        count = 0
        for batch in dataset.iter_batches(batch_size=batch_size, batch_format="pandas"):
            total += int(batch["square"].sum())
            count += len(batch)
        elapsed = time.perf_counter() - start
        expected = sum(i * i for i in range(rows))
        if count != rows or total != expected:
            raise MixpeekError(
                ErrorCode.STACK_ERROR,
                f"Ray Data smoke job returned {count} rows summing to {total}; "
                f"expected {rows} rows summing to {expected}",
            )
        return {
            "rows": count,
            "sum_of_squares": total,
            "duration_s": round(elapsed, 3),
            "rows_per_s": round(count / elapsed, 1) if elapsed else None,
            "cluster_cpus": ray.cluster_resources().get("CPU", 0.0),
            "nodes": len([n for n in ray.nodes() if n.get("Alive")]),
        }


def _square_batch(batch: Any) -> Any:
    batch["square"] = batch["id"] * batch["id"]
    return batch
