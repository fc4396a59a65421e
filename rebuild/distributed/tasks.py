"""The one task of a distributed batch: verify one release, return its report as JSON.

The payload carries the release as the input pinned it and what the coordinator's set-up found
(the indexes to ask, the wheel's selector), the build's timeout and the *ticket* that names this
verification across every delivery of it. The worker runs the same function the local pool runs
(:func:`rebuild.batch.verify_dispatched`) and returns the report in its versioned schema.

Large artefacts stay out of the result: the rebuilt wheel and the build log are copied to the
shared directory the worker was given (``--artifacts``), and the report points there. A report
larger than a result may be goes there too, the result naming its file; without a shared
directory it is a failure that says so.

Index credentials never travel: a worker reaches a private index with its own (netrc, keyring).
"""

from __future__ import annotations

import json
import shutil
import socket
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rebuild import __version__
from rebuild.batch import (
    BatchOptions,
    Dispatch,
    Work,
    failed_work,
    verify_dispatched,
    work_document,
)
from rebuild.distributed.app import TASK_NAME
from rebuild.errors import DistributedError
from rebuild.inputs import PinnedRelease
from rebuild.models import Report, Target, WheelSelector

PAYLOAD_SCHEMA_VERSION = 1
MAX_RESULT_BYTES = 16 * 1024 * 1024


def payload(pinned: PinnedRelease, dispatch: Dispatch, *, timeout_s: float) -> dict[str, Any]:
    """The task's arguments as JSON values (the ticket is added by whoever sends it)."""
    selector = dispatch.selector
    return {
        "schema_version": PAYLOAD_SCHEMA_VERSION,
        "tool_version": __version__,
        "release": {
            "name": pinned.target.name,
            "version": pinned.target.version,
            "origin": pinned.origin,
            "hashes": sorted(pinned.hashes),
            "index_url": pinned.index_url,
            "extra_index_urls": list(pinned.extra_index_urls),
            "extras": list(pinned.extras),
        },
        "index_url": dispatch.index_url,
        "extra_index_urls": list(dispatch.extra_index_urls),
        "selector": {
            "python": selector.python,
            "platform": selector.platform,
            "filename": selector.filename,
        },
        "timeout_s": timeout_s,
    }


def read_payload(document: dict[str, Any]) -> tuple[PinnedRelease, Dispatch, float]:
    """The release, its dispatch and the build's timeout a payload carries; ValueError if it
    is not one of this version."""
    if document.get("schema_version") != PAYLOAD_SCHEMA_VERSION:
        raise ValueError(f"a task of payload version {document.get('schema_version')!r}")
    release = document["release"]
    pinned = PinnedRelease(
        target=Target(str(release["name"]), str(release["version"])),
        origin=str(release["origin"]),
        hashes=frozenset(str(h) for h in release["hashes"]),
        index_url=release["index_url"],
        extra_index_urls=tuple(release["extra_index_urls"]),
        extras=tuple(release["extras"]),
    )
    selector = WheelSelector(**document["selector"])
    dispatch = Dispatch(
        document["index_url"], tuple(document["extra_index_urls"]), selector, plan=None
    )
    return pinned, dispatch, float(document["timeout_s"])


@dataclass(frozen=True)
class WorkerSettings:
    """What a worker was started with."""

    timeout_s: float  # the longest build it runs (its visibility timeout is set from it)
    cache_dir: Path | None = None
    artifacts: Path | None = None  # shared directory for wheels, logs and large reports
    max_result_bytes: int = MAX_RESULT_BYTES


def run(document: dict[str, Any], settings: WorkerSettings, worker: str) -> dict[str, Any]:
    """Verify the release a payload names; the result document (never raises for a release
    that fails: that is a failed report)."""
    ticket = str(document.get("ticket", ""))
    try:
        pinned, dispatch, timeout_s = read_payload(document)
    except (KeyError, TypeError, ValueError) as e:
        # Nothing to make a report of: the task fails, and the coordinator says why.
        raise DistributedError(
            f"a task this worker cannot read ({e}): sent by another version of rebuild?",
            hint=f"run the same rebuild version ({__version__} here) on coordinator and workers",
        ) from e
    if timeout_s > settings.timeout_s:
        error = DistributedError(
            f"{pinned.target}: the batch asks for builds of up to {timeout_s:.0f} s, this worker "
            f"({worker}) runs builds of at most {settings.timeout_s:.0f} s",
            hint="start the workers with a --timeout at least the batch's (their visibility "
            "timeout follows it), or give the batch a smaller --timeout",
        )
        return _result(work_document(failed_work(pinned, error)), ticket, worker)
    options = BatchOptions(timeout_s=timeout_s, cache_dir=settings.cache_dir)
    work = verify_dispatched(pinned, dispatch, options)
    return finish(work, pinned, settings, ticket=ticket, worker=worker)


def finish(
    work: Work, pinned: PinnedRelease, settings: WorkerSettings, *, ticket: str, worker: str
) -> dict[str, Any]:
    """The result document of ``work``: its artefacts moved to the shared directory, and its
    report there too when it is larger than a result may be."""
    if work.report is not None and settings.artifacts is not None:
        work = replace(work, report=_share(work.report, settings.artifacts / _folder(ticket)))
    result = _result(work_document(work), ticket, worker)
    size = len(json.dumps(result))
    if size <= settings.max_result_bytes:
        return result
    if settings.artifacts is not None:
        path = settings.artifacts / _folder(ticket) / "report.json"
        _write(path, json.dumps(result["report"], indent=2))
        return {**result, "report": None, "report_file": str(path)}
    error = DistributedError(
        f"{pinned.target}: the report is {size:,} bytes, over the {settings.max_result_bytes:,} "
        "a result may carry through the broker",
        hint="start the workers with --artifacts DIR on storage the coordinator reads too: "
        "large reports go there; or raise the workers' --max-result-mb",
    )
    return _result(work_document(failed_work(pinned, error, work.seconds)), ticket, worker)


def _result(document: dict[str, Any], ticket: str, worker: str) -> dict[str, Any]:
    return {**document, "ticket": ticket, "worker": worker, "host": socket.gethostname()}


def _folder(ticket: str) -> str:
    return "".join(c for c in ticket if c.isalnum() or c == "-") or "untitled"


def _share(report: Report, folder: Path) -> Report:
    """The report with its rebuilt wheel and build log copied into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)

    def copied(path: Path | None) -> Path | None:
        if path is None or not path.is_file():
            return path
        target = folder / path.name
        part = target.with_name(f"{target.name}.part")
        shutil.copyfile(path, part)
        part.replace(target)
        return target

    if report.build is not None:
        build = replace(
            report.build,
            wheel=copied(report.build.wheel) or report.build.wheel,
            log_path=copied(report.build.log_path) or report.build.log_path,
        )
        report = replace(report, build=build)
    if report.failure is not None and report.failure.log_path is not None:
        report = replace(
            report, failure=replace(report.failure, log_path=copied(report.failure.log_path))
        )
    return report


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(f"{path.name}.part")
    part.write_text(text, encoding="utf-8")
    part.replace(path)


def register(app: Any, settings: WorkerSettings) -> None:
    """Define the task on ``app`` (a worker's), bound to this worker's settings."""

    @app.task(name=TASK_NAME, bind=True, acks_late=True, reject_on_worker_lost=True)  # type: ignore[untyped-decorator]
    def verify(self: Any, document: dict[str, Any]) -> dict[str, Any]:
        return run(document, settings, str(self.request.hostname or "worker"))
