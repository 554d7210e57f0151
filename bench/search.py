"""Benchmark: vector search at 100,000 vectors, ANN index vs exact numpy search, same run.

Builds a LanceDB table of ``--vectors`` 384-d unit vectors through :class:`VectorStore` (the
store ingestion writes to), drawn around 1,000 centres so that neighbourhoods exist as they do
for real embeddings, lets ``ensure_index`` build the ANN index, then for ``--queries`` held-out
queries measures:

* recall@10 of the indexed search against exact search (numpy, cosine, the same vectors);
* p50 / p99 latency of the indexed search, of LanceDB's exact scan, and of numpy brute force
  (one matrix-vector product over all vectors in memory);
* the ratio indexed p50 / numpy p50 (below 1: the index is faster than brute force).

Target: recall@10 >= 0.95.

Run: ``python bench/search.py [--vectors 100000] [--queries 200]``
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mixpeek_orchestration.storage.vectors import VectorStore  # noqa: E402

DIM = 384
TABLE = "ns_bench__my_extractor__1_0_0__embedding"


def unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def clustered(n: int, rng: np.random.Generator, centres: np.ndarray) -> np.ndarray:
    picks = rng.integers(0, len(centres), n)
    return unit(centres[picks] + rng.normal(0, 0.03, (n, DIM)).astype(np.float32)).astype(
        np.float32
    )


def p50_p99(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return round(statistics.median(ordered), 3), round(ordered[int(len(ordered) * 0.99) - 1], 3)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--vectors", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    rng = np.random.default_rng(7)
    centres = unit(rng.normal(size=(1000, DIM)).astype(np.float32))
    vectors = clustered(args.vectors, rng, centres)
    queries = clustered(args.queries, rng, centres)
    work = Path(tempfile.mkdtemp(prefix="mixpeek-bench-search-"))
    try:
        store = VectorStore(work)
        start = time.perf_counter()
        for offset in range(0, args.vectors, 20_000):
            chunk = vectors[offset : offset + 20_000]
            store.upsert(
                TABLE,
                pa.table(
                    {
                        "id": pa.array([f"doc_{i}" for i in range(offset, offset + len(chunk))]),
                        "vector": pa.FixedSizeListArray.from_arrays(pa.array(chunk.ravel()), DIM),
                        "collection_id": pa.array(["col_bench"] * len(chunk)),
                    }
                ),
            )
        load_s = time.perf_counter() - start
        start = time.perf_counter()
        built = store.ensure_index(TABLE)
        index_s = time.perf_counter() - start

        exact_ids = []
        numpy_ms = []
        for query in queries:
            t = time.perf_counter()
            scores = vectors @ query
            top = np.argpartition(-scores, 10)[:10]
            top = top[np.argsort(-scores[top])]
            numpy_ms.append((time.perf_counter() - t) * 1e3)
            exact_ids.append({f"doc_{i}" for i in top})
        indexed_ms, scan_ms, recalls = [], [], []
        for query, truth in zip(queries, exact_ids, strict=True):
            t = time.perf_counter()
            hits = store.search(
                TABLE, query, k=10, filters={"collection_id": "col_bench"}, columns=["id"]
            )
            indexed_ms.append((time.perf_counter() - t) * 1e3)
            recalls.append(len({h["id"] for h in hits} & truth) / 10)
        for query in queries[:50]:
            t = time.perf_counter()
            store.search(TABLE, query, k=10, exact=True)
            scan_ms.append((time.perf_counter() - t) * 1e3)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    results = {
        "benchmark": "search",
        "vectors": args.vectors,
        "queries": args.queries,
        "index_built": built,
        "load_s": round(load_s, 1),
        "index_build_s": round(index_s, 1),
        "recall_at_10": round(float(np.mean(recalls)), 4),
        "indexed_p50_p99_ms": p50_p99(indexed_ms),
        "lancedb_exact_scan_p50_p99_ms": p50_p99(scan_ms),
        "numpy_exact_p50_p99_ms": p50_p99(numpy_ms),
    }
    results["indexed_p50_vs_numpy_p50"] = round(
        results["indexed_p50_p99_ms"][0] / results["numpy_exact_p50_p99_ms"][0], 3
    )
    for key, value in results.items():
        print(f"{key:<32}{value}")
    print(json.dumps(results))
    return 0 if results["recall_at_10"] >= 0.95 else 1


if __name__ == "__main__":
    sys.exit(main())
