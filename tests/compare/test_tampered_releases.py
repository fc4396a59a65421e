"""A tamper corpus made from a real published wheel: every kind must come out unexplained.

MarkupSafe 2.1.5's cp311 manylinux wheel (built upstream by GCC 10.2.1) is patched in place, one
kind of tampering at a time, with its RECORD rewritten to match, the way an attacker would ship
it. Each tampered wheel is compared twice: with the published wheel itself (the same compiler,
so code is compared instruction for instruction) and with the wheel rebuilt here by bookworm's
GCC 12 (another compiler, where only the toolchain-invariant checks can tell). In both, the
extension must be unexplained and first in the report, and the verdict divergent; the honest
wheel must have nothing unexplained. The one kind another compiler cannot reveal, a flipped
branch, is attributed ("code not verified") there, and named by the same-compiler comparison.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import published_wheel
from helpers_index import (
    file_entry,
    from_the_real_index,
    json_reply,
    local_server,
    project_page,
)

from compare.tamper import PATCHES, extension_member, tampered_wheel
from rebuild.compare import compare_wheels
from rebuild.compare.rules import explain_expected
from rebuild.errors import EXIT_DIVERGENT, EXIT_NEEDS_REVIEW
from rebuild.models import Comparison, Outcome, Report, Verdict

# What the comparison with the GCC 12 rebuild must name for each kind ("" = attributed).
SEEN_BY_ANOTHER_COMPILER = {
    "branch-flipped": "",
    "string-injected": "strings",
    "comment-and-code": "syscalls",
    "constructor-retargeted": "constructors",
    "methods-swapped": "relocations",
    "syscall-added": "syscalls",
    "call-added": "calls",
}


def _published(report: Report) -> Path:
    cache = report.build.wheel.parents[2] if report.build else None
    assert cache is not None
    return published_wheel(cache, report)


def _compared(published: Path, rebuilt: Path, report: Report) -> Comparison:
    expected = report.plan.expected if report.plan else ()
    return explain_expected(compare_wheels(published, rebuilt), expected)


@pytest.mark.docker
@pytest.mark.network
def test_the_honest_wheel_has_nothing_unexplained(markupsafe_check: Report) -> None:
    comparison = markupsafe_check.comparison
    assert comparison is not None
    assert comparison.unexplained == ()
    (extension,) = comparison.attributed
    assert extension.findings == ()
    assert "code not verified" in (extension.explanation or "")


@pytest.mark.network
@pytest.mark.docker
@pytest.mark.parametrize("kind", sorted(PATCHES))
def test_each_tampering_is_unexplained_under_the_same_compiler(
    kind: str, markupsafe_check: Report, tmp_path: Path
) -> None:
    published = _published(markupsafe_check)
    tampered = tampered_wheel(published, tmp_path / published.name, PATCHES[kind])
    comparison = compare_wheels(tampered, published)
    assert comparison.verdict is Verdict.DIVERGENT
    first = comparison.divergences[0]
    assert first.member == extension_member(published)
    assert first.outcome is Outcome.UNEXPLAINED, first.summary


@pytest.mark.network
@pytest.mark.docker
@pytest.mark.parametrize("kind", sorted(PATCHES))
def test_each_tampering_against_another_compiler(
    kind: str, markupsafe_check: Report, tmp_path: Path
) -> None:
    assert markupsafe_check.build is not None
    published = _published(markupsafe_check)
    tampered = tampered_wheel(published, tmp_path / published.name, PATCHES[kind])
    comparison = _compared(tampered, markupsafe_check.build.wheel, markupsafe_check)
    assert comparison.verdict is Verdict.DIVERGENT
    first = comparison.divergences[0]
    assert first.member == extension_member(published)
    check = SEEN_BY_ANOTHER_COMPILER[kind]
    if not check:
        # No invariant sees a flipped branch under another compiler: attributed, never explained,
        # and the report says the code was not verified.
        assert first.outcome is Outcome.ATTRIBUTED
        return
    assert first.outcome is Outcome.UNEXPLAINED, first.summary
    assert "invariants" in first.aspects
    assert any(f.check == check for f in first.findings), first.findings
    assert "only in the published object" in first.summary


@pytest.mark.network
@pytest.mark.docker
def test_a_tampered_wheel_fails_check_and_the_batch_gate(
    markupsafe_check: Report, shared_cache: Path, tmp_path: Path
) -> None:
    release = markupsafe_check.release
    assert release is not None and release.wheel is not None and release.sdist is not None
    published = _published(markupsafe_check)
    tampered = tampered_wheel(published, tmp_path / "t" / published.name, PATCHES["syscall-added"])
    rebuild = [sys.executable, "-m", "rebuild"]
    cache = ["--cache-dir", str(shared_cache)]
    checked = subprocess.run(
        [*rebuild, "check", "markupsafe==2.1.5", "--wheel", str(tampered), *cache],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == EXIT_DIVERGENT, checked.stdout + checked.stderr
    unexplained = checked.stdout.index("Unexplained")
    assert checked.stdout.index("_speedups", unexplained) > unexplained
    # The same wheel served by an index: the nightly batch's gate fails.
    sdist = next((shared_cache / "files").rglob(release.sdist.filename))
    uploaded = release.wheel.upload_time.isoformat() if release.wheel.upload_time else None
    with local_server() as server:
        # Every other project (the build requirements) as the real index serves it.
        server.fallback = from_the_real_index
        files = [
            file_entry(server, path.name, path.read_bytes(), **{"upload-time": uploaded})
            for path in (tampered, sdist)
        ]
        server.route("/simple/markupsafe/", json_reply(project_page("markupsafe", files, None)))
        deps = tmp_path / "deps.txt"
        deps.write_text("markupsafe==2.1.5\n")
        summary = tmp_path / "summary.json"
        batch = subprocess.run(
            [
                *rebuild,
                "batch",
                str(deps),
                "--store",
                str(tmp_path / "store.sqlite"),
                "--index-url",
                server.url("/simple/"),
                "--python",
                "3.11",
                "--platform",
                "manylinux_2_17_x86_64",
                "--json",
                str(summary),
                *cache,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
    assert batch.returncode == EXIT_NEEDS_REVIEW, batch.stdout + batch.stderr
    document = json.loads(summary.read_text())
    assert "unexplained" in json.dumps(document)
