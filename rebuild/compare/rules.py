"""Explanations as data: which divergences are understood, and why.

A rule matches divergences by kind and, optionally, a predicate; the first rule that matches gives
the reason. Rules are applied once, after every divergence has been collected, because some depend
on the whole picture (a RECORD row is explained by its member's own divergence). A divergence that
no rule matches stays unexplained: that is what a reviewer must look at.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from rebuild.compare.analysers.wording import clean
from rebuild.compare.spelling import requirements_respelled
from rebuild.models import (
    Comparison,
    Divergence,
    DivergenceKind,
    ExpectedDivergence,
    Finding,
    Layer,
    Origin,
    Outcome,
    Reason,
    Side,
    Verdict,
)
from rebuild.verdict import decide

if TYPE_CHECKING:
    from rebuild.compare.compressed import GzipPair

# Member-layer kinds that are a member's own divergence (not a consequence recorded elsewhere).
_OWN = frozenset(
    {
        DivergenceKind.CONTENT,
        DivergenceKind.METADATA_FIELD,
        DivergenceKind.ONLY_PUBLISHED,
        DivergenceKind.ONLY_REBUILT,
    }
)
# "bdist_wheel (0.36.2)", "hatchling 1.21.0", "maturin (1.4.0)"
_GENERATOR = re.compile(r"^(?P<backend>[A-Za-z0-9._-]+)\s+\(?(?P<version>[^()\s]+)\)?$")


@dataclass(frozen=True)
class RuleContext:
    """What rules may know beyond the divergence at hand."""

    changed_members: frozenset[str]  # members with a divergence of their own
    # The published wheel's manylinux tag against the rebuild's plain linux one: not repaired.
    repair_not_replayed: bool = False
    # (side, library) of each library grafted by auditwheel and found on one side only.
    grafted: frozenset[tuple[Side, tuple[str, str]]] = frozenset()
    # The DT_NEEDED names of the published wheel's shared objects: auditwheel grafts only what
    # one of them loads.
    loaded: frozenset[str] = frozenset()
    # Published X.json.gz members checked to decompress to the rebuilt X.json (compressed.py).
    gzipped: frozenset[GzipPair] = frozenset()
    # The published WHEEL's Generator value, named in a reason as the likely tool (the
    # publisher's word: it never decides whether a rule holds).
    generator: str | None = None

    @functools.cached_property
    def gzip_by_name(self) -> Mapping[tuple[Side, str], GzipPair]:
        """Each gzip pair by (side, member), for a lookup per divergence."""
        return {
            **{(Side.PUBLISHED, p.published): p for p in self.gzipped},
            **{(Side.REBUILT, p.rebuilt): p for p in self.gzipped},
        }

    @classmethod
    def of(
        cls,
        divergences: Iterable[Divergence],
        loaded: frozenset[str] = frozenset(),
        gzipped: frozenset[GzipPair] = frozenset(),
        generator: str | None = None,
    ) -> RuleContext:
        divergences = list(divergences)
        return cls(
            frozenset(d.member for d in divergences if d.kind in _OWN and d.member is not None),
            any(_unrepaired_tags(d) for d in divergences),
            frozenset(
                (d.side, lib)
                for d in divergences
                if d.kind in _ONE_SIDE and (lib := _grafted_library(d.member)) is not None
            ),
            loaded,
            gzipped,
            generator,
        )


@dataclass(frozen=True)
class Rule:
    id: str
    kinds: frozenset[DivergenceKind]
    reason: str  # may name the divergence's member as {member}, and each key of ``words``
    when: Callable[[Divergence, RuleContext], bool] | None = None
    # Further words of the reason, from the divergence and the context (only once it matched).
    words: Callable[[Divergence, RuleContext], Mapping[str, str]] | None = None

    def reason_for(self, divergence: Divergence, context: RuleContext) -> str:
        words = {} if self.words is None else self.words(divergence, context)
        return self.reason.format(member=divergence.member, **words)

    def matches(self, divergence: Divergence, context: RuleContext) -> bool:
        return divergence.kind in self.kinds and (
            self.when is None or self.when(divergence, context)
        )


def _values(d: Divergence, sign: str) -> list[str]:
    return [line[1:] for line in d.changed_lines or () if line[:1] == sign]


def _backend_version_only(d: Divergence, _: RuleContext) -> bool:
    if not (d.member or "").endswith(".dist-info/WHEEL") or d.field != "Generator":
        return False
    old, new = _values(d, "-"), _values(d, "+")
    if len(old) != 1 or len(new) != 1:
        return False
    before, after = _GENERATOR.match(old[0]), _GENERATOR.match(new[0])
    return before is not None and after is not None and before["backend"] == after["backend"]


def _follows_member(d: Divergence, context: RuleContext) -> bool:
    return d.member in context.changed_members


def _requires_dist(d: Divergence) -> str | None:
    """The cause when a METADATA Requires-Dist divergence holds the same requirements."""
    top, _, rest = (d.member or "").partition("/")
    if not top.endswith(".dist-info") or rest != "METADATA":
        return None
    if (d.field or "").lower() != "requires-dist" or d.changed_lines is None:
        return None
    return requirements_respelled(_values(d, "-"), _values(d, "+"))


def _respelled(d: Divergence, _: RuleContext) -> bool:
    return _requires_dist(d) is not None


def _respelled_words(d: Divergence, context: RuleContext) -> Mapping[str, str]:
    generator = context.generator
    said = f" (the published WHEEL says Generator: {clean(generator)})" if generator else ""
    return {"cause": f"{_requires_dist(d)}{said}"}


def _gzip_pair(d: Divergence, context: RuleContext) -> GzipPair | None:
    if d.kind is DivergenceKind.ONLY_PUBLISHED and d.side is Side.PUBLISHED:
        return context.gzip_by_name.get((Side.PUBLISHED, d.member or ""))
    if d.kind is DivergenceKind.ONLY_REBUILT and d.side is Side.REBUILT:
        return context.gzip_by_name.get((Side.REBUILT, d.member or ""))
    return None


def _gzipped(d: Divergence, context: RuleContext) -> bool:
    return _gzip_pair(d, context) is not None


def _gzip_words(d: Divergence, context: RuleContext) -> Mapping[str, str]:
    pair = _gzip_pair(d, context)  # asked only once the rule matched: never None then
    count = len(context.gzipped)
    return {
        "published": pair.published if pair else str(d.member),
        "rebuilt": pair.rebuilt if pair else "",
        "count": f"{count:,} file{'' if count == 1 else 's'}",
    }


_ONE_SIDE = frozenset({DivergenceKind.ONLY_PUBLISHED, DivergenceKind.ONLY_REBUILT})
_REPAIRED_PLATFORM = ("manylinux", "musllinux")


def _unrepaired_tags(d: Divergence) -> bool:
    """A WHEEL ``Tag`` divergence: manylinux/musllinux published, only ``linux_*`` rebuilt."""
    if not (d.member or "").endswith(".dist-info/WHEEL") or d.field != "Tag":
        return False
    removed = [tag.rsplit("-", 1) for tag in _values(d, "-")]
    added = [tag.rsplit("-", 1) for tag in _values(d, "+")]
    return (
        bool(removed and added)
        and all(len(t) == 2 and t[1].startswith(_REPAIRED_PLATFORM) for t in removed)
        and all(len(t) == 2 and t[1].startswith("linux_") for t in added)
        and {t[0] for t in removed} == {t[0] for t in added}
    )


# auditwheel renames a grafted library <name>-<first 8 hex of its sha256><rest of the name>:
# libgfortran-040039e1.so.5.0.0, libopenblas64_p-r0-0cf96a72.3.23.dev.so.
_GRAFTED = re.compile(r"^(?P<base>.+)-[0-9a-f]{8}\.(?P<suffix>(?:.*\.)?so(?:\..*)?)$")


def _grafted_library(member: str | None) -> tuple[str, str] | None:
    """``pkg.libs/libgfortran-040039e1.so.5.0.0`` -> ``("libgfortran", "so.5.0.0")``.

    auditwheel names a grafted library after the original with a hash of its contents.
    """
    top, _, name = (member or "").partition("/")
    if not top.endswith(".libs") or not name or "/" in name:
        return None
    match = _GRAFTED.match(name)
    return None if match is None else (match["base"], match["suffix"])


def _wheel_tag_not_repaired(d: Divergence, _: RuleContext) -> bool:
    return _unrepaired_tags(d)


def _loaded_if_published(d: Divergence, context: RuleContext) -> bool:
    """A published graft must be a library the published wheel's objects load (DT_NEEDED)."""
    return d.side is not Side.PUBLISHED or (d.member or "").rpartition("/")[2] in context.loaded


