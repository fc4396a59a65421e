"""Benchmark: what a hermetic `rebuild check` costs over a bare `uv build` of the same sdist.

For each release: `rebuild check NAME==VERSION` (warm download cache, image present: resolve,
plan, time-warped resolution of the build requirements, container build with no network,
comparison, report) against `uv build --wheel SDIST` on the host (warm uv cache, network
allowed, no comparison). Each is run once to warm up, then timed; the median is printed with
the ratio.

    .venv/bin/python benchmarks/check_overhead.py [--runs 3] [NAME==VERSION ...]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import uv
from _bytecode import compile_installed

from rebuild.fetch import Cache, default_cache_dir
from rebuild.index import IndexClient, choose_index_url
from rebuild.models import Target, WheelSelector

DEFAULT_RELEASES = ("attrs==23.2.0", "click==8.1.7", "idna==3.7")


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    # rebuild exits 0 (reproducible/equivalent) or 1 (divergent); anything else is a failure.
    if done.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return seconds


def median_of(runs: int, argv: list[str]) -> float:
    timed(argv)  # warm-up: caches filled, image loaded
    return statistics.median(timed(argv) for _ in range(runs))


def sdist_of(spec: str, cache: Cache) -> Path:
    release = IndexClient(choose_index_url(None)).resolve(Target.parse(spec), WheelSelector())
    if release.sdist is None:
        raise SystemExit(f"{spec} has no sdist")
    return cache.fetch(release.sdist).path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("releases", nargs="*", default=list(DEFAULT_RELEASES))
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    compile_installed()  # as installed: see benchmarks/_bytecode.py
    cache_dir = default_cache_dir()
    cache = Cache(cache_dir)
    rows = []
    with tempfile.TemporaryDirectory(prefix="rebuild-bench-") as tmp:
        for spec in args.releases:
            sdist = sdist_of(spec, cache)
            ours = median_of(
                args.runs,
                [sys.executable, "-m", "rebuild", "check", spec, "--cache-dir", str(cache_dir)],
            )
            bare = median_of(
                args.runs,
                [uv.find_uv_bin(), "build", "--wheel", "--quiet", "--out-dir", tmp, str(sdist)],
            )
            rows.append((spec, ours, bare))
    print(f"{'release':<18} {'rebuild check s':>16} {'uv build s':>11} {'ratio':>6}")
    for spec, ours, bare in rows:
        print(f"{spec:<18} {ours:>16.2f} {bare:>11.2f} {ours / bare:>6.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
