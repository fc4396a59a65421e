"""The terminal report: one screen a reviewer reads top-down.

It leads with the verdict, then what must be looked at (unexplained divergences, with their
diffs), then what is explained, then the zip-container differences. Every string that came out
of a package (member names, metadata values, diffs) is untrusted: it is escaped for rich markup
and stripped of control characters before it reaches the terminal.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from rich.console import Console, Group, RenderableType
from rich.rule import Rule
from rich.text import Text

from rebuild.compare.rules import CONTAINER_ONLY
from rebuild.models import (
    Comparison,
    Divergence,
    DivergenceKind,
    Layer,
    Origin,
    Outcome,
    ProvenanceCheck,
    PublisherAttestation,
    Reason,
    Release,
    Report,
    Verdict,
)
from rebuild.report.safe import safe

VERDICT_STYLE: dict[Verdict, str] = {
    Verdict.REPRODUCIBLE: "bold green",
    Verdict.EQUIVALENT: "bold green",
    Verdict.DIVERGENT: "bold red",
    Verdict.FAILED: "bold magenta",
}

VERDICT_MEANING: dict[Verdict, str] = {
    Verdict.REPRODUCIBLE: "the rebuilt wheel is byte-for-byte the published one",
    Verdict.EQUIVALENT: "every member's bytes match; only the zip container differs",
    Verdict.DIVERGENT: "at least one member differs or exists on one side only",
    Verdict.FAILED: "no rebuilt wheel to compare",
}

DIFF_LINES_SHOWN = 40


def short_hash(sha256: str) -> str:
    return f"{sha256[:12]}…"


# Analysers whose summary is the whole screen-worthy story: their detail (function lists,
# sections, toolchain lines) and per-side values go to the JSON/HTML reports, so that a wheel
# with dozens of extensions still reads on one screen, one entry per extension.
SUMMARY_ONLY = frozenset({"elf", "static-library"})
NAMES_IN_GROUP = 3  # member names shown on a grouped line
# A rule's reason names one member; a group of them is described once.
_GROUP_REASONS = {
    "record-follows-member": "each follows from its member's own divergence",
    "auditwheel-graft-not-replayed": "libraries auditwheel grafted from the publisher's build "
    "image, each loaded by a shared object of the wheel; the rebuild could not be repaired (see "
    "the repair line below)",
}
# How each outcome of a compiled member is marked on its line.
_OUTCOME_MARK = {
    Outcome.VERIFIED: "[green]✓ verified[/]",
    Outcome.ATTRIBUTED: "[yellow]~ attributed, code not verified[/]",
    Outcome.EXPLAINED: "[green]✓[/]",
    Outcome.UNEXPLAINED: "[bold red]✗[/]",
}


def _divergence_line(d: Divergence, *, values: bool = True, said: str = "") -> Text:
    """One divergence; ``values=False`` leaves out the per-side values, ``said`` is a reason
    prefix its heading already gave."""
    mark = {Outcome.UNEXPLAINED: "✗", Outcome.ATTRIBUTED: "~"}.get(d.outcome, "✓")
    style = {Outcome.UNEXPLAINED: "bold red", Outcome.ATTRIBUTED: "yellow"}.get(d.outcome, "green")
    line = Text.from_markup(f"[{style}]{mark}[/] [cyan]{d.kind.value}[/] ")
    if d.member and d.layer is not Layer.CONTAINER:
        line.append_text(Text.from_markup(f"[bold]{safe(d.member)}[/]  "))
    line.append_text(Text.from_markup(safe(d.summary)))
    brief = d.analyser in SUMMARY_ONLY or not values
    if (
        not brief
        and d.layer is not Layer.CONTAINER
        and (d.published is not None or d.rebuilt is not None)
    ):
        line.append_text(
            Text.from_markup(
                f"\n    published: {safe(str(d.published))}\n    rebuilt:   {safe(str(d.rebuilt))}"
            )
        )
    why = _unsaid(d.explanation or "", said)
    if why:
        line.append_text(Text.from_markup(f"\n    [dim]why: {safe(why)}[/]"))
    return line


def _unsaid(reason: str, said: str) -> str:
    """``reason`` without the prefix a heading already said (and its parentheses)."""
    if not said or not reason.startswith(said):
        return reason
    return reason.removeprefix(said).strip().removeprefix("(").removesuffix(")")


def _diff(detail: str) -> RenderableType:
    lines = detail.splitlines()
    shown = lines[:DIFF_LINES_SHOWN]
    text = Text()
    for raw in shown:
        style = "green" if raw.startswith("+") else "red" if raw.startswith("-") else "dim"
        text.append_text(Text.from_markup(f"    [{style}]{safe(raw)}[/]\n"))
    if len(lines) > DIFF_LINES_SHOWN:
        text.append(f"    … {len(lines) - DIFF_LINES_SHOWN} more lines in the JSON report\n")
    return text


def _section(title: str, items: Iterable[Divergence], *, diffs: bool, limit: int) -> list[Text]:
    items = list(items)
    if not items:
        return []
    out: list[RenderableType] = [Text.from_markup(f"\n[bold underline]{title}[/] ({len(items)})")]
    for d in items[:limit]:
        out.append(_divergence_line(d))
        if diffs and d.detail and d.analyser not in SUMMARY_ONLY:
            out.append(_diff(d.detail))
    if len(items) > limit:
        out.append(Text(f"  … and {len(items) - limit} more in the JSON report"))
    return out  # type: ignore[return-value]


def _builtin(d: Divergence) -> list[Reason]:
    return [r for r in d.reasons if r.origin is not Origin.RECIPE]


def _recipe(d: Divergence) -> list[Reason]:
    return [r for r in d.reasons if r.origin is Origin.RECIPE]


def _names_line(names: list[str]) -> str:
    shown = ", ".join(safe(n) for n in names[:NAMES_IN_GROUP])
    more = len(names) - NAMES_IN_GROUP
    return shown + (f" and {more:,} more" if more > 0 else "")


def _common_suffix(names: list[str]) -> str:
    """The file-name ending most compiled members share (``.cpython-311-x86_64-linux-gnu.so``)."""
    endings = Counter(
        base[base.index(".") :] for n in names if "." in (base := n.rpartition("/")[2])
    )
    if not endings:
        return ""
    suffix, count = endings.most_common(1)[0]
    return suffix if count >= 2 else ""


def _compiled_renderables(
    items: list[Divergence],
) -> tuple[list[RenderableType], list[RenderableType]]:
    """One line per compiled member, and the rules' reasons, each said once (shown after)."""
    legend: dict[str, str] = {}
    recipe_members = set()
    for d in items:
        for reason in _builtin(d):
            legend.setdefault(reason.rule, reason.text)
        if _recipe(d):
            recipe_members.add(d.member)
    # The rules every shared object shares are said once; static libraries list their own.
    objects = [d for d in items if d.analyser == "elf"] or items
    shared = [r for r in legend if all(r in d.rules for d in objects)]
    briefs = {d.brief.partition(" · ")[2] for d in items if d.brief}
    suffix = _common_suffix([d.member or "" for d in items])
    outcomes = Counter(d.outcome for d in items)
    heading = (
        f"[bold]Compiled members[/] ({len(items)}: "
        + " · ".join(
            f"{outcomes[o]} {o.value}"
            for o in (Outcome.VERIFIED, Outcome.ATTRIBUTED)
            if outcomes[o]
        )
        + ")"
    )
    if len(briefs) == 1:
        heading += f", each {safe(briefs.pop())}"
    out: list[RenderableType] = [Text.from_markup(heading)]
    if suffix:
        out.append(Text.from_markup(f"  [dim]name… stands for name{safe(suffix)}[/]"))
    for d in items:
        name = d.member or ""
        if suffix and name.endswith(suffix):
            name = name.removesuffix(suffix) + "…"
        own = [r.removeprefix("elf-") for r in d.rules if r not in shared and r != "recipe"]
        if d.member in recipe_members:
            own.append("recipe")
        counts = (d.brief or d.summary).partition(" · ")[0] if len(briefs) <= 1 else d.brief
        extra = f"  [dim]+ {safe(', '.join(own))}[/]" if own else ""
        mark = _OUTCOME_MARK[d.outcome]
        out.append(Text.from_markup(f"{mark} [bold]{safe(name)}[/]  {safe(counts)}{extra}"))
    reasons: list[RenderableType] = [Text.from_markup("[bold]Why compiled members differ[/]")]
    if shared:
        every = "every .so" if len(objects) < len(items) else "all"
        joined = "; ".join(legend[r] for r in shared)
        reasons.append(Text.from_markup(f"  [dim]{every}: {safe(joined)}[/]"))
    for rule_id, text in legend.items():
        if rule_id not in shared:
            label = safe(rule_id.removeprefix("elf-"))
            reasons.append(Text.from_markup(f"  [dim]+ {label}: {safe(text)}[/]"))
    return out, reasons if legend else []


