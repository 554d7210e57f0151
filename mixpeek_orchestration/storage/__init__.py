"""Storage adapters: metadata (MongoDB wire protocol), objects (local directory / S3), vectors (LanceDB)."""

from mixpeek_orchestration.storage.metadata import MetadataStore as MetadataStore
from mixpeek_orchestration.storage.objects import LocalObjectStore as LocalObjectStore
from mixpeek_orchestration.storage.objects import ObjectStore as ObjectStore
from mixpeek_orchestration.storage.objects import S3ObjectStore as S3ObjectStore
from mixpeek_orchestration.storage.vectors import VectorStore as VectorStore

__all__ = ["LocalObjectStore", "MetadataStore", "ObjectStore", "S3ObjectStore", "VectorStore"]
