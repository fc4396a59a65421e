"""A compiled wheel rebuilt with the compiler that built it: MarkupSafe 2.1.5 cp39 in bullseye.

The published manylinux2014 extension was built by devtoolset-10's GCC 10.2.1; the bullseye-py39
image has Debian's GCC 10.2.1 and CPython 3.9. With the producer's flags replayed and Debian's
defaults undone, the extension's own functions must come out with the same instructions.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest
from compare.tamper import flip_branch, tampered_wheel

from rebuild.compare import compare_wheels
from rebuild.compare.elf_code import Symboliser, normalise
from rebuild.compare.elf_diff import ElfDiff, diff_elf
from rebuild.compare.elf_read import ElfImage, read_elf
from rebuild.models import (
    DivergenceKind,
    Outcome,
    Report,
    Target,
    ToolchainEvidence,
    ToolchainMatch,
    Verdict,
    WheelSelector,
)
from rebuild.pipeline import CheckOptions, check

pytestmark = [pytest.mark.docker, pytest.mark.network]
EXTENSION = "markupsafe/_speedups.cpython-39-x86_64-linux-gnu.so"
OWN_FUNCTIONS = ("escape_unicode", "escape", "escape_silent", "soft_str", "PyInit__speedups")
# A switch's jump table sits in .rodata and holds offsets relative to itself: when the function
# moves against .rodata, the table's bytes change though the code does not. Masked here only.
_RODATA_OPERAND = re.compile(r"\[\.rodata:\[[0-9a-f]+\]\]")


def _extension(wheel: Path) -> ElfImage:
    with zipfile.ZipFile(wheel) as zf:
        return read_elf(zf.read(EXTENSION))


@pytest.fixture(scope="module")
def rebuilt(shared_cache: Path) -> tuple[Report, ElfImage, ElfImage]:
    report = check(
        Target.parse("markupsafe==2.1.5"),
        WheelSelector(python="3.9", platform="manylinux_2_17_x86_64"),
        CheckOptions(cache_dir=shared_cache),
    )
    assert report.failure is None, report.failure
    assert report.release is not None and report.release.wheel is not None
    assert report.build is not None
    published = next(shared_cache.glob(f"files/sha256/*/*/{report.release.wheel.filename}"))
    return report, _extension(published), _extension(report.build.wheel)


def test_the_plan_matches_gcc_10_by_the_producer_and_replays_its_flags(
    rebuilt: tuple[Report, ElfImage, ElfImage],
) -> None:
    report, _, _ = rebuilt
    assert report.plan is not None and report.build is not None
    assert report.build.image.name == "bullseye-py39"
    chosen = report.plan.toolchain
    assert chosen is not None
    assert chosen.match is ToolchainMatch.EXACT
    assert chosen.evidence is ToolchainEvidence.PRODUCER
    assert (chosen.published, chosen.rebuilt) == ("gcc 10.2.1", "gcc 10.2.1")
    assert chosen.replayed == ("-mtune=generic", "-march=x86-64", "-g", "-O3", "-fwrapv", "-fPIC")
    environment = dict(report.build.environment)
    assert environment["CFLAGS"].endswith(
        "-fno-stack-protector -Wp,-U_FORTIFY_SOURCE -fcf-protection=none"
    )


def test_the_own_functions_have_the_published_instructions(
    rebuilt: tuple[Report, ElfImage, ElfImage],
) -> None:
    _, published, ours = rebuilt
    diff: ElfDiff = diff_elf(published, ours)
    changed = {f.name for f in diff.functions_changed}
    assert diff.functions_compared >= len(OWN_FUNCTIONS)
    for name in OWN_FUNCTIONS:
        assert _instructions(published, name) == _instructions(ours, name), name
    # What the comparison itself says, switch jump tables followed to their case labels.
    assert not changed & set(OWN_FUNCTIONS), changed


def test_the_comparison_finds_every_own_function_identical(
    rebuilt: tuple[Report, ElfImage, ElfImage],
) -> None:
    _, published, ours = rebuilt
    changed = {f.name for f in diff_elf(published, ours).functions_changed}
    assert not changed & set(OWN_FUNCTIONS), changed


def test_the_extension_is_verified_and_a_flipped_branch_is_not(
    rebuilt: tuple[Report, ElfImage, ElfImage], shared_cache: Path, tmp_path: Path
) -> None:
    report, _, _ = rebuilt
    assert report.comparison is not None and report.build is not None
    assert report.release is not None and report.release.wheel is not None
    (extension,) = [
        d
        for d in report.comparison.divergences
        if d.member == EXTENSION and d.kind is DivergenceKind.CONTENT
    ]
    # Same compiler, same flags: code and data match; only the C runtime's and the linker's
    # stubs differ, named by a rule narrower than "another compiler".
    assert extension.outcome is Outcome.VERIFIED, extension.summary
    assert "elf-crt-stubs" in extension.rules
    assert "elf-another-compiler" not in extension.rules
    assert report.comparison.unexplained == ()
    # The same published wheel with one branch flipped: that one function is named.
    published = next(shared_cache.glob(f"files/sha256/*/*/{report.release.wheel.filename}"))
    tampered = tampered_wheel(published, tmp_path / published.name, flip_branch)
    comparison = compare_wheels(tampered, report.build.wheel)
    (changed,) = [
        d
        for d in comparison.divergences
        if d.member == EXTENSION and d.kind is DivergenceKind.CONTENT
    ]
    assert changed.outcome is Outcome.UNEXPLAINED
    assert "code differs under the same compiler: escape_unicode" in changed.summary
    assert comparison.verdict is Verdict.DIVERGENT


def _instructions(image: ElfImage, name: str) -> tuple[str, ...]:
    symbol = next(s for s in image.symbols if s.name == name and s.defined)
    code = normalise(image.bytes_at(symbol.value, symbol.size), symbol.value, Symboliser(image))
    assert code is not None
    return tuple(_RODATA_OPERAND.sub("[.rodata:table]", line) for line in code)


def test_a_compiled_cp313_wheel_is_checked_in_trixie(shared_cache: Path) -> None:
    # CPython 3.13 is trixie's: MarkupSafe 3.0.2's manylinux2014 cp313 wheel (GCC 10.2.1) is
    # rebuilt there by GCC 14.2.0, so its extension can only be attributed, never explained.
    report = check(
        Target.parse("markupsafe==3.0.2"),
        WheelSelector(python="3.13", platform="manylinux_2_17_x86_64"),
        CheckOptions(cache_dir=shared_cache),
    )
    assert report.failure is None, report.failure
    assert report.build is not None and report.build.image.name == "trixie-py313"
    assert report.comparison is not None
    assert report.comparison.unexplained == ()
    (extension,) = report.comparison.attributed
    assert extension.member == "markupsafe/_speedups.cpython-313-x86_64-linux-gnu.so"
    assert report.verdict is Verdict.DIVERGENT
