"""Explanations as data: which divergences are understood, and why.

A rule matches divergences by kind and, optionally, a predicate; the first rule that matches gives
the reason. Rules are applied once, after every divergence has been collected, because some depend
on the whole picture (a RECORD row is explained by its member's own divergence). A divergence that
no rule matches stays unexplained: that is what a reviewer must look at.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

from rebuild.models import Comparison, Divergence, DivergenceKind, ExpectedDivergence, Side

# Member-layer kinds that are a member's own divergence (not a consequence recorded elsewhere).
_OWN = frozenset(
    {
        DivergenceKind.CONTENT,
        DivergenceKind.METADATA_FIELD,
        DivergenceKind.ONLY_PUBLISHED,
        DivergenceKind.ONLY_REBUILT,
    }
)
_OCTAL = re.compile(r"^0o[0-7]+$")
# "bdist_wheel (0.36.2)", "hatchling 1.21.0", "maturin (1.4.0)"
_GENERATOR = re.compile(r"^(?P<backend>[A-Za-z0-9._-]+)\s+\(?(?P<version>[^()\s]+)\)?$")
_EXECUTABLE = 0o111


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

    @classmethod
    def of(
        cls, divergences: Iterable[Divergence], loaded: frozenset[str] = frozenset()
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
        )


@dataclass(frozen=True)
class Rule:
    id: str
    kinds: frozenset[DivergenceKind]
    reason: str  # may name the divergence's member as {member}
    when: Callable[[Divergence, RuleContext], bool] | None = None

    def matches(self, divergence: Divergence, context: RuleContext) -> bool:
        return divergence.kind in self.kinds and (
            self.when is None or self.when(divergence, context)
        )


def _mode(value: str | None) -> int | None:
    if value == "none":
        return 0
    return int(value, 8) if value is not None and _OCTAL.match(value) else None


def _same_executable_bit(d: Divergence, _: RuleContext) -> bool:
    # Installers make a file executable when any x bit is set, so only that bit installs.
    old, new = _mode(d.published), _mode(d.rebuilt)
    return (
        old is not None and new is not None and bool(old & _EXECUTABLE) == bool(new & _EXECUTABLE)
    )


def _regular_or_untyped(d: Divergence, _: RuleContext) -> bool:
    # Installers read only the executable bits of the mode; "no file type" installs as a file.
    plain = {"regular file", "no file type"}
    return d.summary.startswith("file type") and {d.published, d.rebuilt} <= plain


def _backend_version_only(d: Divergence, _: RuleContext) -> bool:
    if not (d.member or "").endswith(".dist-info/WHEEL") or not d.summary.startswith(
        "WHEEL field Generator "
    ):
        return False
    old = _GENERATOR.match(d.published or "")
    new = _GENERATOR.match(d.rebuilt or "")
    return old is not None and new is not None and old["backend"] == new["backend"]


def _follows_member(d: Divergence, context: RuleContext) -> bool:
    return d.member in context.changed_members


_ONE_SIDE = frozenset({DivergenceKind.ONLY_PUBLISHED, DivergenceKind.ONLY_REBUILT})
_REPAIRED_PLATFORM = ("manylinux", "musllinux")


def _unrepaired_tags(d: Divergence) -> bool:
    """A WHEEL ``Tag`` divergence: manylinux/musllinux published, only ``linux_*`` rebuilt."""
    if not (d.member or "").endswith(".dist-info/WHEEL") or not d.summary.startswith("WHEEL Tag"):
        return False
    lines = d.detail.splitlines()
    removed = [line[2:].rsplit("-", 1) for line in lines if line.startswith("- ")]
    added = [line[2:].rsplit("-", 1) for line in lines if line.startswith("+ ")]
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

RULES: tuple[Rule, ...] = (
    Rule(
        "container-file-type",
        frozenset({DivergenceKind.PERMISSIONS}),
        CONTAINER_ONLY + " (installers treat an entry without a file type as a regular file)",
        _regular_or_untyped,
    ),
    Rule(
        "container-permissions",
        frozenset({DivergenceKind.PERMISSIONS}),
        CONTAINER_ONLY + " (the executable bit agrees)",
        _same_executable_bit,
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
) -> list[Divergence]:
    """The divergences, each with the first matching rule's reason (if it had none).

    ``loaded``: the libraries the published wheel's shared objects need (see RuleContext).
    """
    context = RuleContext.of(divergences, loaded)
    explained: list[Divergence] = []
    for divergence in divergences:
        if divergence.explanation is None:
            rule = next((r for r in rules if r.matches(divergence, context)), None)
            if rule is not None:
                divergence = replace(
                    divergence,
                    explanation=rule.reason.format(member=divergence.member),
                    rules=(rule.id,),
                )
        explained.append(divergence)
    return explained


def _changed_lines(d: Divergence) -> list[str] | None:
    """The added and removed lines of a text divergence's diff; None when it is not all there."""
    if d.analyser != "text" or not d.detail:
        return None
    lines = d.detail.splitlines()
    if any(line.startswith("… ") and line.endswith(" more lines") for line in lines):
        return None  # the diff was cut short: lines not shown cannot be vouched for
    return [line for line in lines if line[:1] in "+-" and not line.startswith(("+++ ", "--- "))]


