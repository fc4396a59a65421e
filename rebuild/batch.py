"""Many releases in one run: read the input, verify each release, keep every result in the store.

Each release is verified by :func:`rebuild.pipeline.check`, on an executor (here a local pool of
``--jobs`` threads; builds run in containers, so threads spend their time waiting). Only the
calling thread writes to the store, one transaction per release as soon as it finishes, so a run
killed at any point keeps every result it finished and the next run does the rest: a release
whose current result came from this tool version, with the same plan for the same published
wheel, is not verified again unless ``force`` is set. Failed results are always retried.

When the input names hashes, the wheel verified is one of them: the release's wheel is chosen
among the files whose sha256 the lock lists, and a release none of whose wheels match fails
rather than verifying a file nobody locked.
"""

from __future__ import annotations

import enum
import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

from rebuild import __version__, pipeline, release_cache
from rebuild.attest import bundle
from rebuild.attest.dsse import Signer
from rebuild.errors import AttestationError, FetchError, RebuildError, UsageError
from rebuild.fetch import default_cache_dir
from rebuild.index import choose_index_url, choose_wheel, selector_tags
from rebuild.inputs import BatchInput, PinnedRelease
from rebuild.models import (
    BuildLimits,
    DistKind,
    Failure,
    Plan,
    Release,
    Report,
    Verdict,
    WheelSelector,
)
from rebuild.report import json as json_report
from rebuild.store import Attention, Review, Store, StoredResult, build_review, plan_digest

T = TypeVar("T")
R = TypeVar("R")


# --- executors -------------------------------------------------------------------------------


class Executor(Protocol):
    """Where the releases of a batch are verified.

    ``map_unordered`` calls ``work`` on every item and yields (item, result) pairs as they
    finish, in any order, in the caller's thread. When the caller stops early (an interrupt),
    no new item starts.
    """

    def map_unordered(
        self, work: Callable[[T], R], items: Sequence[T]
    ) -> Iterator[tuple[T, R]]: ...


class LocalPool:
    """``jobs`` verifications at once on this machine, each on its own thread."""

    def __init__(self, jobs: int) -> None:
        if jobs < 1:
            raise UsageError(f"--jobs must be at least 1, not {jobs}")
        self.jobs = jobs

    def map_unordered(self, work: Callable[[T], R], items: Sequence[T]) -> Iterator[tuple[T, R]]:
        pool = ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="rebuild-batch")
        try:
            futures: dict[Future[R], T] = {pool.submit(work, item): item for item in items}
            for future in as_completed(futures):
                yield futures[future], future.result()
        finally:
            # Builds already running finish (each within its timeout) so that their containers
            # are removed the normal way; those not started never start.
            pool.shutdown(wait=True, cancel_futures=True)


# --- events for a progress display -------------------------------------------------------------


class EventKind(enum.Enum):
    STARTED = "started"
    FINISHED = "finished"


@dataclass(frozen=True)
class BatchEvent:
    kind: EventKind
    release: PinnedRelease
    verdict: Verdict | None = None
    reused: bool = False
    unexplained: int = 0


OnEvent = Callable[[BatchEvent], None]


def _ignore(_: BatchEvent) -> None:
    return None


# --- one release -----------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchOptions:
    jobs: int = 1
    force: bool = False
    # Ask the index even where its answer of the last hours is cached (rebuild.release_cache).
    refresh: bool = False
    timeout_s: float = BuildLimits.timeout_s  # each release's build
    index_url: str | None = None  # overrides the index each input line names
    extra_index_urls: tuple[str, ...] = ()  # added to those the input names
    cache_dir: Path | None = None
    selector: WheelSelector = field(default_factory=WheelSelector)
    # The CI switch: compiled members whose code could only be attributed fail the gate too.
    fail_on_attributed: bool = False
    strict: bool = False  # a failed release, or none at all, fails the gate too
    # Signs the in-toto attestations kept with each result (None: they are kept unsigned).
    signer: Signer | None = None


@dataclass(frozen=True)
class Work:
    """What a worker hands back: a new report to record, or an earlier result to reuse."""

    report: Report | None
    reused: StoredResult | None
    seconds: float
    timings: tuple[tuple[str, float], ...] = ()
    # A distributed verification's key (release, plan, ticket): stored once under it.
    task_key: str | None = None


