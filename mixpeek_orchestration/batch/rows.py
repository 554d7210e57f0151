"""Shaping input rows into the batch DataFrame processors receive (SPEC §3), and sample data.

Every batch has the base columns (``data``, ``document_id``, ``object_id``, ``blob_id``,
``blob_property``, ``blob_type``, ``collection_id``, ``feature_extractor_id``, ``mime_type``,
``size_bytes``) plus one column per field of the manifest's ``input_schema`` (so plugins that
read ``batch["text"]`` work). ``data`` holds the text itself for text blobs and a URL / path for
binary blobs, never raw bytes.
"""

from __future__ import annotations

import json
import mimetypes
import struct
import uuid
import wave
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mixpeek_orchestration.batch.steps import BASE_COLUMNS
from mixpeek_orchestration.errors import ErrorCode, MixpeekError

if TYPE_CHECKING:
    import pandas as pd

    from mixpeek_orchestration.sdk._manifest import PluginManifest

BLOB_MIME_DEFAULTS = {
    "text": "text/plain",
    "image": "image/png",
    "video": "video/mp4",
    "audio": "audio/wav",
    "pdf": "application/pdf",
    "document": "application/pdf",
}
# input_schema field names that take a binary blob's URL
URL_FIELDS = frozenset(
    {"url", "uri", "path", "file", "file_url", "image", "image_url", "video", "video_url",
     "audio", "audio_url", "pdf", "pdf_url", "document", "document_url", "blob_url", "data"}
)  # fmt: skip
TEXT_FIELDS = frozenset(
    {"text", "content", "body", "query", "sentence", "passage", "document_text"}
)


def blob_type_for_mime(mime_type: str) -> str:
    """The blob type of a file by its MIME type (JSON is ``json``, a kind of text)."""
    mime = mime_type.lower()
    if mime == "application/json" or mime.endswith("+json"):
        return "json"
    if mime.startswith("text/"):
        return "text"
    if mime == "application/pdf":
        return "pdf"
    for kind in ("image", "video", "audio"):
        if mime.startswith(kind + "/"):
            return kind
    return "document"


TEXT_BLOB_TYPES = frozenset({"text", "json"})
"""Blob types whose ``data`` is the text itself (the others carry a URL or a path)."""


@dataclass(frozen=True)
class BlobRow:
    """One blob to process: a row of the batch before its input-field columns are added.

    ``data`` is the text of a text / JSON blob, or a URL (or staged local path) of a binary one;
    ``values`` holds input-field values given explicitly (sample files may name them).
    """

    data: Any
    document_id: str
    object_id: str
    blob_id: str
    blob_property: str
    blob_type: str
    collection_id: str
    feature_extractor_id: str
    mime_type: str
    size_bytes: int = 0
    values: Mapping[str, Any] = field(default_factory=dict)


def input_fields(input_schema: Mapping[str, Any] | None, mappings: Mapping[str, str]) -> list[str]:
    """The input-schema fields a plugin reads (its manifest's ``input_schema`` properties), or
    the first mapped field (``text`` when none) for a plugin that declares none."""
    properties = list((input_schema or {}).get("properties", {}))
    return properties or [next(iter(mappings), "text")]


