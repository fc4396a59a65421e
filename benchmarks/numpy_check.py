"""Benchmark (slow check): `rebuild check numpy==1.26.4` end to end, then the pair it made.

The whole check (resolve, fetch, plan with the recipe, the hermetic build of numpy in the recipe's
fallback image, comparison, report) runs once; the script prints its wall time, peak memory, the
build's own time, the verdict, what stays unexplained and the report's length at 100 columns.
Then it hands the published wheel and this rebuild to `benchmarks/compare.py --pair`, which
times `rebuild compare` beside the peer a reviewer would otherwise run, diffoscope. Too slow for
the test suite (minutes on two cores), hence here.

    .venv/bin/python benchmarks/numpy_check.py                  # check, then compare.py --pair
    .venv/bin/python benchmarks/numpy_check.py --no-diffoscope  # passed on to compare.py
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rebuild.fetch import default_cache_dir

TARGET = "numpy==1.26.4"
SELECTOR = ("--python", "3.11", "--platform", "manylinux_2_17_x86_64")
HERE = Path(__file__).resolve().parent


def run_check(report_path: Path, terminal: Path) -> tuple[int, float, float]:
    """(exit code, wall seconds, peak MiB) of one `rebuild check`, its report kept."""
    gnu_time = shutil.which("time") or "/usr/bin/time"
    rebuild = str(Path(sys.executable).parent / "rebuild")
    argv = [rebuild, "check", TARGET, *SELECTOR, "--json", str(report_path)]
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss, terminal.open("wb") as out:
        start = time.perf_counter()
        done = subprocess.run(
            [gnu_time, "-f", "%M", "-o", rss.name, *argv],
            stdout=out,
            env={**os.environ, "COLUMNS": "100"},
            check=False,
        )
        seconds = time.perf_counter() - start
        peak_mib = int(rss.read().split()[-1]) / 1024
    return done.returncode, seconds, peak_mib


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-diffoscope", action="store_true", help="passed to compare.py")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        report_path, terminal = Path(scratch) / "numpy.json", Path(scratch) / "report.txt"
        code, seconds, peak = run_check(report_path, terminal)
        if code not in (0, 1):
            print(f"rebuild check failed (exit {code})", file=sys.stderr)
            return 1
        report = json.loads(report_path.read_text(encoding="utf-8"))
        lines = len(terminal.read_text(encoding="utf-8").splitlines())
    comparison = report["comparison"]
    # Report schema 2: each divergence carries its outcome.
    unexplained = sum(1 for d in comparison["divergences"] if d["outcome"] == "unexplained")
    findings = (report.get("provenance") or {}).get("findings", [])
    source_open = sum(1 for d in findings if d["outcome"] == "unexplained")
    published = report["release"]["wheel"]
    print(f"{TARGET}: {published['filename']}")
    print(
        f"rebuild check  {seconds:.1f} s wall, {peak:.1f} MiB peak, build "
        f"{report['build']['duration_s']:.1f} s; verdict {report['verdict']}; "
        f"{comparison['identical_members']:,} members identical; {unexplained} unexplained "
        f"divergences, {source_open} unexplained source findings; report {lines} lines at "
        "100 columns"
    )
    sha = published["sha256"]
    cached = default_cache_dir() / "files" / "sha256" / sha[:2] / sha / published["filename"]
    pair = [str(cached), report["build"]["wheel"]]
    extra = ["--no-diffoscope"] if args.no_diffoscope else []
    return subprocess.run(
        [sys.executable, str(HERE / "compare.py"), "--pair", *pair, *extra], check=False
    ).returncode


if __name__ == "__main__":
    raise SystemExit(main())
