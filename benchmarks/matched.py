"""Benchmark (slow check): compiled releases rebuilt with the compiler that built them.

For each release of the acceptance set, one `rebuild check` end to end (its recipe applied, the
image chosen from the published objects' compiler), then each compiled member compared function
by function: the image and its compiler against the published one, how many functions were
compared, how many are the same, which differ, the member's outcome in the report (verified /
attributed / unexplained) and the check's wall time. The peer is the published wheel itself: the
figures say how much of upstream's code the rebuild reproduces. Minutes on two cores (numpy is
the longest); too slow for the test suite, and it builds the CPython-from-source images
(bullseye-py311 and the images derived from it) on first use.

    .venv/bin/python benchmarks/matched.py                       # the whole set
    .venv/bin/python benchmarks/matched.py markupsafe==2.1.5:3.9 # one release, one Python
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from rebuild.compare.elf_diff import diff_elf
from rebuild.compare.elf_read import read_elf
from rebuild.compare.elf_rules import toolchain_label
from rebuild.errors import ArchiveError
from rebuild.fetch import default_cache_dir

# target:python, as the acceptance table has them (manylinux_2_17 wheels, the ones upstream's
# manylinux2014 images built with GCC 10.2.1).
RELEASES = (
    "markupsafe==2.1.5:3.9",
    "markupsafe==2.1.5:3.11",
    "msgpack==1.0.8:3.11",
    "pyyaml==6.0.1:3.11",
    "charset-normalizer==3.4.0:3.11",
    "numpy==1.26.4:3.11",
)
SHOWN = 3  # differing functions named per member


def _check(target: str, python: str, report: Path) -> tuple[int, float]:
    rebuild = str(Path(sys.executable).parent / "rebuild")
    argv = [rebuild, "check", target, "--python", python, "--platform", "manylinux_2_17_x86_64"]
    start = time.perf_counter()
    done = subprocess.run(
        [*argv, "--json", str(report)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return done.returncode, time.perf_counter() - start


def _objects(wheel: Path) -> dict[str, bytes]:
    # Each script runs on its own (python benchmarks/NAME.py): no shared helper module.
    with zipfile.ZipFile(wheel) as archive:
        return {
            info.filename: archive.read(info)
            for info in archive.infolist()
            if info.filename.endswith(".so") and ".libs/" not in info.filename
        }


def _row(target: str, python: str, report: dict[str, object], wall: float) -> list[str]:
    release = report["release"]
    build = report["build"]
    assert isinstance(release, dict) and isinstance(build, dict)
    filename = release["wheel"]["filename"]
    published_wheel = next(default_cache_dir().glob(f"files/sha256/*/*/{filename}"))
    published, rebuilt = _objects(published_wheel), _objects(Path(build["wheel"]))
    comparison = report["comparison"]
    assert isinstance(comparison, dict)
    outcomes = {
        d["member"]: d["outcome"]
        for d in comparison["divergences"]
        if d.get("kind") == "content" and d.get("member")
    }
    lines = []
    for name in sorted(set(published) & set(rebuilt)):
        if published[name] == rebuilt[name]:
            lines.append(f"  {name}: byte-identical")
            continue
        try:
            diff = diff_elf(read_elf(published[name]), read_elf(rebuilt[name]))
        except ArchiveError as e:
            lines.append(f"  {name}: not read ({e})")
            continue
        same = diff.functions_identical + diff.functions_moved
        changed = [c.name for c in diff.functions_changed]
        share = 100 * same / diff.functions_compared if diff.functions_compared else 0.0
        lines.append(
            f"  {name.rsplit('/', 1)[-1]}: {toolchain_label(diff.toolchain.published)} vs "
            f"{toolchain_label(diff.toolchain.rebuilt)} · {diff.functions_compared:,} compared, "
            f"{same:,} the same ({share:.1f}%), {len(changed):,} differ"
            + (f" ({', '.join(changed[:SHOWN])}" if changed else "")
            + (f" … +{len(changed) - SHOWN})" if len(changed) > SHOWN else ")" if changed else "")
            + f" · {outcomes.get(name, 'identical')}"
        )
    unexplained = sorted(
        {
            str(d.get("member") or d.get("kind"))
            for d in comparison["divergences"]
            if d.get("outcome") == "unexplained"
        }
    )
    head = (
        f"{target} cp{python.replace('.', '')} in {build['image']['name']}: "
        f"verdict {comparison['verdict']}, {len(unexplained)} unexplained"
        + (f" ({', '.join(unexplained)})" if unexplained else "")
        + f", {wall:.1f} s"
    )
    return [head, *lines]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("releases", nargs="*", default=list(RELEASES), help="target:python")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        for entry in args.releases:
            target, _, python = entry.partition(":")
            report_path = Path(scratch) / "report.json"
            code, wall = _check(target, python or "3.11", report_path)
            if not report_path.is_file():
                print(f"{target}: no report (exit {code})")
                continue
            report = json.loads(report_path.read_text(encoding="utf-8"))
            if not report.get("build") or not report.get("comparison"):
                print(f"{target}: failed (exit {code}): {report.get('failure')}")
                continue
            print("\n".join(_row(target, python or "3.11", report, wall)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
