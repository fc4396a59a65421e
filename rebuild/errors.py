"""The one exception hierarchy of rebuild.

Every failure the tool can meet is a subclass of :class:`RebuildError` carrying the process exit
code a pipeline can gate on and a hint a person can act on. Third-party failures are translated
into these at the boundary (``raise ... from e``); the CLI catches them once.

Exit codes follow ``diff``: 0 reproducible or equivalent, 1 divergent, 2 usage; then one code per
failure class, listed in :data:`EXIT_CODES` (and so in ``--help`` and the README).
"""

from __future__ import annotations

from typing import ClassVar

EXIT_REPRODUCIBLE = 0
EXIT_DIVERGENT = 1
EXIT_USAGE = 2
# `batch` and `review`: a regression or an unexplained divergence needs a person (CI gate).
EXIT_NEEDS_REVIEW = 11


class RebuildError(Exception):
    """Root of every error rebuild raises on purpose."""

    exit_code: ClassVar[int] = 10
    stage: ClassVar[str] = "internal"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(RebuildError):
    """The command line or an input file is not what the command takes."""

    exit_code = EXIT_USAGE
    stage = "usage"


class ResolveError(RebuildError):
    """The index has no such project, release or matching file, or did not answer sensibly."""

    exit_code = 3
    stage = "resolve"


class NoSuchProject(ResolveError):
    """The index answers that it has no project of that name (a 404), as opposed to an
    index that has the project but not the release asked for."""


class UnreachableError(RebuildError):
    """The index could not be reached at all (refused, timed out, no route), after retries:
    an outage, not an answer about the release."""

    exit_code = 12
    stage = "network"


class FetchError(RebuildError):
    """A download failed, or its bytes do not match the hash the index published."""

    exit_code = 4
    stage = "fetch"


class ArchiveError(RebuildError):
    """A wheel or sdist is malformed or hostile (not a zip, truncated, escaping paths, a bomb)."""

    exit_code = 5
    stage = "archive"


class PlanError(RebuildError):
    """No build can be planned: unknown interpreter, no image for it, an invalid recipe."""

    exit_code = 6
    stage = "plan"


class BuildError(RebuildError):
    """The build ran and failed (non-zero exit, timeout, no wheel produced)."""

    exit_code = 7
    stage = "build"

    def __init__(self, message: str, *, hint: str | None = None, log: str = "") -> None:
        super().__init__(message, hint=hint)
        self.log = log


class ContainerError(RebuildError):
    """The container engine is missing or misbehaved, or an image cannot be had."""

    exit_code = 8
    stage = "container"


class AttestationError(RebuildError):
    """An attestation does not verify: a bad signature, another key, another subject, or a
    PEP 740 provenance that fails its Sigstore verification."""

    exit_code = 13
    stage = "attestation"


class DistributedError(RebuildError):
    """A distributed batch cannot go on: the broker does not answer, no worker can build a
    release or answers at all, a worker cannot build (no engine, no image), a result is too
    large to travel."""

    exit_code = 14
    stage = "distributed"


EXIT_CODES: dict[int, str] = {
    EXIT_REPRODUCIBLE: "reproducible or equivalent: every member's bytes match",
    EXIT_DIVERGENT: "divergent: at least one member differs or exists on one side only",
    EXIT_USAGE: "usage: bad command line or input file",
    ResolveError.exit_code: "failed to resolve: no such project, release or wheel on the index",
    FetchError.exit_code: "failed to fetch: download error or sha256 mismatch",
    ArchiveError.exit_code: "bad archive: malformed or hostile wheel/sdist",
    PlanError.exit_code: "failed to plan: no image/interpreter for the wheel, bad recipe",
    BuildError.exit_code: "build failed: the rebuild did not produce a wheel",
    ContainerError.exit_code: "container error: no engine, image unavailable, container failure",
    RebuildError.exit_code: "internal error",
    EXIT_NEEDS_REVIEW: "batch/review: regressions or unexplained divergences need review",
    UnreachableError.exit_code: "index unreachable: refused, timed out or no route (an outage)",
    AttestationError.exit_code: "attestation did not verify: signature, key or subject",
    DistributedError.exit_code: "distributed: broker or workers unreachable, no worker can build",
}
