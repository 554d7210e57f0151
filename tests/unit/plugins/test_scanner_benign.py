"""Benign corpus: realistic plugin modules that must scan with ZERO errors (and no warnings).

If one of these starts failing, the scanner has grown a false positive that would reject
ordinary plugins; fix the rule, not the corpus.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mixpeek_orchestration.plugins.scanner import scan_directory, scan_source

SEED_MANIFEST = '''from pydantic import BaseModel, Field
from typing import List

class MyInput(BaseModel):
    text: str = Field(..., description="Input text")

class MyOutput(BaseModel):
    embedding: List[float] = Field(..., description="384-dim embedding")
    label: str

class MyParams(BaseModel):
    """User-configurable parameters for collections."""
    threshold: float = Field(default=0.5, ge=0, le=1)

metadata = {
    "feature_extractor_name": "my_extractor",
    "version": "1.0.0",
    "description": "My custom extractor",
    "category": "text",
}

input_schema = MyInput
output_schema = MyOutput
parameter_schema = MyParams
supported_input_types = ["text"]

# Define output features for vector indexing
features = [
    {
        "feature_name": "my_extractor_embedding",
        "feature_type": "embedding",
        "embedding_dim": 384,
        "distance_metric": "cosine",
    },
]
'''

SEED_CORE = '''from dataclasses import dataclass
import pandas as pd

@dataclass
class MyConfig:
    threshold: float = 0.5

class MyProcessor:
    def __init__(self, config: MyConfig, progress_actor=None):
        self.config = config
        self._model = None

    def _load_model(self):
        if self._model is None:
            # Load once, reuse for all batches
            from sentence_transformers import SentenceTransformer
            self._model = SentenceTransformer("all-MiniLM-L6-v2")

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        """Process batch. Framework handles batch sizing."""
        self._load_model()

        texts = batch["text"].fillna("").tolist()
        embeddings = self._model.encode(texts).tolist()

        batch["my_extractor_embedding"] = embeddings
        batch["label"] = ["positive" if e[0] > self.config.threshold else "negative" for e in embeddings]
        return batch
'''

SEED_PIPELINE = """from typing import Any, Dict, Optional
from engine.plugins.extractors.pipeline import (
    PipelineDefinition, ResourceType, RowCondition, StepDefinition, build_pipeline_steps
)
from .manifest import MyParams, metadata
from .processors.core import MyConfig, MyProcessor

def build_steps(
    extractor_request: Any,
    container: Optional[Any] = None,
    base_steps: Optional[list] = None,
    **kwargs
) -> Dict[str, Any]:
    params = MyParams(**(extractor_request.extractor_config.parameters or {}))

    steps = [
        StepDefinition(
            service_class=MyProcessor,
            resource_type=ResourceType.CPU,  # or GPU, API
            config=MyConfig(threshold=params.threshold),
            condition=RowCondition.IS_TEXT,
        ),
    ]

    pipeline = PipelineDefinition(name=metadata["feature_extractor_name"], version=metadata["version"], steps=steps)
    return {"steps": (base_steps or []) + build_pipeline_steps(pipeline), "prepare": lambda ds: ds}
"""

SEED_REALTIME = """from typing import Any, Dict

class RealtimeHandler:
    def __init__(self):
        self._model = None

    def predict(self, request: Dict[str, Any]) -> Dict[str, Any]:
        if self._model is None:
            from sentence_transformers import SentenceTransformer
            self._model = SentenceTransformer("all-MiniLM-L6-v2")

        text = request.get("text", "")
        embedding = self._model.encode([text])[0].tolist()
        return {"embedding": embedding, "label": "positive" if embedding[0] > 0.5 else "negative"}
