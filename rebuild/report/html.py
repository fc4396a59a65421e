"""The review site: static HTML pages over the results store, for the people who review them.

``index.html`` lists every release's current result, most urgent first (regressions,
unexplained divergences, failures, then the rest), with filters by verdict; each release has a
page with its divergences and their explanations, its build's provenance, timings, history and
links to the JSON report and build log. The site needs no server and no external asset: CSS and
the one script are inline, and it works opened from ``file://``.

Everything that came out of a package (member names, diffs, messages, logs) is untrusted. It is
HTML-escaped and stripped of control characters at the one place text enters a page (:func:`t`),
and every page carries a Content-Security-Policy that allows only the site's own script, by
hash: were an escape ever missed, an injected script would still not run.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import unicodedata
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from rebuild import __version__
from rebuild.errors import UsageError
from rebuild.models import Outcome
from rebuild.report import write_atomically
from rebuild.store import (
    Attention,
    Review,
    ReviewEntry,
    Store,
    StoredDivergence,
    StoredResult,
)

# Divergences listed on one page; the rest are in the JSON report (a wheel with thousands of
# members can differ in every zip timestamp).
ROWS_SHOWN = 400
DETAIL_CHARS_SHOWN = 20_000

_UNSAFE_CATEGORIES = ("Cc", "Cf", "Cs", "Co", "Zl", "Zp")


def t(value: object) -> str:
    """Untrusted text made safe inside HTML text or a quoted attribute."""
    out = []
    for ch in str(value):
        if ch in "\n\t" or unicodedata.category(ch) not in _UNSAFE_CATEGORIES:
            out.append(ch)
        else:
            # Bidi overrides and escapes would let a name pose as another; show them instead.
            out.append(f"\\u{ord(ch):04x}" if ord(ch) > 0xFF else f"\\x{ord(ch):02x}")
    return html.escape("".join(out), quote=True)


def page_name(result: StoredResult) -> str:
    """A release page's file name: only characters safe in any path and URL."""
    slug = re.sub(r"[^A-Za-z0-9._-]", "_", f"{result.project}-{result.version}")
    return f"{slug}.html"


def file_link(path: Path | None, label: str) -> str:
    if path is None:
        return '<span class="dim">none</span>'
    return f'<a href="{t(path.resolve().as_uri())}">{t(label)}</a> <code>{t(path)}</code>'


_SCRIPT = """
const rows = Array.from(document.querySelectorAll("tr[data-verdict]"));
const buttons = Array.from(document.querySelectorAll("button[data-filter]"));
const shown = document.getElementById("shown");
function apply(filter) {
  const [key, value] = filter.split("=");
  let count = 0;
  for (const row of rows) {
    const visible = key === "all" || row.dataset[key] === value;
    row.hidden = !visible;
    if (visible) count++;
  }
  for (const b of buttons) b.setAttribute("aria-pressed", String(b.dataset.filter === filter));
  shown.textContent = count + " of " + rows.length;
}
for (const b of buttons) {
  b.addEventListener("click", () => {
    history.replaceState(null, "", "#" + b.dataset.filter);
    apply(b.dataset.filter);
  });
}
const start = decodeURIComponent(location.hash.slice(1));
apply(buttons.some((b) => b.dataset.filter === start) ? start : "all");
"""
_SCRIPT_HASH = base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()
_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; "
    f"script-src 'sha256-{_SCRIPT_HASH}'; img-src data:; base-uri 'none'; form-action 'none'"
)

_CSS = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 72rem; padding: 1rem 2rem;
       color: #1d2330; }
h1 { font-size: 1.5rem; margin-bottom: .2rem; }
h2 { font-size: 1.15rem; margin-top: 2rem; border-bottom: 1px solid #d5d9e2; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid #e6e9ef;
         vertical-align: top; }
