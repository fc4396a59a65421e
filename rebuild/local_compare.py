"""`rebuild compare`: two wheel files on disk, compared with no index, no plan and no build.

Kept apart from :mod:`rebuild.pipeline` so that comparing two files imports only the
comparison: the pipeline's planning, recipes and source checks cost a tenth of a second to
import, which is a tenth of the whole comparison of a large wheel.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from rebuild import __version__
from rebuild.compare import compare_wheels
from rebuild.fetch import local_artifact
from rebuild.models import Report


def _quiet(_: str) -> None:
    return None


def compare(published: Path, rebuilt: Path, *, progress: Callable[[str], None] = _quiet) -> Report:
    """Compare two wheel files on disk and return the report (no build, no index)."""
    # Hash-check and existence-check both inputs before the engine opens them.
    local_artifact(published)
    local_artifact(rebuilt)
    progress(f"comparing {published.name} with {rebuilt.name}")
    comparison = compare_wheels(published, rebuilt)
    return Report(
        tool_version=__version__,
        created=datetime.now(UTC),
        verdict=comparison.verdict,
        comparison=comparison,
    )