def _recipe_renderables(items: list[Divergence]) -> list[RenderableType]:
    """Each reason the recipe gave, once, with the members it explains."""
    members: dict[str, list[str]] = {}
    for d in items:
        for given in _recipe(d):
            said = f"{given.text} ({given.link})" if given.link else given.text
            members.setdefault(said, []).append(d.member or "")
    if not members:
        return []
    out: list[RenderableType] = [
        Text.from_markup(f"[bold]Expected by the recipe[/] ({len(members)})")
    ]
    suffix = _common_suffix([n for names in members.values() for n in names])
    for said, names in members.items():
        shown = [
            n.removesuffix(suffix) + "…" if suffix and n.endswith(suffix) else n for n in names
        ]
        out.append(Text.from_markup(f"[green]✓[/] [bold]{_names_line(shown)}[/]: {safe(said)}"))
    return out


def _grouped_section(
    title: str, items: list[Divergence], *, by_kind: bool, said: str = ""
) -> list[RenderableType]:
    """Explained divergences grouped by the rule (or kind) that covers them, one line a group.

    ``said`` is the reason they all share: the heading gives it once.
    """
    if not items:
        return []
    groups: dict[str, list[Divergence]] = {}
    for d in items:
        key = d.kind.value if by_kind else (d.rules[0] if d.rules else d.kind.value)
        groups.setdefault(key, []).append(d)
    # The heading names the layer; the reason's own "zip container only:" would repeat it.
    shared = said.split(": ", 1)[-1]
    heading = f"[bold]{title}[/] ({len(items)})" + (f": {safe(shared)}" if said else "")
    out: list[RenderableType] = [Text.from_markup(heading)]
    for group in groups.values():
        first = group[0]
        if len(group) == 1:
            out.append(_divergence_line(first, values=False, said=said))
            continue
        rule = first.rules[0] if first.rules else ""
        reason = _unsaid(_GROUP_REASONS.get(rule, first.explanation or ""), said)
        why = f"\n    [dim]why: {safe(reason)}[/]" if reason else ""
        out.append(
            Text.from_markup(
                f"[green]✓[/] [cyan]{first.kind.value}[/] {len(group):,}: "
                f"{_names_line([d.member or '' for d in group])}{why}"
            )
        )
    return out


