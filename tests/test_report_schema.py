"""The report's JSON Schema: derived from the models, shipped as a file, and what every report
the suite renders is validated against (see conftest's autouse hook)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from compare.wheels import make_wheel

from rebuild.models import Report
from rebuild.report import json as json_report
from rebuild.report.schema import SCHEMA_FILE, render_schema, report_schema


def test_the_shipped_schema_is_the_derived_one() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == render_schema(), (
        "rebuild/report/report.schema.json is stale: write render_schema() into it"
    )
    jsonschema.Draft202012Validator.check_schema(report_schema())


def test_rebuild_schema_prints_it() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "rebuild", "schema"], capture_output=True, text=True, check=True
    )
    assert json.loads(done.stdout) == report_schema()


def test_a_compare_report_validates_and_a_changed_one_does_not(tmp_path: Path) -> None:
    published = make_wheel(tmp_path / "a" / "demo-1.0-py3-none-any.whl")
    rebuilt = make_wheel(
        tmp_path / "b" / "demo-1.0-py3-none-any.whl", changes={"demo/__init__.py": b"x = 2\n"}
    )
    out = tmp_path / "report.json"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "rebuild",
            "compare",
            str(published),
            str(rebuilt),
            "--json",
            str(out),
        ],
        capture_output=True,
        check=False,
    )
    document = json.loads(out.read_text())
    jsonschema.validate(document, report_schema())
    document["comparison"]["verdict"] = "probably fine"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, report_schema())
    del document["comparison"]["verdict"]
    document["comparison"]["surprise"] = 1
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, report_schema())


@pytest.mark.docker
@pytest.mark.network
def test_a_real_compiled_check_validates(markupsafe_check: Report) -> None:
    jsonschema.validate(json.loads(json_report.render(markupsafe_check)), report_schema())