@dataclass(frozen=True)
class Dispatch:
    """A release to verify, with what the set-up found: the indexes to ask (the one serving a
    locked wheel first) and the selector naming the wheel. ``plan``: the plan a check will
    follow, when the executor asked for it (to send the release where it can be built)."""

    index_url: str | None
    extra_index_urls: tuple[str, ...]
    selector: WheelSelector
    plan: Plan | None = None


# pipeline.check's progress messages that open a stage, and the stage's name in the store.
_STAGES = (
    ("resolving", "resolve"),
    ("downloading", "fetch"),
    ("planning", "plan"),
    ("preparing the build environment", "prepare"),
    ("building in ", "build"),
    ("comparing", "compare"),
)


class _StageClock:
    """Turns check's progress messages into per-stage timings."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.marks: list[tuple[str, float]] = [("batch", self.start)]

    def __call__(self, message: str) -> None:
        stage = next((s for prefix, s in _STAGES if message.startswith(prefix)), None)
        # Only the stage openings; the build's own messages ("resolving build requirements")
        # follow "preparing" and are part of it.
        if stage is not None and stage not in (m[0] for m in self.marks):
            self.marks.append((stage, time.monotonic()))

    def mark(self, stage: str) -> None:
        self.marks.append((stage, time.monotonic()))

    def timings(self) -> tuple[tuple[str, float], ...]:
        end = time.monotonic()
        bounds = [*(t for _, t in self.marks[1:]), end]
        spans = [(stage, round(b - t, 3)) for (stage, t), b in zip(self.marks, bounds, strict=True)]
        return (*spans, ("total", round(end - self.start, 3)))


def _failed(release: PinnedRelease, error: RebuildError, resolved: Release | None) -> Report:
    return Report(
        tool_version=__version__,
        created=datetime.now(UTC),
        verdict=Verdict.FAILED,
        target=release.target,
        release=resolved,
        failure=Failure(
            stage=error.stage, message=error.message, hint=error.hint, exit_code=error.exit_code
        ),
    )


def locked_selector(resolved: Release, pinned: PinnedRelease, base: WheelSelector) -> WheelSelector:
    """The selector naming the wheel the lock pins: one whose sha256 the input lists."""
    locked = [f for f in resolved.files if f.kind is DistKind.WHEEL and f.sha256 in pinned.hashes]
    if not locked:
        raise FetchError(
            f"no wheel of {pinned.target} on {resolved.index_url} has a sha256 that "
            f"{pinned.origin} names",
            hint="the lock was written against other files (another index, or files replaced "
            "since): a person should find out which",
        )
    if resolved.wheel in locked:
        chosen = resolved.wheel
    else:
        # The lock was made for another platform: take its best fit for this one, else any.
        chosen = choose_wheel(locked, selector_tags(base)) or min(locked, key=lambda f: f.filename)
    return replace(base, filename=chosen.filename)


def _honour_hashes(report: Report, pinned: PinnedRelease) -> Report:
    """Hold a finished check to the lock: the wheel verified must be one the lock names."""
    if not pinned.hashes or report.release is None:
        return report
    wheel, sdist = report.release.wheel, report.release.sdist
    if wheel is not None and wheel.sha256 not in pinned.hashes:
        error = FetchError(
            f"the wheel verified ({wheel.filename}) is not one {pinned.origin} names: its files "
            "changed on the index during the check",
            hint="run the batch again; if it persists, a person should look",
        )
        return _failed(pinned, error, report.release)
    if sdist is not None and sdist.sha256 not in pinned.hashes:
        note = f"the sdist rebuilt ({sdist.filename}) is not among the hashes {pinned.origin} names"
        return replace(report, notes=(*report.notes, note))
    return report


class Verifier:
    """The work one release needs, run on an executor's thread; touches no store.

    In two steps, so that an executor may run the second elsewhere: :meth:`prepare` (here: the
    lock's wheel, and the reuse of a stored verdict) and :func:`verify_dispatched` (the check).
    """

    def __init__(
        self,
        options: BatchOptions,
        previous: dict[str, StoredResult],
        on_event: OnEvent,
    ) -> None:
        self.options = options
        self.previous = previous
        self.on_event = on_event
        self.cache_dir = options.cache_dir or default_cache_dir()

    def __call__(self, pinned: PinnedRelease) -> Work:
        self.on_event(BatchEvent(EventKind.STARTED, pinned))
        clock = _StageClock()
        prepared = self.prepare(pinned, clock=clock)
        if isinstance(prepared, Work):
            return prepared
        return verify_dispatched(pinned, prepared, self.options, clock=clock)

    def prepare(
        self, pinned: PinnedRelease, *, plan: bool = False, clock: _StageClock | None = None
    ) -> Work | Dispatch:
        """A finished piece of work (a stored verdict reused, a set-up that failed) or what a
        check of the release needs; with ``plan``, the plan too (a failure to plan is a
        failed report, as a check would have made)."""
        clock = clock or _StageClock()
        index_url = self.options.index_url or pinned.index_url
        extras = self._extras(pinned)
        selector = self.options.selector
        resolved: Release | None = None
        previous = self.previous.get(str(pinned.target))
        reusable = previous is not None and _reusable(previous)
        try:
            if previous is not None and reusable and self._still_holds(pinned, previous):
                return Work(None, previous, time.monotonic() - clock.start)
            if pinned.hashes:
                found = pipeline.resolve(
                    pinned.target,
                    selector,
                    index_url=index_url,
                    extra_index_urls=extras,
                    hashes=pinned.hashes,
                )
                resolved = found.release
                selector = locked_selector(resolved, pinned, selector)
                # The check asks the index serving the locked wheel first, the others after.
                index_url = found.index.index_url
                extras = tuple(u for u in (self._primary(pinned), *extras) if u != index_url)
            if previous is not None and reusable:
                resolved = pipeline.resolve(
                    pinned.target, selector, index_url=index_url, extra_index_urls=extras
                ).release
                self._remember(pinned, resolved)
                if self._same_plan(resolved, previous):
                    return Work(None, previous, time.monotonic() - clock.start)
            planned = None
            if plan:
                options = pipeline.CheckOptions(
                    index_url=index_url, extra_index_urls=extras, cache_dir=self.options.cache_dir
                )
                planned = pipeline.plan_release(pinned.target, selector, options)
        except RebuildError as e:
            report = _failed(pinned, e, resolved)
            return Work(report, None, time.monotonic() - clock.start, clock.timings())
        return Dispatch(index_url, extras, selector, planned)

    def _primary(self, pinned: PinnedRelease) -> str:
        return choose_index_url(self.options.index_url or pinned.index_url)

    def _extras(self, pinned: PinnedRelease) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*pinned.extra_index_urls, *self.options.extra_index_urls)))

    def _key(self, pinned: PinnedRelease) -> str:
        indexes = (self._primary(pinned), *self._extras(pinned))
        return release_cache.cache_key(pinned.target, self.options.selector, indexes, pinned.hashes)

    def _remember(self, pinned: PinnedRelease, release: Release) -> None:
        release_cache.remember(self.cache_dir, self._key(pinned), release)

    def remember_checked(self, pinned: PinnedRelease, work: Work) -> None:
        """After a check (here or on a worker), keep what the index said of its release where
        this machine's next batch looks for it."""
        report = work.report
        if (
            report is not None
            and report.release is not None
            and report.verdict is not Verdict.FAILED
        ):
            self._remember(pinned, report.release)

    def _still_holds(self, pinned: PinnedRelease, previous: StoredResult) -> bool:
        """Does the stored verdict hold by what the index said in the last hours, without
        asking it again? Only for the very wheel the verdict was reached on."""
        if self.options.refresh:
            return False
        found = release_cache.recall(self.cache_dir, self._key(pinned), pinned.target)
        if found is None:
            return False
        release, _ = found
        wheel = release.wheel
        if wheel is None or (pinned.hashes and wheel.sha256 not in pinned.hashes):
            return False
        try:
            return self._same_plan(release, previous)
        except RebuildError:
            return False  # a cached file gone or spoilt: ask the index, as without a cache

    def _same_plan(self, resolved: Release, previous: StoredResult) -> bool:
        """Would a check now follow the plan the stored verdict was reached with?"""
        wheel = resolved.wheel
        if wheel is None or wheel.sha256 != previous.wheel_sha256:
            return False
        sdist = resolved.sdist
        if sdist is None or sdist.sha256 != previous.sdist_sha256:
            return False
        options = pipeline.CheckOptions(cache_dir=self.cache_dir)
        return plan_digest(pipeline.plan_of(resolved, options)) == previous.plan_digest


def verify_dispatched(
    pinned: PinnedRelease,
    dispatch: Dispatch,
    options: BatchOptions,
    *,
    clock: _StageClock | None = None,
) -> Work:
    """Check one prepared release (on this machine: a local pool's thread, or a worker)."""
    clock = clock or _StageClock()
    clock.mark("setup")
    report = pipeline.check(
        pinned.target,
        dispatch.selector,
        pipeline.CheckOptions(
            index_url=dispatch.index_url,
            extra_index_urls=dispatch.extra_index_urls,
            cache_dir=options.cache_dir,
            limits=BuildLimits(timeout_s=options.timeout_s),
        ),
        progress=clock,
    )
    report = _honour_hashes(report, pinned)
    return Work(report, None, time.monotonic() - clock.start, clock.timings())


def failed_work(pinned: PinnedRelease, error: RebuildError, seconds: float = 0.0) -> Work:
    """The work of a release that could not be verified at all (an executor's failure)."""
    return Work(_failed(pinned, error, None), None, seconds)


def _reusable(result: StoredResult) -> bool:
    return (
        result.tool_version == __version__
        and result.verdict is not Verdict.FAILED
        and result.plan_digest is not None
    )


# --- the batch -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    release: PinnedRelease
    result_id: int
    verdict: Verdict
    unexplained: int
    reused: bool
    seconds: float


@dataclass(frozen=True)
class BatchResult:
    run_id: int
    input: BatchInput
    outcomes: tuple[Outcome, ...]
    review: Review  # this batch's releases, ranked, regressions first
    killed_runs: tuple[int, ...] = ()  # earlier runs found killed (and now marked interrupted)
    # Containers of ours in the engine when a killed run was found: what it may have left.
    leftover_containers: int = 0
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        return self.review.exit_code


def report_path(cache_dir: Path, run_id: int, release: PinnedRelease) -> Path:
    target = release.target
    return cache_dir / "reports" / f"run-{run_id}" / f"{target.project}-{target.version}.json"


def run_batch(
    batch: BatchInput,
    store: Store,
    options: BatchOptions = BatchOptions(),
    *,
    executor: Executor | None = None,
    on_event: OnEvent = _ignore,
) -> BatchResult:
    """Verify every release of ``batch`` and record each result in ``store`` as it finishes."""
    started = time.monotonic()
    executor = executor or LocalPool(options.jobs)
    killed = tuple(r.id for r in store.runs() if r.killed)
    for run_id in killed:
        store.finish_run(run_id, interrupted=True)
    leftovers = 0
    if killed:
        from rebuild.container import leftover_containers

        # Counted, not removed: they may as well belong to a check running beside this batch.
        leftovers = len(leftover_containers())
    run_id = store.start_run(tool_version=__version__, input=str(batch.path), jobs=options.jobs)
    previous: dict[str, StoredResult] = {}
    if not options.force:
        for pinned in batch.releases:
            found = store.current(pinned.target.project, pinned.target.version)
            if found is not None:
                previous[str(pinned.target)] = found
    lock = threading.Lock()

    def emit(event: BatchEvent) -> None:
        with lock:  # events come from worker threads; the display sees one at a time
            on_event(event)

    cache_dir = options.cache_dir or default_cache_dir()
    outcomes: list[Outcome] = []
    verifier = Verifier(options, previous, emit)
    try:
        for pinned, work in executor.map_unordered(verifier, batch.releases):
            outcomes.append(_record(store, run_id, pinned, work, cache_dir, options.signer))
            verifier.remember_checked(pinned, work)
            last = outcomes[-1]
            emit(
                BatchEvent(EventKind.FINISHED, pinned, last.verdict, last.reused, last.unexplained)
            )
    except BaseException:
        store.finish_run(run_id, interrupted=True)
        raise
    store.finish_run(run_id)
    keys = {(p.target.project, p.target.version) for p in batch.releases}
    return BatchResult(
        run_id=run_id,
        input=batch,
        outcomes=tuple(outcomes),
        review=build_review(
            store.current_results(),
            only=keys,
            fail_on_attributed=options.fail_on_attributed,
            strict=options.strict,
        ),
        killed_runs=killed,
        leftover_containers=leftovers,
        seconds=time.monotonic() - started,
    )


def _record(
    store: Store,
    run_id: int,
    pinned: PinnedRelease,
    work: Work,
    cache: Path,
    signer: Signer | None = None,
) -> Outcome:
    if work.reused is not None:
        store.reuse(run_id, work.reused.id)
        return Outcome(
            pinned, work.reused.id, work.reused.verdict, work.reused.unexplained, True, work.seconds
        )
    report = work.report
    if report is None:  # a worker returns one or the other
        raise RebuildError("a batch worker returned nothing (internal)")
    # The report file first: a kill between the two leaves a stray file, never a store row
    # pointing at nothing.
    path = report_path(cache, run_id, pinned)
    json_report.write(report, path)
    result_id = store.record(
        report,
        run_id=run_id,
        seconds=work.seconds,
        timings=work.timings,
        report_path=path,
        attestation=attestation_of(report, signer),
        task_key=work.task_key,
    )
    unexplained = len(report.comparison.unexplained) if report.comparison else 0
    return Outcome(pinned, result_id, report.verdict, unexplained, False, work.seconds)


def attestation_of(report: Report, signer: Signer | None) -> tuple[str, str | None] | None:
    """The report's in-toto bundle and its signer's key id; None when there is no wheel to
    attest (the release failed before one was known)."""
    try:
        text = bundle.render(bundle.envelopes(report, signer))
    except AttestationError:
        return None
    return text, signer.keyid if signer else None


# --- summaries for programs --------------------------------------------------------------------

SUMMARY_SCHEMA_VERSION = 1


def summary_document(review: Review, *, run: BatchResult | None = None) -> dict[str, Any]:
    """The review as JSON-ready data, regressions first, with counts and the gate's exit code."""
    entries = []
    for entry in review.entries:
        r = entry.result
        entries.append(
            {
                "project": r.project,
                "version": r.version,
                "attention": entry.attention.value,
                "verdict": r.verdict.value,
                "unexplained": r.unexplained,
                "verified": r.verified,
                "attributed": r.attributed,
                "divergences": r.divergences,
                "regression": entry.regression.reason if entry.regression else None,
                "previous_version": (
                    entry.regression.previous_version if entry.regression else None
                ),
                "failure": (
                    {"stage": r.failure_stage, "message": r.failure_message}
                    if r.failure_stage
                    else None
                ),
                "result_id": r.id,
                "checked": r.created.isoformat(),
                "tool_version": r.tool_version,
                "wheel": r.wheel_filename,
                "wheel_sha256": r.wheel_sha256,
                "report": str(r.report_path) if r.report_path else None,
                "log": str(r.log_path) if r.log_path else None,
            }
        )
    document: dict[str, Any] = {
        "schema_version": SUMMARY_SCHEMA_VERSION,
        "exit_code": review.exit_code,
        "counts": {a.value: review.count(a) for a in Attention},
        "regressions": [e for e in entries if e["regression"] is not None],
        "releases": entries,
    }
    if run is not None:
        document["run"] = {
            "id": run.run_id,
            "input": str(run.input.path),
            "checked": sum(1 for o in run.outcomes if not o.reused),
            "reused": sum(1 for o in run.outcomes if o.reused),
            "skipped": list(run.input.skipped),
            "killed_runs": list(run.killed_runs),
            "seconds": round(run.seconds, 3),
        }
    return document


# --- work that travels (a distributed executor's results) -----------------------------------

WORK_SCHEMA_VERSION = 1


def work_document(work: Work) -> dict[str, Any]:
    """A new report and its timings as JSON values (the report in its versioned schema)."""
    if work.report is None:
        raise RebuildError("only a new report travels, not a reused verdict (internal)")
    return {
        "schema_version": WORK_SCHEMA_VERSION,
        # render: the document as written to disk, credentials redacted.
        "report": json.loads(json_report.render(work.report)),
        "seconds": work.seconds,
        "timings": [[stage, seconds] for stage, seconds in work.timings],
    }


def work_from_document(document: dict[str, Any], *, task_key: str | None = None) -> Work:
    """The work :func:`work_document` described; ValueError if it is not such a document."""
    if document.get("schema_version") != WORK_SCHEMA_VERSION:
        raise ValueError(f"a result of schema version {document.get('schema_version')!r}")
    report = json_report.from_document(document["report"])
    timings = tuple((str(stage), float(seconds)) for stage, seconds in document["timings"])
    return Work(report, None, float(document["seconds"]), timings, task_key)
