"""Benchmark: `rebuild compare` beside its peers, diffoscope and the inflate+sha256 floor.

One run prints every figure beside its peer:

- start-up: `python -c "import rebuild.compare"` against `python -c pass`;
- the published wheel (by default numpy 1.26.4, cp311, manylinux x86_64, 18 MB) against a copy
  with one line added to one `.py` member and RECORD rewritten to match — what a careful
  attacker would ship — beside diffoscope and the floor: inflating and hashing every member of
  both wheels, which any comparison that checks RECORD must do;
- with `--rebuilt` (or a rebuild of the target found among `rebuild check`'s results in the
  cache), the published wheel against that real rebuild, beside diffoscope and the floor.

Both tools must reach a verdict ("different", exit 1). Peak memory is shown twice: the largest
process (GNU time's %M) and the whole process tree, sampled (the comparison's worker
processes are the tree's).

    .venv/bin/python benchmarks/compare.py                       # numpy 1.26.4, all rows
    .venv/bin/python benchmarks/compare.py --rebuilt R.whl       # that rebuild for the last row
    .venv/bin/python benchmarks/compare.py --wheel BIG.whl       # any wheel at hand
    .venv/bin/python benchmarks/compare.py --synthetic-gib 1     # a generated wheel of 1 GiB
    .venv/bin/python benchmarks/compare.py --pair PUBLISHED.whl REBUILT.whl   # only this pair
    .venv/bin/python benchmarks/compare.py --patch-extension     # one byte of code changed

Lines of output are counted too: what a reviewer has to read to reach the verdict.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from _bytecode import compile_installed
from elftools.elf.elffile import ELFFile

from rebuild.fetch import Cache, default_cache_dir
from rebuild.index import IndexClient, choose_index_url
from rebuild.models import Target, WheelSelector

DEFAULT_TARGET = "numpy==1.26.4"
INJECTED = b"__import__('os').getenv('REBUILD_BENCHMARK')  # injected line\n"


@dataclass(frozen=True)
class Measurement:
    tool: str
    seconds: float
    peak_mib: float  # the largest process
    exit_code: int
    lines: int
    tree_mib: float = 0.0  # the whole process tree, sampled


def _tree_rss(root: int) -> int:
    """Resident bytes of ``root`` and all its descendants, from /proc."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    page = os.sysconf("SC_PAGE_SIZE")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            statm = (entry / "statm").read_text()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()
        parents[int(entry.name)] = int(fields[1])
        rss[int(entry.name)] = int(statm.split()[1]) * page
    tree, frontier = {root}, [root]
    while frontier:
        pid = frontier.pop()
        children = [c for c, p in parents.items() if p == pid and c not in tree]
        tree.update(children)
        frontier.extend(children)
    return sum(rss.get(pid, 0) for pid in tree)


class _TreeSampler(threading.Thread):
    """The peak of :func:`_tree_rss` while a process runs, sampled every 50 ms."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.05):
            self.peak = max(self.peak, _tree_rss(self.pid))


def measure(tool: str, argv: list[str]) -> Measurement:
    """Run ``argv`` under GNU time: wall time and peak RSS (the largest process of the tree).

    GNU time rather than this process's own wait4: a child forked from this (large) Python
    process would be charged with its parent's memory until it executes the tool.
    """
    gnu_time = shutil.which("time") or "/usr/bin/time"
    if not Path(gnu_time).exists():
        raise SystemExit("GNU time is needed for memory figures: apt-get install time")
    with (
        tempfile.NamedTemporaryFile("r", suffix=".rss") as rss,
        tempfile.TemporaryFile("w+b") as output,
    ):
        start = time.perf_counter()
        process = subprocess.Popen(
            [gnu_time, "-f", "%M", "-o", rss.name, *argv],
            stdout=output,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "COLUMNS": "100"},
        )
        sampler = _TreeSampler(process.pid)
        sampler.start()
        returncode = process.wait()
        seconds = time.perf_counter() - start
        sampler.done.set()
        sampler.join()
        peak_kib = int(rss.read().split()[-1])
        output.seek(0)
        lines = sum(1 for _ in output)
    return Measurement(tool, seconds, peak_kib / 1024, returncode, lines, sampler.peak / 2**20)


FLOOR = """
import hashlib, sys, zipfile
for path in sys.argv[1:]:
    with zipfile.ZipFile(path) as wheel:
        for info in wheel.infolist():
            sha = hashlib.sha256()
            with wheel.open(info) as stream:
                while chunk := stream.read(1 << 20):
                    sha.update(chunk)
