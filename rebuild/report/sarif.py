"""SARIF 2.1.0 for code-scanning dashboards: one result per unexplained divergence.

A dashboard shows what needs a person; so only unexplained divergences become results (explained,
verified and attributed ones are accounted for, and the JSON report lists them). Each result
names the release and its published wheel (``uri`` = ``<wheel>/<member>`` under the base id
``WHEELS``: a member has no place in a source tree), the divergence kind as its rule, and a
fingerprint of the release, wheel digest, member and kind, so that a dashboard tracks one finding
across nightly runs instead of opening a new alert each night. A release that could not be
verified is a tool execution notification, not a silent absence of results.

Both ``check --sarif`` (one report) and ``review --sarif`` (every current result in a store)
write it, through :func:`render_sarif` over the same :class:`Checked` records. Built with
sarif-pydantic's object model (optional extra ``sarif``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from sarif_pydantic import (
    ArtifactLocation,
    Invocation,
    Level,
    Location,
    LogicalLocation,
    Message,
    PhysicalLocation,
    ReportingConfiguration,
    ReportingDescriptor,
    Result,
    Run,
    Sarif,
    Tool,
    ToolDriver,
)

from rebuild import __version__
from rebuild.models import DivergenceKind, Outcome, Report, Verdict
from rebuild.store import StoredDivergence, StoredResult

SCHEMA_URI = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
BASE_ID = "WHEELS"
_FINGERPRINT = "rebuildDivergence/v1"
# What each kind of divergence means, for a dashboard's rule list.
_MEANING: dict[DivergenceKind, str] = {
    DivergenceKind.ONLY_PUBLISHED: "A file of the published wheel that the rebuild does not have",
    DivergenceKind.ONLY_REBUILT: "A file the rebuild has that the published wheel lacks",
    DivergenceKind.CONTENT: "A member whose bytes differ from the rebuild's, unexplained",
    DivergenceKind.METADATA_FIELD: "A field of the wheel's metadata unlike the rebuild's",
    DivergenceKind.RECORD_ENTRY: "A row of RECORD that differs from the rebuild's",
    DivergenceKind.INSTALLED_MODE: "A file an installer makes executable on one side only",
    DivergenceKind.INSTALLED_FILE: "A file an installer puts on disk unlike the rebuild's",
    DivergenceKind.RUNS_ON_ITS_OWN: "A file that runs without being imported, not as rebuilt",
    DivergenceKind.RECORD_MISMATCH: "The wheel's RECORD does not describe its own files",
    DivergenceKind.DUPLICATE_NAME: "Two entries of one name in the wheel",
    DivergenceKind.UNSAFE_NAME: "An entry whose name escapes the install directory",
    DivergenceKind.SYMLINK: "A symbolic link inside the wheel",
    DivergenceKind.HEADER_MISMATCH: "Local header and central directory disagree",
    DivergenceKind.UNLISTED_DATA: "Bytes of the wheel that no entry lists",
    DivergenceKind.INSTALL_DEPENDS: "What the wheel installs depends on the installer",
    DivergenceKind.PATH_COLLISION: "Several entries install to one path",
    DivergenceKind.NOT_IN_SDIST: "A Python file of the wheel with no counterpart in the sdist",
    DivergenceKind.DIFFERS_FROM_SDIST: "A Python file of the wheel that is not the sdist's",
    DivergenceKind.NOT_IN_GIT: "A file of the sdist absent from the tagged commit",
    DivergenceKind.DIFFERS_FROM_GIT: "A file of the sdist that is not the tagged commit's",
}


@dataclass(frozen=True)
class Unexplained:
    """One unexplained divergence, as a result needs it."""

    kind: str  # a DivergenceKind value (a string: a store may hold kinds of an older version)
    member: str | None
    summary: str
    side: str
    layer: str


@dataclass(frozen=True)
class Checked:
    """One release: what a run of rebuild said of it."""

    target: str  # "numpy==1.26.4"
    verdict: Verdict
    wheel: str | None = None
    wheel_sha256: str | None = None
    failure: str | None = None  # why it could not be verified
    unexplained: tuple[Unexplained, ...] = ()


def checked_from_report(report: Report) -> Checked:
    release, comparison = report.release, report.comparison
    wheel = release.wheel if release is not None else None
    findings = [
        Unexplained(d.kind.value, d.member, d.summary, d.side.value, d.kind.layer.value)
        for d in (comparison.divergences if comparison is not None else ())
        if d.outcome is Outcome.UNEXPLAINED
    ]
    if report.provenance is not None:
        findings += [
            Unexplained(d.kind.value, d.member, d.summary, d.side.value, d.kind.layer.value)
            for d in report.provenance.findings
            if d.outcome is Outcome.UNEXPLAINED
        ]
    failure = report.failure
    # The published wheel: the index's file, else (`compare` of two files) the first one given.
    published = wheel or (comparison.published if comparison is not None else None)
    return Checked(
        target=str(report.target) if report.target is not None else "?",
        verdict=report.verdict,
        wheel=published.filename if published is not None else None,
        wheel_sha256=published.sha256 if published is not None else None,
        failure=f"{failure.stage}: {failure.message}" if failure is not None else None,
        unexplained=tuple(findings),
    )


def checked_from_store(result: StoredResult, divergences: Sequence[StoredDivergence]) -> Checked:
    failure = None
    if result.failure_stage is not None:
        failure = f"{result.failure_stage}: {result.failure_message or ''}"
    return Checked(
        target=f"{result.project}=={result.version}",
        verdict=result.verdict,
        wheel=result.wheel_filename,
        wheel_sha256=result.wheel_sha256,
        failure=failure,
        unexplained=tuple(
            Unexplained(d.kind, d.member, d.summary, d.side, d.layer)
            for d in divergences
            if d.outcome is Outcome.UNEXPLAINED
        ),
    )


def render_sarif(checked: Sequence[Checked]) -> str:
    """The SARIF log of ``checked``, as JSON text."""
    kinds = sorted({u.kind for c in checked for u in c.unexplained})
    results = [_result(c, u, kinds.index(u.kind)) for c in checked for u in c.unexplained]
    failed = [c for c in checked if c.verdict is Verdict.FAILED]
    invocation = Invocation(
        execution_successful=not failed,
        toolExecutionNotifications=[
            {
                "level": "error",
                "message": {"text": f"{c.target} could not be verified: {c.failure or 'failed'}"},
            }
            for c in failed
        ],
    )
    log = Sarif(
        schema_uri=SCHEMA_URI,
        runs=[
            Run(
                tool=Tool(
                    driver=ToolDriver(
                        name="rebuild",
                        version=__version__,
                        rules=[_rule(kind) for kind in kinds],
                    )
                ),
                invocations=[invocation],
                results=results,
                originalUriBaseIds={
                    BASE_ID: {"description": {"text": "The published wheels, by file name"}}
                },
                properties={"releases": {c.target: c.verdict.value for c in checked}},
            )
        ],
    )
    return str(log.model_dump_json(by_alias=True, exclude_none=True, indent=2)) + "\n"


def _rule(kind: str) -> ReportingDescriptor:
    known = next((k for k in DivergenceKind if k.value == kind), None)
    meaning = _MEANING.get(known, f"A divergence of kind {kind}") if known else kind
    return ReportingDescriptor(
        id=kind,
        name="".join(word.capitalize() for word in kind.split("-")),
        short_description=Message(text=meaning),
        default_configuration=ReportingConfiguration(level="error"),
    )


def _result(checked: Checked, finding: Unexplained, rule_index: int) -> Result:
    wheel = checked.wheel or checked.target
    uri = f"{wheel}/{finding.member}" if finding.member else wheel
    fingerprint = hashlib.sha256(
        "\0".join(
            (checked.target, checked.wheel_sha256 or "", finding.member or "", finding.kind)
        ).encode()
    ).hexdigest()
    return Result(
        rule_id=finding.kind,
        rule_index=rule_index,
        level=Level.ERROR,
        message=Message(text=f"{checked.target}: {finding.summary} (unexplained)"),
        locations=[
            Location(
                physical_location=PhysicalLocation(
                    artifact_location=ArtifactLocation(uri=uri, uri_base_id=BASE_ID)
                ),
                logical_locations=[LogicalLocation(fully_qualified_name=uri)],
            )
        ],
        partial_fingerprints={_FINGERPRINT: fingerprint},
        properties={
            "release": checked.target,
            "wheelSha256": checked.wheel_sha256,
            "layer": finding.layer,
            "side": finding.side,
        },
    )
