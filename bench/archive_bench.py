"""Archive gate throughput and memory: build a large plugin archive, push it through the gate.

Usage:
    .venv/bin/python bench/archive_bench.py [--mb 60] [--ratio-alphabet 16] [--level 1]

Prints the archive size, the time and throughput of one clean pass (no tracing), and the
tracemalloc peak of a second pass: the gate streams in fixed-size chunks, so the peak should not
grow with the archive size.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
import tracemalloc
import zipfile
from pathlib import Path

from mixpeek_orchestration.plugins.archive import ArchiveLimits, open_plugin_archive

MiB = 1 << 20


def build(path: Path, megabytes: int, alphabet_size: int, level: int) -> None:
    """A plugin archive with one ``megabytes``-MiB weights file of pseudo-random bytes drawn
    from ``alphabet_size`` symbols (16 gives a compression ratio of about 2:1)."""
    alphabet = bytes(range(256))[:alphabet_size]
    block = bytes(random.Random(0).choices(alphabet, k=MiB))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as zf:
        zf.writestr("manifest.py", "metadata = {}\n")
        zf.writestr("pipeline.py", "def build_steps(*a, **k):\n    return {}\n")
        with zf.open("weights/model.bin", "w") as out:
            for _ in range(megabytes):
                out.write(block)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=int, default=60, help="inflated size of the weights file")
    parser.add_argument("--ratio-alphabet", type=int, default=16)
    parser.add_argument("--level", type=int, default=1, help="deflate level used to build")
    args = parser.parse_args()

    limits = ArchiveLimits(
        max_compressed_bytes=max(500, 2 * args.mb) * MiB,
        max_extracted_bytes=max(500, 2 * args.mb) * MiB,
    )
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "bench.zip"
        build(archive, args.mb, args.ratio_alphabet, args.level)
        size = archive.stat().st_size

        start = time.perf_counter()
        with open_plugin_archive(archive, limits=limits) as extracted:
            inflated = extracted.total_bytes
        elapsed = time.perf_counter() - start

        tracemalloc.start()
        with open_plugin_archive(archive, limits=limits):
            pass
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()

    print(f"archive:     {size / MiB:8.1f} MiB compressed, {inflated / MiB:8.1f} MiB inflated")
    print(f"time:        {elapsed:8.2f} s  ({inflated / MiB / elapsed:.0f} MiB/s inflated)")
    print(f"peak memory: {peak / MiB:8.2f} MiB (tracemalloc)")


if __name__ == "__main__":
    main()