def build_batch(
    blobs: Iterable[BlobRow],
    fields: Sequence[str],
    *,
    mappings: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """The batch DataFrame (SPEC §3): the base columns, then one column per input field.

    An input field takes the blob's ``data`` when the collection maps it to the blob's
    property, when it is a text field (``text``, ``content``...) or the first field and the blob
    is text, or when it is a URL field (``url``, ``image``...) and the blob is binary; an
    explicit value wins, and any other field is ``None``. The one builder of these rows, for
    ingestion and ``mixpeek plugin test`` alike.
    """
    import pandas as pd

    mappings = mappings or {}
    rows = []
    for blob in blobs:
        row: dict[str, Any] = {column: getattr(blob, column) for column in BASE_COLUMNS}
        is_text = blob.blob_type in TEXT_BLOB_TYPES
        for name in fields:
            if name in row:
                continue
            if name in blob.values:
                row[name] = blob.values[name]
            elif (
                mappings.get(name) == blob.blob_property
                or (is_text and (name in TEXT_FIELDS or name == fields[0]))
                or (not is_text and name in URL_FIELDS)
            ):
                row[name] = blob.data
            else:
                row[name] = None
        rows.append(row)
    frame = pd.DataFrame(rows)
    for column in BASE_COLUMNS:
        if column not in frame.columns:
            frame[column] = None
    return frame


def normalize_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """Fill ``data`` / ``mime_type`` / ``blob_type`` for a record given by its input fields."""
    row = dict(record)
    if "data" not in row:
        text_field = next((f for f in TEXT_FIELDS if isinstance(row.get(f), str)), None)
        url_field = next((f for f in URL_FIELDS if isinstance(row.get(f), str)), None)
        if text_field is not None:
            row["data"] = row[text_field]
            row.setdefault("mime_type", "text/plain")
        elif url_field is not None:
            row["data"] = row[url_field]
        else:
            raise MixpeekError(
                ErrorCode.INVALID_REQUEST,
                f"sample record {sorted(row)} has no 'data' and no text / URL field",
            )
    if "mime_type" not in row:
        guessed, _ = mimetypes.guess_type(str(row["data"]).split("?")[0])
        row["mime_type"] = guessed or "text/plain"
    row.setdefault("blob_type", blob_type_for_mime(row["mime_type"]))
    return row


def sample_batch(
    records: Iterable[Mapping[str, Any]],
    manifest: PluginManifest,
    *,
    collection_id: str = "col_local",
    feature_extractor_id: str | None = None,
) -> pd.DataFrame:
    """The batch a plugin test runs: sample records (a text, a file path or URL, and any
    input-field values) as blobs, through :func:`build_batch` exactly as ingestion does."""
    fields = input_fields(manifest.describe()["input_schema"], {})
    blobs = []
    for record in records:
        row = normalize_record(record)
        is_text = row["blob_type"] in TEXT_BLOB_TYPES
        blobs.append(
            BlobRow(
                data=row["data"],
                document_id=row.get("document_id") or f"doc_{uuid.uuid4().hex[:16]}",
                object_id=row.get("object_id") or f"obj_{uuid.uuid4().hex[:12]}",
                blob_id=row.get("blob_id") or f"blob_{uuid.uuid4().hex[:12]}",
                blob_property=row.get("blob_property")
                or ("content" if is_text else row["blob_type"]),
                blob_type=row["blob_type"],
                collection_id=row.get("collection_id") or collection_id,
                feature_extractor_id=feature_extractor_id or manifest.plugin_id,
                mime_type=row["mime_type"],
                size_bytes=int(row.get("size_bytes") or (0 if is_text else _size(row["data"]))),
                values={k: v for k, v in record.items() if k in fields and k not in BASE_COLUMNS},
            )
        )
    return build_batch(blobs, fields)


def _size(data: Any) -> int:
    path = Path(str(data))
    try:
        return path.stat().st_size if path.is_file() else 0
    except OSError:
        return 0


def load_sample_file(path: Path) -> list[dict[str, Any]]:
    """Sample rows from a JSON array or JSON-lines file; relative file paths resolve beside it."""
    text = path.read_text()
    try:
        records = (
            json.loads(text)
            if text.lstrip().startswith("[")
            else [json.loads(line) for line in text.splitlines() if line.strip()]
        )
    except json.JSONDecodeError as exc:
        raise MixpeekError(
            ErrorCode.INVALID_REQUEST, f"{path}: not JSON / JSON lines: {exc}"
        ) from None
    out = []
    for record in records:
        if not isinstance(record, dict):
            raise MixpeekError(ErrorCode.INVALID_REQUEST, f"{path}: every sample must be an object")
        for key, value in record.items():
            if key in URL_FIELDS and isinstance(value, str) and "://" not in value:
                candidate = (path.parent / value).resolve()
                if candidate.exists():
                    record[key] = str(candidate)
        out.append(record)
    return out


SAMPLE_TEXTS = (
    "A golden retriever plays fetch on a sunny beach.",
    "Quarterly revenue grew twelve percent on strong cloud demand.",
    "Whisk the eggs with sugar until pale, then fold in the flour.",
    "The rover collected rock samples from the crater rim.",
)


def sample_records(manifest: PluginManifest, scratch_dir: Path) -> list[dict[str, Any]]:
    """A few realistic rows per supported input type, generated locally (no network)."""
    records: list[dict[str, Any]] = []
    scratch_dir.mkdir(parents=True, exist_ok=True)
    for blob_type in manifest.supported_input_types:
        if blob_type == "text":
            records += [{"data": t, "mime_type": "text/plain"} for t in SAMPLE_TEXTS]
        elif blob_type == "image":
            records += [
                {"data": str(p), "mime_type": "image/png"} for p in _sample_images(scratch_dir)
            ]
        elif blob_type == "audio":
            records.append({"data": str(_sample_wav(scratch_dir)), "mime_type": "audio/wav"})
        elif blob_type in ("pdf", "document"):
            records.append({"data": str(_sample_pdf(scratch_dir)), "mime_type": "application/pdf"})
        elif blob_type == "video":
            path = scratch_dir / "sample.mp4"
            path.write_bytes(b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom")
            records.append({"data": str(path), "mime_type": "video/mp4"})
    return records


def _sample_images(directory: Path) -> list[Path]:
    from PIL import Image, ImageDraw

    paths = []
    for name, colour, shape in (
        ("red_square", (220, 30, 30), "rect"),
        ("blue_circle", (30, 60, 220), "ellipse"),
    ):
        image = Image.new("RGB", (128, 128), (245, 245, 245))
        draw = ImageDraw.Draw(image)
        getattr(draw, "rectangle" if shape == "rect" else "ellipse")(
            (24, 24, 104, 104), fill=colour
        )
        path = directory / f"{name}.png"
        image.save(path)
        paths.append(path)
    return paths


def _sample_wav(directory: Path) -> Path:
    import math

    path = directory / "tone.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        frames = b"".join(
            struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / 16000)))
            for i in range(8000)
        )
        out.writeframes(frames)
    return path


def _sample_pdf(directory: Path) -> Path:
    path = directory / "sample.pdf"
    path.write_bytes(
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>"
        b"endobj\n3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
    )
    return path