"""

TEXT_EMBEDDER = '''"""Sentence-transformers text embedder with batching and normalisation."""
from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
import pandas as pd
from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

MODEL_NAME = os.environ.get("EMBEDDER_MODEL", "all-MiniLM-L6-v2")
CACHE_DIR = os.path.join(os.getenv("HF_HOME", "/tmp"), "models")


@dataclass
class EmbedConfig:
    model_name: str = MODEL_NAME
    batch_size: int = 32
    normalize: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


class TextEmbedder:
    def __init__(self, config: EmbedConfig, progress_actor: Optional[Any] = None) -> None:
        self.config = config
        self.progress_actor = progress_actor
        self._model: Optional[SentenceTransformer] = None
        self.device = "cuda" if os.environ.get("USE_GPU") == "1" else "cpu"

    @property
    def model(self) -> SentenceTransformer:
        if self._model is None:
            logger.info("loading %s on %s", self.config.model_name, self.device)
            self._model = SentenceTransformer(self.config.model_name, device=self.device)
            self._model.eval()
        return self._model

    def _normalise(self, vectors: np.ndarray) -> np.ndarray:
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.clip(norms, 1e-12, None)

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        texts = batch["text"].fillna("").astype(str).tolist()
        vectors = self.model.encode(texts, batch_size=self.config.batch_size, show_progress_bar=False)
        vectors = np.asarray(vectors, dtype=np.float32)
        if self.config.normalize:
            vectors = self._normalise(vectors)
        batch = batch.assign(text_embedding=list(vectors))
        batch["n_chunks"] = [math.ceil(len(t) / 512) for t in texts]
        return batch
'''

IMAGE_EMBEDDER = '''"""Image embedder: PIL + numpy + torch."""
from __future__ import annotations

from typing import List, Optional

import numpy as np
import torch
from PIL import Image

from .manifest import metadata


class ImageEncoder(torch.nn.Module):
    def __init__(self, dim: int = 512) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 16, kernel_size=3)
        self.head = torch.nn.Linear(16, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x).mean(dim=(2, 3))
        return torch.nn.functional.normalize(self.head(x), dim=-1)


class ImageEmbedder:
    def __init__(self, weights_path: Optional[str] = None, size: int = 224) -> None:
        self.size = size
        self.model = ImageEncoder()
        if weights_path:
            state = torch.load(weights_path, map_location="cpu", weights_only=True)
            self.model.load_state_dict(state)
        self.model.eval()
        if torch.cuda.is_available():
            self.model = self.model.cuda()
        self.name = metadata["feature_extractor_name"]

    def _prepare(self, url: str) -> torch.Tensor:
        image = Image.open(url).convert("RGB").resize((self.size, self.size))
        array = np.asarray(image, dtype=np.float32) / 255.0
        return torch.from_numpy(array).permute(2, 0, 1)

    @torch.no_grad()
    def embed(self, urls: List[str]) -> List[List[float]]:
        batch = torch.stack([self._prepare(u) for u in urls])
        with torch.inference_mode():
            out = self.model(batch)
        return out.cpu().numpy().tolist()
'''

ONNX_MODEL = """import numpy as np
import onnxruntime as ort

