"""A recipe end to end: a small real compiled package rebuilt with its recipe, in a container."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from rebuild.models import DivergenceKind, Target, Verdict, WheelSelector
from rebuild.pipeline import CheckOptions, check
from rebuild.report.terminal import print_report

pytestmark = [pytest.mark.docker, pytest.mark.network]
REPO_RECIPE = Path(__file__).resolve().parent.parent / "recipes" / "markupsafe.toml"
EXTENSION = "markupsafe/_speedups.cpython-311-x86_64-linux-gnu.so"

# The repository's recipe plus what this test checks the build and the comparison receive: an
# environment variable, a config-setting, pre-build steps (which also check that the source sits
# at the recipe's source_dir, writable), and an expected divergence.
EXTRA = """
pre_build = [
    "test \\"$RECIPE_PROBE\\" = probe-value",
    "test \\"$(pwd)\\" = /project",
    "echo probe > pre-build-ran.txt",
]

[release.config_settings]
probe-setting = "on"

[release.environment]
RECIPE_PROBE = "probe-value"

[[release.expected]]
member = "markupsafe/_speedups.c"
kind = "only-published"
reason = "a probe that must not match: no such divergence exists"
link = "https://example.org/probe"
"""


def test_markupsafe_rebuilds_with_its_recipe(tmp_path: Path, shared_cache: Path) -> None:
    text = REPO_RECIPE.read_text(encoding="utf-8")
    head, marker, tail = text.partition("\n[release.image]")
    recipe = tmp_path / "markupsafe.toml"
    recipe.write_text(head + "\n" + EXTRA + marker + tail, encoding="utf-8")
    options = CheckOptions(cache_dir=shared_cache, recipe=recipe)
    report = check(
        Target.parse("markupsafe==2.1.5"),
        WheelSelector(python="3.11", platform="manylinux_2_17_x86_64"),
        options,
    )
    assert report.failure is None, report.failure
    assert report.plan is not None and report.build is not None
    assert report.plan.recipe == str(recipe)
    assert report.build.image.name == "bullseye-py311"
    assert any("was NOT used" in note for note in report.plan.notes)
    assert ("RECIPE_PROBE", "probe-value") in report.build.environment
    # The pre-build step checks the variable inside the container (set -e): the build ran.
    assert report.comparison is not None
    assert report.verdict in (Verdict.DIVERGENT, Verdict.EQUIVALENT)
    extension = [d for d in report.comparison.divergences if d.member == EXTENSION]
    # Rebuilt by the matched compiler, the extension differs only where the ELF rules say why.
    assert extension and all(d.explained for d in extension), extension
    # The probe names a member and kind that do not diverge: it explains nothing.
    assert not any(
        d.kind is DivergenceKind.ONLY_PUBLISHED and d.member == "markupsafe/_speedups.c"
        for d in report.comparison.divergences
    )

    # The terminal says first, before any divergence, that the recipe's image was not used.
    console = Console(width=100, record=True, force_terminal=False)
    print_report(report, console)
    lines = console.export_text().splitlines()
    assert lines[2].startswith("image: rebuilt in the local image rebuild/bullseye-py311:"), lines
    assert "not the recipe's quay.io/pypa/manylinux2014_x86_64" in " ".join(
        line.strip() for line in lines[2:4]
    )
