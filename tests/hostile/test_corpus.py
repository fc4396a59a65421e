"""Every case of the hostile corpus is refused or reported, in bounded time and memory.

Each case runs under :func:`hostile.guard.run_case`, which also asserts that nothing changed
outside the work directory. A comparison that succeeds must carry the expected findings,
unexplained, and never call a hostile wheel reproducible.
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from rebuild.models import Verdict

from .corpus import CORPUS, SDIST_TOP, Case, Target
from .guard import Measured, run_case

MiB = 1024 * 1024


def _check_extracted(case: Case, measured: Measured) -> None:
    top = measured.extracted
    assert top is not None and top.name == SDIST_TOP
    for path in top.rglob("*"):
        info = path.lstat()
        assert stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode) or path.is_symlink()
        assert not info.st_mode & (stat.S_ISUID | stat.S_ISGID), f"{path} kept setuid/setgid"
    if case.name == "sdist-duplicate-file":
        assert (top / "demo" / "__init__.py").read_text() == "ANSWER = 'replaced'\n"


@pytest.mark.parametrize("case", CORPUS, ids=lambda c: c.name)
def test_hostile_input_is_handled(case: Case, tmp_path: Path) -> None:
    measured = run_case(case, tmp_path)
    expect = case.expect
    if expect.error is not None:
        assert measured.outcome == "error", f"{case.name} was not refused: {measured}"
        assert expect.error in measured.message
    elif expect.extracted:
        assert measured.outcome == "extracted", measured.message
        _check_extracted(case, measured)
    else:
        assert measured.outcome == "findings", measured.message
        comparison = measured.comparison
        assert comparison is not None
        assert comparison.verdict is not Verdict.REPRODUCIBLE
        unexplained = {d.kind for d in comparison.unexplained}
        assert expect.findings <= unexplained, sorted(k.value for k in unexplained)
        if case.target is Target.ELF:
            so = [d for d in comparison.unexplained if d.member and d.member.endswith(".so")]
            assert so, "the hostile shared object is not named among the unexplained"
    assert measured.seconds < case.max_seconds, f"{case.name}: {measured.seconds:.1f} s"
    peak = max(measured.peak_bytes, measured.rss_growth_bytes)
    assert peak < case.max_peak_mib * MiB, f"{case.name}: peak {peak / MiB:.1f} MiB"


def test_the_corpus_covers_every_family() -> None:
    names = {c.name for c in CORPUS}
    for needed in (
        "wheel-dotdot-name",
        "wheel-absolute-name",
        "wheel-symlink-out",
        "wheel-device-entries",
        "wheel-duplicate-names",
        "wheel-local-name-differs",
        "wheel-truncated-half",
        "wheel-corrupt-deflate",
        "wheel-bomb-declared",
        "wheel-200001-members",
        "wheel-long-name",
        "wheel-escape-names",
        "wheel-record-lies",
        "wheel-huge-metadata",
        "elf-truncated-header",
        "elf-overlapping-sections",
        "elf-section-out-of-range",
        "elf-section-absurd-size",
        "sdist-dotdot",
        "sdist-absolute",
        "sdist-symlink-relative",
        "sdist-hardlink-absolute",
        "sdist-char-device",
        "sdist-duplicate-file",
        "sdist-truncated",
        "sdist-gzip-bomb",
        "sdist-10001-members",
        "sdist-long-name",
        "sdist-escape-names",
        "sdist-huge-pkg-info",
    ):
        assert needed in names
    assert len(CORPUS) >= 80