class OnnxClassifier:
    def __init__(self, path: str, threads: int = 1) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def predict(self, features: np.ndarray) -> np.ndarray:
        (logits,) = self.session.run(None, {self.input_name: features.astype(np.float32)})
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        return exp / exp.sum(axis=1, keepdims=True)
"""

TEXT_CLEANER = r'''"""Regex-heavy text cleaner."""
import re
import string
from functools import lru_cache
from typing import Iterable, List, Pattern

URL = re.compile(r"https?://\S+")
EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")
SPACES = re.compile(r"\s{2,}")
TEMPLATE = "{name}: {count} tokens"
PUNCT = str.maketrans("", "", string.punctuation)


@lru_cache(maxsize=1024)
def compile_terms(terms: tuple) -> Pattern[str]:
    return re.compile("|".join(re.escape(t) for t in terms), re.IGNORECASE)


def clean(text: str, stopwords: Iterable[str] = ()) -> str:
    text = text.replace("\u00a0", " ")
    text = URL.sub(" ", text)
    text = EMAIL.sub(" ", text)
    if stopwords:
        text = compile_terms(tuple(stopwords)).sub(" ", text)
    return SPACES.sub(" ", text).strip()


def tokens(text: str) -> List[str]:
    return [t for t in clean(text).translate(PUNCT).lower().split() if t]


def describe(name: str, text: str) -> str:
    return TEMPLATE.format(name=name, count=len(tokens(text))) + " (%d chars)" % len(text)
'''

API_PROCESSOR = '''"""Calls an external tagging API with bounded concurrency (no threads)."""
from __future__ import annotations

import json
import logging
import time
from typing import Any, Dict, List

import httpx
import pandas as pd
import requests

log = logging.getLogger(__name__)


class ApiTagger:
    def __init__(self, endpoint: str, api_key: str, max_connections: int = 4) -> None:
        self.endpoint = endpoint
        self.headers = {"Authorization": f"Bearer {api_key}"}
        self.limits = httpx.Limits(max_connections=max_connections)
        self.session = requests.Session()

    async def tag_async(self, texts: List[str]) -> List[Dict[str, Any]]:
        async with httpx.AsyncClient(limits=self.limits, timeout=30.0) as client:
            results = []
            for text in texts:
                response = await client.post(self.endpoint, json={"text": text}, headers=self.headers)
                response.raise_for_status()
                results.append(response.json())
            return results

    def tag(self, text: str, retries: int = 3) -> Dict[str, Any]:
        for attempt in range(retries):
            try:
                response = self.session.post(self.endpoint, data=json.dumps({"text": text}), timeout=30)
                response.raise_for_status()
                return response.json()
            except requests.RequestException as exc:
                log.warning("attempt %d failed: %s", attempt, exc)
                time.sleep(2 ** attempt)
        return {}

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        batch["tags"] = batch["text"].apply(lambda t: self.tag(t).get("tags", []))
        return batch
'''

PYDANTIC_MANIFEST = """from __future__ import annotations

from enum import Enum
from typing import Annotated, Dict, List, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Category(str, Enum):
    TEXT = "text"
    IMAGE = "image"


class Box(BaseModel):
    x: float = Field(ge=0)
    y: float = Field(ge=0)
    children: List["Box"] = Field(default_factory=list)


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["fast", "accurate", "very accurate"] = "fast"
    category: Category = Category.TEXT
    threshold: Annotated[float, Field(ge=0, le=1, description="score cutoff")] = 0.5
    labels: Optional[List[str]] = None
    weights: Dict[str, float] = Field(default_factory=dict)
    nested: Optional["Box"] = None
    vector: "list[float]" = Field(default_factory=list)
    either: Union[int, str] = 0

    @field_validator("labels")
    @classmethod
    def strip_labels(cls, value: Optional[List[str]]) -> Optional[List[str]]:
        return [v.strip() for v in value] if value else value


class Output(BaseModel):
    embedding: List[float]
    label: Optional[str] = None
    boxes: List[Box] = []


metadata = {"feature_extractor_name": "rich", "version": "2.1.0", "category": Category.TEXT.value}
"""

UTILITIES = """import copy
import hashlib
import json
import logging
import os
import uuid
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, Dict, List

logger = logging.getLogger(__name__)
WORKERS = os.cpu_count() or 1
DEBUG = "DEBUG" in os.environ
SETTINGS = {k: v for k, v in os.environ.items() if k.startswith("PLUGIN_")}


@dataclass
class Record:
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    tags: List[str] = field(default_factory=list)
    created: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    def key(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), default=str, sort_keys=True).encode()).hexdigest()


def path_for(name: str) -> str:
    root = os.environ.get("PLUGIN_DATA", os.path.join(os.sep, "tmp"))
    return os.path.join(root, os.path.basename(name))


def summarise(records: List[Record]) -> Dict[str, Any]:
    counts = Counter(t for r in records for t in r.tags)
    groups: Dict[str, List[str]] = defaultdict(list)
    for r in records:
        groups[r.tags[0] if r.tags else "none"].append(r.id)
    out = {"counts": dict(counts), "groups": copy.deepcopy(dict(groups)), "pid": os.getpid()}
    logger.debug("summary: %s", json.dumps(out))
    return out
"""

DATAFRAMES = """import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc


