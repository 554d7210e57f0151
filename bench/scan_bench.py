"""Benchmark: the security scanner against bare ``ast.parse`` on a 1,000-file plugin.

Generates a realistic plugin (varied 50-300 line modules: processors, pydantic manifests, HTTP
clients, pandas / numpy / torch code) into a temporary directory, then in the same run times

* ``parse``: read every file's bytes and ``ast.parse`` them (the floor any AST scanner pays), and
* ``scan``: :func:`scan_directory` of the same tree (read + parse + analysis + checks),

repeating each a few times (interleaved) and taking medians. Times are process CPU time, so a
busy shared machine skews both sides alike; wall-clock medians are printed too. It prints a small
table and one JSON line, and exits non-zero when ``scan / parse`` (CPU) exceeds the target (3.0).
Memory is measured on a separate scan: the ``tracemalloc`` peak, and the process RSS growth
(psutil) across that scan.

Usage::

    .venv/bin/python bench/scan_bench.py [--files 1000] [--repeat 5] [--seed 7] [--keep DIR]
"""

from __future__ import annotations

import argparse
import ast
import gc
import json
import random
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import psutil

from mixpeek_orchestration.plugins.scanner import scan_directory

TARGET_RATIO = 3.0

# --- a small generator of realistic plugin modules ------------------------------------------

_HEADERS = [
    "from __future__ import annotations\n",
    "import logging\nimport os\nfrom dataclasses import dataclass, field\n",
    "from typing import Any, Dict, List, Optional\n",
    "import numpy as np\nimport pandas as pd\n",
    "import re\nimport json\nimport time\n",
    "import torch\nfrom PIL import Image\n",
    "import httpx\nimport requests\n",
    "from pydantic import BaseModel, Field\n",
    "import polars as pl\nimport pyarrow as pa\n",
    "from collections import Counter, defaultdict\nimport math\n",
]

_MODEL = '''

class {name}Params(BaseModel):
    """Parameters of {name}."""

    threshold: float = Field(default=0.{n}, ge=0, le=1, description="score cutoff")
    labels: List[str] = Field(default_factory=list)
    mode: str = "fast"
    nested: Optional["{name}Params"] = None
'''

_CONFIG = """

@dataclass
class {name}Config:
    batch_size: int = {n}
    normalize: bool = True
    model_name: str = os.environ.get("{upper}_MODEL", "all-MiniLM-L6-v2")
    tags: Dict[str, float] = field(default_factory=dict)
"""

_METHODS = [
    """
    def {m}(self, batch: pd.DataFrame) -> pd.DataFrame:
        texts = batch["text"].fillna("").astype(str).tolist()
        cleaned = [self._pattern.sub(" ", t).strip() for t in texts]
        batch = batch.assign(cleaned=cleaned, length=[len(t) for t in cleaned])
        batch["bucket"] = batch["length"].apply(lambda n: "long" if n > {n} else "short")
        logger.debug("processed %d rows in %s", len(batch), self.__class__.__name__)
        return batch
""",
    """
    def {m}(self, values: List[float]) -> Dict[str, Any]:
        array = np.asarray(values, dtype=np.float32)
        if array.size == 0:
            return {{"mean": 0.0, "std": 0.0}}
        norm = np.linalg.norm(array) or 1.0
        stats = {{"mean": float(array.mean()), "std": float(array.std()), "norm": float(norm)}}
        stats.update({{f"q{{q}}": float(np.quantile(array, q / 100)) for q in (25, 50, 75)}})
        return stats
""",
    """
    def {m}(self, url: str, retries: int = 3) -> Optional[Dict[str, Any]]:
        for attempt in range(retries):
            try:
                response = self._session.get(url, timeout={n})
                response.raise_for_status()
                return response.json()
            except requests.RequestException as exc:
                logger.warning("attempt %d failed for %s: %s", attempt, url, exc)
                time.sleep(min(2 ** attempt, 10))
        return None
""",
    """
    @torch.no_grad()
    def {m}(self, paths: List[str]) -> List[List[float]]:
        images = [Image.open(p).convert("RGB").resize((224, 224)) for p in paths]
        tensor = torch.stack([torch.from_numpy(np.asarray(i, dtype=np.float32) / 255.0) for i in images])
        tensor = tensor.permute(0, 3, 1, 2)
        output = self._model(tensor) if self._model is not None else tensor.mean(dim=(2, 3))
        return output.cpu().numpy().tolist()
""",
    """
    async def {m}(self, items: List[str]) -> List[Dict[str, Any]]:
        results: List[Dict[str, Any]] = []
        async with httpx.AsyncClient(timeout=30.0, limits=httpx.Limits(max_connections=4)) as client:
            for item in items:
                reply = await client.post(self.endpoint, json={{"input": item, "k": {n}}})
                if reply.status_code == 200:
                    results.append(reply.json())
        return results
""",
    """
    def {m}(self, records: List[Dict[str, Any]]) -> Dict[str, int]:
        counts: Dict[str, int] = defaultdict(int)
        for record in records:
            match record:
                case {{"type": "text", "lang": lang}}:
                    counts[f"text:{{lang}}"] += 1
                case {{"type": kind}}:
                    counts[kind] += 1
                case _:
                    counts["unknown"] += 1
        return dict(Counter(counts).most_common({n}))
""",
    """
    def {m}(self, text: str) -> List[str]:
        if (n := len(text)) > 10000:
            text = text[:10000]
        words = [w.lower() for w in re.findall(r"[\\w']+", text) if len(w) > 2]
        seen = set()
        out = [w for w in words if not (w in seen or seen.add(w))]
        return out[: {n} + n % 7]
""",
    """
    def {m}(self, frame: pl.DataFrame) -> pa.Table:
        frame = frame.filter(pl.col("score") > {n} / 100).with_columns(
            (pl.col("score") * 2).alias("double")
        )
        table = frame.to_arrow()
        return table.append_column("flag", pa.array([True] * table.num_rows))
""",
]

