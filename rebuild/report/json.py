"""The JSON report: a versioned document other programs (CI gates, the results store) read.

The document mirrors the frozen dataclasses of :mod:`rebuild.models`; ``schema_version`` changes
whenever a field is renamed or removed, not when one is added.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from rebuild.credentials import redact
from rebuild.models import Plan, Release, Report
from rebuild.report import write_atomically

# 2: a divergence's `explanation`, `partly_explained` and `rules` became `outcome` and
# `reasons` (rule, text, origin, link); `changed_lines`, `findings`, `field`, `entries` added.
SCHEMA_VERSION = 2


def _plain(value: Any) -> Any:
    """Turn dataclasses, enums, paths and datetimes into JSON values, recursively."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [_plain(v) for v in value]
        return sorted(items, key=str) if isinstance(value, set | frozenset) else items
    return value


def to_document(report: Report) -> dict[str, Any]:
    """The report as a JSON-ready mapping, with its schema version and summary counts first."""
    body = _plain(report)
    comparison = report.comparison
    summary: dict[str, Any] = {
        "verdict": report.verdict.value,
        "exit_code": report.exit_code,
        "unexplained": len(comparison.unexplained) if comparison else None,
        "verified": len(comparison.verified) if comparison else None,
        "attributed": len(comparison.attributed) if comparison else None,
        "divergences": len(comparison.divergences) if comparison else None,
    }
    return {"schema_version": SCHEMA_VERSION, "summary": summary, **body}


def render(report: Report) -> str:
    # ensure_ascii keeps hostile member names (terminal escapes, bidi controls) escaped as \uXXXX.
    # redact: no index credentials, whatever text quoted a URL with them.
    return redact(json.dumps(to_document(report), indent=2, ensure_ascii=True)) + "\n"


def write_release(release: Release, path: Path, *, notes: Sequence[str] = ()) -> None:
    """What `rebuild resolve` found, as JSON (the same shape as a report's ``release``), with
    what the other indexes said of it."""
    document = {"schema_version": SCHEMA_VERSION, "release": _plain(release), "notes": list(notes)}
    write_atomically(path, redact(json.dumps(document, indent=2, ensure_ascii=True)) + "\n")


def write_plan(plan: Plan, path: Path) -> None:
    """`rebuild recipe show --json`: the effective recipe (the same shape as a report's
    ``plan``), with where each value came from (``origins``)."""
    document = {"schema_version": SCHEMA_VERSION, "plan": _plain(plan)}
    write_atomically(path, redact(json.dumps(document, indent=2, ensure_ascii=True)) + "\n")


def write(report: Report, path: Path) -> None:
    write_atomically(path, render(report))