def enrich(df: pd.DataFrame) -> pd.DataFrame:
    df = df.assign(length=df["text"].str.len(), score=lambda d: d["length"] / d["length"].max())
    df["bucket"] = df["score"].apply(lambda s: "high" if s > 0.5 else "low")
    top = df.query("score > 0.5 and length < 1000")
    merged = pd.concat([df, top], ignore_index=True)
    if pd.api.types.is_numeric_dtype(merged["score"]):
        merged["score"] = merged["score"].astype("float32")
    return merged.groupby("bucket").agg({"score": "mean"}).reset_index()


def with_polars(rows: list) -> pl.DataFrame:
    frame = pl.DataFrame(rows)
    return frame.select(pl.col("text").str.len_chars().alias("n")).filter(pl.col("n") > 3)


def with_arrow(values: list) -> pa.Table:
    table = pa.table({"v": pa.array(values, type=pa.float32())})
    if pa.types.is_floating(table.schema.field("v").type):
        table = table.append_column("sq", pc.multiply(table["v"], table["v"]))
    return table


def to_numpy(df: pd.DataFrame) -> np.ndarray:
    return np.stack(df["embedding"].to_numpy()).astype(np.float32)
"""

MEDIA = """import cv2
import imageio
import librosa
import numpy as np
import soundfile as sf
from safetensors.numpy import load_file, save_file


def load_weights(path: str) -> dict:
    return load_file(path)


def load_arrays(path: str) -> tuple:
    return np.load(path, mmap_mode="r"), np.load(path, allow_pickle=False)


def thumbnail(path: str, size: int = 128) -> np.ndarray:
    frame = cv2.imread(path)
    frame = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    return cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA)


def frames(path: str, every: int = 10) -> list:
    reader = imageio.get_reader(path)
    return [f for i, f in enumerate(reader) if i % every == 0]


def audio_features(path: str, sr: int = 16000) -> np.ndarray:
    y, _ = librosa.load(path, sr=sr, mono=True)
    mfcc = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=13)
    info = sf.info(path)
    return np.concatenate([mfcc.mean(axis=1), [info.duration]])


def save(path: str, arrays: dict) -> None:
    save_file(arrays, path)
"""

REALTIME_ASYNC = '''from __future__ import annotations

from typing import Any, Dict, List, Optional

import numpy as np

from mixpeek_orchestration.sdk import StepDefinition
from shared.models.loader import load_namespace_model
from engine.inference.intfloat.multilingual_e5_large_instruct.services import E5TextEmbeddingBatch


class RealtimeHandler:
    """Async realtime handler: one model per replica, batched inference."""

    def __init__(self, namespace: Optional[str] = None) -> None:
        self.namespace = namespace
        self._model: Optional[Any] = None
        self.step_type = StepDefinition

    async def _ensure_model(self) -> Any:
        if self._model is None:
            self._model = load_namespace_model(self.namespace, "e5") if self.namespace else E5TextEmbeddingBatch()
        return self._model

    async def run_inference(self, inputs: Dict[str, Any], parameters: Dict[str, Any]) -> Dict[str, Any]:
        model = await self._ensure_model()
        texts: List[str] = inputs.get("texts") or [inputs.get("text", "")]
        vectors = np.asarray(model.encode(texts), dtype=np.float32)
        top_k = int(parameters.get("top_k", 5))
        return {"embeddings": vectors[:top_k].tolist(), "count": len(texts)}

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(namespace={self.namespace!r})"
'''

TRANSFORMERS_MODEL = """from typing import List

import torch
from sentence_transformers import SentenceTransformer
from transformers import AutoModel, AutoTokenizer, pipeline


class MultiQa(SentenceTransformer):
    # subclassing a guarded class is fine; calling it is what gets checked
    pass


def classifier(name: str):
    return pipeline("text-classification", model=name, device=-1), MultiQa(name, device="cpu")


