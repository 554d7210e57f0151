"""A deterministic 8-d embedding from a hash of the NFKC-normalised text."""

import base64
import hashlib
import io
import pathlib
import unicodedata

from PIL import Image

from mixpeek_orchestration.sdk import current_context

HERE = pathlib.Path(__file__).parent
VOCABULARY = (HERE / "vocabulary.txt").read_text().split()


def embed_text(text):
    normalized = unicodedata.normalize("NFKC", text).casefold()
    digest = hashlib.sha256(normalized.encode()).digest()
    vector = [b / 255.0 for b in digest[:8]]
    return normalized, vector


def thumbnail_bytes(text):
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), (len(text) % 255, 0, 0)).save(buffer, format="PNG")
    return buffer.getvalue()


class Embed:
    def __init__(self, config=None, progress_actor=None):
        scratch = pathlib.Path(current_context().scratch_dir) / "benign"
        scratch.mkdir(parents=True, exist_ok=True)
        (scratch / "vocabulary.b64").write_text(
            base64.b64encode(" ".join(VOCABULARY).encode()).decode()
        )
        self.known = set(
            base64.b64decode((scratch / "vocabulary.b64").read_text()).decode().split()
        )

    def __call__(self, batch):
        results = [embed_text(text) for text in batch["text"]]
        batch["normalized"] = [r[0] for r in results]
        batch["benign_embedding"] = [r[1] for r in results]
        batch["png_bytes"] = [len(thumbnail_bytes(text)) for text in batch["text"]]
        return batch
