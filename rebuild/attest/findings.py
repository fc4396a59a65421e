"""A PEP 740 provenance that fails verification, as the finding a reviewer must look at.

Never explained and never expected by a recipe (``attestation-invalid`` is on the never-expected
list): a publisher's signed claim about a file that does not hold is exactly what a reviewer is
for, whatever the rebuild shows.
"""

from __future__ import annotations

from collections.abc import Iterable

from rebuild.models import Divergence, DivergenceKind, Outcome, PublisherAttestation, Side


def attestation_findings(checked: Iterable[PublisherAttestation]) -> list[Divergence]:
    return [
        Divergence(
            kind=DivergenceKind.ATTESTATION_INVALID,
            summary=f"the PEP 740 provenance of {a.file} does not verify",
            member=a.file,
            side=Side.PUBLISHED,
            detail=f"{a.reason}\nprovenance: {a.url}",
            outcome=Outcome.UNEXPLAINED,
        )
        for a in checked
        if not a.verified
    ]
