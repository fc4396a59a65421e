"""A file the build writes (in the wheel, not in the sdist) is explained by the rebuild that
wrote it too, and only then."""

from __future__ import annotations

from rebuild.models import (
    Comparison,
    Divergence,
    DivergenceKind,
    Outcome,
    ProvenanceCheck,
    Reason,
    Side,
    Verdict,
    WheelInfo,
)
from rebuild.sources.rules import explain_built

CONFIG = "pkg/__config__.py"


def finding(member: str = CONFIG) -> Divergence:
    return Divergence(
        DivergenceKind.NOT_IN_SDIST, "Python file with no counterpart in the sdist", member=member
    )


def check_of(*findings: Divergence) -> ProvenanceCheck:
    return ProvenanceCheck("pkg.whl", "pkg.tar.gz", 3, 2, findings)


def comparison_of(*divergences: Divergence) -> Comparison:
    info = WheelInfo("pkg.whl", "0" * 64, 1, 1)
    return Comparison(info, info, Verdict.DIVERGENT, divergences, identical_members=3)


def test_a_generated_file_the_rebuild_made_alike_is_explained() -> None:
    explained_diff = Divergence(
        DivergenceKind.CONTENT,
        "differs",
        member=CONFIG,
        outcome=Outcome.EXPLAINED,
        reasons=(Reason("recipe", "expected by the recipe: x"),),
    )
    for comparison in (comparison_of(), comparison_of(explained_diff)):  # identical, explained
        (d,) = explain_built(check_of(finding()), comparison).findings
        assert d.explained and d.rules == ("built-too",)


def test_a_generated_file_the_rebuild_made_otherwise_or_not_at_all_stays() -> None:
    differs = Divergence(DivergenceKind.CONTENT, "differs", member=CONFIG)
    missing = Divergence(
        DivergenceKind.ONLY_PUBLISHED,
        "only in the published wheel",
        member=CONFIG,
        side=Side.PUBLISHED,
        outcome=Outcome.EXPLAINED,
        reasons=(Reason("some-rule", "some rule"),),
    )
    for comparison in (comparison_of(differs), comparison_of(missing)):
        (d,) = explain_built(check_of(finding()), comparison).findings
        assert not d.explained
    # Another member's trouble does not hold this one back.
    other = comparison_of(Divergence(DivergenceKind.CONTENT, "differs", member="pkg/other.py"))
    (d,) = explain_built(check_of(finding()), other).findings
    assert d.explained


GZ = "pkg/data/service.json.gz"


def test_a_published_gzip_of_a_rebuilt_file_is_explained_only_when_the_comparison_checked_it() -> (
    None
):
    def only_published(*reasons: Reason) -> Divergence:
        return Divergence(
            DivergenceKind.ONLY_PUBLISHED,
            "only in the published wheel",
            member=GZ,
            side=Side.PUBLISHED,
            outcome=Outcome.EXPLAINED if reasons else Outcome.UNEXPLAINED,
            reasons=reasons,
        )

    checked = comparison_of(only_published(Reason("published-gzip", "inflates to the rebuilt")))
    (d,) = explain_built(check_of(finding(GZ)), checked).findings
    assert d.explained and d.rules == ("built-then-compressed",)
    # Not checked to inflate to the rebuilt bytes (another rule, or none): it stays.
    for comparison in (
        comparison_of(only_published(Reason("some-rule", "some rule"))),
        comparison_of(only_published()),
    ):
        (d,) = explain_built(check_of(finding(GZ)), comparison).findings
        assert not d.explained
    # A file other than the sdist's is never explained by compression.
    differs = Divergence(DivergenceKind.DIFFERS_FROM_SDIST, "differs from the sdist", member=GZ)
    (d,) = explain_built(check_of(differs), checked).findings
    assert not d.explained