def _grafted_not_repaired(d: Divergence, context: RuleContext) -> bool:
    return (
        context.repair_not_replayed
        and d.side is Side.PUBLISHED
        and _grafted_library(d.member) is not None
        and _loaded_if_published(d, context)
    )


def _grafted_both_sides(d: Divergence, context: RuleContext) -> bool:
    lib = _grafted_library(d.member)
    other = Side.REBUILT if d.side is Side.PUBLISHED else Side.PUBLISHED
    return lib is not None and (other, lib) in context.grafted and _loaded_if_published(d, context)


def _about_entries(d: Divergence, _: RuleContext) -> bool:
    # Without a member it is the catch-all for bytes no compared field accounts for.
    return d.member is not None


CONTAINER_ONLY = "zip container only: the installed files are the same"
_NOT_REPAIRED = (
    "auditwheel repair not replayable here: the published wheel was repaired by auditwheel, "
    "the rebuild could not be (the build's repair outcome says why)"
)


def _on_both_sides(d: Divergence, _: RuleContext) -> bool:
    return d.side is Side.BOTH


_INTEGRITY = frozenset(kind for kind in DivergenceKind if kind.layer is Layer.INTEGRITY)

RULES: tuple[Rule, ...] = (
    Rule(
        "reproduced",
        _INTEGRITY,
        "the rebuild from the source has the same finding, identically: the source builds it so",
        _on_both_sides,
    ),
    Rule(
        "container-permissions",
        frozenset({DivergenceKind.PERMISSIONS}),
        # Mode rows are split by the installed mode when they are found (ziplayer): a row of
        # this kind never changes whether an installed file is executable.
        CONTAINER_ONLY + " (pip and installer make each of these files executable alike)",
    ),
    Rule(
        "container-attributes",
        frozenset({DivergenceKind.ATTRIBUTES}),
        CONTAINER_ONLY,
        _about_entries,
    ),
    Rule(
        "container",
        frozenset(
            {
                DivergenceKind.ENTRY_ORDER,
                DivergenceKind.TIMESTAMP,
                DivergenceKind.COMPRESSION,
                DivergenceKind.ZIP_COMMENT,
                DivergenceKind.ENTRY_COMMENT,
                DivergenceKind.EXTRA_FIELD,
            }
        ),
        CONTAINER_ONLY,
    ),
    Rule(
        "container-directory-entry",
        frozenset({DivergenceKind.DIRECTORY_ENTRY}),
        CONTAINER_ONLY + " (an empty directory entry; installers create directories from "
        "the files' paths)",
    ),
    Rule(
        "auditwheel-not-replayed",
        frozenset({DivergenceKind.METADATA_FIELD}),
        _NOT_REPAIRED + "; the rebuild keeps its build's linux tag",
        _wheel_tag_not_repaired,
    ),
    Rule(
        "auditwheel-graft-not-replayed",
        frozenset({DivergenceKind.ONLY_PUBLISHED}),
        _NOT_REPAIRED + "; {member} is a library it grafted from the publisher's build image "
        "(a shared object of the wheel loads it)",
        _grafted_not_repaired,
    ),
    Rule(
        "auditwheel-graft",
        _ONE_SIDE,
        "a library auditwheel grafted from each build image's own copy: its name carries a "
        "hash of its contents, which differ between images",
        _grafted_both_sides,
    ),
    Rule(
        "record-follows-member",
        frozenset({DivergenceKind.RECORD_ENTRY}),
        "follows from {member}'s own divergence",
        _follows_member,
    ),
    Rule(
        "requires-dist-spelling",
        frozenset({DivergenceKind.METADATA_FIELD}),
        "the same requirements in another spelling: parsed with packaging, every one's name, "
        "extras, specifiers, marker and URL are equal, one for one; {cause}",
        _respelled,
        _respelled_words,
    ),
    Rule(
        "published-gzip",
        _ONE_SIDE,
        "a release step after the build: {count} published gzip-compressed, each decompressing "
        "to the rebuilt file byte for byte (one gzip member, no extra bytes); the installed "
        "file differs: {published} where the rebuild installs {rebuilt}, so the release's code "
        "must read the compressed copy",
        _gzipped,
        _gzip_words,
    ),
    Rule(
        "generator-version",
        frozenset({DivergenceKind.METADATA_FIELD}),
        "build backend version differs (toolchain)",
        _backend_version_only,
    ),
)


