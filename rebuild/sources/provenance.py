"""The source checks of one release, and the source a rebuild uses (the sdist or the tagged tree).

:func:`verify_provenance` is ``rebuild provenance``: fetch the wheel's sdist, trace every file
the wheel installs to it (:mod:`~rebuild.sources.wheel_sdist`), then (when the repository can be
located) compare every file of the sdist with the tree at the release's commit.
:func:`prepare_source` is what ``check --source`` uses: the same checks, plus the archive the
hermetic build extracts — the sdist, or the checked-out tree packed like one (through the same
safe extraction, so a hostile repository is held to the rules a hostile sdist is).

Everything is written under the cache directory, in a scratch directory removed afterwards.
"""

from __future__ import annotations

import enum
import os
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from rebuild.archive import extract_sdist
from rebuild.attest.findings import attestation_findings
from rebuild.errors import RebuildError, ResolveError
from rebuild.fetch import Cache, sha256_file
from rebuild.models import (
    Artifact,
    ProvenanceCheck,
    PublisherAttestation,
    Release,
    SourceKind,
    SourceRevision,
)
from rebuild.sources.git import Checkout, checkout
from rebuild.sources.locate import find_attestation, locate
from rebuild.sources.sdist_git import compare_sdist_with_tree
from rebuild.sources.tree import VCS_DIRS, SourceTree
from rebuild.sources.wheel_sdist import trace_wheel

Progress = Callable[[str], None]

# Backends that take the version from git metadata read it from these when there is no .git
# (the build container has neither the repository's history nor a git binary).
SCM_VERSION_VARIABLES = ("SETUPTOOLS_SCM_PRETEND_VERSION", "PDM_BUILD_SCM_VERSION")


class GitCheck(enum.Enum):
    """Whether the repository is consulted, and what a failure to reach it does."""

    OFF = "off"
    BEST_EFFORT = "best-effort"  # a note when it cannot be located or fetched
    REQUIRED = "required"  # a failure fails the check


@dataclass(frozen=True)
class PreparedSource:
    """What a rebuild builds, and the source checks made on the way."""

    archive: Artifact  # the sdist, or the checked-out tree packed like one
    built: SourceKind  # SDIST or GIT
    provenance: ProvenanceCheck
    environment: tuple[tuple[str, str], ...] = ()  # extra build environment the source needs


def _quiet(_: str) -> None:
    return None


@contextmanager
def _scratch(cache_root: Path) -> Iterator[Path]:
    base = cache_root / "work"
    base.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix="sources-", dir=base))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def verify_provenance(
    release: Release,
    wheel: Artifact,
    *,
    cache: Cache,
    git: GitCheck = GitCheck.BEST_EFFORT,
    repo: str | None = None,
    ref: str | None = None,
    allow_local: bool = False,
    progress: Progress = _quiet,
) -> ProvenanceCheck:
    """Wheel vs sdist, and sdist vs the tagged tree when the repository is located."""
    with _scratch(cache.root) as scratch:
        check, _checkout = _examine(
            release,
            wheel,
            cache=cache,
            scratch=scratch,
            git=git,
            compare_tree=True,
            repo=repo,
            ref=ref,
            allow_local=allow_local,
            progress=progress,
        )
    return check


def prepare_source(
    release: Release,
    wheel: Artifact,
    kind: SourceKind,
    *,
    cache: Cache,
    results: Path,
    repo: str | None = None,
    ref: str | None = None,
    allow_local: bool = False,
    progress: Progress = _quiet,
) -> PreparedSource:
    """The source a rebuild uses for ``kind``, with the source checks that go with it.

    ``SDIST`` builds the sdist and traces the wheel to it; ``BOTH`` also compares the sdist with
    the tagged tree (the chain wheel = rebuild(sdist), sdist = tree); ``GIT`` builds the tagged
    tree itself, packed into ``results`` (it is the exact source that was built).
    """
    git = GitCheck.OFF if kind is SourceKind.SDIST else GitCheck.REQUIRED
    with _scratch(cache.root) as scratch:
        check, tree = _examine(
            release,
            wheel,
            cache=cache,
            scratch=scratch,
            git=git,
            compare_tree=kind is SourceKind.BOTH,
            repo=repo,
            ref=ref,
            allow_local=allow_local,
            progress=progress,
        )
        if kind is not SourceKind.GIT:
            if release.sdist is None:
                raise ResolveError(
                    f"{release.target} has no sdist on {release.index_url}: there is no source "
                    "archive to rebuild",
                    hint="rebuild from the upstream repository instead: --source git",
                )
            return PreparedSource(
                archive=cache.fetch(release.sdist), built=SourceKind.SDIST, provenance=check
            )
        if tree is None:  # pragma: no cover - GitCheck.REQUIRED raises first
            raise ResolveError(f"no checkout of the repository of {release.target}")
        progress(f"packing the checkout at {tree.commit[:12]}")
        top = f"{release.target.project}-{release.target.version}"
        archive = pack_checkout(tree, results / f"{top}-git-{tree.commit[:12]}.tar.gz", top)
    version = release.target.version
    environment = tuple((name, version) for name in SCM_VERSION_VARIABLES)
    note = (
        "built from the repository's tree without its .git: a version from git metadata "
        f"(setuptools-scm, hatch-vcs, pdm) was given as {version} through "
        + ", ".join(SCM_VERSION_VARIABLES)
    )
    return PreparedSource(
        archive=archive,
        built=SourceKind.GIT,
        provenance=_with_note(check, note),
        environment=environment,
    )


