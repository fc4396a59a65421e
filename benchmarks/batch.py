"""Benchmark: `rebuild batch` over 20 pure-Python releases, --jobs 1 against --jobs 2.

Each run starts with an empty results store, so every release is verified (nothing reused).
*Cold*: an empty download cache too (sdists, wheels and build requirements are downloaded).
*Warm*: the same cache again, already filled. A last run repeats the warm jobs-2 batch on its
own store to time the reuse path (verdicts skipped: same tool version, same plan). Prints the
wall-clock time, releases per minute and the verdicts of each run.

``--distributed``: the same releases, warm, on the local pool (--jobs 1 and 2) beside a batch
sent through a redis-server on 127.0.0.1 to one and then two `rebuild worker` processes on this
machine (concurrency 1 each, the same download cache); prints each one's throughput and the
overhead per task of the distributed run over the local pool of the same parallelism.

``--reuse``: the reuse path beside the rebuild it saves: a warm batch on a new store, then the
same batch again (every verdict reused, the index not asked), then with --refresh (asked).

    .venv/bin/python benchmarks/batch.py [--jobs 1 2] [--distributed | --reuse] [NAME==VERSION ...]
    .venv/bin/python benchmarks/batch.py --distributed
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
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


def run(
    deps: Path,
    store: Path,
    cache: Path,
    jobs: int,
    *,
    broker: str | None = None,
    extra: tuple[str, ...] = (),
) -> tuple[float, dict[str, object]]:
    summary = store.with_suffix(".json")
    argv = [
        sys.executable, "-m", "rebuild", "batch", str(deps), "--jobs", str(jobs),
        "--store", str(store), "--cache-dir", str(cache), "--json", str(summary),
        *(["--broker", broker] if broker else []), *extra,
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


def start_redis(work: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    (work / "redis").mkdir()
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(work / "redis")],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return process, f"redis://127.0.0.1:{port}/0"
        time.sleep(0.1)
    process.kill()
    raise SystemExit("redis-server did not start (apt-get install redis-server)")


def start_workers(
    broker: str, count: int, cache: Path, work: Path
) -> list[subprocess.Popen[bytes]]:
    started = []
    for i in range(count):
        log = work / f"worker-{count}-{i}.log"
        argv = [
            sys.executable, "-m", "rebuild", "worker", "--broker", broker,
            "--concurrency", "1", "--cache-dir", str(cache),
        ]  # fmt: skip
        with log.open("wb") as out:
            process = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        started.append(process)
        deadline = time.monotonic() + 120
        while b" ready." not in log.read_bytes():
            if time.monotonic() > deadline or started[-1].poll() is not None:
                stop(started)
                raise SystemExit(f"a worker did not start:\n{log.read_text()[-2000:]}")
            time.sleep(0.2)
    return started


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def distributed(deps: Path, count: int, work: Path) -> None:
    cache = work / "cache"
    seconds, summary = run(deps, work / "cold.sqlite", cache, 2)
    print(describe("--jobs 2 cold (fills)", count, seconds, summary), flush=True)
    local: dict[int, float] = {}
    for jobs in (1, 2):
        seconds, summary = run(deps, work / f"local-{jobs}.sqlite", cache, jobs)
        local[jobs] = seconds
        print(describe(f"local --jobs {jobs} warm", count, seconds, summary), flush=True)
    redis, broker = start_redis(work)
    try:
        for workers in (1, 2):
            started = start_workers(broker, workers, cache, work)
            try:
                seconds, summary = run(
                    deps, work / f"dist-{workers}.sqlite", cache, 1, broker=broker
                )
            finally:
                stop(started)
            label = f"{workers} worker{'s' if workers > 1 else ''} warm"
            print(describe(label, count, seconds, summary), flush=True)
            overhead = (seconds - local[workers]) / count
            print(f"{'':<22} overhead over local --jobs {workers}: {overhead:+.2f} s per task")
    finally:
        redis.terminate()
        redis.wait(timeout=30)


def reuse(deps: Path, count: int, work: Path, jobs: int) -> None:
    """The reuse path beside the rebuild it saves: a warm batch on a new store, the same batch
    again (every verdict reused, the index not asked), and again with --refresh (asked)."""
    cache = work / "cache"
    run(deps, work / "fill.sqlite", cache, jobs)
    store = work / "reuse.sqlite"
    seconds, summary = run(deps, store, cache, jobs)
    print(describe(f"--jobs {jobs} rebuilding", count, seconds, summary), flush=True)
    seconds, summary = run(deps, store, cache, jobs)
    print(describe(f"--jobs {jobs} reused", count, seconds, summary), flush=True)
    print(f"{'':<22} {seconds / count:.2f} s per release reused")
    seconds, summary = run(deps, store, cache, jobs, extra=("--refresh",))
    print(describe(f"--jobs {jobs} --refresh", count, seconds, summary), flush=True)
    print(f"{'':<22} {seconds / count:.2f} s per release reused, the index asked")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("releases", nargs="*", default=list(RELEASES))
    parser.add_argument("--jobs", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--distributed", action="store_true", help="local pool vs workers")
    parser.add_argument("--reuse", action="store_true", help="the reuse path only")
    args = parser.parse_args()
    base = default_cache_dir() / "benchmarks"
    base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="batch-", dir=base))
    if args.reuse:
        deps = work / "deps.txt"
        deps.write_text("\n".join(args.releases) + "\n")
        print(f"{len(args.releases)} releases")
        try:
            reuse(deps, len(args.releases), work, max(args.jobs))
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return 0
    if args.distributed:
        deps = work / "deps.txt"
        deps.write_text("\n".join(args.releases) + "\n")
        print(f"{len(args.releases)} releases; each run on a new store (every release verified)")
        try:
            distributed(deps, len(args.releases), work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return 0
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
