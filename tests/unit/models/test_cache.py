"""The offline model cache lays out bundled weights as a hub cache, for this installation."""

from __future__ import annotations

import os
from pathlib import Path

from mixpeek_orchestration.models.cache import BUNDLED_HUB_MODELS, prepare_model_cache


def test_links_into_another_installation_are_pointed_back_at_this_one(tmp_path: Path) -> None:
    home = prepare_model_cache(tmp_path)
    model = BUNDLED_HUB_MODELS[0]
    snapshot = next((home / "hub").glob("models--*/snapshots/*"))
    links = [p for p in snapshot.rglob("*") if p.is_symlink()]
    assert links and all(Path(os.readlink(p)).is_file() for p in links)
    # the cache was prepared by an installation that is gone (another venv, a CI clone)
    for link in links:
        link.unlink()
        link.symlink_to(tmp_path / "gone" / link.name)
    prepare_model_cache(tmp_path)
    source = model.source_dir()
    assert all(Path(os.readlink(p)).is_relative_to(source) for p in links)
    assert all(p.resolve().is_file() for p in links)