"""


def floor(*wheels: Path) -> Measurement:
    """Inflating and hashing every member of the wheels, one after the other: the floor."""
    return measure("inflate+sha256", [sys.executable, "-c", FLOOR, *map(str, wheels)])


def record_digest(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def tamper(published: Path, out: Path) -> str:
    """Copy the wheel, add one line to its first `.py` member, rewrite RECORD to match."""
    with zipfile.ZipFile(published) as src:
        infos = src.infolist()
        victim = next(i.filename for i in infos if i.filename.endswith(".py"))
        record = next(i.filename for i in infos if i.filename.endswith(".dist-info/RECORD"))
        with zipfile.ZipFile(out, "w") as dst:
            new_member = b""
            for info in infos:
                if info.filename == record:
                    continue
                with src.open(info) as stream:
                    data = stream.read()
                if info.filename == victim:
                    data = data + INJECTED
                    new_member = data
                dst.writestr(info, data, compress_type=info.compress_type)
            rows = []
            for line in src.read(record).decode().splitlines():
                name = line.split(",", 1)[0]
                if name == victim:
                    line = f"{name},{record_digest(new_member)},{len(new_member)}"
                rows.append(line)
            record_info = src.getinfo(record)
            dst.writestr(record_info, ("\n".join(rows) + "\n").encode())
    return victim


def patch_code(data: bytes) -> bytes:
    """The shared object with one byte of its .text changed: a patched extension module."""
    with io.BytesIO(data) as stream:
        text = ELFFile(stream).get_section_by_name(".text")
        if text is None:
            raise SystemExit("the extension has no .text section")
        where = text["sh_offset"] + text["sh_size"] // 2
    patched = bytearray(data)
    patched[where] ^= 0x01
    return bytes(patched)


def tamper_extension(published: Path, out: Path) -> str:
    """Copy the wheel with one byte of its largest extension's code changed, RECORD to match."""
    with zipfile.ZipFile(published) as src:
        infos = src.infolist()
        victim = max(
            (i for i in infos if i.filename.endswith(".so")), key=lambda i: i.file_size
        ).filename
        record = next(i.filename for i in infos if i.filename.endswith(".dist-info/RECORD"))
        changed = patch_code(src.read(victim))
        with zipfile.ZipFile(out, "w") as dst:
            for info in infos:
                data = src.read(info)
                if info.filename == victim:
                    data = changed
                elif info.filename == record:
                    rows = [
                        f"{victim},{record_digest(changed)},{len(changed)}"
                        if row.startswith(f"{victim},")
                        else row
                        for row in data.decode().splitlines()
                    ]
                    data = ("\n".join(rows) + "\n").encode()
                dst.writestr(info, data, compress_type=info.compress_type)
    return victim


