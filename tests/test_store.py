"""The results store: schema and migrations, one current result per release, history,
regressions, and what a process killed mid-write leaves behind (nothing half-written)."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rebuild import __version__
from rebuild.errors import EXIT_NEEDS_REVIEW, UsageError
from rebuild.models import (
    Comparison,
    Divergence,
    DivergenceKind,
    Failure,
    Outcome,
    ProvenanceCheck,
    Reason,
    Report,
    Target,
    Verdict,
    WheelInfo,
)
from rebuild.store import (
    SCHEMA_VERSION,
    Attention,
    Store,
    build_review,
)

T0 = datetime(2024, 5, 1, tzinfo=UTC)


def fake_report(
    spec: str,
    verdict: Verdict,
    *,
    unexplained: int = 0,
    explained: int = 0,
    member: str = "pkg/__init__.py",
    created: datetime = T0,
    failure: str | None = None,
) -> Report:
    """A report as a check would return it, without a build (for store and review tests)."""
    divergences = [
        Divergence(
            DivergenceKind.CONTENT,
            f"bytes differ in {member}",
            member=member if i == 0 else f"{member}.{i}",
            detail=f"--- published\n+++ rebuilt\n-{member}\n+safe\n",
        )
        for i in range(unexplained)
    ] + [
        Divergence(
            DivergenceKind.TIMESTAMP,
            "zip timestamp differs",
            member=f"pkg/m{i}.py",
            published="2024-01-01",
            rebuilt="1980-01-01",
            outcome=Outcome.EXPLAINED,
            reasons=(Reason("container", "SOURCE_DATE_EPOCH not honoured by the backend"),),
        )
        for i in range(explained)
    ]
    comparison = None
    if verdict is not Verdict.FAILED:
        info = WheelInfo("pkg-1-py3-none-any.whl", "a" * 64, 100, 3)
        comparison = Comparison(info, info, verdict, tuple(divergences), identical_members=3)
    return Report(
        tool_version=__version__,
        created=created,
        verdict=verdict,
        target=Target.parse(spec),
        comparison=comparison,
        failure=Failure("build", failure, exit_code=7) if failure else None,
    )


def test_a_new_store_is_at_the_current_schema_and_reopens_without_migrating(
    tmp_path: Path,
) -> None:
    path = tmp_path / "deep" / "results.sqlite"
    with Store(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        store.record(fake_report("pkg==1.0", Verdict.REPRODUCIBLE), run_id=None, seconds=1)
    with Store(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert store.count("results") == 1


def test_a_result_under_a_task_key_is_stored_once(tmp_path: Path) -> None:
    """A distributed task that ran twice, or a result read by two runs, is one result."""
    key = "pkg==1.0 plan abc ticket t1"
    with Store(tmp_path / "s.sqlite") as store:
        first_run = store.start_run(tool_version=__version__, input="deps.txt", jobs=1)
        report = fake_report("pkg==1.0", Verdict.DIVERGENT, unexplained=1)
        first = store.record(report, run_id=first_run, seconds=3, task_key=key)
        again = store.record(report, run_id=first_run, seconds=4, task_key=key)
        later_run = store.start_run(tool_version=__version__, input="deps.txt", jobs=1)
        later = store.record(
            fake_report("pkg==1.0", Verdict.REPRODUCIBLE), run_id=later_run, seconds=1, task_key=key
        )
        assert first == again == later
        assert store.count("results") == 1 and store.count("divergences") == 1
        assert [i.result_id for i in store.run_items(later_run)] == [first]
        current = store.current("pkg", "1.0")
        assert current is not None and current.verdict is Verdict.DIVERGENT
        # Another ticket is another verification of the same release: history grows.
        other = store.record(
            report, run_id=later_run, seconds=1, task_key="pkg==1.0 plan abc ticket t2"
        )
        assert other != first and store.count("results") == 2
        # Without a key, nothing is deduplicated (the local pool's results).
        store.record(report, run_id=None, seconds=1)
        store.record(report, run_id=None, seconds=1)
        assert store.count("results") == 4
        with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
            store._db.execute("UPDATE results SET task_key = ? WHERE id = ?", (key, other))


def test_a_store_of_schema_3_migrates_to_task_keys(tmp_path: Path) -> None:
    from rebuild.store import MIGRATIONS

    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    for step in MIGRATIONS[:3]:
        for statement in step:
            db.execute(statement)
    db.execute("PRAGMA user_version = 3")
    db.commit()
    db.close()
    with Store(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        store.record(
            fake_report("pkg==1.0", Verdict.REPRODUCIBLE), run_id=None, seconds=1, task_key="k"
        )
        assert store.count("results") == 1


def test_a_report_reads_back_from_its_json_document() -> None:
    import json

    from rebuild.report import json as json_report

    report = fake_report("pkg==1.0", Verdict.DIVERGENT, unexplained=2, explained=1)
    document = json.loads(json_report.render(report))
    assert json_report.from_document(document) == report
    with pytest.raises(ValueError, match="schema version"):
        json_report.from_document({**document, "schema_version": 1})
    with pytest.raises(ValueError, match="unknown fields"):
        json_report.from_document({**document, "surprise": 1})


def test_a_store_from_a_newer_rebuild_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "results.sqlite"
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(UsageError, match="schema version 99"):
        Store(path)


def test_a_file_that_is_not_a_store_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "requirements.txt"
    path.write_text("attrs==23.2.0\n" * 200)
    with pytest.raises(UsageError, match="not a results store"):
        Store(path)


def test_each_release_has_exactly_one_current_result(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite") as store:
        run = store.start_run(tool_version=__version__, input="deps.txt", jobs=1)
        first = store.record(
            fake_report("pkg==1.0", Verdict.DIVERGENT, unexplained=2), run_id=run, seconds=3
        )
        second = store.record(
            fake_report("pkg==1.0", Verdict.REPRODUCIBLE, created=T0 + timedelta(days=1)),
            run_id=run,
            seconds=2,
            timings=[("build", 1.5), ("total", 2.0)],
        )
        current = store.current("pkg", "1.0")
        assert current is not None and current.id == second
        assert [(r.id, r.current) for r in store.history("pkg")] == [
            (second, True),
            (first, False),
        ]
        assert len(store.divergences(first)) == 2
        assert store.timings(second) == [("build", 1.5), ("total", 2.0)]
        # The schema itself refuses a second current result, whatever the code does.
        with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
            store._db.execute("UPDATE results SET current = 1 WHERE id = ?", (first,))


def test_history_is_newest_first_across_versions(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite") as store:
        for day, spec in enumerate(["pkg==1.0", "pkg==2.0", "pkg==1.0", "other==1.0"]):
            report = fake_report(spec, Verdict.REPRODUCIBLE, created=T0 + timedelta(days=day))
            store.record(report, run_id=None, seconds=1)
        assert [(r.version, r.current) for r in store.history("pkg")] == [
            ("1.0", True),
            ("2.0", True),
            ("1.0", False),
        ]


def test_review_puts_regressions_then_unexplained_then_failed_first(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite") as store:
        reports = [
            fake_report("calm==1.0", Verdict.REPRODUCIBLE),
            fake_report("calm==1.1", Verdict.EQUIVALENT, explained=3),
            fake_report("worse==1.0", Verdict.EQUIVALENT),
            fake_report("worse==1.1", Verdict.DIVERGENT, unexplained=1),
            fake_report("grew==1.0", Verdict.DIVERGENT, unexplained=1),
            fake_report("grew==2.0", Verdict.DIVERGENT, unexplained=4),
            fake_report("same==3.0", Verdict.DIVERGENT, unexplained=2),
            fake_report("same==3.1", Verdict.DIVERGENT, unexplained=2),
            fake_report("broke==1.0", Verdict.FAILED, failure="the build failed"),
            fake_report("noted==1.0", Verdict.DIVERGENT, explained=2),
        ]
        for report in reports:
            store.record(report, run_id=None, seconds=1)
        review = build_review(store.current_results())
    order = [(e.attention, f"{e.result.project}=={e.result.version}") for e in review.entries]
    assert order == [
        (Attention.REGRESSION, "grew==2.0"),
        (Attention.REGRESSION, "worse==1.1"),
        (Attention.UNEXPLAINED, "grew==1.0"),
        (Attention.UNEXPLAINED, "same==3.0"),
        (Attention.UNEXPLAINED, "same==3.1"),
        (Attention.FAILED, "broke==1.0"),
        (Attention.EXPLAINED, "noted==1.0"),
        (Attention.EQUIVALENT, "calm==1.1"),
        (Attention.EQUIVALENT, "worse==1.0"),
        (Attention.REPRODUCIBLE, "calm==1.0"),
    ]
    reasons = {e.result.project: e.regression.reason for e in review.regressions if e.regression}
    assert reasons == {
        "grew": "unexplained divergences grew from 1 in 1.0 to 4",
        "worse": "1.0 was equivalent, 1.1 is divergent",
    }
    assert review.exit_code == EXIT_NEEDS_REVIEW


def test_versions_are_compared_by_pep_440_not_by_text(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite") as store:
        store.record(fake_report("pkg==1.10", Verdict.FAILED, failure="x"), run_id=None, seconds=1)
        store.record(fake_report("pkg==1.9", Verdict.REPRODUCIBLE), run_id=None, seconds=1)
        review = build_review(store.current_results())
    (entry,) = review.regressions
    assert entry.result.version == "1.10"
    assert entry.regression is not None
    assert entry.regression.reason == "1.9 was reproducible, 1.10 is failed"


def test_nothing_unexplained_or_regressed_passes_the_gate(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite") as store:
        store.record(fake_report("a==1", Verdict.DIVERGENT, explained=2), run_id=None, seconds=1)
        store.record(fake_report("b==1", Verdict.FAILED, failure="no"), run_id=None, seconds=1)
        assert build_review(store.current_results()).exit_code == 0


def test_a_run_whose_process_is_gone_is_recognised_as_killed(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from rebuild.store import Store
        Store(Path({str(path)!r})).start_run(tool_version="x", input="deps.txt", jobs=1)
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True)
    with Store(path) as store:
        (run,) = store.runs()
        assert (run.status, run.killed) == ("running", True)
        mine = store.start_run(tool_version="x", input="deps.txt", jobs=1)
        assert not next(r for r in store.runs() if r.id == mine).killed


WRITER = """
import sys
from pathlib import Path
sys.path.insert(0, {tests!r})
from test_store import fake_report
from rebuild.models import Verdict
from rebuild.store import Store