def explain(
    divergences: Sequence[Divergence],
    rules: Sequence[Rule] = RULES,
    *,
    loaded: frozenset[str] = frozenset(),
    gzipped: frozenset[GzipPair] = frozenset(),
    generator: str | None = None,
) -> list[Divergence]:
    """The divergences, each unexplained one with the first matching rule's reason.

    ``loaded``, ``gzipped``, ``generator``: evidence beyond the divergences (see RuleContext).
    """
    context = RuleContext.of(divergences, loaded, gzipped, generator)
    explained: list[Divergence] = []
    for divergence in divergences:
        if divergence.outcome is Outcome.UNEXPLAINED and not divergence.reasons:
            rule = next((r for r in rules if r.matches(divergence, context)), None)
            if rule is not None:
                divergence = divergence.explained_by(
                    Reason(rule.id, rule.reason_for(divergence, context))
                )
        explained.append(divergence)
    return explained


# Analysers of compiled members: a recipe finishing one whose code and data matched leaves it
# verified.
_COMPILED = frozenset({"elf", "static-library"})
# Aspects that mean code or data were not verified: a recipe covering one explains, no more.
_UNVERIFIED = frozenset({"code", "data", "invariants", "hidden-load", "incomplete"})


def _matching(d: Divergence, expected: Sequence[ExpectedDivergence]) -> list[ExpectedDivergence]:
    """The expectations whose kind is ``d``'s and whose glob matches every member it covers."""
    if not d.kind.recipe_may_expect:
        return []
    members = d.members
    return [
        e
        for e in expected
        if e.kind is d.kind and members and all(fnmatch.fnmatchcase(m, e.member) for m in members)
    ]


