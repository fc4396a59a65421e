"""Reports escape what a hostile package put in them: terminal, JSON and HTML.

Member names carrying terminal escapes (clear screen, window title, hyperlinks), HTML that
would run, a right-to-left override and newlines go through a real comparison into each
format; none may reach the reader raw.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rich.console import Console

from rebuild.compare import compare_wheels
from rebuild.models import Failure, Report, Target, Verdict
from rebuild.report import html as html_report
from rebuild.report import json as json_report
from rebuild.report.terminal import print_report
from rebuild.store import Store, build_review

from .corpus import BIDI, HTML, TERMINAL_ESCAPES, Place, clean_wheel, wheel_escape_names

RAW = ("\x1b", "\x07", "\u202e", "\x00")
LOG = f"building...\n{TERMINAL_ESCAPES}\n{HTML}\n{BIDI}\n"


@pytest.fixture
def report(tmp_path: Path) -> Report:
    place = Place(inputs=tmp_path / "in", outside=tmp_path / "outside")
    comparison = compare_wheels(wheel_escape_names(place), clean_wheel(place.inputs))
    names = {d.member for d in comparison.divergences}
    assert any(TERMINAL_ESCAPES in (n or "") for n in names)
    assert any(HTML in (n or "") for n in names)
    return Report(
        tool_version="test",
        created=datetime(2024, 1, 1, tzinfo=UTC),
        verdict=comparison.verdict,
        target=Target("demo", "1.0"),
        comparison=comparison,
        notes=(f"note {TERMINAL_ESCAPES}",),
    )


def failed_report() -> Report:
    return Report(
        tool_version="test",
        created=datetime(2024, 1, 1, tzinfo=UTC),
        verdict=Verdict.FAILED,
        target=Target("demo", "1.0"),
        failure=Failure(
            stage="build",
            message=f"the build exited {TERMINAL_ESCAPES}",
            hint=HTML,
            exit_code=7,
            log_tail=LOG,
        ),
    )


def terminal_text(report: Report) -> str:
    out = io.StringIO()
    # No colour: whatever escape is left in the output came from the package.
    print_report(report, Console(file=out, width=300, color_system=None, force_terminal=False))
    return out.getvalue()


@pytest.mark.parametrize("which", ["comparison", "failure"])
def test_terminal_report_shows_escapes_instead_of_obeying_them(report: Report, which: str) -> None:
    text = terminal_text(report if which == "comparison" else failed_report())
    for raw in RAW:
        assert raw not in text
    assert "\\x1b[2J" in text  # shown, visibly escaped
    assert "\\u202e" in text or (which == "failure" and "\\u202e" in text)


def test_json_report_is_ascii_and_round_trips_the_names(report: Report) -> None:
    for subject in (report, failed_report()):
        text = json_report.render(subject)
        assert text.isascii()
        for raw in RAW:
            assert raw not in text
    document = json.loads(json_report.render(report))
    members = {d["member"] for d in document["comparison"]["divergences"]}
    # Escaped for transport, not altered: a program reading the report gets the real names.
    assert any(TERMINAL_ESCAPES in (m or "") for m in members)
    assert json.loads(json_report.render(failed_report()))["failure"]["log_tail"] == LOG


def test_html_pages_escape_names_logs_and_messages(report: Report, tmp_path: Path) -> None:
    with Store(tmp_path / "store.sqlite") as store:
        store.record(report, run_id=None, seconds=1.0)
        failed = failed_report()
        store.record(
            Report(**{**failed.__dict__, "target": Target("evil", "2.0")}),
            run_id=None,
            seconds=1.0,
        )
        review = build_review(store.current_results())
        linked = {e.result.id for e in review.entries}
        pages = [html_report.render_index(review)]
        pages += [html_report.render_release(store, e, linked) for e in review.entries]
    for page in pages:
        for raw in RAW:
            assert raw not in page
        assert "<script>alert" not in page
        assert "<img src=x" not in page
    release_pages = "\n".join(pages[1:])
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in release_pages
    assert "\\x1b[2J" in release_pages
