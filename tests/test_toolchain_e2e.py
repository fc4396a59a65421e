"""A compiled wheel rebuilt with the compiler that built it: MarkupSafe 2.1.5 cp39 and cp311.

The published manylinux2014 extensions were built by devtoolset-10's GCC 10.2.1. The bullseye-py39
image has Debian's GCC 10.2.1 and CPython 3.9; bullseye-py311 the same compiler with CPython 3.11
built from source, as manylinux builds its own (no Debian suite pairs GCC 10 with 3.11). With the
producer's flags replayed and Debian's defaults undone, the extension's own functions must come
out with the same instructions.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest
from compare.tamper import flip_branch, tampered_wheel
from conftest import published_wheel

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
# (python, the image the plan must choose): the suite's own CPython, and one built from source.
CASES = [("3.9", "bullseye-py39"), ("3.11", "bullseye-py311")]
OWN_FUNCTIONS = ("escape_unicode", "escape", "escape_silent", "soft_str", "PyInit__speedups")
# A switch's jump table sits in .rodata and holds offsets relative to itself: when the function
# moves against .rodata, the table's bytes change though the code does not. Masked here only.
_RODATA_OPERAND = re.compile(r"\[\.rodata:\[[0-9a-f]+\]\]")


def _extension_name(python: str) -> str:
    return f"markupsafe/_speedups.cpython-{python.replace('.', '')}-x86_64-linux-gnu.so"


def _extension(wheel: Path, python: str) -> ElfImage:
    with zipfile.ZipFile(wheel) as zf:
        return read_elf(zf.read(_extension_name(python)))


Rebuilt = tuple[Report, ElfImage, ElfImage]


@pytest.fixture(scope="module", params=CASES, ids=[python for python, _ in CASES])
def rebuilt(request: pytest.FixtureRequest, shared_cache: Path) -> Rebuilt:
    python, image = request.param
    report = check(
        Target.parse("markupsafe==2.1.5"),
        WheelSelector(python=python, platform="manylinux_2_17_x86_64"),
        CheckOptions(cache_dir=shared_cache),
    )
    assert report.failure is None, report.failure
    assert report.release is not None and report.release.wheel is not None
    assert report.build is not None
    assert report.build.image.name == image
    published = published_wheel(shared_cache, report)
    return report, _extension(published, python), _extension(report.build.wheel, python)


def test_the_plan_matches_gcc_10_by_the_producer_and_replays_its_flags(
    rebuilt: Rebuilt,
) -> None:
    report, _, _ = rebuilt
    assert report.plan is not None and report.build is not None
    chosen = report.plan.toolchain
    assert chosen is not None
    assert chosen.match is ToolchainMatch.EXACT
    assert chosen.evidence is ToolchainEvidence.PRODUCER
    assert (chosen.published, chosen.rebuilt) == ("gcc 10.2.1", "gcc 10.2.1")
    environment = dict(report.build.environment)
    if report.build.image.name == "bullseye-py39":
        # Debian's CPython adds its hardening to every extension: the producer's flags are
        # replayed after it, and the hardening undone.
        flags = ("-mtune=generic", "-march=x86-64", "-g", "-O3", "-fwrapv", "-fPIC")
        assert chosen.replayed == flags
        assert environment["CFLAGS"].endswith(
            "-fno-stack-protector -Wp,-U_FORTIFY_SOURCE -fcf-protection=none"
        )
    else:
        # A CPython built from source gives every extension manylinux's flags by itself:
        # nothing to replay, nothing to undo, and CFLAGS left unset for the rest of the build.
        assert chosen.replayed == () and chosen.undone == ()
        assert "CFLAGS" not in environment


def test_the_own_functions_have_the_published_instructions(
    rebuilt: Rebuilt,
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
    rebuilt: Rebuilt,
) -> None:
    _, published, ours = rebuilt
    changed = {f.name for f in diff_elf(published, ours).functions_changed}
    assert not changed & set(OWN_FUNCTIONS), changed


def test_the_extension_is_verified_and_a_flipped_branch_is_not(
    rebuilt: Rebuilt, shared_cache: Path, tmp_path: Path
) -> None:
    report, _, _ = rebuilt
    assert report.comparison is not None and report.build is not None
    assert report.release is not None and report.release.wheel is not None
    member = _extension_name(report.plan.python if report.plan else "")
    (extension,) = [
        d
        for d in report.comparison.divergences
        if d.member == member and d.kind is DivergenceKind.CONTENT
    ]
    # Same compiler, same flags: code and data match; only the C runtime's and the linker's
    # stubs differ, named by a rule narrower than "another compiler".
    assert extension.outcome is Outcome.VERIFIED, extension.summary
    assert "elf-crt-stubs" in extension.rules
    assert "elf-another-compiler" not in extension.rules
    assert report.comparison.unexplained == ()
    # The same published wheel with one branch flipped: that one function is named. The two
    # objects name two builds of GCC 10.2.1 (Red Hat's 20210130, Debian's 20210110), which do
    # make different code elsewhere (msgpack, below): the difference is attributed, "code not
    # verified", never explained, and escape_unicode is the one own function it names.
    published = published_wheel(shared_cache, report)
    tampered = tampered_wheel(published, tmp_path / published.name, flip_branch)
    comparison = compare_wheels(tampered, report.build.wheel)
    (changed,) = [
        d for d in comparison.divergences if d.member == member and d.kind is DivergenceKind.CONTENT
    ]
    assert changed.outcome is Outcome.ATTRIBUTED
    assert "code not verified" in (changed.explanation or "")
    differing = changed.summary.split("functions differ in code (", 1)[1].split(")", 1)[0]
    assert "escape_unicode" in differing
    assert not {"escape", "escape_silent", "soft_str", "PyInit__speedups"} & {
        name.strip() for name in differing.split(",")
    }
    assert comparison.verdict is Verdict.DIVERGENT
    # Against the rebuild's own compiler build (the rebuilt object with its branch flipped),
    # the same change is unexplained.
    own = tampered_wheel(report.build.wheel, tmp_path / "own" / published.name, flip_branch)
    against_own = compare_wheels(own, report.build.wheel)
    (flipped,) = [
        d
        for d in against_own.divergences
        if d.member == member and d.kind is DivergenceKind.CONTENT
    ]
    assert flipped.outcome is Outcome.UNEXPLAINED
    assert "code differs under the same compiler: escape_unicode" in flipped.summary


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


def _checked_manylinux2014_cp311(spec: str, shared_cache: Path) -> Report:
    """``rebuild check`` of the release's cp311 manylinux2014 wheel, which must not fail."""
    report = check(
        Target.parse(spec),
        WheelSelector(python="3.11", platform="manylinux_2_17_x86_64"),
        CheckOptions(cache_dir=shared_cache),
    )
    assert report.failure is None, report.failure
    return report


