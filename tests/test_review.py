"""The review report: the static site in a real headless browser (Debian's chromium driven by
Playwright), hostile names escaped, filters working; and the text and JSON summaries."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Dialog, Error, Page, sync_playwright
from test_store import T0, fake_report
from typer.testing import CliRunner

from rebuild.cli import app
from rebuild.errors import EXIT_NEEDS_REVIEW
from rebuild.models import Verdict
from rebuild.report.html import page_name, write_site
from rebuild.store import Store, build_review

CHROMIUM = "/usr/bin/chromium"
HOSTILE = '<script>alert("member")</script><img src=x onerror="alert(1)">\u202ecod.py'
HOSTILE_LOG = "</pre><script>alert('log')</script>"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "results.sqlite") as opened:
        day = timedelta(days=1)
        for report in (
            fake_report("steady==1.0", Verdict.REPRODUCIBLE),
            fake_report("steady==1.1", Verdict.EQUIVALENT, explained=3, created=T0 + day),
            fake_report("hostile==1.0", Verdict.REPRODUCIBLE),
            fake_report("hostile==2.0", Verdict.DIVERGENT, unexplained=2, member=HOSTILE),
            fake_report("odd==0.3", Verdict.DIVERGENT, unexplained=1, explained=1),
            fake_report("broken==4.0", Verdict.FAILED, failure=f"the build failed {HOSTILE_LOG}"),
            fake_report("noted==1.0", Verdict.DIVERGENT, explained=2),
        ):
            opened.record(report, run_id=None, seconds=2.5, timings=[("build", 1.25)])
        yield opened


@pytest.fixture
def site(store: Store, tmp_path: Path) -> Path:
    return write_site(store, build_review(store.current_results()), tmp_path / "site")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield launched
        launched.close()


class Watched:
    """A page with every dialog (alert) and console error it produced recorded."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        page.on("dialog", self._dialog)
        page.on("console", self._console)
        page.on("pageerror", self._page_error)

    def _dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def _page_error(self, error: Error) -> None:
        self.errors.append(str(error))


@pytest.fixture
def watched(browser: Browser) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    yield Watched(context.new_page())
    context.close()


def visible_rows(page: Page) -> list[str]:
    rows = page.locator("#releases tbody tr:visible")
    return [rows.nth(i).locator("td").nth(1).inner_text() for i in range(rows.count())]


def test_the_index_renders_most_urgent_first(site: Path, watched: Watched, tmp_path: Path) -> None:
    page = watched.page
    page.goto(site.as_uri())
    assert page.title() == "rebuild review"
    needs = page.locator("#releases tbody tr td:first-child")
    assert [needs.nth(i).inner_text() for i in range(needs.count())] == [
        "regression",
        "unexplained",
        "failed",
        "explained",
        "equivalent",
        "reproducible",
        "reproducible",
    ]
    assert visible_rows(page)[:3] == ["hostile", "odd", "broken"]
    assert "Needs review" in page.locator("body").inner_text()
    assert page.locator("#shown").inner_text() == "7 of 7"
    page.screenshot(path=str(tmp_path / "index.png"), full_page=True)
    print(f"screenshot: {tmp_path / 'index.png'}")
    assert watched.errors == []  # our own script ran under the page's CSP


def test_the_filters_show_one_verdict_or_what_needs_review(site: Path, watched: Watched) -> None:
    page = watched.page
    page.goto(site.as_uri())
    page.click("button[data-filter='verdict=divergent']")
    assert visible_rows(page) == ["hostile", "odd", "noted"]
    assert page.locator("#shown").inner_text() == "3 of 7"
    page.click("button[data-filter='verdict=failed']")
    assert visible_rows(page) == ["broken"]
    page.click("button[data-filter='attention=regression']")
    assert visible_rows(page) == ["hostile"]
    assert page.locator("button[aria-pressed='true']").inner_text() == "regression"
    page.click("button[data-filter='all']")
    assert len(visible_rows(page)) == 7
    # The filter is in the address: a link to it (or a reload) opens filtered.
    page.goto(site.as_uri() + "#verdict=reproducible")
    page.reload()
    assert visible_rows(page) == ["hostile", "steady"]
    assert page.locator("#shown").inner_text() == "2 of 7"


