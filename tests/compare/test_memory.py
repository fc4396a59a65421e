"""Bounded reading: members are streamed, never held whole, and read once for hashing."""

from __future__ import annotations

import resource
import tracemalloc
import zipfile
from pathlib import Path

from rebuild.compare import CompareLimits, compare_wheels
from rebuild.models import Verdict

from .wheels import make_wheel, stream_member, with_comment

MiB = 1024 * 1024
BIG = 300 * MiB


def test_a_large_member_is_compared_in_bounded_memory(tmp_path: Path) -> None:
    pub = stream_member(tmp_path / "p.whl", "demo/zeros.bin", BIG)
    reb = with_comment(pub, tmp_path / "r.whl", b"rebuilt")
    tracemalloc.start()
    try:
        result = compare_wheels(pub, reb, limits=CompareLimits(max_member_ratio=10**6))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.verdict is Verdict.EQUIVALENT  # only the archive comment differs
    assert result.identical_members == 1
    assert peak < 16 * MiB, f"peak {peak / MiB:.1f} MiB while comparing a {BIG // MiB} MiB member"
    # ru_maxrss is in KiB on Linux; the whole test process stays below the member's size.
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 < BIG


def test_each_member_is_read_once_for_hashing(tmp_path: Path, opened: list[str]) -> None:
    pub = make_wheel(tmp_path / "p.whl")
    # Stored differently (no compression): every member of both wheels is decompressed, once.
    reb = make_wheel(tmp_path / "r.whl", compression=zipfile.ZIP_STORED)
    assert compare_wheels(pub, reb).verdict is Verdict.EQUIVALENT
    assert len(opened) == len(set(opened)) == 10


def test_members_stored_identically_are_decompressed_once(
    tmp_path: Path, opened: list[str]
) -> None:
    pub = make_wheel(tmp_path / "p.whl")
    reb = make_wheel(
        tmp_path / "r.whl",
        timestamp=(2000, 1, 1, 0, 0, 0),
        changes={"demo/core.py": b"def answer():\n    return 43\n"},
    )
    result = compare_wheels(pub, reb)
    assert result.verdict is Verdict.DIVERGENT
    # Same stored bytes under the same method: the published side's decompression serves both.
    # Only the changed member and the RECORD that lists it are read on the rebuilt side (for the
    # hash, then again by the analysers for the diff).
    rebuilt_reads = {name for name in opened if name.startswith("r.whl:")}
    assert rebuilt_reads == {"r.whl:demo-1.0.dist-info/RECORD", "r.whl:demo/core.py"}
    assert len({name for name in opened if name.startswith("p.whl:")}) == 5
    assert [d.member for d in result.unexplained] == ["demo/core.py"]
