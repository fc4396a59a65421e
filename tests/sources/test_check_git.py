"""`rebuild check --source git|both`: the hermetic rebuild from the tagged tree, in a container."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ServeRelease
from helpers_index import LocalServer
from sdists import BACKEND, CODE, PYPROJECT, build_published_wheel, make_sdist

from rebuild.models import SourceEvidence, SourceKind, Target, Verdict, WheelSelector
from rebuild.pipeline import CheckOptions, check

from .repos import git_repo, url_of

pytestmark = pytest.mark.docker
DEMO = Target("demo", "1.0")
TREE = {
    "pyproject.toml": PYPROJECT.encode(),
    "backend.py": BACKEND.encode(),
    "mode.txt": b"ok",
    "demo/__init__.py": CODE,
}


def serve_demo(tmp_path: Path, serve: ServeRelease) -> str:
    published = build_published_wheel(tmp_path / "published")
    return serve("demo", published, make_sdist(tmp_path / "sdist" / "demo-1.0.tar.gz", "ok"))


def test_a_rebuild_from_the_tag_reproduces_the_wheel(
    tmp_path: Path, local_index: tuple[LocalServer, ServeRelease]
) -> None:
    url = serve_demo(tmp_path, local_index[1])
    _, commit = git_repo(tmp_path / "up", TREE, tag="v1.0", annotated=True)
    options = CheckOptions(
        index_url=url,
        cache_dir=tmp_path / "cache",
        source=SourceKind.GIT,
        repo=url_of(tmp_path / "up"),
    )
    report = check(DEMO, WheelSelector(python="3.11"), options)
    assert report.verdict is Verdict.REPRODUCIBLE, report.failure
    assert report.source is SourceKind.GIT
    assert report.provenance is not None and report.provenance.revision is not None
    revision = report.provenance.revision
    assert (revision.commit, revision.ref) == (commit, "refs/tags/v1.0")
    assert revision.commit_evidence is SourceEvidence.TAG
    assert report.build is not None
    assert ("SETUPTOOLS_SCM_PRETEND_VERSION", "1.0") in report.build.environment
    assert any("SETUPTOOLS_SCM_PRETEND_VERSION" in n for n in report.provenance.notes)


def test_both_builds_the_sdist_and_flags_an_sdist_file_not_in_git(
    tmp_path: Path, local_index: tuple[LocalServer, ServeRelease]
) -> None:
    url = serve_demo(tmp_path, local_index[1])
    # The tag lacks mode.txt, which the sdist carries: the rebuild matches, the source does not.
    git_repo(tmp_path / "up", {k: v for k, v in TREE.items() if k != "mode.txt"})
    options = CheckOptions(
        index_url=url,
        cache_dir=tmp_path / "cache",
        source=SourceKind.BOTH,
        repo=url_of(tmp_path / "up"),
        ref="v1.0",
    )
    report = check(DEMO, WheelSelector(python="3.11"), options)
    assert report.comparison is not None, report.failure
    assert report.comparison.verdict is Verdict.REPRODUCIBLE
    assert report.source is SourceKind.SDIST
    assert report.provenance is not None
    assert [d.member for d in report.provenance.unexplained] == ["mode.txt"]
    assert report.verdict is Verdict.DIVERGENT and report.exit_code == 1
    assert any("source checks found 1 unexplained" in n for n in report.notes)


def test_a_missing_tag_fails_the_check_with_the_reason(
    tmp_path: Path, local_index: tuple[LocalServer, ServeRelease]
) -> None:
    url = serve_demo(tmp_path, local_index[1])
    git_repo(tmp_path / "up", TREE, tag="v0.9")
    options = CheckOptions(
        index_url=url,
        cache_dir=tmp_path / "cache",
        source=SourceKind.GIT,
        repo=url_of(tmp_path / "up"),
    )
    report = check(DEMO, WheelSelector(python="3.11"), options)
    assert report.verdict is Verdict.FAILED and report.failure is not None
    assert report.failure.stage == "resolve" and "no tag for version 1.0" in report.failure.message
