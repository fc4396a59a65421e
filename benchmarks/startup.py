"""Benchmark: how long a command takes before it does any work, beside the interpreter's floor.

Each command runs in a fresh process, several times; the best and the median wall-clock times
are printed beside `python -c pass` (the floor no Python tool can go under) and `pip --version`
(a peer every user has). `rebuild compare` compares two small wheels that differ in one line, so
it includes the comparison itself, which is tiny.

    .venv/bin/python benchmarks/startup.py [--runs 15]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path

from _bytecode import compile_installed

PYTHON = sys.executable


def _wheel(path: Path, code: bytes) -> Path:
    dist = "demo-1.0.dist-info"
    members = {
        "demo/__init__.py": code,
        f"{dist}/METADATA": b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n",
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: bench\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
        f"{dist}/RECORD": b"",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _time(command: Sequence[str], runs: int) -> tuple[float, float]:
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, capture_output=True, check=False)
        seconds.append(time.perf_counter() - started)
    return min(seconds), statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    compile_installed()  # as installed: see benchmarks/_bytecode.py
    with tempfile.TemporaryDirectory(prefix="rebuild-bench-") as scratch:
        published = _wheel(Path(scratch) / "a" / "demo-1.0-py3-none-any.whl", b"x = 1\n")
        rebuilt = _wheel(Path(scratch) / "b" / "demo-1.0-py3-none-any.whl", b"x = 2\n")
        rebuild = [PYTHON, "-m", "rebuild"]
        rows = [
            ("python -c pass (floor)", [PYTHON, "-c", "pass"]),
            ("pip --version (peer)", [PYTHON, "-m", "pip", "--version"]),
            ("rebuild --version", [*rebuild, "--version"]),
            ("rebuild --help", [*rebuild, "--help"]),
            ("rebuild check --help", [*rebuild, "check", "--help"]),
            (
                "rebuild compare (2 small wheels)",
                [*rebuild, "compare", str(published), str(rebuilt)],
            ),
            ("import rebuild.pipeline", [PYTHON, "-c", "import rebuild.pipeline"]),
        ]
        timed = [(label, *_time(command, args.runs)) for label, command in rows]
    floor = timed[0][1]
    print(f"{'command':<36}{'best':>9}{'median':>9}{'over floor':>12}")
    for label, best, median in timed:
        print(f"{label:<36}{best:>8.3f}s{median:>8.3f}s{best - floor:>11.3f}s")


if __name__ == "__main__":
    main()