def synthetic(path: Path, gib: float) -> Path:
    """A wheel of about ``gib`` GiB of incompressible data in 64 MiB members, and a .py file."""
    chunk = 64 * 1024 * 1024
    members = max(1, int(gib * 1024 * 1024 * 1024 // chunk))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("big/__init__.py", b"VALUE = 1\n")
        rows = []
        for n in range(members):
            data = os.urandom(chunk)
            zf.writestr(f"big/blob{n:03}.bin", data)
            rows.append(f"big/blob{n:03}.bin,{record_digest(data)},{len(data)}")
        rows.insert(0, f"big/__init__.py,{record_digest(b'VALUE = 1')},10")
        rows.append("big-1.0.dist-info/RECORD,,")
        zf.writestr("big-1.0.dist-info/WHEEL", b"Wheel-Version: 1.0\nGenerator: bench\n")
        zf.writestr("big-1.0.dist-info/RECORD", ("\n".join(rows) + "\n").encode())
    return path


def published_wheel(spec: str) -> Path:
    release = IndexClient(choose_index_url(None)).resolve(
        Target.parse(spec), WheelSelector(python="3.11", platform="manylinux_2_17_x86_64")
    )
    if release.wheel is None:
        raise SystemExit(f"{spec} has no cp311 manylinux wheel")
    return Cache(default_cache_dir()).fetch(release.wheel).path


def cached_rebuild(spec: str) -> Path | None:
    """The newest wheel `rebuild check` left for ``spec`` in the cache's results, if any."""
    target = Target.parse(spec)
    results = default_cache_dir() / "results"
    found = sorted(
        results.glob(f"{target.project}-{target.version}-*/*.whl"), key=lambda p: p.stat().st_mtime
    )
    return found[-1] if found else None


def startup(runs: int = 5) -> list[Measurement]:
    """The median of ``runs`` starts: importing the compare stage, and a bare interpreter."""
    rows = []
    for tool, code in (
        ("import rebuild.compare", "import rebuild.compare"),
        ("python -c pass", "pass"),
    ):
        times = sorted(
            (measure(tool, [sys.executable, "-c", code]) for _ in range(runs)),
            key=lambda m: m.seconds,
        )
        rows.append(times[len(times) // 2])
    return rows


def compare_rows(published: Path, other: Path, *, diffoscope: bool) -> list[Measurement]:
    """`rebuild compare`, diffoscope and the floor on one pair, one after the other."""
    results = [
        measure(
            "rebuild compare",
            [sys.executable, "-m", "rebuild", "compare", str(published), str(other)],
        )
    ]
    found = shutil.which("diffoscope")
    if diffoscope and found:
        results.append(measure("diffoscope", [found, "--text", "-", str(published), str(other)]))
    elif diffoscope:
        print("diffoscope not found (apt-get install diffoscope-minimal): not run")
    results.append(floor(published, other))
    return results


def show(title: str, results: list[Measurement]) -> bool:
    """Print one pair's rows and the ratios; False when a tool reached no verdict."""
    print(f"\n{title}")
    print(
        f"  {'tool':<24} {'seconds':>8} {'peak MiB':>9} {'tree MiB':>9} {'lines':>10} {'exit':>5}"
    )
    for r in results:
        print(
            f"  {r.tool:<24} {r.seconds:>8.2f} {r.peak_mib:>9.1f} {r.tree_mib:>9.1f} "
            f"{r.lines:>10,} {r.exit_code:>5}"
        )
    by_tool = {r.tool: r for r in results}
    ours = by_tool.get("rebuild compare")
    if ours is None:
        return True
    ok = True
    for r in results:
        # Both tools exit 1 for "different": anything else means no verdict was reached.
        if r.tool in ("rebuild compare", "diffoscope") and r.exit_code != 1:
            print(f"  {r.tool} did not reach the verdict 'different' (exit {r.exit_code})")
            ok = False
    theirs = by_tool.get("diffoscope")
    if theirs is not None:
        print(
            f"  rebuild is {theirs.seconds / ours.seconds:.1f}x faster than diffoscope, uses "
            f"{theirs.tree_mib / ours.tree_mib:.1f}x less memory (tree), prints "
            f"{theirs.lines / max(ours.lines, 1):.0f}x fewer lines"
        )
    base = by_tool.get("inflate+sha256")
    if base is not None:
        print(f"  rebuild takes {ours.seconds / base.seconds:.1f}x the inflate+sha256 floor")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--target", default=DEFAULT_TARGET, help="NAME==VERSION on the index")
    source.add_argument("--wheel", type=Path, help="a wheel file at hand")
    source.add_argument("--synthetic-gib", type=float, help="generate a wheel of this size")
    source.add_argument(
        "--pair", nargs=2, type=Path, metavar=("PUBLISHED", "REBUILT"), help="compare only these"
    )
    parser.add_argument(
        "--rebuilt", type=Path, help="the target's rebuild (default: the newest in the cache)"
    )
    parser.add_argument("--no-diffoscope", action="store_true", help="leave diffoscope out")
    parser.add_argument(
        "--patch-extension",
        action="store_true",
        help="change one byte of the largest extension's code instead of a .py line",
    )
    args = parser.parse_args()
    compile_installed()  # as installed: see benchmarks/_bytecode.py
    diffoscope = not args.no_diffoscope
    ok = True

    with tempfile.TemporaryDirectory(prefix="rebuild-bench-") as tmp:
        work = Path(tmp)
        if args.pair:
            published, other = args.pair
            return (
                0
                if show(
                    f"pair: {published.name} vs {other.name}",
                    compare_rows(published, other, diffoscope=diffoscope),
                )
                else 1
            )
        ok = show("start-up (median of 5)", startup()) and ok
        rebuilt: Path | None = None
        if args.synthetic_gib:
            published = synthetic(work / "big-1.0-py3-none-any.whl", args.synthetic_gib)
        elif args.wheel:
            published = args.wheel
        else:
            published = published_wheel(args.target)
            rebuilt = args.rebuilt or cached_rebuild(args.target)
        (work / "tampered").mkdir()
        other = work / "tampered" / published.name
        size_mib = published.stat().st_size / 2**20
        if args.patch_extension:
            victim = tamper_extension(published, other)
            change = "one byte of .text changed in"
        else:
            victim = tamper(published, other)
            change = "one line added to"
        title = f"{published.name} ({size_mib:,.1f} MiB) vs a copy: {change} {victim}"
        ok = show(title, compare_rows(published, other, diffoscope=diffoscope)) and ok
        if rebuilt is not None:
            title = f"{published.name} vs its rebuild {rebuilt}"
            ok = show(title, compare_rows(published, rebuilt, diffoscope=diffoscope)) and ok
        elif not (args.synthetic_gib or args.wheel):
            print(f"\nno rebuild of {args.target} in the cache: run `rebuild check` once")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
