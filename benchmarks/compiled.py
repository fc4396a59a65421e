"""Benchmark: compiled members of a published wheel against its rebuild, function by function.

For each shared object both wheels hold: the compiler each side names (its own claim), how many
functions were compared, how many are the same (byte for byte, or the same instructions once
targets are named), which differ, the toolchain-invariant findings, and the outcome the
comparison gives (verified / attributed / unexplained; a recipe's expectations not applied). The
peer is the published wheel itself: the figures say how much of upstream's code the rebuild
reproduces.

    .venv/bin/python benchmarks/compiled.py PUBLISHED.whl REBUILT.whl
"""

from __future__ import annotations

import argparse
import time
import zipfile
from pathlib import Path

from rebuild.compare.elf_diff import diff_elf
from rebuild.compare.elf_read import read_elf
from rebuild.compare.elf_rules import judge, toolchain_label
from rebuild.errors import ArchiveError

SHOWN = 6  # differing functions named per object


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
    args = parser.parse_args()
    published, rebuilt = _objects(args.published), _objects(args.rebuilt)
    # What auditwheel grafted into the published wheel (<pkg>.libs/), as the comparison has it.
    grafted = frozenset(
        n.rpartition("/")[2] for n in published if n.partition("/")[0].endswith(".libs")
    )
    totals = {"objects": 0, "compared": 0, "same": 0, "differ": 0}
    started = time.monotonic()
    for name in sorted(set(published) & set(rebuilt)):
        if published[name] == rebuilt[name]:
            print(f"{name}: byte-identical")
            continue
        began = time.monotonic()
        try:
            diff = diff_elf(read_elf(published[name]), read_elf(rebuilt[name]), grafted=grafted)
        except ArchiveError as e:
            print(f"{name}: not ELF ({e})")
            continue
        judgement = judge(diff)
        same = diff.functions_identical + diff.functions_moved
        changed = [c.name for c in diff.functions_changed]
        totals["objects"] += 1
        totals["compared"] += diff.functions_compared
        totals["same"] += same
        totals["differ"] += len(changed)
        share = 100 * same / diff.functions_compared if diff.functions_compared else 0.0
        print(
            f"{name}\n"
            f"  compilers  {toolchain_label(diff.toolchain.published)} vs "
            f"{toolchain_label(diff.toolchain.rebuilt)}\n"
            f"  functions  {diff.functions_compared:,} compared, {same:,} the same ({share:.1f}%), "
            f"{len(changed):,} differ: {', '.join(changed[:SHOWN])}"
            + (f" … +{len(changed) - SHOWN}" if len(changed) > SHOWN else "")
            + f"\n  invariants {len(diff.findings)} finding(s)"
            f"\n  outcome    {judgement.outcome.value}"
            + (
                f" ({', '.join(sorted(a.value for a in judgement.unexplained))})"
                if judgement.unexplained
                else ""
            )
            + f"\n  time       {time.monotonic() - began:.2f} s"
        )
    print(
        f"{args.published.name}: {totals['objects']} differing objects, {totals['compared']:,} "
        f"functions compared, {totals['same']:,} the same, {totals['differ']:,} differ, "
        f"{time.monotonic() - started:.1f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
