"""The JSON report: a versioned document other programs (CI gates, the results store) read.

The document mirrors the frozen dataclasses of :mod:`rebuild.models`; ``schema_version`` changes
whenever a field is renamed or removed, not when one is added.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import types
import typing
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


# --- reading a report back -------------------------------------------------------------------


def from_document(document: dict[str, Any]) -> Report:
    """The :class:`Report` a document of this schema version describes (a worker's result).

    Strict: a document of another schema version, or whose fields do not fit the models, is
    refused with a ValueError rather than read half-way.
    """
    version = document.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ValueError(
            f"a report of schema version {version!r}; this rebuild reads {SCHEMA_VERSION}"
        )
    body = {k: v for k, v in document.items() if k not in ("schema_version", "summary")}
    report = _read(Report, body, "report")
    if not isinstance(report, Report):  # pragma: no cover - _read returns what it is asked for
        raise ValueError("not a report")
    return report


def _read(kind: Any, value: Any, where: str) -> Any:
    """``value`` (plain JSON) as the type ``kind`` of :mod:`rebuild.models` says."""
    origin = typing.get_origin(kind)
    if origin in (types.UnionType, typing.Union):
        options = typing.get_args(kind)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in (o for o in options if o is not type(None)):
            try:
                return _read(option, value, where)
            except ValueError as e:
                errors.append(str(e))
        raise ValueError("; ".join(errors))
    if origin is tuple:
        args = typing.get_args(kind)
        if not isinstance(value, list):
            raise ValueError(f"{where}: a list expected, not {type(value).__name__}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_read(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
        if len(args) != len(value):
            raise ValueError(f"{where}: {len(args)} items expected, not {len(value)}")
        pairs = enumerate(zip(args, value, strict=True))
        return tuple(_read(a, v, f"{where}[{i}]") for i, (a, v) in pairs)
    if origin is frozenset:
        (arg,) = typing.get_args(kind)
        if not isinstance(value, list):
            raise ValueError(f"{where}: a list expected")
        return frozenset(_read(arg, v, where) for v in value)
    if dataclasses.is_dataclass(kind) and isinstance(kind, type):
        if not isinstance(value, dict):
            raise ValueError(f"{where}: an object expected for {kind.__name__}")
        hints = typing.get_type_hints(kind)
        names = {f.name for f in dataclasses.fields(kind)}
        unknown = set(value) - names
        if unknown:
            raise ValueError(f"{where}: unknown fields {sorted(unknown)} for {kind.__name__}")
        return kind(**{k: _read(hints[k], v, f"{where}.{k}") for k, v in value.items()})
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        try:
            return kind(value)
        except ValueError as e:
            raise ValueError(f"{where}: {value!r} is no {kind.__name__}") from e
    if kind is datetime:
        if not isinstance(value, str):
            raise ValueError(f"{where}: a date expected")
        return datetime.fromisoformat(value)
    if kind is Path:
        if not isinstance(value, str):
            raise ValueError(f"{where}: a path expected")
        return Path(value)
    if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if kind in (str, int, bool) and type(value) is kind:
        return value
    if kind is Any:
        return value
    raise ValueError(f"{where}: {value!r} is not a {getattr(kind, '__name__', kind)}")
