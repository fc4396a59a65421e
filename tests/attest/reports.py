"""A whole check's report, built from two wheels the tests make, for the attestation tests."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from compare.wheels import make_wheel

from rebuild.compare import compare_wheels
from rebuild.fetch import sha256_file
from rebuild.models import (
    BuildResult,
    DistFile,
    DistKind,
    ImageInfo,
    Plan,
    ProvenanceCheck,
    Release,
    Report,
    SourceEvidence,
    SourceKind,
    SourceRevision,
    Target,
    WheelSelector,
)

WHEEL_NAME = "demo-1.0-py3-none-any.whl"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def published_and_rebuilt(tmp_path: Path) -> tuple[Path, Path]:
    published = make_wheel(tmp_path / "published" / WHEEL_NAME)
    rebuilt = make_wheel(
        tmp_path / "rebuilt" / WHEEL_NAME,
        changes={"demo/core.py": b"def answer():\n    return 43\n"},
    )
    return published, rebuilt


def check_report(tmp_path: Path) -> tuple[Report, Path]:
    """A divergent check of demo 1.0 with every stage filled in, and its published wheel."""
    published, rebuilt = published_and_rebuilt(tmp_path)
    comparison = compare_wheels(published, rebuilt)
    wheel = DistFile(
        filename=WHEEL_NAME,
        url=f"https://files.example/{WHEEL_NAME}",
        sha256=sha256_file(published),
        kind=DistKind.WHEEL,
    )
    sdist = DistFile(
        filename="demo-1.0.tar.gz",
        url="https://files.example/demo-1.0.tar.gz",
        sha256="ab" * 32,
        kind=DistKind.SDIST,
    )
    release = Release(
        target=Target.parse("demo==1.0"),
        index_url="https://index.example/simple/",
        selector=WheelSelector(),
        files=(wheel, sdist),
        wheel=wheel,
        sdist=sdist,
    )
    plan = Plan(
        image="bookworm-py311",
        python="3.11",
        wheel_tags=("py3-none-any",),
        pure=True,
        generator="bdist_wheel (0.43.0)",
        backend="setuptools",
        backend_pins=("wheel==0.43.0",),
        exclude_newer=datetime(2024, 1, 2, tzinfo=UTC),
        source_date_epoch=1704004230,
        umask="022",
    )
    image = ImageInfo(
        name="bookworm-py311",
        tag="rebuild/bookworm-py311:abc",
        image_id="sha256:" + "cd" * 32,
        obtained="bootstrapped",
        python="3.11.2",
        manifest_sha256="ef" * 32,
        packages=120,
    )
    build = BuildResult(
        wheel=rebuilt,
        image=image,
        requirements=("setuptools==69.0.3", "wheel==0.43.0"),
        command=("uv", "build", "--wheel"),
        environment=(("SOURCE_DATE_EPOCH", "1704004230"),),
        network="none",
        duration_s=1.5,
        log_path=tmp_path / "build.log",
        requirement_digests=(("setuptools==69.0.3", "12" * 32), ("wheel==0.43.0", "34" * 32)),
    )
    provenance = ProvenanceCheck(
        wheel=WHEEL_NAME,
        sdist="demo-1.0.tar.gz",
        python_files=2,
        traced=2,
        revision=SourceRevision(
            repo_url="https://forge.example/demo/demo",
            commit=COMMIT,
            ref="refs/tags/v1.0",
            repo_evidence=SourceEvidence.ATTESTATION,
            commit_evidence=SourceEvidence.ATTESTATION,
        ),
    )
    report = Report(
        tool_version="9.9.9",
        created=datetime(2026, 1, 1, tzinfo=UTC),
        verdict=comparison.verdict,
        target=release.target,
        release=release,
        comparison=comparison,
        plan=plan,
        build=build,
        provenance=provenance,
        source=SourceKind.SDIST,
    )
    return report, published