def explained_renderables(
    items: list[Divergence], python: list[RenderableType] | None = None
) -> list[RenderableType]:
    """What is explained, compactly: compiled members, the recipe's reasons, then the rest."""
    if not items:
        return []
    compiled = [d for d in items if d.analyser in SUMMARY_ONLY]
    others = [d for d in items if d.analyser not in SUMMARY_ONLY]
    by_recipe = [d for d in others if "recipe" in d.rules]
    rest = [d for d in others if "recipe" not in d.rules]
    out: list[RenderableType] = [Text.from_markup(f"\n[bold underline]Explained[/] ({len(items)})")]
    # The summary first (each compiled member, the recipe's reasons), then the rules' reasons
    # and the rest: the first screen says what was rebuilt how, and what upstream itself could
    # not reproduce.
    members, reasons = _compiled_renderables(compiled) if compiled else ([], [])
    out += members
    out += _recipe_renderables([*compiled, *by_recipe])
    out += python or []
    out += reasons
    out += _grouped_section("Other members", rest, by_kind=False)
    return out


_OWN_KINDS = frozenset(
    {DivergenceKind.CONTENT, DivergenceKind.ONLY_PUBLISHED, DivergenceKind.ONLY_REBUILT}
)


def python_line(divergences: Iterable[Divergence]) -> list[RenderableType]:
    """Whether Python sources differ at all: the question a reviewer asks first."""
    python = [
        d
        for d in divergences
        if d.kind in _OWN_KINDS and d.member and d.member.endswith((".py", ".pyi"))
    ]
    if not python:
        return [Text.from_markup("[bold]Python sources[/]: every .py member is identical")]
    names = sorted({d.member or "" for d in python})
    open_ = sum(1 for d in python if not d.explained)
    state = f"[bold red]{open_} unexplained[/] (above)" if open_ else "each explained"
    return [
        Text.from_markup(
            f"[bold]Python sources[/]: {len(names)} .py member(s) differ, {state}: "
            f"{_names_line(names)}"
        )
    ]