_CLASS = '''

class {name}Processor:
    """Processes batches for {name}."""

    def __init__(self, config: {name}Config, progress_actor: Optional[Any] = None) -> None:
        self.config = config
        self.progress_actor = progress_actor
        self.endpoint = os.environ.get("{upper}_URL", "https://api.example.com/v1")
        self._session = requests.Session()
        self._pattern = re.compile(r"\\s+|https?://\\S+")
        self._model: Optional[Any] = None
'''

_FUNCS = """

def build_{low}(params: Optional[Dict[str, Any]] = None) -> {name}Processor:
    params = dict(params or {{}})
    config = {name}Config(batch_size=int(params.get("batch_size", {n})))
    return {name}Processor(config)


def describe_{low}(values: List[float]) -> str:
    total = math.fsum(values)
    return "{name}: %d values, total %.3f" % (len(values), total)


logger = logging.getLogger(__name__)
METADATA = {{"name": "{low}", "version": "1.{n}.0", "cpu": os.cpu_count() or 1}}
"""


def _module(rng: random.Random, index: int) -> str:
    """One module of 50-300 lines, assembled from realistic pieces."""
    name = f"Feature{index}{rng.choice(['Text', 'Image', 'Audio', 'Api', 'Table'])}"
    fmt = {"name": name, "upper": name.upper(), "low": name.lower(), "n": rng.randint(1, 99)}
    parts = list(_HEADERS)
    parts.append(_MODEL.format(**fmt))
    parts.append(_CONFIG.format(**fmt))
    parts.append(_CLASS.format(**fmt))
    target = rng.randint(50, 300)
    count = 0
    while sum(p.count("\n") for p in parts) < target - 20:
        fmt["n"] = rng.randint(1, 99)
        parts.append(rng.choice(_METHODS).format(m=f"step_{count}", **fmt))
        count += 1
    parts.append(_FUNCS.format(**fmt))
    return "".join(parts)


def generate(root: Path, files: int, seed: int) -> int:
    """Write a plugin of ``files`` modules under ``root``; returns total bytes."""
    rng = random.Random(seed)
    total = 0
    for index in range(files):
        if index < 3:
            rel = ("manifest.py", "pipeline.py", "realtime.py")[index]
        else:
            rel = f"{rng.choice(['processors', 'services', 'utils'])}/m{index:04d}.py"
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        text = _module(rng, index)
        path.write_text(text)
        total += len(text)
    return total


# --- measurement ---------------------------------------------------------------------------


def bare_parse(paths: list[Path]) -> tuple[float, float]:
    """(CPU seconds, wall seconds) to read and parse every file."""
    cpu, wall = time.process_time(), time.perf_counter()
    for path in paths:
        ast.parse(path.read_bytes())
    return time.process_time() - cpu, time.perf_counter() - wall


def timed_scan(root: Path) -> tuple[float, float, int]:
    """(CPU seconds, wall seconds, violations) of one ``scan_directory``."""
    cpu, wall = time.process_time(), time.perf_counter()
    report = scan_directory(root)
    return time.process_time() - cpu, time.perf_counter() - wall, len(report.violations)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", type=Path, default=None, help="generate here and keep it")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        size = generate(root, args.files, args.seed)
        paths = sorted(root.rglob("*.py"))
        lines = sum(p.read_text().count("\n") for p in paths)

        timed_scan(root)  # warm-up: imports, the interpreter's caches, the file cache
        bare_parse(paths)
        parse_cpu, parse_wall, scan_cpu, scan_wall, violations = [], [], [], [], 0
        for _ in range(args.repeat):  # interleaved, so drift hits both alike
            cpu, wall = bare_parse(paths)
            parse_cpu.append(cpu)
            parse_wall.append(wall)
            cpu, wall, violations = timed_scan(root)
            scan_cpu.append(cpu)
            scan_wall.append(wall)
        parse_s = statistics.median(parse_cpu)
        scan_s = statistics.median(scan_cpu)
        wall_ratio = statistics.median(scan_wall) / statistics.median(parse_wall)

        gc.collect()
        process = psutil.Process()
        rss_before = process.memory_info().rss
        tracemalloc.start()
        scan_directory(root)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rss_growth = process.memory_info().rss - rss_before

    ratio = scan_s / parse_s
    mib = 1024 * 1024
    rows = [
        ("files", f"{len(paths)}"),
        ("lines / bytes", f"{lines} / {size}"),
        ("parse (median CPU)", f"{parse_s:.3f} s"),
        ("scan (median CPU)", f"{scan_s:.3f} s"),
        ("ratio scan/parse", f"{ratio:.2f}x (target <= {TARGET_RATIO}x)"),
        ("ratio, wall clock", f"{wall_ratio:.2f}x"),
        ("violations found", f"{violations} (the corpus is benign)"),
        ("tracemalloc peak", f"{peak / mib:.1f} MiB"),
        ("RSS growth", f"{rss_growth / mib:.1f} MiB"),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    print(
        json.dumps(
            {
                "benchmark": "scan",
                "files": len(paths),
                "parse_s": round(parse_s, 4),
                "scan_s": round(scan_s, 4),
                "ratio": round(ratio, 3),
                "wall_ratio": round(wall_ratio, 3),
                "peak_mib": round(peak / mib, 2),
                "rss_growth_mib": round(rss_growth / mib, 2),
                "violations": violations,
            }
        )
    )
    return 0 if ratio <= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
