"""Benchmark: `rebuild compare` against diffoscope on a published wheel and a tampered copy.

The pair is the published wheel (by default numpy 1.26.4, cp311, manylinux x86_64, 18 MB) and a
copy of it with one line added to one `.py` member and RECORD rewritten to match — what a careful
attacker would ship. Both tools must reach a verdict ("different"); the script prints wall time
and peak memory (max RSS of the process tree's largest member) side by side, and the ratio.

    .venv/bin/python benchmarks/compare.py                       # numpy 1.26.4
    .venv/bin/python benchmarks/compare.py --wheel BIG.whl       # any wheel at hand
    .venv/bin/python benchmarks/compare.py --synthetic-gib 1     # a generated wheel of 1 GiB
    .venv/bin/python benchmarks/compare.py --pair PUBLISHED.whl REBUILT.whl   # a real rebuild
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
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

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
    peak_mib: float
    exit_code: int
    lines: int


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
        done = subprocess.run(
            [gnu_time, "-f", "%M", "-o", rss.name, *argv],
            stdout=output,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "COLUMNS": "100"},
            check=False,
        )
        seconds = time.perf_counter() - start
        peak_kib = int(rss.read().split()[-1])
        output.seek(0)
        lines = sum(1 for _ in output)
    return Measurement(tool, seconds, peak_kib / 1024, done.returncode, lines)


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--target", default=DEFAULT_TARGET, help="NAME==VERSION on the index")
    source.add_argument("--wheel", type=Path, help="a wheel file at hand")
    source.add_argument("--synthetic-gib", type=float, help="generate a wheel of this size")
    source.add_argument(
        "--pair", nargs=2, type=Path, metavar=("PUBLISHED", "REBUILT"), help="compare these two"
    )
    parser.add_argument("--no-diffoscope", action="store_true", help="time rebuild only")
    parser.add_argument(
        "--patch-extension",
        action="store_true",
        help="change one byte of the largest extension's code instead of a .py line",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="rebuild-bench-") as tmp:
        work = Path(tmp)
        if args.pair:
            published, other = args.pair
            print(f"pair: {published} vs {other}")
        else:
            if args.synthetic_gib:
                published = synthetic(work / "big-1.0-py3-none-any.whl", args.synthetic_gib)
            elif args.wheel:
                published = args.wheel
            else:
                published = published_wheel(args.target)
            (work / "tampered").mkdir()
            other = work / "tampered" / published.name
            size_mib = published.stat().st_size / 2**20
            if args.patch_extension:
                victim = tamper_extension(published, other)
                change = "one byte of .text changed in"
            else:
                victim = tamper(published, other)
                change = "one line added to"
            print(f"wheel: {published.name} ({size_mib:,.1f} MiB); {change} {victim}")

        results = [
            measure(
                "rebuild compare",
                [sys.executable, "-m", "rebuild", "compare", str(published), str(other)],
            )
        ]
        diffoscope = shutil.which("diffoscope")
        if not args.no_diffoscope and diffoscope:
            results.append(
                measure("diffoscope", [diffoscope, "--text", "-", str(published), str(other)])
            )
        elif not args.no_diffoscope:
            print("diffoscope not found (apt-get install diffoscope-minimal): rebuild timed alone")

    print(f"{'tool':<16} {'seconds':>9} {'peak MiB':>9} {'lines':>9} {'exit':>5}")
    for r in results:
        print(f"{r.tool:<16} {r.seconds:>9.2f} {r.peak_mib:>9.1f} {r.lines:>9,} {r.exit_code:>5}")
    for r in results:
        # Both tools exit 1 for "different": anything else means no verdict was reached.
        if r.exit_code != 1:
            print(f"{r.tool} did not reach the verdict 'different' (exit {r.exit_code})")
            return 1
    if len(results) == 2:
        ours, theirs = results
        print(
            f"rebuild is {theirs.seconds / ours.seconds:.1f}x faster, uses "
            f"{theirs.peak_mib / ours.peak_mib:.1f}x less peak memory, prints "
            f"{theirs.lines / max(ours.lines, 1):.0f}x fewer lines"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