AUTORUN_SHOWN = 10


def autorun_renderables(comparison: Comparison) -> list[RenderableType]:
    """What the published wheel makes run by itself (.pth, start-up modules, commands)."""
    if not comparison.autorun:
        return [
            Text.from_markup(
                "[bold]Runs by itself[/]: nothing (no .pth, start-up module, entry point or script)"
            )
        ]
    out: list[RenderableType] = [
        Text.from_markup(
            f"[bold]Runs by itself[/] ({len(comparison.autorun)}, each must be the rebuild's too)"
        )
    ]
    out += [Text.from_markup(f"  {safe(item)}") for item in comparison.autorun[:AUTORUN_SHOWN]]
    if len(comparison.autorun) > AUTORUN_SHOWN:
        out.append(
            Text(f"  … and {len(comparison.autorun) - AUTORUN_SHOWN} more in the JSON report")
        )
    return out


def _outcome_counts(comparison: Comparison) -> str:
    """The compiled members verified and attributed, counted apart from the unexplained."""
    verified, attributed = len(comparison.verified), len(comparison.attributed)
    parts = []
    if verified:
        parts.append(f"[green]{verified} verified[/]")
    if attributed:
        parts.append(f"[yellow]{attributed} attributed (code not verified)[/]")
    return "".join(f"{p} · " for p in parts)


def comparison_renderables(comparison: Comparison) -> list[RenderableType]:
    identity = Text()
    for side, info in (("published", comparison.published), ("rebuilt", comparison.rebuilt)):
        identity.append_text(
            Text.from_markup(
                f"{side:<10} [bold]{safe(info.filename)}[/]\n"
                f"  {info.size:,} bytes · {info.members} members\n"
                f"  sha256 {info.sha256}\n"
            )
        )
    by_layer = {layer: [d for d in comparison.divergences if d.layer is layer] for layer in Layer}
    unexplained = [d for d in comparison.divergences if not d.explained]
    explained_members = [
        d for d in comparison.divergences if d.explained and d.layer is not Layer.CONTAINER
    ]
    counts = Text.from_markup(
        f"{comparison.identical_members} members identical · "
        f"{len(by_layer[Layer.MEMBER])} member divergences · "
        f"{len(by_layer[Layer.INTEGRITY])} integrity findings · "
        f"{len(by_layer[Layer.CONTAINER])} container differences · "
        + _outcome_counts(comparison)
        + (
            f"[bold red]{len(unexplained)} unexplained[/]"
            if unexplained
            else "[green]0 unexplained[/]"
        )
    )
    parts: list[RenderableType] = [identity, counts]
    parts += _section("Unexplained: review these", unexplained, diffs=True, limit=30)
    parts += autorun_renderables(comparison)
    parts += explained_renderables(explained_members, python_line(comparison.divergences))
    container = [d for d in by_layer[Layer.CONTAINER] if d.explained]
    parts += _grouped_section("Zip container only", container, by_kind=True, said=CONTAINER_ONLY)
    if comparison.unanalysed:
        names = ", ".join(safe(n) for n in comparison.unanalysed[:10])
        more = len(comparison.unanalysed) - 10
        parts.append(
            Text.from_markup(
                f"\n[yellow]Not analysed in depth[/] (no analyser for their kind yet): {names}"
                + (f" … and {more} more" if more > 0 else "")
            )
        )
    return parts