def _expected_reasons(d: Divergence, expected: Sequence[ExpectedDivergence]) -> list[str] | None:
    """The expectations that together explain ``d`` (member glob AND kind), or None.

    One expectation without ``aspects`` or ``lines`` explains the divergence alone. Otherwise
    the divergence's ELF aspects must all be among those the matching expectations list, or every
    changed line of its text diff must match one of their ``lines`` expressions.
    """
    matching = [
        e
        for e in expected
        if e.kind is d.kind and d.member is not None and fnmatch.fnmatchcase(d.member, e.member)
    ]
    whole = [e for e in matching if not e.aspects and not e.lines]
    if whole:
        return [_reason(whole[0])]
    by_aspect = [e for e in matching if set(e.aspects) & set(d.aspects) and _symbols_match(e, d)]
    if d.aspects and set(d.aspects) <= {a for e in by_aspect for a in e.aspects}:
        return [_reason(e) for e in by_aspect]
    changed = _changed_lines(d)
    by_lines = [e for e in matching if e.lines]
    if not changed or not by_lines:
        return None
    used: dict[int, ExpectedDivergence] = {}
    for line in changed:
        found = next((i for i, e in enumerate(by_lines) if re.search(e.lines, line[1:])), None)
        if found is None:
            return None
        used[found] = by_lines[found]
    return [_reason(used[i]) for i in sorted(used)]


def _symbols_match(expected: ExpectedDivergence, d: Divergence) -> bool:
    """An expectation naming symbols covers "exports" only if each one matches a glob."""
    if not expected.symbols or "exports" not in d.aspects:
        return True
    names = [s.split("@", 1)[0] for s in d.symbols]
    return bool(names) and all(
        any(fnmatch.fnmatchcase(n, glob) for glob in expected.symbols) for n in names
    )


def _reason(expected: ExpectedDivergence) -> str:
    return f"expected by the recipe: {expected.reason} ({expected.link})"


def explain_expected(comparison: Comparison, expected: Sequence[ExpectedDivergence]) -> Comparison:
    """``comparison`` with a recipe's expected divergences explained; the verdict is unchanged.

    Only divergences the built-in rules left unexplained are looked at; the review order
    (unexplained first) is kept.
    """
    if not expected:
        return comparison
    divergences = []
    for d in comparison.divergences:
        if d.explanation is None:
            reasons = _expected_reasons(d, expected)
            if reasons is not None:
                # The built-in rules that covered the other aspects still hold: keep them first.
                d = replace(
                    d,
                    explanation="; ".join([*filter(None, [d.partly_explained]), *reasons]),
                    rules=(*d.rules, "recipe"),
                )
        divergences.append(d)
    # A stable sort on `explained` alone keeps the layer and member order within each group.
    ordered = tuple(sorted(divergences, key=lambda d: d.explained))
    return replace(comparison, divergences=ordered)
