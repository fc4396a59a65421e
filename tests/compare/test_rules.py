"""Explanations as data: which divergences the rules explain, and which they must not."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from rebuild.compare.analysers.metadata import CRLF_RULE
from rebuild.compare.rules import RULES, Rule, explain
from rebuild.compare.ziplayer import installs_executable
from rebuild.models import Divergence, DivergenceKind, Layer, Reason


def explained(divergence: Divergence, *others: Divergence) -> str | None:
    return explain([divergence, *others])[0].explanation


def test_rule_ids_are_unique() -> None:
    assert len({r.id for r in RULES}) == len(RULES)


@pytest.mark.parametrize(
    ("mode", "executable"),
    [
        (0o100755, True),
        (0o100644, False),
        (0o000755, False),  # no file type: pip and installer leave it not executable
        (0o120777, False),  # a symlink entry
        (0, False),
        (0o100001, True),  # any x bit
    ],
)
def test_installed_executable_bit_follows_pip_and_installer(mode: int, executable: bool) -> None:
    assert installs_executable(mode) is executable


def test_permission_rows_are_container_only_by_construction() -> None:
    # ziplayer files a mode change that flips the installed x bit as INSTALLED_MODE (a member
    # divergence); what stays PERMISSIONS never does.
    d = Divergence(DivergenceKind.PERMISSIONS, "mode", "a.py", published="0o664", rebuilt="0o644")
    assert explained(d) is not None
    flip = Divergence(DivergenceKind.INSTALLED_MODE, "x bit", "a.py")
    assert explained(flip) is None
    assert flip.layer is Layer.MEMBER


def test_container_kinds_are_explained() -> None:
    for kind in (DivergenceKind.TIMESTAMP, DivergenceKind.ENTRY_ORDER, DivergenceKind.ZIP_COMMENT):
        assert explained(Divergence(kind, "x", "a.py")) == (
            "zip container only: the installed files are the same"
        )


def test_the_catch_all_is_not_explained() -> None:
    assert explained(Divergence(DivergenceKind.ATTRIBUTES, "bytes differ")) is None


def test_record_row_follows_only_a_member_that_differs() -> None:
    row = Divergence(DivergenceKind.RECORD_ENTRY, "RECORD row differs in hash", "a.py")
    content = Divergence(DivergenceKind.CONTENT, "content differs", "a.py")
    assert explained(row, content) == "follows from a.py's own divergence"
    assert explained(row) is None


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("bdist_wheel (0.36.2)", "bdist_wheel (0.43.0)", True),
        ("hatchling 1.18.0", "hatchling 1.21.0", True),
        ("bdist_wheel (0.43.0)", "setuptools (69.0.0)", False),
        ("bdist_wheel (0.43.0)", "bdist_wheel (0.43.0) evil", False),
    ],
)
def test_generator_backend_version(old: str, new: str, expected: bool) -> None:
    d = Divergence(
        DivergenceKind.METADATA_FIELD,
        "WHEEL field Generator differs",
        "demo-1.0.dist-info/WHEEL",
        published=old,
        rebuilt=new,
        field="Generator",
        changed_lines=(f"-{old}", f"+{new}"),
    )
    assert (explained(d) is not None) is expected
    # Decided from the field, not from the summary's words: another field never matches.
    assert explained(replace(d, field="Summary")) is None


def test_other_metadata_fields_stay_unexplained() -> None:
    d = Divergence(
        DivergenceKind.METADATA_FIELD,
        "WHEEL field Tag differs",
        "demo-1.0.dist-info/WHEEL",
        published="py3-none-any",
        rebuilt="py2-none-any",
    )
    assert explained(d) is None


def test_an_existing_explanation_is_kept_and_custom_rules_apply() -> None:
    d = Divergence(DivergenceKind.CONTENT, "x", "a.py").explained_by(Reason("known", "known"))
    assert explain([d])[0].explanation == "known"
    rule = Rule("build-path", frozenset({DivergenceKind.CONTENT}), "build path in {member}")
    assert explain([Divergence(DivergenceKind.CONTENT, "x", "b.so")], [rule])[0].explanation == (
        "build path in b.so"
    )


def test_every_rule_id_is_documented_in_the_readme() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Explanation rules", 1)[1].split("\n## ", 1)[0]
    for rule in [*(r.id for r in RULES), CRLF_RULE]:
        assert f"`{rule}`" in section, rule