def release_renderables(release: Release) -> list[RenderableType]:
    # Lines, not a table: filenames and hashes must be shown whole, whatever the width.
    parts: list[RenderableType] = [
        Text.from_markup(f"[bold]{safe(str(release.target))}[/] on {safe(release.index_url)}")
    ]
    for role, dist in (("wheel", release.wheel), ("sdist", release.sdist)):
        if dist is None:
            parts.append(Text.from_markup(f"{role}  [yellow]none on the index[/]"))
            continue
        uploaded = dist.upload_time.isoformat(timespec="seconds") if dist.upload_time else "?"
        size = f"{dist.size:,} bytes" if dist.size is not None else "size unknown"
        yanked = (
            f"[bold red]YANKED[/]: {safe(dist.yanked_reason or 'no reason given')}"
            if dist.yanked
            else "not yanked"
        )
        parts.append(
            Text.from_markup(
                f"{role}  [bold]{safe(dist.filename)}[/]\n"
                f"       sha256 {dist.sha256}\n"
                f"       {size} · uploaded {uploaded} · {yanked}"
            )
        )
    others = [f for f in release.files if f not in (release.wheel, release.sdist)]
    if others:
        parts.append(Text(f"{len(others)} other files in this release (other tags)", style="dim"))
    if release.project_urls:
        parts.append(Text("source URLs", style="bold"))
        for label, url in release.project_urls:
            parts.append(Text.from_markup(f"  {safe(label)}: {safe(url)}"))
    else:
        parts.append(Text("no source URLs in the project's metadata", style="yellow"))
    return parts


PROVENANCE_MEANING: dict[Verdict, str] = {
    Verdict.EQUIVALENT: "no build: every file checked is its source's, or explained",
    Verdict.DIVERGENT: "no build: a published file is not its source's, unexplained",
}


def provenance_renderables(check: ProvenanceCheck) -> list[RenderableType]:
    """The source checks: the wheel traced to the sdist, the sdist to the tagged tree."""
    lines = [
        f"\n[bold underline]Source[/]\nwheel → sdist  {check.traced} of {check.python_files} "
        f"Python files of {safe(check.wheel)} byte-identical in {safe(check.sdist or 'no sdist')}"
    ]
    revision = check.revision
    if revision is not None:
        lines.append(
            f"repository     {safe(revision.repo_url)} ({revision.repo_evidence.value})\n"
            f"commit         {revision.commit} {safe(revision.ref or '')} "
            f"({revision.commit_evidence.value})"
        )
        lines += [f"  [dim]{safe(note)}[/]" for note in revision.notes]
    lines += [_attestation_line(a) for a in check.attestations]
    if check.sdist_files is not None:
        lines.append(
            f"sdist → git    {check.sdist_matched} of {check.sdist_files} files of the sdist "
            "byte-identical at the commit"
        )
    lines += [f"[dim]note: {safe(note)}[/]" for note in check.notes]
    parts: list[RenderableType] = [Text.from_markup("\n".join(lines))]
    unexplained = [d for d in check.findings if not d.explained]
    explained = [d for d in check.findings if d.explained]
    parts += _section("Source, unexplained: review these", unexplained, diffs=True, limit=30)
    parts += _section("Source, explained", explained, diffs=False, limit=20)
    return parts


def _attestation_line(a: PublisherAttestation) -> str:
    if not a.verified:
        return f"PEP 740       [bold red]✗ {safe(a.file)}: does not verify[/] ({safe(a.reason)})"
    return (
        f"PEP 740       [green]✓ {safe(a.file)}[/] verified: {safe(a.publisher or '?')} "
        f"{safe(a.repository or '?')} workflow {safe(a.workflow or '?')} commit "
        f"{safe(a.commit or '?')} {safe(a.ref or '')}\n  [dim]{safe(a.reason)}[/]"
    )


