"""The terminal report stays one screen: compiled members one line each, every reason said once."""

from __future__ import annotations

from rich.console import Console

from rebuild.compare.rules import CONTAINER_ONLY
from rebuild.models import (
    Comparison,
    Divergence,
    DivergenceKind,
    Origin,
    Outcome,
    Reason,
    Verdict,
    WheelInfo,
)
from rebuild.report.terminal import comparison_renderables

SUFFIX = ".cpython-311-x86_64-linux-gnu.so"
TOOLCHAINS = "GCC 10.2.1 (Red Hat) vs GCC 12.2.0 (Debian)"
TOOLCHAIN = Reason(
    "elf-another-compiler",
    f"code not verified: built by another compiler ({TOOLCHAINS})",
    Origin.PUBLISHER,
)
LIBC = Reason("elf-libc-routines", "another C library: routines imported differently")
RECIPE = Reason("recipe", "random names", Origin.RECIPE, "https://example.org/1")


def extension(name: str, *rules: str, recipe: bool = False) -> Divergence:
    reasons = [TOOLCHAIN] + ([LIBC] if "elf-libc-routines" in rules else [])
    return Divergence(
        DivergenceKind.CONTENT,
        f"ELF: 5 of 9 functions differ in code (f, g, h); toolchain {TOOLCHAINS}",
        member=f"pkg/{name}{SUFFIX}",
        outcome=Outcome.ATTRIBUTED,
        reasons=(*reasons, *([RECIPE] if recipe else [])),
        analyser="elf",
        brief=f"5 of 9 functions differ · {TOOLCHAINS}",
    )


def render(*divergences: Divergence) -> list[str]:
    info = WheelInfo("pkg.whl", "0" * 64, 1, 1)
    comparison = Comparison(info, info, Verdict.DIVERGENT, divergences, identical_members=3)
    console = Console(width=100, record=True, force_terminal=False)
    for part in comparison_renderables(comparison):
        console.print(part)
    return console.export_text().splitlines()


def test_compiled_members_share_their_heading_and_reasons() -> None:
    lines = render(
        extension("_one"),
        extension("_two", "elf-libc-routines"),
        extension("_three", "elf-libc-routines", recipe=True),
        Divergence(
            DivergenceKind.CONTENT,
            "content differs",
            member="pkg/__config__.py",
            outcome=Outcome.EXPLAINED,
            reasons=(RECIPE,),
            analyser="text",
        ),
    )
    assert f"Compiled members (3: 3 attributed), each {TOOLCHAINS}" in lines
    assert f"  name… stands for name{SUFFIX}" in lines
    assert "~ attributed, code not verified pkg/_one…  5 of 9 functions differ" in lines
    assert (
        "~ attributed, code not verified pkg/_two…  5 of 9 functions differ  + libc-routines"
        in lines
    )
    assert (
        "~ attributed, code not verified pkg/_three…  5 of 9 functions differ  + "
        "libc-routines, recipe" in lines
    )
    text = "\n".join(lines)
    # Each reason once, however many members it explains.
    assert text.count("code not verified: built") == 1
    assert text.count("routines imported differently") == 1
    assert f"  all: code not verified: built by another compiler ({TOOLCHAINS})" in lines
    assert text.count("random names") == 1
    flowing = " ".join(line.strip() for line in lines)
    recipe_line = f"✓ pkg/_three{SUFFIX}, pkg/__config__.py: random names (https://example.org/1)"
    assert recipe_line in flowing


def test_explained_members_and_container_rows_are_grouped_by_rule() -> None:
    records = [
        Divergence(
            DivergenceKind.RECORD_ENTRY,
            "RECORD row differs",
            member=f"pkg/m{i}.py",
            outcome=Outcome.EXPLAINED,
            reasons=(
                Reason("record-follows-member", f"follows from pkg/m{i}.py's own divergence"),
            ),
        )
        for i in range(5)
    ]
    directories = [
        Divergence(
            DivergenceKind.DIRECTORY_ENTRY,
            "directory entry only in the published wheel",
            member=f"pkg/d{i}/",
            outcome=Outcome.EXPLAINED,
            reasons=(
                Reason("container-directory-entry", CONTAINER_ONLY + " (an empty directory entry)"),
            ),
        )
        for i in range(4)
    ]
    lines = render(*records, *directories)
    assert "✓ record-entry 5: pkg/m0.py, pkg/m1.py, pkg/m2.py and 2 more" in lines
    assert "    why: each follows from its member's own divergence" in lines
    assert "Zip container only (4): the installed files are the same" in lines
    assert "✓ directory-entry 4: pkg/d0/, pkg/d1/, pkg/d2/ and 1 more" in lines
    assert "    why: an empty directory entry" in lines
    assert len(lines) < 20


def test_the_summary_comes_first_and_says_whether_python_sources_differ() -> None:
    config = Divergence(
        DivergenceKind.CONTENT,
        "content differs",
        member="pkg/__config__.py",
        outcome=Outcome.EXPLAINED,
        reasons=(RECIPE,),
        analyser="text",
    )
    lines = render(extension("_one", "elf-libc-routines"), config)
    # Members, then the recipe's reasons, then the Python line, then why compiled members differ.
    order = [
        next(i for i, line in enumerate(lines) if line.startswith(prefix))
        for prefix in (
            "~ attributed, code not verified pkg/_one",
            "Expected by the recipe",
            "Python sources",
            "Why compiled",
        )
    ]
    assert order == sorted(order)
    assert "Python sources: 1 .py member(s) differ, each explained: pkg/__config__.py" in lines

    injected = Divergence(DivergenceKind.CONTENT, "content differs", member="pkg/evil.py")
    flowing = " ".join(render(injected, config))
    assert "Python sources: 2 .py member(s) differ, 1 unexplained (above)" in flowing
    assert "Python sources: every .py member is identical" in render(extension("_one"))


def test_emoji_codes_in_a_packages_text_are_not_rendered_as_emoji() -> None:
    from rich.console import Console

    from rebuild.report.safe import safe

    console = Console(width=100, record=True, force_terminal=False)
    console.print(safe("passed :white_check_mark: :heavy_check_mark-emoji: a:b [red]x[/]"))
    text = console.export_text()
    assert "\u2705" not in text and "\u2714" not in text
    assert "white_check_mark:" in text and "[red]x[/]" in text
