"""Benchmark: `rebuild batch` over 20 pure-Python releases, --jobs 1 against --jobs 2.

Each run starts with an empty results store, so every release is verified (nothing reused).
*Cold*: an empty download cache too (sdists, wheels and build requirements are downloaded).
*Warm*: the same cache again, already filled. A last run repeats the warm jobs-2 batch on its
own store to time the reuse path (verdicts skipped: same tool version, same plan). Prints the
wall-clock time, releases per minute and the verdicts of each run.

    .venv/bin/python benchmarks/batch.py [--jobs 1 2] [NAME==VERSION ...]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from rebuild.fetch import default_cache_dir

RELEASES = (
    "attrs==23.2.0",
    "click==8.1.7",
    "idna==3.7",
    "six==1.16.0",
    "requests==2.32.3",
    "packaging==24.1",
    "certifi==2024.2.2",
    "urllib3==2.2.1",
    "pluggy==1.5.0",
    "iniconfig==2.0.0",
    "tomli==2.0.1",
    "typing_extensions==4.11.0",
    "jinja2==3.1.4",
    "itsdangerous==2.2.0",
    "werkzeug==3.0.3",
    "blinker==1.8.2",
    "pyparsing==3.1.2",
    "soupsieve==2.5",
    "decorator==5.1.1",
    "toml==0.10.2",
)


def run(deps: Path, store: Path, cache: Path, jobs: int) -> tuple[float, dict[str, object]]:
    summary = store.with_suffix(".json")
    argv = [
        sys.executable, "-m", "rebuild", "batch", str(deps), "--jobs", str(jobs),
        "--store", str(store), "--cache-dir", str(cache), "--json", str(summary),
    ]  # fmt: skip
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    # 0: nothing to review, 11: something needs review; both are finished batches.
    if done.returncode not in (0, 11):
        raise SystemExit(f"batch failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return seconds, json.loads(summary.read_text())


def describe(label: str, count: int, seconds: float, summary: dict[str, object]) -> str:
    releases = summary["releases"]
    assert isinstance(releases, list)
    verdicts = Counter(r["verdict"] for r in releases)
    shown = ", ".join(f"{n} {v}" for v, n in sorted(verdicts.items()))
    return f"{label:<22} {seconds:7.1f} s  {count / seconds * 60:6.1f} releases/min  ({shown})"


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("releases", nargs="*", default=list(RELEASES))
    parser.add_argument("--jobs", nargs="+", type=int, default=[1, 2])
    args = parser.parse_args()
    base = default_cache_dir() / "benchmarks"
    base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="batch-", dir=base))
    try:
        deps = work / "deps.txt"
        deps.write_text("\n".join(args.releases) + "\n")
        count = len(args.releases)
        print(f"{count} releases; each run on a new store (every release verified)")
        for jobs in args.jobs:
            cache = work / f"cache-{jobs}"
            for phase in ("cold", "warm"):
                seconds, summary = run(deps, work / f"{phase}-{jobs}.sqlite", cache, jobs)
                print(describe(f"--jobs {jobs} {phase}", count, seconds, summary), flush=True)
        jobs = max(args.jobs)
        store = work / "reuse.sqlite"
        run(deps, store, work / f"cache-{jobs}", jobs)
        seconds, summary = run(deps, store, work / f"cache-{jobs}", jobs)
        print(describe(f"--jobs {jobs} reused", count, seconds, summary))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