def report_renderable(report: Report) -> RenderableType:
    verdict = report.verdict
    title = safe(str(report.target)) if report.target else "compare"
    meaning = VERDICT_MEANING[verdict]
    if report.provenance is not None and report.comparison is None and report.failure is None:
        meaning = PROVENANCE_MEANING.get(verdict, meaning)  # no rebuild: the source checks'
    header = Text.from_markup(f"[{VERDICT_STYLE[verdict]}]{verdict.value.upper()}[/] — {meaning}")
    parts: list[RenderableType] = [header]
    plan, build = report.plan, report.build
    if plan is not None and plan.image_reference and build is not None:
        # The recipe's image could not be used: said first, because it colours every toolchain
        # divergence below ("How it was rebuilt" says why).
        parts.append(
            Text.from_markup(
                f"[bold yellow]image:[/] rebuilt in the local image {safe(build.image.tag)}, "
                f"not the recipe's {safe(plan.image_reference)} (see How it was rebuilt)"
            )
        )
    if report.failure is not None:
        f = report.failure
        parts.append(Text.from_markup(f"[bold]{safe(f.stage)} failed:[/] {safe(f.message)}"))
        if f.hint:
            parts.append(Text.from_markup(f"[dim]hint: {safe(f.hint)}[/]"))
        if f.log_tail:
            parts.append(Text.from_markup(f"[dim]{safe(f.log_tail)}[/]"))
        if f.log_path:
            parts.append(Text.from_markup(f"full log: {safe(str(f.log_path))}"))
    if report.comparison is not None:
        parts += comparison_renderables(report.comparison)
    if report.provenance is not None:
        parts += provenance_renderables(report.provenance)
    parts += build_renderables(report)
    return Group(Rule(f"rebuild · {title}", align="left"), *parts)


def build_renderables(report: Report) -> list[RenderableType]:
    """The effective recipe and what the build used: enough for a reviewer to replay it."""
    lines = [f"[bold yellow]note:[/] {safe(note)}" for note in report.notes]
    plan, build = report.plan, report.build
    if plan is not None:
        pins = ", ".join(plan.backend_pins) or "none"
        lines += [
            "\n[bold underline]How it was rebuilt[/]",
            f"backend        {safe(plan.backend or 'unknown')} "
            f"(Generator: {safe(plan.generator or 'none')}; pinned {safe(pins)})",
            f"resolved as of {plan.exclude_newer.isoformat() if plan.exclude_newer else 'today'}"
            f" · SOURCE_DATE_EPOCH {plan.source_date_epoch or 'unset'} · umask {plan.umask}",
        ]
        if plan.system_packages:
            lines.append(f"system         {safe(', '.join(plan.system_packages))} added")
        lines += [f"  [dim]{safe(note)}[/]" for note in plan.notes]
        lines.append("[dim]where each value came from[/]")
        lines += [f"  [dim]{safe(name)}: {safe(origin)}[/]" for name, origin in plan.origins]
    if build is not None:
        image = build.image
        lines += [
            f"image          {safe(image.tag)} {image.image_id} ({safe(image.obtained)}, "
            f"{image.packages} packages, Python {safe(image.python)})",
            f"requirements   {safe(', '.join(build.requirements) or 'none')}",
            f"sandbox        network {safe(build.network)} · {build.duration_s:.1f} s · "
            f"log {safe(str(build.log_path))}",
        ]
        if image.python_source:
            lines.append(
                f"  [dim]Python {safe(image.python)} built from {safe(image.python_source)}[/]"
            )
        lines += [f"  [yellow]image drift[/] {safe(d)}" for d in image.drift]
        if build.repair is not None:
            repair = build.repair
            lines.append(
                f"repair         auditwheel repair --plat {safe(repair.platform)}: "
                + (
                    "replayed"
                    if repair.replayed
                    else f"[yellow]refused[/] ({safe(_short(repair.reason))})"
                )
            )
    return [Text.from_markup("\n".join(lines))] if lines else []


def _short(text: str, limit: int = 160) -> str:
    """A long tool message cut for the terminal (the JSON report keeps it whole)."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def print_report(report: Report, console: Console) -> None:
    console.print(report_renderable(report))


def print_release(release: Release, console: Console) -> None:
    for part in release_renderables(release):
        console.print(part)
