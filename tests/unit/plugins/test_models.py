"""What an uploaded model's confirm checks: its name, its format, and the file itself."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from mixpeek_orchestration.errors import MixpeekError
from mixpeek_orchestration.plugins.models import (
    check_format,
    check_model_name,
    validate_model_file,
)


@pytest.mark.parametrize("fmt", ["pytorch", "PyTorch", "pickle", "pt", "bin", "joblib"])
def test_pickle_based_formats_are_refused_saying_why(fmt: str) -> None:
    with pytest.raises(MixpeekError, match="pickle-based"):
        check_format(fmt)


def test_the_supported_formats_and_names() -> None:
    assert check_format("sentence-transformers") == "sentence_transformers"
    assert check_format("ONNX") == "onnx"
    with pytest.raises(MixpeekError, match="unsupported model_format"):
        check_format("gguf")
    assert check_model_name("my_model_2") == "my_model_2"
    for bad in ("ab", "2abc", "a-b-c", "x" * 65):
        with pytest.raises(MixpeekError, match="invalid model name"):
            check_model_name(bad)


def test_a_safetensors_file_is_checked_by_its_header(tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    good = tmp_path / "good.safetensors"
    save_file({"w": np.ones((2, 2), np.float32)}, str(good))
    assert validate_model_file(good, "safetensors", tmp_path / "x") == []
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x80\x04 a pickle pretending")
    [why] = validate_model_file(bad, "safetensors", tmp_path / "y")
    assert "safetensors" in why


def test_a_model_directory_needs_safetensors_weights_and_no_pickles(tmp_path: Path) -> None:
    def zipped(name: str, files: dict[str, bytes]) -> Path:
        path = tmp_path / f"{name}.zip"
        with zipfile.ZipFile(path, "w") as archive:
            for entry, data in files.items():
                archive.writestr(f"m/{entry}", data)
        return path

    from safetensors.numpy import save

    weights = save({"w": np.ones(3, np.float32)})
    ok = zipped("ok", {"modules.json": b"[]", "model.safetensors": weights})
    assert validate_model_file(ok, "sentence_transformers", tmp_path / "ok") == []
    pickled = zipped("pickled", {"config.json": b"{}", "pytorch_model.bin": b"\x80\x04"})
    [why] = validate_model_file(pickled, "sentence_transformers", tmp_path / "p")
    assert "pickled weights" in why and "pytorch_model.bin" in why
    bare = zipped("bare", {"config.json": b"{}"})
    assert (
        "no .safetensors" in validate_model_file(bare, "sentence_transformers", tmp_path / "b")[0]
    )
    escape = tmp_path / "escape.zip"
    with zipfile.ZipFile(escape, "w") as archive:
        archive.writestr("../evil.safetensors", weights)
    assert validate_model_file(escape, "sentence_transformers", tmp_path / "e")
    assert not (tmp_path / "evil.safetensors").exists()