class Encoder:
    def __init__(self, name: str = "intfloat/e5-small-v2", revision: str = "main") -> None:
        self.tokenizer = AutoTokenizer.from_pretrained(name, revision=revision)
        self.model = AutoModel.from_pretrained(name, revision=revision, trust_remote_code=False)
        self.model.eval()

    @torch.inference_mode()
    def encode(self, texts: List[str]) -> List[List[float]]:
        tokens = self.tokenizer(texts, padding=True, truncation=True, return_tensors="pt")
        hidden = self.model(**tokens).last_hidden_state
        mask = tokens["attention_mask"].unsqueeze(-1).float()
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, dim=-1).tolist()
"""

STATE_MACHINE = '''"""Control flow the scanner must follow without complaint: match, walrus, closures."""
from enum import Enum
from typing import Any, Callable, Dict


class State(Enum):
    IDLE = 1
    BUSY = 2


def dispatch(event: Dict[str, Any]) -> str:
    match event:
        case {"type": "start", "id": ident}:
            return f"start {ident}"
        case {"type": "stop"}:
            return "stop"
        case [first, *rest]:
            return f"list {first} {len(rest)}"
        case _:
            return "unknown"


def counter() -> Callable[[], int]:
    count = 0

    def step() -> int:
        nonlocal count
        count += 1
        return count

    return step


def first_long(words: list) -> str:
    if (n := len(words)) > 3:
        return words[0] * n
    return next((w for w in words if len(w) > 5), "")


class Cache:
    def __init__(self) -> None:
        self._data: Dict[str, Any] = {}

    def open(self, key: str) -> Any:
        return self._data.get(key)

    def compile(self) -> Dict[str, Any]:
        return dict(self._data)

    def __getitem__(self, key: str) -> Any:
        return self.open(key)


def use(cache: Cache) -> Any:
    return cache.open("x") or cache.compile()
'''

LAZY_HELPERS = '''"""Lazy imports and torch backend knobs: patterns that look like module juggling."""
import functools
import logging

import torch

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
torch.backends.cudnn.benchmark = True


def _np():
    import numpy as np

    return np


@functools.lru_cache(maxsize=None)
def _transformers():
    import transformers

    return transformers


def load_weights(path: str) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def zeros(n: int):
    return _np().zeros(n, dtype=_np().float32)


def tokenizer(name: str):
    return _transformers().AutoTokenizer.from_pretrained(name)


class Lazy:
    def __init__(self) -> None:
        self._model = None

    @property
    def model(self):
        if self._model is None:
            self._model = torch.nn.Linear(4, 4)
        return self._model

    def __getattr__(self, name: str):
        return getattr_default(name)


def getattr_default(name: str) -> str:
    return f"missing:{name}"
'''

IDIOMS = '''"""Everyday idioms that resemble dangerous ones."""
from __future__ import annotations

import json
import logging
import os
from typing import TYPE_CHECKING, Annotated, Any, Dict, List, Literal, Optional, cast

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field, field_validator, model_validator

if TYPE_CHECKING:
    from .manifest import Params

log = logging.getLogger(__name__)
HERE = os.path.dirname(os.path.abspath(__file__))
ENV = {**os.environ, "EXTRA": "1"}
ENV["MORE"] = "2"
KEYS = [*os.environ]
KEYS[0] = "x"
compile = True  # a module-level flag that shadows the builtin, unconditionally


class Row(BaseModel):
    kind: Literal["text", "image or video"] = "text"
    label: Annotated[str, "free text, not a type"] = ""
    scores: Dict[str, "float"] = Field(default_factory=dict)
    shape: "np.ndarray | None" = None
    parent: Optional["Row"] = None

    model_config = {"arbitrary_types_allowed": True}

    @field_validator("label")
    @classmethod
    def strip(cls, value: str) -> str:
        return value.strip()

    @model_validator(mode="after")
    def check(self) -> "Row":
        return self


class Model:
    def __init__(self, **kwargs: Any) -> None:
        self.name = kwargs.get("name", type(self).__name__)
        self.metric = None

    def eval(self) -> "Model":
        return self

    def predict(self, input: Dict[str, Any]) -> Dict[str, Any]:
        text = input.get("text", "")
        return {"n": len(text), "who": f"{self.__class__.__name__}:{self.name!r}"}

    def __repr__(self) -> str:
        return "{}({!r})".format(type(self).__name__, self.name)


def describe(df: pd.DataFrame) -> str:
    if compile:
        df = df.query("score > 0.5 and label == 'x'")
    cols = ", ".join(sorted(df.columns))
    rows = "{:,} rows / {:.2f} avg".format(len(df), float(df["score"].mean()))
    payload = json.dumps({"cols": cols, "rows": rows}, default=str)
    log.info("%s", payload)
    return cast("str", payload)


def stack(items: List[np.ndarray]) -> np.ndarray:
    out = np.stack(items).astype(np.float32)
    return out / np.linalg.norm(out, axis=-1, keepdims=True)


if __name__ == "__main__":
    print(describe(pd.DataFrame({"score": [1.0], "label": ["x"]})), Model().eval())
'''

BENIGN_MODULES: list[tuple[str, str]] = [
    ("text-embedder", TEXT_EMBEDDER),
    ("image-embedder", IMAGE_EMBEDDER),
    ("onnx-model", ONNX_MODEL),
    ("text-cleaner", TEXT_CLEANER),
    ("api-processor", API_PROCESSOR),
    ("pydantic-manifest", PYDANTIC_MANIFEST),
    ("utilities", UTILITIES),
    ("dataframes", DATAFRAMES),
    ("media", MEDIA),
    ("realtime-async", REALTIME_ASYNC),
    ("transformers-model", TRANSFORMERS_MODEL),
    ("state-machine", STATE_MACHINE),
    ("idioms", IDIOMS),
]

# benign, but with warnings the rules call for (a class defining __getattr__)
BENIGN_WITH_WARNINGS: list[tuple[str, str]] = [("lazy-helpers", LAZY_HELPERS)]


@pytest.mark.parametrize(("name", "source"), BENIGN_MODULES, ids=[n for n, _ in BENIGN_MODULES])
def test_benign_module_is_clean(name: str, source: str) -> None:
    violations = scan_source(source, f"{name}.py", plugin_modules=frozenset({"manifest"}))
    assert violations == [], violations


@pytest.mark.parametrize(
    ("name", "source"), BENIGN_WITH_WARNINGS, ids=[n for n, _ in BENIGN_WITH_WARNINGS]
)
def test_benign_module_has_no_errors(name: str, source: str) -> None:
    violations = scan_source(source, f"{name}.py")
    assert [v for v in violations if v.severity == "error"] == [], violations
    assert {v.rule for v in violations} <= {"dangerous-definition"}


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_seed_example_plugin_is_clean(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "manifest.py": SEED_MANIFEST,
            "pipeline.py": SEED_PIPELINE,
            "realtime.py": SEED_REALTIME,
            "processors/core.py": SEED_CORE,
        },
    )
    report = scan_directory(tmp_path)
    assert report.files_scanned == 4
    assert report.violations == []
    assert report.passed


def test_plugin_with_own_absolute_and_relative_imports(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "manifest.py": PYDANTIC_MANIFEST,
            "processors/__init__.py": "",
            "processors/core.py": TEXT_EMBEDDER,
            "processors/media.py": MEDIA,
            "processors/helpers.py": "from ..manifest import Params\nfrom . import core\n",
            "pipeline.py": (
                "from processors.core import TextEmbedder, EmbedConfig\n"
                "from processors import media\n"
                "import processors.helpers\n"
                "from .manifest import metadata\n"
                "def build():\n"
                "    return TextEmbedder(EmbedConfig()), media.thumbnail, processors.helpers.Params\n"
            ),
            "realtime.py": REALTIME_ASYNC,
            "README.md": "not python; ignored here",
        },
    )
    report = scan_directory(tmp_path)
    assert report.files_scanned == 7
    assert report.violations == [], report.violations


def test_strict_mode_passes_benign_plugin(tmp_path: Path) -> None:
    from mixpeek_orchestration.plugins.policy import ScanPolicy

    _write(tmp_path, {"manifest.py": SEED_MANIFEST, "core.py": DATAFRAMES})
    assert scan_directory(tmp_path, policy=ScanPolicy(strict=True)).passed


EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "plugins"


@pytest.mark.skipif(not EXAMPLES.is_dir(), reason="no example plugins in this checkout")
def test_repository_example_plugins_are_clean() -> None:
    for plugin in sorted(p for p in EXAMPLES.iterdir() if p.is_dir()):
        report = scan_directory(plugin)
        assert report.errors == [], (plugin.name, report.errors)
