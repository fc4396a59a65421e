"""sdist vs the tagged tree: every file of the sdist matched against the repository at the tag.

An sdist is made by the same publisher as the wheel, so a tampered release can carry a tampered
sdist; the repository is the independent witness. Each sdist file must be byte-identical to the
file at the same path of the tree (the sdist's root may be a subdirectory of the repository), or
be explained as generated (PKG-INFO, egg-info, version files, ...). Files of the repository that
the sdist leaves out (tests, CI configuration) are not findings: leaving code out injects none.
"""

from __future__ import annotations

from dataclasses import dataclass

from rebuild.models import Divergence, DivergenceKind, Side
from rebuild.sources.rules import SDIST_RULES, SourceFile, explain, outcome_of
from rebuild.sources.tree import SourceTree, capped_diff

ANALYSER = "sdist-vs-git"
# Files that mark where a Python project's root is inside a repository.
_PROJECT_MARKERS = ("pyproject.toml", "setup.py", "setup.cfg")


@dataclass(frozen=True)
class TreeMatch:
    files: int  # files in the sdist
    matched: int  # ... byte-identical to the tree's file at the same path
    prefix: str  # where the sdist's root is in the repository ("" for the top)
    findings: tuple[Divergence, ...]


def project_root(sdist: SourceTree, checkout: SourceTree) -> str:
    """The directory of the repository the sdist was made from: the one most files match."""
    prefixes = {""}
    for rel in checkout.files:
        directory, _, name = rel.rpartition("/")
        if directory and name in _PROJECT_MARKERS:
            prefixes.add(directory + "/")

    def score(prefix: str) -> tuple[int, int]:
        same = sum(
            1
            for rel in sdist.files
            if prefix + rel in checkout and checkout.digest(prefix + rel) == sdist.digest(rel)
        )
        return same, -len(prefix)

    return max(sorted(prefixes), key=score)


def compare_sdist_with_tree(sdist: SourceTree, checkout: SourceTree, version: str) -> TreeMatch:
    """Every file of ``sdist`` against ``checkout``; generated files explained by rules."""
    prefix = project_root(sdist, checkout)
    findings: list[Divergence] = []
    matched = 0
    for rel in sdist.files:
        there = prefix + rel
        if there in checkout and checkout.digest(there) == sdist.digest(rel):
            matched += 1
            continue
        content = sdist.read(rel)
        if there in checkout:
            counterpart: bytes | None = checkout.read(there)
            kind = DivergenceKind.DIFFERS_FROM_GIT
            summary = f"differs from {there} at the tag"
            detail = capped_diff(counterpart or b"", content, f"git/{there}", f"sdist/{rel}")
        else:
            counterpart = None
            kind = DivergenceKind.NOT_IN_GIT
            summary = "in the sdist, not in the repository at the tag"
            detail = capped_diff(b"", content, "/dev/null", f"sdist/{rel}")
        outcome, reasons = outcome_of(
            explain(
                SourceFile(
                    kind=kind,
                    path=rel,
                    content=content,
                    counterpart=counterpart,
                    version=version,
                    has_source=lambda p: prefix + p in checkout,
                ),
                SDIST_RULES,
            )
        )
        findings.append(
            Divergence(
                kind=kind,
                summary=summary,
                member=rel,
                side=Side.PUBLISHED,
                detail=detail,
                outcome=outcome,
                reasons=reasons,
                analyser=ANALYSER,
            )
        )
    return TreeMatch(files=len(sdist), matched=matched, prefix=prefix, findings=tuple(findings))