def test_msgpack_under_the_matched_compiler_is_attributed_never_explained(
    shared_cache: Path,
) -> None:
    # msgpack 1.0.8 cp311: GCC 10.2.1 on both sides, but Red Hat's snapshot 20210130 against
    # Debian's 20210110, and CPython 3.11.7's headers against the image's 3.11.2. The module's
    # init differs only in PY_VERSION_HEX (named by its rule); what else differs is another
    # compiler build's code: attributed, "code not verified", never explained.
    report = _checked_manylinux2014_cp311("msgpack==1.0.8", shared_cache)
    assert report.build is not None and report.build.image.name == "bullseye-py311"
    assert report.plan is not None and report.plan.toolchain is not None
    assert report.plan.toolchain.match is ToolchainMatch.EXACT
    assert report.comparison is not None
    assert report.comparison.unexplained == ()
    (extension,) = report.comparison.attributed
    assert extension.member == "msgpack/_cmsgpack.cpython-311-x86_64-linux-gnu.so"
    assert extension.outcome is Outcome.ATTRIBUTED
    assert "elf-python-version" in extension.rules
    (attribution,) = [r for r in extension.reasons if r.text.startswith("code not verified")]
    assert "GCC 10.2.1 20210130" in attribution.text and "GCC 10.2.1 20210110" in attribution.text


def test_replayed_flags_add_to_the_interpreters_under_a_setuptools_that_replaces_them(
    shared_cache: Path,
) -> None:
    # wcwidth 0.9.4 (abi3, GCC 10.2.1, setuptools 84.2.1): its producer's -std=c11 is replayed
    # as CFLAGS, which setuptools 75.7.0 and later take instead of sysconfig's. Given alone, the
    # extension was compiled with no -O, no -g, no -DNDEBUG: 353 of 357 functions differed and
    # the invariant checks left it unexplained.
    report = _checked_manylinux2014_cp311("wcwidth==0.9.4", shared_cache)
    assert report.build is not None and "setuptools==84.2.1" in report.build.requirements
    compile_lines = [
        line
        for line in report.build.log_path.read_text().splitlines()
        if line.startswith("gcc ") and " -c " in line
    ]
    assert compile_lines
    assert all("-DNDEBUG -g -fwrapv -O3 -Wall -std=c11 -fPIC" in line for line in compile_lines)
    assert report.comparison is not None
    assert report.comparison.unexplained == ()
    (extension,) = report.comparison.attributed
    assert extension.member == "wcwidth/_wcwidth_c.abi3.so"


def test_a_cxx_extension_of_the_old_string_abi_is_rebuilt_with_it(shared_cache: Path) -> None:
    # kiwisolver 1.5.1 cp311: devtoolset's g++ 10.2.1 builds only the pre-C++11 std::string
    # ABI, Debian's defaults to the new one. Without the define, the old ABI's inline string
    # code was only in the published object and the extension stayed unexplained.
    report = _checked_manylinux2014_cp311("kiwisolver==1.5.1", shared_cache)
    assert report.plan is not None and report.plan.toolchain is not None
    assert ("CXXFLAGS", "-std=c++11 -D_GLIBCXX_USE_CXX11_ABI=0") in (
        report.plan.toolchain.environment
    )
    assert report.comparison is not None
    assert report.comparison.unexplained == ()
    (extension,) = report.comparison.attributed
    assert extension.member == "kiwisolver/_cext.cpython-311-x86_64-linux-gnu.so"
