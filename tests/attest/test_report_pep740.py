"""What a reader sees of the PEP 740 verification: the terminal, the JSON report, the verdict
predicate, from the same fields (a verified provenance and a refused one)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from rich.console import Console

from rebuild.attest.findings import attestation_findings
from rebuild.attest.pep740 import verify_provenance
from rebuild.attest.statement import statements
from rebuild.report import json as json_report
from rebuild.report.terminal import print_report

from .reports import check_report
from .test_pep740 import CORRUPTED, PROVENANCE, SDIST, SDIST_SHA256


def test_the_verified_source_and_the_refusal_are_shown_everywhere(tmp_path: Path) -> None:
    verified = verify_provenance(PROVENANCE.read_bytes(), SDIST, SDIST_SHA256, "recorded")
    refused = verify_provenance(CORRUPTED.read_bytes(), SDIST, SDIST_SHA256, "recorded")
    report, _ = check_report(tmp_path)
    assert report.provenance is not None
    report = replace(
        report,
        provenance=replace(
            report.provenance,
            attestations=(verified, refused),
            findings=tuple(attestation_findings([verified, refused])),
        ),
    )
    console = Console(width=200, record=True, force_terminal=False)
    print_report(report, console)
    text = " ".join(console.export_text().split())
    assert (
        f"PEP 740 ✓ {SDIST} verified: GitHub https://github.com/trailofbits/pypi-attestations "
        "workflow https://github.com/trailofbits/pypi-attestations/.github/workflows/release.yml "
        "commit 08802efe1f8e5fec4ad842d6b8ce97656092ee72 refs/tags/v0.0.19"
    ) in text
    assert f"PEP 740 ✗ {SDIST}: does not verify" in text
    assert f"attestation-invalid {SDIST}" in text  # the finding, among those to review
    document = json.loads(json_report.render(report))
    kept = document["provenance"]["attestations"]
    assert [a["verified"] for a in kept] == [True, False]
    assert kept[0]["commit"] == "08802efe1f8e5fec4ad842d6b8ce97656092ee72"
    predicate = statements(report)[1]["predicate"]
    assert [a["verified"] for a in predicate["pep740"]] == [True, False]
    assert predicate["sourceFindings"][0]["kind"] == "attestation-invalid"
    assert predicate["sourceFindings"][0]["outcome"] == "unexplained"