def _wholesale_allowed(d: Divergence) -> bool:
    # Compiled members and Python sources are never explained whole: only aspect by aspect, or
    # line by line (recipes.py refuses such expectations too; this keeps the rule closed).
    return d.analyser not in _COMPILED and not (d.member or "").endswith((".py", ".pyi"))


def _by_lines(d: Divergence, expectations: list[ExpectedDivergence]) -> list[ExpectedDivergence]:
    """The expectations whose ``lines`` together match every changed line in full; [] if not."""
    changed = d.changed_lines
    by_lines = [e for e in expectations if e.lines]
    if not changed or not by_lines:
        return []
    used: dict[int, ExpectedDivergence] = {}
    for line in changed:
        found = next(
            (i for i, e in enumerate(by_lines) if re.fullmatch(e.lines, line[1:]) is not None),
            None,
        )
        if found is None:
            return []
        used[found] = by_lines[found]
    return [used[i] for i in sorted(used)]


def _expected(d: Divergence, expected: Sequence[ExpectedDivergence]) -> list[ExpectedDivergence]:
    """The expectations that together explain ``d``, or [] (see ExpectedDivergence)."""
    matching = _matching(d, expected)
    whole = [e for e in matching if not e.aspects and not e.lines]
    if whole and _wholesale_allowed(d):
        return whole[:1]
    by_aspect = [
        e
        for e in matching
        if set(e.aspects) & set(d.aspects) and _symbols_match(e, d) and _names_findings(e, d)
    ]
    covered = {a for e in by_aspect for a in e.aspects}
    if d.aspects and set(d.aspects) <= covered and _findings_covered(by_aspect, d):
        return by_aspect
    return _by_lines(d, matching)