def _with_note(check: ProvenanceCheck, note: str) -> ProvenanceCheck:
    return replace(check, notes=(*check.notes, note))


def _examine(
    release: Release,
    wheel: Artifact,
    *,
    cache: Cache,
    scratch: Path,
    git: GitCheck,
    compare_tree: bool,
    repo: str | None,
    ref: str | None,
    allow_local: bool,
    progress: Progress,
) -> tuple[ProvenanceCheck, Checkout | None]:
    notes: list[str] = []
    sdist_tree: SourceTree | None = None
    python_files = traced = 0
    findings = []
    if release.sdist is not None:
        cached = " (in the download cache)" if cache.has(release.sdist) else ""
        progress(f"fetching {release.sdist.filename}{cached}")
        sdist = cache.fetch(release.sdist)
        sdist_tree = SourceTree(extract_sdist(sdist.path, scratch / "sdist"))
        progress(f"tracing the installed files of {wheel.path.name} to the sdist")
        trace = trace_wheel(wheel.path, sdist_tree, release.target.version)
        python_files, traced, findings = trace.files, trace.traced, list(trace.findings)
        if trace.compiled:
            notes.append(
                f"{trace.compiled} compiled member(s) of the wheel (.so, .pyd, .pyc...) are in no "
                "source: not traced to the sdist, only a rebuild judges them"
            )
    else:
        notes.append("no sdist on the index: the wheel's installed files were not traced")
    revision: SourceRevision | None = None
    tree: Checkout | None = None
    sdist_files = sdist_matched = None
    # PEP 740 is verified whichever source is built: a provenance that fails is a finding.
    attestations: list[PublisherAttestation] = []
    if git is GitCheck.OFF:
        progress("verifying the release's PEP 740 provenance, if the index has one")
        find_attestation(release, checked=attestations)
    else:
        try:
            progress("locating the repository")
            where = locate(
                release, repo=repo, ref=ref, allow_local=allow_local, checked=attestations
            )
            progress(f"fetching {where.ref or where.commit} of {where.repo_url}")
            tree = checkout(where.repo_url, scratch / "git", ref=where.ref, commit=where.commit)
        except RebuildError as e:
            if git is GitCheck.REQUIRED:
                raise
            notes.append(f"sdist not compared with the repository: {e.message}")
        else:
            revision = SourceRevision(
                repo_url=where.repo_url,
                commit=tree.commit,
                ref=tree.ref,
                repo_evidence=where.repo_evidence,
                commit_evidence=where.commit_evidence,
                notes=where.notes,
            )
            if compare_tree and sdist_tree is not None:
                progress("comparing the sdist with the tree at the commit")
                match = compare_sdist_with_tree(
                    sdist_tree, SourceTree(tree.path), release.target.version
                )
                sdist_files, sdist_matched = match.files, match.matched
                findings += match.findings
                if match.prefix:
                    notes.append(f"the sdist was made from {match.prefix} of the repository")
    findings += attestation_findings(attestations)
    check = ProvenanceCheck(
        wheel=wheel.path.name,
        sdist=release.sdist.filename if release.sdist else None,
        python_files=python_files,
        traced=traced,
        findings=tuple(sorted(findings, key=lambda d: (d.explained, d.kind.value, d.member or ""))),
        revision=revision,
        sdist_files=sdist_files,
        sdist_matched=sdist_matched,
        notes=tuple(notes),
        attestations=tuple(attestations),
    )
    return check, tree


def pack_checkout(tree: Checkout, dest: Path, top: str) -> Artifact:
    """The checked-out tree (submodules included, no VCS metadata) as an sdist-like tar.gz.

    Every entry gets the commit's time and a normalised mode, as ``git archive`` would give.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    temp = dest.with_name(dest.name + ".part")
    with tarfile.open(temp, "w:gz") as tar:
        for dirpath, dirnames, filenames in os.walk(tree.path):
            dirnames[:] = sorted(d for d in dirnames if d not in VCS_DIRS)
            for name in sorted(filenames):
                if name in VCS_DIRS:  # a submodule's .git is a file
                    continue
                path = Path(dirpath) / name
                rel = path.relative_to(tree.path).as_posix()
                info = tar.gettarinfo(str(path), arcname=f"{top}/{rel}")
                if not (info.isreg() or info.issym()):
                    continue
                info.mtime = tree.commit_time
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                executable = info.isreg() and path.stat().st_mode & stat.S_IXUSR
                info.mode = 0o755 if executable else 0o644
                if info.isreg():
                    with path.open("rb") as f:
                        tar.addfile(info, f)
                else:
                    tar.addfile(info)
    temp.replace(dest)
    return Artifact(
        path=dest, sha256=sha256_file(dest), size=dest.stat().st_size, origin=f"git {tree.commit}"
    )
