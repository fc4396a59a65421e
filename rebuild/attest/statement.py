"""A rebuild as in-toto Statements (v1): SLSA Provenance v1 of the rebuild, and its verdict.

Two statements share one subject, the published wheel (its file name and sha256), as OSS
Rebuild publishes a rebuild: one says how the wheel was rebuilt (predicate
``https://slsa.dev/provenance/v1``: the builder is rebuild at its version; the build definition
names the source and its digest, the git commit where one was built, the image and its package
manifest, every build requirement with the sha256 of the wheel installed, the environment, the
command and the digest of the effective recipe); the other says what the comparison found (our
own predicate, :data:`VERDICT_PREDICATE`, whose JSON Schema ships as ``verdict.schema.json``).

Statements are built from the report's fields only (nothing reads a rendered report back), and
serialised canonically (sorted keys, no spaces) so one report always gives the same bytes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rebuild.credentials import redact
from rebuild.errors import AttestationError
from rebuild.fetch import sha256_file
from rebuild.models import Divergence, Report
from rebuild.store import plan_digest

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
SLSA_PROVENANCE = "https://slsa.dev/provenance/v1"
VERDICT_VERSION = 1
VERDICT_PREDICATE = f"https://rebuild.invalid/attestation/verdict/v{VERDICT_VERSION}"
BUILD_TYPE = "https://rebuild.invalid/build-type/wheel-rebuild/v1"
BUILDER_ID = "https://rebuild.invalid/builder/rebuild"
VERDICT_SCHEMA_FILE = Path(__file__).with_name("verdict.schema.json")


def subject(report: Report) -> dict[str, Any]:
    """The published wheel: the one the comparison read, else the one the index lists."""
    if report.comparison is not None:
        name, sha256 = report.comparison.published.filename, report.comparison.published.sha256
    elif report.release is not None and report.release.wheel is not None:
        name, sha256 = report.release.wheel.filename, report.release.wheel.sha256
    else:
        raise AttestationError(
            "nothing to attest: the check failed before it knew which wheel it was checking",
            hint="see the report's failure",
        )
    return {"name": name, "digest": {"sha256": sha256.lower()}}


def statements(report: Report) -> tuple[dict[str, Any], dict[str, Any]]:
    """The provenance statement and the verdict statement of ``report``, in that order."""
    about = [subject(report)]
    return (
        {
            "_type": STATEMENT_TYPE,
            "subject": about,
            "predicateType": SLSA_PROVENANCE,
            "predicate": provenance_predicate(report),
        },
        {
            "_type": STATEMENT_TYPE,
            "subject": about,
            "predicateType": VERDICT_PREDICATE,
            "predicate": verdict_predicate(report),
        },
    )


def canonical(document: object) -> bytes:
    """The bytes that are signed: sorted keys, no insignificant spaces, ASCII only.

    Redacted like every other rendering: no index credential ends up in a signed document.
    """
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return redact(text).encode("ascii")


def provenance_predicate(report: Report) -> dict[str, Any]:
    """SLSA Provenance v1 of the rebuild (https://slsa.dev/spec/v1.0/provenance)."""
    release, plan, build = report.release, report.plan, report.build
    external: dict[str, Any] = {
        "target": str(report.target) if report.target else None,
        "source": report.source.value if report.source else None,
        "wheel": subject(report)["name"],
    }
    if release is not None:
        external["index"] = release.index_url
    internal: dict[str, Any] = {}
    dependencies: list[dict[str, Any]] = []
    if release is not None and release.sdist is not None:
        dependencies.append(
            {
                "name": release.sdist.filename,
                "uri": release.sdist.url,
                "digest": {"sha256": release.sdist.sha256.lower()},
            }
        )
    revision = report.provenance.revision if report.provenance else None
    if revision is not None:
        dependencies.append(
            {
                "uri": f"git+{revision.repo_url}" + (f"@{revision.ref}" if revision.ref else ""),
                "digest": {"gitCommit": revision.commit},
                "annotations": {
                    "repositoryEvidence": revision.repo_evidence.value,
                    "commitEvidence": revision.commit_evidence.value,
                },
            }
        )
    if plan is not None:
        internal["plan"] = {"image": plan.image, "python": plan.python, "recipe": plan.recipe}
        # The effective recipe (the whole plan), digested as the store does to decide reuse.
        internal["recipeDigest"] = {"sha256": plan_digest(plan)}
        if plan.recipe and Path(plan.recipe).is_file():
            internal["recipeFile"] = {
                "name": Path(plan.recipe).name,
                "digest": {"sha256": sha256_file(Path(plan.recipe))},
            }
        internal["sourceDateEpoch"] = plan.source_date_epoch
        internal["umask"] = plan.umask
        internal["excludeNewer"] = plan.exclude_newer.isoformat() if plan.exclude_newer else None
    byproducts: list[dict[str, Any]] = []
    if build is not None:
        image = build.image
        dependencies.append(
            {
                "name": image.tag,
                "uri": f"docker-image:{image.tag}",
                "digest": {"sha256": image.image_id.removeprefix("sha256:")},
                "annotations": {
                    "obtained": image.obtained,
                    "python": image.python,
                    "packageManifestSha256": image.manifest_sha256,
                    "packages": image.packages,
                    "pythonSource": image.python_source,
                },
            }
        )
        digests = dict(build.requirement_digests)
        for pin in build.requirements:
            entry: dict[str, Any] = {"name": pin, "uri": f"pypi:{pin}"}
            if pin in digests:
                entry["digest"] = {"sha256": digests[pin].lower()}
            dependencies.append(entry)
        internal["environment"] = dict(build.environment)
        internal["command"] = list(build.command)
        internal["network"] = build.network
        internal["durationSeconds"] = build.duration_s
        if report.comparison is not None:
            rebuilt = report.comparison.rebuilt
            byproducts.append({"name": rebuilt.filename, "digest": {"sha256": rebuilt.sha256}})
    return {
        "buildDefinition": {
            "buildType": BUILD_TYPE,
            "externalParameters": external,
            "internalParameters": internal,
            "resolvedDependencies": dependencies,
        },
        "runDetails": {
            "builder": {
                "id": f"{BUILDER_ID}@{report.tool_version}",
                "version": {"rebuild": report.tool_version},
            },
            "metadata": {"finishedOn": report.created.isoformat()},
            "byproducts": byproducts,
        },
    }


def _divergence(d: Divergence) -> dict[str, Any]:
    return {
        "kind": d.kind.value,
        "layer": d.layer.value,
        "member": d.member,
        "side": d.side.value,
        "summary": d.summary,
        "outcome": d.outcome.value,
        "rules": [
            {"rule": r.rule, "origin": r.origin.value, "text": r.text, "link": r.link}
            for r in d.reasons
        ],
        "aspects": list(d.aspects),
    }


def verdict_predicate(report: Report) -> dict[str, Any]:
    """What the comparison found, divergence by divergence (schema: ``verdict.schema.json``)."""
    comparison = report.comparison
    source = report.provenance.findings if report.provenance else ()
    return {
        "schemaVersion": VERDICT_VERSION,
        "verdict": report.verdict.value,
        "exitCode": report.exit_code,
        "tool": {"name": "rebuild", "version": report.tool_version},
        "target": str(report.target) if report.target else None,
        "published": {
            "name": comparison.published.filename,
            "sha256": comparison.published.sha256,
            "size": comparison.published.size,
        }
        if comparison
        else None,
        "rebuilt": {
            "name": comparison.rebuilt.filename,
            "sha256": comparison.rebuilt.sha256,
            "size": comparison.rebuilt.size,
        }
        if comparison
        else None,
        "identicalMembers": comparison.identical_members if comparison else None,
        "counts": {
            outcome: sum(
                1
                for d in (comparison.divergences if comparison else ())
                if d.outcome.value == outcome
            )
            for outcome in ("explained", "verified", "attributed", "unexplained")
        },
        "divergences": [_divergence(d) for d in comparison.divergences] if comparison else [],
        "sourceFindings": [_divergence(d) for d in source],
        "pep740": [
            {
                "verified": a.verified,
                "file": a.file,
                "url": a.url,
                "reason": a.reason,
                "publisher": a.publisher,
                "repository": a.repository,
                "workflow": a.workflow,
                "commit": a.commit,
                "ref": a.ref,
            }
            for a in (report.provenance.attestations if report.provenance else ())
        ],
        "failure": {
            "stage": report.failure.stage,
            "message": report.failure.message,
            "exitCode": report.failure.exit_code,
        }
        if report.failure
        else None,
    }