def _symbols_match(expected: ExpectedDivergence, d: Divergence) -> bool:
    """An expectation naming symbols covers "exports" only if each one matches a glob."""
    if not expected.symbols or "exports" not in d.aspects:
        return True
    names = [s.split("@", 1)[0] for s in d.symbols]
    return bool(names) and all(
        any(fnmatch.fnmatchcase(n, glob) for glob in expected.symbols) for n in names
    )


def _patterns(expected: ExpectedDivergence) -> list[tuple[str, str]]:
    return [(check, glob) for check, _, glob in (p.partition(" ") for p in expected.findings)]


def _matches(pattern: tuple[str, str], finding: Finding) -> bool:
    return finding.check == pattern[0] and fnmatch.fnmatchcase(finding.what, pattern[1])


def _names_findings(expected: ExpectedDivergence, d: Divergence) -> bool:
    """An expectation about invariant findings takes part only if it names one of them."""
    if expected.aspects != ("invariants",):
        return True
    return any(_matches(p, f) for p in _patterns(expected) for f in d.findings)


def _findings_covered(expectations: list[ExpectedDivergence], d: Divergence) -> bool:
    """Every toolchain-invariant finding is named by some expectation's ``findings``."""
    if "invariants" not in d.aspects:
        return True
    patterns = [p for e in expectations for p in _patterns(e)]
    return bool(d.findings) and all(any(_matches(p, f) for p in patterns) for f in d.findings)


def recipe_reason(expected: ExpectedDivergence) -> Reason:
    return Reason("recipe", expected.reason, Origin.RECIPE, expected.link)


def _outcome_after_recipe(d: Divergence, used: list[ExpectedDivergence]) -> Outcome:
    if any(r.origin is Origin.PUBLISHER for r in d.reasons):
        return Outcome.ATTRIBUTED
    covered = {a for e in used for a in e.aspects}
    if d.analyser in _COMPILED and not covered & _UNVERIFIED:
        return Outcome.VERIFIED
    return Outcome.EXPLAINED


def explain_expected(comparison: Comparison, expected: Sequence[ExpectedDivergence]) -> Comparison:
    """``comparison`` with a recipe's expected divergences explained, and its verdict decided.

    Only divergences the built-in rules left unexplained are looked at; the review order
    (unexplained first) is kept.
    """
    if not expected:
        return comparison
    divergences = []
    for d in comparison.divergences:
        if d.outcome is Outcome.UNEXPLAINED:
            used = _expected(d, expected)
            if used:
                # The built-in rules that covered the other aspects still hold: kept first.
                d = d.explained_by(
                    *(recipe_reason(e) for e in used), outcome=_outcome_after_recipe(d, used)
                )
        divergences.append(d)
    # A stable sort on `explained` alone keeps the layer and member order within each group.
    ordered = tuple(sorted(divergences, key=lambda d: d.explained))
    return replace(
        comparison,
        divergences=ordered,
        verdict=decide(ordered, identical_bytes=comparison.verdict is Verdict.REPRODUCIBLE),
    )
