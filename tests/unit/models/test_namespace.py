"""Namespace model sources: names and formats are checked before anything is stored."""

from __future__ import annotations

from pathlib import Path

import pytest

from mixpeek_orchestration.errors import MixpeekError
from mixpeek_orchestration.models.namespace import NamespaceModelRegistry
from mixpeek_orchestration.storage.objects import LocalObjectStore


def test_model_names_and_formats_are_checked(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "objects", signing_key=b"k", public_url="http://api")
    registry = NamespaceModelRegistry(store, "o/n/models", tmp_path / "cache")
    (tmp_path / "m.pkl").write_bytes(b"x")
    with pytest.raises(MixpeekError, match="safetensors"):
        registry.register("m", tmp_path / "m.pkl")
    with pytest.raises(MixpeekError, match="Invalid model name"):
        registry.register("../evil", tmp_path / "m.pkl")