th { background: #f3f5f9; }
code, pre { font: 13px/1.35 ui-monospace, monospace; }
pre { background: #f6f8fa; padding: .6rem; overflow-x: auto; white-space: pre-wrap;
      word-break: break-all; }
.badge { display: inline-block; padding: .05rem .45rem; border-radius: .6rem; font-size: .8rem;
         font-weight: 600; color: #fff; }
.regression { background: #b3261e; } .unexplained { background: #d9480f; }
.failed { background: #862e9c; } .explained { background: #1864ab; }
.equivalent { background: #2b8a3e; } .reproducible { background: #2b8a3e; }
.divergent { background: #d9480f; }
.box { border-left: 4px solid #b3261e; background: #fff5f5; padding: .5rem 1rem; margin: 1rem 0; }
.dim { color: #6b7280; }
.filters .dim { margin: 0 .4rem 0 .8rem; }
.filters button { margin: 0 .2rem .4rem 0; padding: .25rem .7rem; border: 1px solid #aab;
                  background: #fff; border-radius: .3rem; cursor: pointer; }
.filters button[aria-pressed="true"] { background: #1d2330; color: #fff; }
.no { color: #b3261e; font-weight: 700; } .yes { color: #2b8a3e; }
"""


def _page(title: str, body: str, *, script: bool = False) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{t(title)}</title>\n<style>{_CSS}</style></head>\n<body>\n{body}\n"
        + (f"<script>{_SCRIPT}</script>\n" if script else "")
        + "</body></html>\n"
    )


def _badge(value: str) -> str:
    return f'<span class="badge {t(value)}">{t(value)}</span>'


def _when(moment: datetime) -> str:
    return t(moment.strftime("%Y-%m-%d %H:%M UTC"))


# --- the index ---------------------------------------------------------------------------------


def _index_row(entry: ReviewEntry) -> str:
    r = entry.result
    why = ""
    if entry.regression is not None:
        why = t(entry.regression.reason)
    elif r.failure_stage:
        why = f"{t(r.failure_stage)} failed: {t(r.failure_message or '')}"
    return (
        f'<tr data-attention="{t(entry.attention.value)}" data-verdict="{t(r.verdict.value)}">'
        f"<td>{_badge(entry.attention.value)}</td>"
        f'<td><a href="releases/{t(page_name(r))}">{t(r.project)}</a></td>'
        f"<td>{t(r.version)}</td><td>{_badge(r.verdict.value)}</td>"
        f"<td>{r.unexplained}</td><td>{r.divergences}</td>"
        f"<td>{why}</td><td>{_when(r.created)}</td></tr>"
    )


def render_index(review: Review) -> str:
    counts = " · ".join(
        f"{review.count(a)} {a.value}" for a in Attention if review.count(a) or a.needs_review
    )
    gate = (
        '<p class="box"><strong>Needs review:</strong> regressions or unexplained divergences '
        "below.</p>"
        if review.needs_review
        else "<p>Nothing unexplained, nothing regressed.</p>"
    )
    filters = ['<button type="button" data-filter="all">all</button>']
    filters += [
        f'<button type="button" data-filter="attention={a.value}">{a.value}</button>'
        for a in (Attention.REGRESSION, Attention.UNEXPLAINED)
    ]
    filters.append('<span class="dim">verdict:</span>')
    filters += [
        f'<button type="button" data-filter="verdict={v}">{v}</button>'
        for v in ("reproducible", "equivalent", "divergent", "failed")
    ]
    rows = "\n".join(_index_row(e) for e in review.entries)
    body = f"""<h1>rebuild review</h1>
<p class="dim">{len(review.entries)} releases · {t(counts)} ·
written by rebuild {t(__version__)}</p>
{gate}
<div class="filters">{"".join(filters)}
<span class="dim">showing <span id="shown"></span></span></div>
<table id="releases"><thead><tr><th>needs</th><th>project</th><th>version</th><th>verdict</th>
<th>unexplained</th><th>divergences</th><th>why</th><th>checked</th></tr></thead>
<tbody>
{rows}
</tbody></table>"""
    return _page("rebuild review", body, script=True)


# --- one release -------------------------------------------------------------------------------


def _divergence_rows(divergences: list[StoredDivergence]) -> str:
    rows = []
    for d in divergences[:ROWS_SHOWN]:
        mark = '<span class="yes">✓</span>' if d.explained else '<span class="no">✗</span>'
        values = ""
        if d.published is not None or d.rebuilt is not None:
            values = (
                f"<br><span class=dim>published:</span> <code>{t(d.published)}</code>"
                f"<br><span class=dim>rebuilt:</span> <code>{t(d.rebuilt)}</code>"
            )
        if d.outcome is Outcome.UNEXPLAINED:
            why = '<strong class="no">unexplained</strong>'
        else:
            # Each reason on its own line, with whose word it rests on and its link.
            why = f"<strong>{t(d.outcome.value)}</strong>" + "".join(
                f"<br>{t(r.text)} <span class=dim>[{t(r.rule)}, {t(r.origin.value)}]</span>"
                + (f' <a href="{t(r.link)}">link</a>' if r.link else "")
                for r in d.reasons
            )
        detail = ""
        if d.detail:
            cut = d.detail[:DETAIL_CHARS_SHOWN]
            cut_note = " (cut; the JSON report has it whole)" if len(d.detail) > len(cut) else ""
            detail = f"<details><summary>detail{cut_note}</summary><pre>{t(cut)}</pre></details>"
        rows.append(
            f'<tr class="divergence" data-explained="{str(d.explained).lower()}">'
            f"<td>{mark}</td><td><code>{t(d.kind)}</code><br><span class=dim>{t(d.layer)}"
            f"</span></td><td><code>{t(d.member or '(archive)')}</code></td>"
            f"<td>{t(d.summary)}{values}{detail}</td><td>{why}</td></tr>"
        )
    more = len(divergences) - ROWS_SHOWN
    if more > 0:
        rows.append(f'<tr><td colspan="5">… and {more} more in the JSON report</td></tr>')
    return "\n".join(rows)


def _definition_list(items: Iterable[tuple[str, str]]) -> str:
    return (
        "<table>"
        + "".join(f'<tr><th style="width:14rem">{k}</th><td>{v}</td></tr>' for k, v in items)
        + "</table>"
    )


def _provenance(r: StoredResult) -> str:
    def code(value: str | None) -> str:
        return f"<code>{t(value)}</code>" if value else '<span class="dim">unknown</span>'

    items = [
        ("tool version", code(r.tool_version)),
        ("run", t(r.run_id if r.run_id is not None else "(none)")),
        ("checked", _when(r.created)),
        ("index", code(r.index_url)),
        ("published wheel", f"{code(r.wheel_filename)}<br>sha256 {code(r.wheel_sha256)}"),
        ("sdist", f"{code(r.sdist_filename)}<br>sha256 {code(r.sdist_sha256)}"),
        ("rebuilt wheel", f"sha256 {code(r.rebuilt_sha256)}"),
        ("image", f"{code(r.image_tag)}<br>{code(r.image_id)}"),
        (
            "build requirements",
            "<br>".join(f"<code>{t(x)}</code>" for x in r.requirements)
            or '<span class="dim">none recorded</span>',
        ),
    ]
    out = _definition_list(items)
    if r.plan_json:
        pretty = json.dumps(json.loads(r.plan_json), indent=2)
        out += (
            "<details><summary>the plan (effective recipe)</summary>"
            f"<pre>{t(pretty)}</pre></details>"
        )
    return out


def _history(store: Store, result: StoredResult, linked: set[int]) -> str:
    rows = []
    for h in store.history(result.project):
        version = t(h.version)
        if h.id in linked and h.id != result.id:
            version = f'<a href="{t(page_name(h))}">{version}</a>'
        this = " (this page)" if h.id == result.id else ""
        rows.append(
            f"<tr><td>{_when(h.created)}</td><td>{version}{this}</td>"
            f"<td>{_badge(h.verdict.value)}</td><td>{h.unexplained}</td>"
            f"<td>{'current' if h.current else 'superseded'}</td><td>{t(h.tool_version)}</td></tr>"
        )
    return (
        "<table><thead><tr><th>checked</th><th>version</th><th>verdict</th><th>unexplained</th>"
        "<th>result</th><th>tool</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )


def render_release(store: Store, entry: ReviewEntry, linked: set[int]) -> str:
    r = entry.result
    parts = [
        '<p><a href="../index.html">← all releases</a></p>',
        f"<h1>{t(r.project)} {t(r.version)}</h1>",
        f"<p>{_badge(r.verdict.value)} {_badge(entry.attention.value)} "
        f"<span class=dim>{r.divergences} divergences, {r.unexplained} unexplained · "
        f"{r.seconds:.1f} s</span></p>",
    ]
    if entry.regression is not None:
        parts.append(
            f'<div class="box"><strong>Regression:</strong> {t(entry.regression.reason)}</div>'
        )
    if r.failure_stage:
        parts.append(
            f'<div class="box"><strong>{t(r.failure_stage)} failed:</strong> '
            f"{t(r.failure_message or '')}"
            + (f"<br><span class=dim>hint: {t(r.failure_hint)}</span>" if r.failure_hint else "")
            + "</div>"
        )
        if r.failure_log_tail:
            parts.append(f"<h2>End of the build log</h2><pre>{t(r.failure_log_tail)}</pre>")
    for note in r.notes:
        parts.append(f'<p class="box">{t(note)}</p>')
    divergences = store.divergences(r.id)
    if divergences:
        parts.append(
            f"<h2>Divergences ({len(divergences)}; unexplained first)</h2>"
            "<table><thead><tr><th></th><th>kind</th><th>member</th><th>what</th><th>why</th>"
            f"</tr></thead><tbody>{_divergence_rows(divergences)}</tbody></table>"
        )
    parts.append("<h2>Provenance</h2>" + _provenance(r))
    timings = store.timings(r.id)
    if timings:
        parts.append(
            "<h2>Timings</h2>"
            + _definition_list((t(stage), f"{seconds:.2f} s") for stage, seconds in timings)
        )
    parts.append(
        "<h2>Files</h2>"
        + _definition_list(
            [
                ("JSON report (every divergence, whole diffs)", file_link(r.report_path, "open")),
                ("build log", file_link(r.log_path, "open")),
                ("in-toto attestations (DSSE, one a line)", _attestation_link(store, r)),
            ]
        )
    )
    parts.append(f"<h2>History of {t(r.project)}</h2>" + _history(store, r, linked))
    return _page(f"{r.project} {r.version} — rebuild review", "\n".join(parts))


def attestation_name(result: StoredResult) -> str:
    return page_name(result).removesuffix(".html") + ".intoto.jsonl"


def _attestation_link(store: Store, result: StoredResult) -> str:
    kept = store.attestation(result.id)
    if kept is None:
        return '<span class="dim">none</span>'
    signed = f"signed by <code>{t(kept[1])}</code>" if kept[1] else "unsigned"
    name = attestation_name(result)
    return f'<a href="../attestations/{t(name)}">{t(name)}</a> <span class=dim>{signed}</span>'


def write_site(store: Store, review: Review, directory: Path) -> Path:
    """Write the review site into ``directory``; returns the index page's path."""
    linked = {e.result.id for e in review.entries}
    releases = _own_directory(directory, "releases")
    attestations = _own_directory(directory, "attestations")
    for entry in review.entries:
        # The attestations the store keeps, beside the pages that link them.
        kept = store.attestation(entry.result.id)
        if kept is not None:
            write_atomically(
                _inside(directory, attestations / attestation_name(entry.result)), kept[0]
            )
        write_atomically(
            _inside(directory, releases / page_name(entry.result)),
            render_release(store, entry, linked),
        )
    index = _inside(directory, directory / "index.html")
    write_atomically(index, render_index(review))
    return index


def _own_directory(directory: Path, name: str) -> Path:
    """``directory/name`` as a real directory: a symlink left there (pointing anywhere) is
    removed, never followed, so that no page is written outside ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    if path.is_symlink():
        path.unlink()
    path.mkdir(exist_ok=True)
    return path


def _inside(directory: Path, path: Path) -> Path:
    """``path``, checked to land inside ``directory``. write_atomically renames over the final
    name, which replaces a symlink there rather than writing through it; its parent must not
    lead out."""
    if path.is_symlink():
        path.unlink()
    if not path.parent.resolve().is_relative_to(directory.resolve()):
        raise UsageError(
            f"{path} would be written outside {directory}",
            hint="give --html an empty directory, or one rebuild wrote",
        )
    return path
