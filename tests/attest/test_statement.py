"""The statements of a check: in-toto Statement v1, SLSA Provenance v1 and the verdict predicate,
checked against their schemas and read back by the reference in-toto attestation bindings."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from google.protobuf import json_format
from in_toto_attestation.v1 import statement_pb2

from rebuild.attest.statement import (
    SLSA_PROVENANCE,
    VERDICT_PREDICATE,
    VERDICT_SCHEMA_FILE,
    canonical,
    statements,
)
from rebuild.errors import AttestationError
from rebuild.fetch import sha256_file
from rebuild.models import Report, Verdict

from .reports import COMMIT, WHEEL_NAME, check_report


def test_both_statements_are_about_the_published_wheel(tmp_path: Path) -> None:
    report, published = check_report(tmp_path)
    provenance, verdict = statements(report)
    for statement in (provenance, verdict):
        assert statement["_type"] == "https://in-toto.io/Statement/v1"
        assert statement["subject"] == [
            {"name": WHEEL_NAME, "digest": {"sha256": sha256_file(published)}}
        ]
    assert provenance["predicateType"] == SLSA_PROVENANCE
    assert verdict["predicateType"] == VERDICT_PREDICATE


def test_the_provenance_names_every_input_of_the_rebuild(tmp_path: Path) -> None:
    report, _ = check_report(tmp_path)
    predicate = statements(report)[0]["predicate"]
    definition = predicate["buildDefinition"]
    assert predicate["runDetails"]["builder"]["id"].endswith("/rebuild@9.9.9")
    dependencies = {d.get("name", d["uri"]): d for d in definition["resolvedDependencies"]}
    assert dependencies["demo-1.0.tar.gz"]["digest"] == {"sha256": "ab" * 32}
    git = dependencies["git+https://forge.example/demo/demo@refs/tags/v1.0"]
    assert git["digest"] == {"gitCommit": COMMIT}
    image = dependencies["rebuild/bookworm-py311:abc"]
    assert image["digest"] == {"sha256": "cd" * 32}
    assert image["annotations"]["packageManifestSha256"] == "ef" * 32
    assert dependencies["wheel==0.43.0"]["digest"] == {"sha256": "34" * 32}
    internal = definition["internalParameters"]
    assert internal["command"] == ["uv", "build", "--wheel"]
    assert internal["environment"] == {"SOURCE_DATE_EPOCH": "1704004230"}
    assert internal["network"] == "none"
    from rebuild.store import plan_digest

    assert report.plan is not None
    # The effective recipe's digest is the one the store decides reuse by.
    assert internal["recipeDigest"] == {"sha256": plan_digest(report.plan)}
    assert "recipeFile" not in internal  # inferred: no recipe file
    rebuilt = report.comparison.rebuilt if report.comparison else None
    assert rebuilt is not None
    assert predicate["runDetails"]["byproducts"] == [
        {"name": rebuilt.filename, "digest": {"sha256": rebuilt.sha256}}
    ]


def test_a_recipe_file_is_named_with_its_digest(tmp_path: Path) -> None:
    from dataclasses import replace

    report, _ = check_report(tmp_path)
    assert report.plan is not None
    recipe = tmp_path / "demo.toml"
    recipe.write_text('[project]\nname = "demo"\n')
    with_recipe = replace(report, plan=replace(report.plan, recipe=str(recipe)))
    internal = statements(with_recipe)[0]["predicate"]["buildDefinition"]["internalParameters"]
    digest = {"sha256": sha256_file(recipe)}
    assert internal["recipeFile"] == {"name": "demo.toml", "digest": digest}


def test_the_recipe_digest_follows_the_effective_plan(tmp_path: Path) -> None:
    from dataclasses import replace

    report, _ = check_report(tmp_path)
    assert report.plan is not None
    other = replace(report, plan=replace(report.plan, umask="002"))

    def digest(r: Report) -> str:
        internal = statements(r)[0]["predicate"]["buildDefinition"]["internalParameters"]
        return str(internal["recipeDigest"]["sha256"])

    assert digest(report) != digest(other)
    assert digest(report) == digest(check_report(tmp_path / "again")[0])


def test_the_verdict_predicate_lists_each_divergence_with_outcome_and_rules(
    tmp_path: Path,
) -> None:
    report, _ = check_report(tmp_path)
    predicate = statements(report)[1]["predicate"]
    schema = json.loads(VERDICT_SCHEMA_FILE.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(predicate, schema)
    assert report.comparison is not None
    assert predicate["verdict"] == report.verdict.value == "divergent"
    assert len(predicate["divergences"]) == len(report.comparison.divergences)
    unexplained = [d for d in predicate["divergences"] if d["outcome"] == "unexplained"]
    assert predicate["counts"]["unexplained"] == len(unexplained) == 1
    assert unexplained[0]["member"] == "demo/core.py"
    explained = [d for d in predicate["divergences"] if d["outcome"] == "explained"]
    assert explained and all(d["rules"] for d in explained)


def test_the_verdict_schema_ships_in_the_package() -> None:
    shipped = resources.files("rebuild.attest").joinpath("verdict.schema.json")
    assert json.loads(shipped.read_text())["properties"]["schemaVersion"] == {"const": 1}


def test_a_failed_check_is_attested_with_its_failure(tmp_path: Path) -> None:
    from dataclasses import replace

    from rebuild.models import Failure

    report, _ = check_report(tmp_path)
    failed = replace(
        report,
        verdict=Verdict.FAILED,
        comparison=None,
        build=None,
        failure=Failure(stage="build", message="exit 1", exit_code=7),
    )
    provenance, verdict = statements(failed)
    assert provenance["subject"][0]["name"] == WHEEL_NAME
    assert verdict["predicate"]["failure"] == {"stage": "build", "message": "exit 1", "exitCode": 7}
    jsonschema.validate(verdict["predicate"], json.loads(VERDICT_SCHEMA_FILE.read_text()))
    with pytest.raises(AttestationError, match="nothing to attest"):
        statements(replace(failed, release=None))


def _parsed(statement: dict[str, Any]) -> statement_pb2.Statement:
    message = statement_pb2.Statement()
    json_format.Parse(canonical(statement), message)
    return message


def test_the_reference_in_toto_bindings_read_both_statements(tmp_path: Path) -> None:
    from in_toto_attestation.v1.statement import Statement

    report, published = check_report(tmp_path)
    for statement in statements(report):
        message = _parsed(statement)
        # The bindings' own validation: type, subjects with digests, predicate type.
        Statement.copy_from_pb(message).validate()
        assert message.subject[0].name == WHEEL_NAME
        assert message.subject[0].digest["sha256"] == sha256_file(published)
        assert message.predicate_type == statement["predicateType"]
        assert json_format.MessageToDict(message.predicate) == statement["predicate"]


def test_the_provenance_predicate_parses_as_slsa_provenance_v1(tmp_path: Path) -> None:
    from in_toto_attestation.predicates.provenance.v1 import provenance_pb2

    report, _ = check_report(tmp_path)
    predicate = statements(report)[0]["predicate"]
    message = provenance_pb2.Provenance()
    # Strict: a field SLSA v1 does not define (a typo in ours) is an error here.
    json_format.Parse(json.dumps(predicate), message, ignore_unknown_fields=False)
    assert message.build_definition.build_type == predicate["buildDefinition"]["buildType"]
    assert message.run_details.builder.id.endswith("@9.9.9")
    assert message.run_details.metadata.finished_on.ToDatetime().year == 2026
    names = [d.name for d in message.build_definition.resolved_dependencies]
    assert "wheel==0.43.0" in names and "demo-1.0.tar.gz" in names