def test_a_hostile_member_name_is_shown_not_run(
    store: Store, site: Path, watched: Watched, tmp_path: Path
) -> None:
    result = store.current("hostile", "2.0")
    assert result is not None
    page = watched.page
    page.goto((site.parent / "releases" / page_name(result)).as_uri())
    page.locator("details").first.evaluate("d => d.open = true")
    text = page.locator("body").inner_text()
    page.screenshot(path=str(tmp_path / "hostile.png"), full_page=True)
    print(f"screenshot: {tmp_path / 'hostile.png'}")
    assert watched.dialogs == []
    assert page.locator("script").count() == 0
    assert page.locator("img").count() == 0
    # Shown as text, with the bidi override made visible instead of reordering the name.
    assert '<script>alert("member")</script><img src=x onerror="alert(1)">\\u202ecod.py' in text
    assert "Regression: 1.0 was reproducible, 2.0 is divergent" in text
    assert "unexplained" in text


def test_a_hostile_failure_message_stays_inside_its_box(
    store: Store, site: Path, watched: Watched
) -> None:
    result = store.current("broken", "4.0")
    assert result is not None
    page = watched.page
    page.goto((site.parent / "releases" / page_name(result)).as_uri())
    assert watched.dialogs == []
    assert page.locator("script").count() == 0
    assert HOSTILE_LOG in page.locator(".box").first.inner_text()


def test_every_page_forbids_scripts_other_than_its_own(site: Path) -> None:
    pages = [site, *sorted((site.parent / "releases").glob("*.html"))]
    assert len(pages) == 8
    for path in pages:
        head = path.read_text().split("</head>")[0]
        assert "Content-Security-Policy" in head
        assert "default-src 'none'" in head
        assert "http://" not in path.read_text() and "https://" not in path.read_text()


# --- the CLI's summaries and gate ------------------------------------------------------------


def test_review_prints_a_summary_writes_json_and_gates(store: Store, tmp_path: Path) -> None:
    runner = CliRunner()
    summary = tmp_path / "summary.json"
    done = runner.invoke(
        app,
        [
            "review",
            "--store",
            str(store.path),
            "--json",
            str(summary),
            "--html",
            str(tmp_path / "s"),
        ],
        env={"COLUMNS": "200"},
    )
    assert done.exit_code == EXIT_NEEDS_REVIEW, done.output
    lines = done.stdout.splitlines()
    assert lines[0].startswith(
        "3 of 7 releases verified (reproducible or equivalent): 1 regression · 1 unexplained · "
        "1 failed"
    )
    assert lines[1].split()[:3] == ["regression", "hostile==2.0", "divergent"]
    assert "needs review" in done.stdout
    document = json.loads(summary.read_text())
    assert document["exit_code"] == EXIT_NEEDS_REVIEW
    assert [r["project"] for r in document["regressions"]] == ["hostile"]
    assert document["releases"][0]["regression"] == "1.0 was reproducible, 2.0 is divergent"
    assert (tmp_path / "s" / "index.html").is_file()


def test_history_lists_every_verification_newest_first(store: Store) -> None:
    done = CliRunner().invoke(
        app, ["history", "Steady", "--store", str(store.path)], env={"COLUMNS": "200"}
    )
    assert done.exit_code == 0, done.output
    lines = done.stdout.splitlines()
    assert [line.split()[2] for line in lines] == ["steady==1.1", "steady==1.0"]


def test_the_site_never_writes_through_a_symlink_in_its_directory(
    store: Store, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim.html"
    victim.write_text("untouched")
    directory = tmp_path / "site"
    directory.mkdir()
    (directory / "releases").symlink_to(outside, target_is_directory=True)
    (directory / "index.html").symlink_to(victim)
    index = write_site(store, build_review(store.current_results()), directory)
    assert sorted(p.name for p in outside.iterdir()) == ["victim.html"]
    assert victim.read_text() == "untouched"
    assert not index.is_symlink() and index.read_text().startswith("<!DOCTYPE")
    releases = directory / "releases"
    assert not releases.is_symlink() and any(releases.iterdir())


def test_strict_fails_the_gate_on_a_failed_release_and_on_nothing_at_all(tmp_path: Path) -> None:
    runner = CliRunner()
    failed_path, empty_path = tmp_path / "failed.sqlite", tmp_path / "empty.sqlite"
    with Store(failed_path) as only_failed:
        report = fake_report("broken==4.0", Verdict.FAILED, failure="no wheel")
        only_failed.record(report, run_id=None, seconds=1.0, timings=[])
    with Store(empty_path):
        pass
    for path, lenient in ((failed_path, 0), (empty_path, 0)):
        plain = runner.invoke(app, ["review", "--store", str(path)], env={"COLUMNS": "200"})
        assert plain.exit_code == lenient, plain.output
        strict = runner.invoke(
            app, ["review", "--store", str(path), "--strict"], env={"COLUMNS": "200"}
        )
        assert strict.exit_code == EXIT_NEEDS_REVIEW, strict.output
    failed = runner.invoke(app, ["review", "--store", str(failed_path)], env={"COLUMNS": "200"})
    assert failed.stdout.startswith("0 of 1 releases verified")
