"""Benchmark: false alarms of the toolchain-invariant checks on an honest published/rebuilt pair.

Given a published wheel and the wheel rebuilt from the same source by another compiler (e.g. the
one `rebuild check NAME==VER --keep-workdir` leaves in the cache's results/), every shared object
present in both is read and compared with :func:`rebuild.compare.elf_diff.diff_elf`, which runs
the invariant checks. On an honest pair every finding is a false alarm. Prints one line per
object (findings, seconds) and a total; `--show N` lists the first N findings of each object.

    .venv/bin/python benchmarks/invariants.py PUBLISHED.whl REBUILT.whl [--show 20]
"""

from __future__ import annotations

import argparse
import time
import zipfile
from pathlib import Path

from rebuild.compare.elf_diff import diff_elf
from rebuild.compare.elf_read import read_elf
from rebuild.errors import ArchiveError


def _objects(wheel: Path) -> dict[str, bytes]:
    # Each script runs on its own (python benchmarks/NAME.py): no shared helper module.
    with zipfile.ZipFile(wheel) as archive:
        return {
            info.filename: archive.read(info)
            for info in archive.infolist()
            if ".so" in info.filename.rsplit("/", 1)[-1] and not info.filename.endswith("/")
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("published", type=Path)
    parser.add_argument("rebuilt", type=Path)
    parser.add_argument("--show", type=int, default=5, help="findings listed per object")
    args = parser.parse_args()
    published, rebuilt = _objects(args.published), _objects(args.rebuilt)
    pairs = sorted(set(published) & set(rebuilt))
    total_findings = 0
    started = time.monotonic()
    for name in pairs:
        began = time.monotonic()
        try:
            # As the comparison runs them (imports paired by symbol suffix passed in).
            found = diff_elf(read_elf(published[name]), read_elf(rebuilt[name])).findings
        except ArchiveError as e:
            print(f"{name}: not ELF ({e})")
            continue
        total_findings += len(found)
        print(f"{len(found):5} findings  {time.monotonic() - began:6.2f} s  {name}")
        for finding in found[: args.show]:
            print(f"        {finding.check.value}: {finding.what}  in {finding.where}")
    print(
        f"{args.published.name}: {len(pairs)} objects, {total_findings} findings "
        f"(false alarms on an honest pair), {time.monotonic() - started:.2f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
