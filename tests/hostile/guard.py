"""Running one hostile case under watch: its outcome, its time and memory, and the tree around it.

Memory is measured two ways: tracemalloc's peak (every Python and zlib/lzma allocation, all
threads) and the growth of the process's peak resident size (ru_maxrss), which also catches
native allocations tracemalloc does not see. The tree around the work directory is snapshotted
before and after, file contents and link targets included.
"""

from __future__ import annotations

import resource
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path

from compare.wheels import BASE

from rebuild.archive import extract_sdist
from rebuild.compare import compare_wheels
from rebuild.errors import ArchiveError
from rebuild.models import Comparison

from .corpus import SO_NAME, Case, Place, Target, clean_wheel
from .elf import shared_object

MiB = 1024 * 1024
# Files a hostile name aims at, outside every test directory: they must never appear.
WELL_KNOWN = (Path("/tmp/pwned"), Path("/tmp/pwned.py"), Path("/pwned"), Path("/evil.py"))


@dataclass(frozen=True)
class Measured:
    """How one case was handled."""

    case: str
    outcome: str  # "error", "findings" or "extracted"
    message: str
    seconds: float
    peak_bytes: int  # tracemalloc's peak
    rss_growth_bytes: int  # how much the process's peak resident size grew
    comparison: Comparison | None = None
    extracted: Path | None = None


def snapshot(root: Path, *, exclude: tuple[Path, ...] = ()) -> dict[str, str]:
    """Every path under ``root`` outside ``exclude``: type, size and link target."""
    state: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        if any(path == e or e in path.parents for e in exclude):
            continue
        key = str(path.relative_to(root))
        if path.is_symlink():
            state[key] = f"-> {path.readlink()}"
        elif path.is_file():
            state[key] = f"file {path.stat().st_size} {path.read_bytes()[:64]!r}"
        else:
            state[key] = "dir"
    return state


@dataclass(frozen=True)
class Layout:
    """The directories of one run: inputs, the watched outside, and the work directory."""

    root: Path

    @property
    def place(self) -> Place:
        return Place(inputs=self.root / "inputs", outside=self.root / "outside")

    @property
    def work(self) -> Path:
        # Three levels down, so that "../../.." from inside an sdist lands in ``outside``'s
        # parent, which is watched.
        return self.root / "work" / "builds" / "extract"

    def prepare(self) -> None:
        self.place.inputs.mkdir(parents=True)
        self.place.outside.mkdir()
        (self.place.outside / "target").write_text("not to be touched\n")
        (self.place.outside / "secret").write_text("host secret\n")
        self.work.parent.mkdir(parents=True)


def _rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def _clean_side(case: Case, layout: Layout) -> Path | None:
    if case.target is Target.SDIST:
        return None
    members = None
    if case.target is Target.ELF:
        members = {**BASE, SO_NAME: shared_object()}
    return clean_wheel(layout.place.inputs, members)


def run_case(case: Case, root: Path) -> Measured:
    """Build ``case`` under ``root``, handle it, and measure; asserts nothing escaped."""
    layout = Layout(root)
    layout.prepare()
    before = snapshot(root, exclude=(layout.place.inputs, layout.work))
    assert not any(p.exists() for p in WELL_KNOWN)
    # The files are built before the measurement starts: only their handling is measured.
    hostile = case.build(layout.place)
    clean = _clean_side(case, layout)
    rss_before = _rss_bytes()
    if case.traced:
        tracemalloc.start()
    started = time.perf_counter()
    comparison: Comparison | None = None
    extracted: Path | None = None
    try:
        if clean is None:
            extracted = extract_sdist(hostile, layout.work, case.extract_limits)
            outcome = "extracted"
        else:
            comparison = compare_wheels(hostile, clean)
            outcome = "findings"
        message = ""
    except ArchiveError as e:
        outcome, message = "error", e.message
    finally:
        seconds = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1] if case.traced else 0
        tracemalloc.stop()
    rss_growth = _rss_bytes() - rss_before
    peak = peak or rss_growth
    after = snapshot(root, exclude=(layout.place.inputs, layout.work))
    assert after == before, f"{case.name}: something changed outside the work directory"
    assert not any(p.exists() for p in WELL_KNOWN), f"{case.name}: a file escaped"
    return Measured(
        case=case.name,
        outcome=outcome,
        message=message,
        seconds=seconds,
        peak_bytes=peak,
        rss_growth_bytes=rss_growth,
        comparison=comparison,
        extracted=extracted,
    )
