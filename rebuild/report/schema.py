"""The JSON Schema of the report, derived from the dataclasses the report is made of.

The JSON report (:mod:`rebuild.report.json`) is :class:`~rebuild.models.Report` turned into JSON
field by field; its schema is derived the same way, so the two cannot drift: every field is a
property with its type, every enum lists its values, nothing else is allowed
(``additionalProperties: false``). The schema ships in the package as ``report.schema.json``
(``rebuild schema`` prints it); a test checks the shipped file is this derivation, and every
report the test suite writes is validated against it.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import enum
import json
import types
import typing
from datetime import datetime
from pathlib import Path
from typing import Any

from rebuild.models import Report
from rebuild.report.json import SCHEMA_VERSION

SCHEMA_FILE = Path(__file__).with_name("report.schema.json")
_ID = f"https://rebuild.invalid/schema/report-{SCHEMA_VERSION}.json"


def report_schema() -> dict[str, Any]:
    """The schema of a JSON report of this schema version."""
    definitions: dict[str, Any] = {}
    body = _dataclass_schema(Report, definitions)
    summary = {
        "type": "object",
        "additionalProperties": False,
        "required": [
            "verdict",
            "exit_code",
            "unexplained",
            "verified",
            "attributed",
            "divergences",
        ],
        "properties": {
            "verdict": {"type": "string"},
            "exit_code": {"type": "integer"},
            **{
                key: {"type": ["integer", "null"]}
                for key in ("unexplained", "verified", "attributed", "divergences")
            },
        },
    }
    properties = {
        "schema_version": {"const": SCHEMA_VERSION},
        "summary": summary,
        **body["properties"],
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": _ID,
        "title": f"rebuild report, schema version {SCHEMA_VERSION}",
        "type": "object",
        "additionalProperties": False,
        "required": ["schema_version", "summary", *body["required"]],
        "properties": properties,
        "$defs": definitions,
    }


def render_schema() -> str:
    return json.dumps(report_schema(), indent=2, sort_keys=True) + "\n"


def _dataclass_schema(cls: type, definitions: dict[str, Any]) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    properties = {}
    for field in dataclasses.fields(cls):
        properties[field.name] = _type_schema(hints[field.name], definitions)
    return {
        "type": "object",
        "additionalProperties": False,
        "required": [f.name for f in dataclasses.fields(cls)],
        "properties": properties,
    }


def _type_schema(hint: Any, definitions: dict[str, Any]) -> dict[str, Any]:
    origin = typing.get_origin(hint)
    arguments = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return {"anyOf": [_type_schema(a, definitions) for a in arguments]}
    if hint is type(None):
        return {"type": "null"}
    if origin in (tuple, list, set, frozenset):
        if origin is tuple and not (len(arguments) == 2 and arguments[1] is Ellipsis):
            items = [_type_schema(a, definitions) for a in arguments]
            return {
                "type": "array",
                "prefixItems": items,
                "minItems": len(items),
                "maxItems": len(items),
            }
        item = arguments[0] if arguments else Any
        return {"type": "array", "items": _type_schema(item, definitions)}
    if origin in (dict, collections.abc.Mapping) or hint is dict:
        value = arguments[1] if len(arguments) == 2 else Any
        return {"type": "object", "additionalProperties": _type_schema(value, definitions)}
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return {"enum": [member.value for member in hint]}
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        name = hint.__name__
        if name not in definitions:
            definitions[name] = {}  # reserved first: dataclasses may refer to themselves
            definitions[name] = _dataclass_schema(hint, definitions)
        return {"$ref": f"#/$defs/{name}"}
    simple = {str: "string", bool: "boolean", int: "integer", float: "number"}
    if hint in simple:
        return {"type": simple[hint]}
    if hint in (datetime, Path):
        return {"type": "string", **({"format": "date-time"} if hint is datetime else {})}
    if hint is Any or hint is object:
        return {}
    raise TypeError(f"no JSON Schema for {hint!r}")