store = Store(Path({path!r}))
run = store.start_run(tool_version="x", input="loop", jobs=1)
i = 0
while True:
    verdict = Verdict.DIVERGENT if i % 2 else Verdict.EQUIVALENT
    report = fake_report(f"p{{i % 7}}==1.{{i % 3}}", verdict, unexplained=i % 5, explained=40)
    store.record(report, run_id=run, seconds=1, timings=[("build", 1.0), ("total", 1.0)])
    i += 1
    if i == 5:
        print("writing", flush=True)
"""


def test_kill_9_in_the_middle_of_writes_leaves_no_half_result(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    for attempt in range(3):
        with subprocess.Popen(
            [
                sys.executable,
                "-c",
                WRITER.format(tests=str(Path(__file__).parent), path=str(path)),
            ],
            stdout=subprocess.PIPE,
            text=True,
        ) as writer:
            assert writer.stdout is not None
            assert writer.stdout.readline() == "writing\n"
            time.sleep(0.2 + 0.15 * attempt)  # different instants, mid-transaction most often
            os.kill(writer.pid, signal.SIGKILL)
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        releases = db.execute("SELECT count(*) FROM releases").fetchone()[0]
        assert releases == 21
        # Exactly one current result per release.
        assert db.execute(
            "SELECT count(*) FROM releases r WHERE "
            "(SELECT count(*) FROM results WHERE release_id = r.id AND current = 1) != 1"
        ).fetchone() == (0,)
        # Every result has all its divergences and timings, or it does not exist.
        assert db.execute(
            "SELECT count(*) FROM results r WHERE r.divergences != "
            "(SELECT count(*) FROM divergences WHERE result_id = r.id) "
            "OR (SELECT count(*) FROM timings WHERE result_id = r.id) != 2"
        ).fetchone() == (0,)
    with Store(path) as store:
        assert [r.killed for r in store.runs()] == [True, True, True]


def test_the_source_checks_findings_are_stored_with_the_comparison_s(tmp_path: Path) -> None:
    report = fake_report("pkg==1.0", Verdict.DIVERGENT, explained=1)
    injected = Divergence(
        DivergenceKind.NOT_IN_SDIST, "Python file with no counterpart in the sdist", "pkg/evil.py"
    )
    check = ProvenanceCheck("pkg-1-py3-none-any.whl", "pkg-1.tar.gz", 2, 1, (injected,))
    with Store(tmp_path / "s.sqlite") as store:
        result = store.record(replace(report, provenance=check), run_id=None, seconds=1)
        stored = store.divergences(result)
        current = store.current("pkg", "1.0")
    assert [d.member for d in stored] == ["pkg/m0.py", "pkg/evil.py"]
    assert current is not None and current.unexplained == 1


def test_one_release_whatever_the_version_is_spelled(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite") as store:
        first = store.record(fake_report("six==1.16", Verdict.EQUIVALENT), run_id=None, seconds=1)
        second = store.record(
            fake_report("six==1.16.0", Verdict.REPRODUCIBLE, created=T0 + timedelta(days=1)),
            run_id=None,
            seconds=1,
        )
        # PEP 440 equal versions are one release: the second result replaces the first.
        current = store.current("six", "1.16.00")
        assert current is not None and current.id == second
        assert [r.id for r in store.history("six")] == [second, first]
        assert store.current("six", "1.17") is None
