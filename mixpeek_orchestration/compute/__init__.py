"""Adapters for the compute systems: a Ray cluster (batch) and Ray Serve on it (realtime)."""

from mixpeek_orchestration.compute.ray_cluster import RayCluster as RayCluster
from mixpeek_orchestration.compute.serve import ServeCluster as ServeCluster

__all__ = ["RayCluster", "ServeCluster"]
