"""The executor of a distributed batch: each release one Celery task, followed to its result.

:meth:`CeleryExecutor.map_unordered` prepares each release here (the lock's wheel, the reuse of
a stored verdict, the plan: :meth:`rebuild.batch.Verifier.prepare`), sends what needs a build to
the queue of the image its plan names, and yields each result as it comes back, so that
:func:`rebuild.batch.run_batch` records it and shows the same progress as with a local pool.

Nothing sent twice, nothing lost:

- Each verification sent has a *ticket*, kept in Redis under a key made of the release and its
  plan (``rebuild:ticket:<sha256>``) until its result is recorded. A batch run again (after a
  Ctrl-C, a kill, or beside another) finds the ticket and follows the task already queued,
  running or finished instead of sending another; the store keeps a result once per ticket.
- A release whose queue no worker consumes fails at once, with that reason. A task whose
  workers all stop answering (killed, stopped, cut off) fails after ``worker_timeout_s``; one
  whose worker died while others consume its queue waits for Celery to deliver it again (after
  the visibility timeout), and fails if that does not happen in time.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

from celery import Celery, states
from celery.result import AsyncResult
from kombu.exceptions import ChannelError

from rebuild.batch import BatchEvent, Dispatch, EventKind, Verifier, failed_work, work_from_document
from rebuild.credentials import keep_secret_of, redact
from rebuild.distributed import app as app_module
from rebuild.distributed import tasks
from rebuild.distributed.capabilities import queue_for, unroutable
from rebuild.errors import DistributedError, RebuildError
from rebuild.inputs import PinnedRelease
from rebuild.store import plan_digest

T = TypeVar("T")
R = TypeVar("R")

TICKET_PREFIX = "rebuild:ticket:"
DEFAULT_WORKER_TIMEOUT_S = 60.0
POLL_S = 0.25
PREPARE_JOBS = 4  # releases resolved and planned at once here (network, downloads)


@dataclass(frozen=True)
class WorkerInfo:
    name: str
    queues: tuple[str, ...]


@dataclass
class _Sent:
    release: PinnedRelease
    key: str
    ticket: str
    task_id: str
    queue: str
    task_key: str
    started: bool = False
    worker: str | None = None  # the worker that reported it started
    orphaned_since: float | None = None  # no live worker consumes its queue since
    lost_since: float | None = None  # its worker stopped answering since


@dataclass
class _Liveness:
    """Who answers, refreshed in a thread: each worker's queues and when it last answered."""

    app: Celery
    every_s: float
    answer_s: float
    live: dict[str, tuple[str, ...]] = field(default_factory=dict)
    error: BaseException | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _thread: threading.Thread | None = None

    def ask(self) -> dict[str, tuple[str, ...]]:
        """Celery's own inspection: the queues of every worker that answers in time."""
        with self.app.connection_for_write() as connection:
            inspect = self.app.control.inspect(timeout=self.answer_s, connection=connection)
            answered = inspect.active_queues() or {}
        return {
            str(name): tuple(sorted(str(q["name"]) for q in queues))
            for name, queues in answered.items()
        }

    def refresh(self) -> dict[str, tuple[str, ...]]:
        found = self.ask()
        with self._lock:
            self.live = found
        return found

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="rebuild-liveness", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                self.refresh()
            except app_module.BROKER_FAILURES as e:
                with self._lock:
                    self.error, self.live = e, {}

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.answer_s + 5)

    def snapshot(self) -> dict[str, tuple[str, ...]]:
        with self._lock:
            return dict(self.live)


class CeleryExecutor:
    """Releases verified by ``rebuild worker`` processes that consume from ``broker``."""

    def __init__(
        self,
        broker: str,
        *,
        timeout_s: float,
        worker_timeout_s: float = DEFAULT_WORKER_TIMEOUT_S,
        setup_s: float = app_module.DEFAULT_SETUP_S,
        prepare_jobs: int = PREPARE_JOBS,
    ) -> None:
        if worker_timeout_s <= 0:
            raise DistributedError(f"--worker-timeout must be positive, not {worker_timeout_s}")
        self.shown = keep_secret_of(broker)
        self.app = app_module.make_app(broker, timeout_s=timeout_s, setup_s=setup_s)
        self.timeout_s = timeout_s
        self.worker_timeout_s = worker_timeout_s
        self.setup_s = setup_s
        self.prepare_jobs = prepare_jobs
        self.resumed = 0  # tasks of an earlier run followed, not sent again
        self.sent = 0
        self._liveness = _Liveness(
            self.app,
            every_s=min(5.0, worker_timeout_s / 3),
            answer_s=min(2.0, worker_timeout_s / 3),
        )

    # --- connecting ---------------------------------------------------------------------

    def connect(self) -> list[WorkerInfo]:
        """The workers that answer; DistributedError when the broker or all of them do not."""
        app_module.check_broker(self.app)
        deadline = time.monotonic() + self.worker_timeout_s
        while True:
            try:
                found = self._liveness.refresh()
            except app_module.BROKER_FAILURES as e:
                raise self._broker_lost(e) from e
            if found or time.monotonic() >= deadline:
                break
        if not found:
            raise DistributedError(
                f"no worker answered on {self.shown} within {self.worker_timeout_s:.0f} s",
                hint="start one on each build machine: `rebuild worker --broker URL` (with a "
                "Docker engine and the build images); a stopped or cut-off worker does not "
                "answer either",
            )
        return [WorkerInfo(name, queues) for name, queues in sorted(found.items())]

    def _broker_lost(self, e: BaseException) -> DistributedError:
        return DistributedError(
            f"lost the broker {self.shown}: {redact(str(e))}",
            hint="run the batch again once it answers: what was sent is followed, not sent again",
        )

    def close(self) -> None:
        self._liveness.stop()
        app_module.close(self.app)

    # --- the executor -------------------------------------------------------------------

    def map_unordered(self, work: Callable[[T], R], items: Sequence[T]) -> Iterator[tuple[T, R]]:
        if not isinstance(work, Verifier):
            raise RebuildError("a distributed batch runs a batch's verifier only (internal)")
        verifier = work
        if not self._liveness.snapshot():
            self.connect()
        self._liveness.start()
        pool = ThreadPoolExecutor(self.prepare_jobs, thread_name_prefix="rebuild-prepare")
        preparing: dict[Future[Any], PinnedRelease] = {
            pool.submit(verifier.prepare, cast(PinnedRelease, item), plan=True): cast(
                PinnedRelease, item
            )
            for item in items
        }
        sent: dict[str, _Sent] = {}
        try:
            while preparing or sent:
                if preparing:
                    done, _ = wait(preparing, timeout=POLL_S, return_when=FIRST_COMPLETED)
                else:
                    done = set()
                    time.sleep(POLL_S)
                for future in done:
                    pinned = preparing.pop(future)
                    prepared = future.result()
                    if isinstance(prepared, Dispatch):
                        prepared = self._send(verifier, pinned, prepared)
                    if isinstance(prepared, _Sent):
                        sent[prepared.task_id] = prepared
                        continue
                    verifier.on_event(BatchEvent(EventKind.STARTED, pinned))
                    yield cast(T, pinned), cast(R, prepared)
                for task_id, item in list(sent.items()):
                    finished = self._follow(verifier, item)
                    if finished is None:
                        continue
                    del sent[task_id]
                    # The ticket is spent before the result is recorded: a run killed between
                    # the two sends the release again (once more built, still stored once),
                    # and a ticket never outlives the result it named.
                    self._spend(item)
                    yield cast(T, item.release), cast(R, finished)
                    self._forget(item)  # recorded (the caller asked for the next one)
        finally:
            # Ctrl-C or an error: what was sent stays queued; the next run follows it.
            pool.shutdown(wait=False, cancel_futures=True)
            self._liveness.stop()

    # --- sending ------------------------------------------------------------------------

    @property
    def _redis(self) -> Any:
        return self.app.backend.client

    def _send(self, verifier: Verifier, pinned: PinnedRelease, dispatch: Dispatch) -> Any:
        """The task following ``pinned`` (sent now, or found from an earlier run), or the
        failed work of a release nobody can build."""
        if dispatch.plan is None:  # prepare(plan=True) always plans
            raise RebuildError("a release to send has no plan (internal)")
        queue = queue_for(dispatch.plan)
        live = {q for queues in self._liveness.snapshot().values() for q in queues}
        why = unroutable(queue, live, str(pinned.target))
        if why is not None:
            return failed_work(pinned, why)
        document = tasks.payload(pinned, dispatch, timeout_s=verifier.options.timeout_s)
        digest = plan_digest(dispatch.plan)
        key = (
            TICKET_PREFIX
            + hashlib.sha256(
                json.dumps({"task": document, "plan": digest}, sort_keys=True).encode()
            ).hexdigest()
        )
        try:
            known = self._redis.get(key)
            if known is not None:
                ticket = json.loads(known)
                if not self._lost(ticket["task"], ticket["queue"]):
                    self.resumed += 1
                    return self._sent(pinned, key, ticket, digest)
                # Sent, and neither queued, held by a worker nor finished: send it again,
                # under the same ticket (stored once, whichever copy returns).
                ticket = {**ticket, "task": uuid.uuid4().hex, "queue": queue}
                self._redis.set(key, json.dumps(ticket), ex=app_module.RESULT_TTL_S)
            else:
                ticket = {"ticket": uuid.uuid4().hex, "task": uuid.uuid4().hex, "queue": queue}
                if not self._redis.set(
                    key, json.dumps(ticket), nx=True, ex=app_module.RESULT_TTL_S
                ):
                    # Another coordinator sent it a moment ago: follow its task.
                    self.resumed += 1
                    return self._sent(pinned, key, json.loads(self._redis.get(key)), digest)
            self.app.send_task(
                app_module.TASK_NAME,
                kwargs={"document": {**document, "ticket": ticket["ticket"]}},
                queue=queue,
                task_id=ticket["task"],
            )
        except app_module.BROKER_FAILURES as e:
            raise self._broker_lost(e) from e
        self.sent += 1
        return self._sent(pinned, key, ticket, digest)

    def _sent(self, pinned: PinnedRelease, key: str, ticket: dict[str, str], digest: str) -> _Sent:
        release = f"{pinned.target.project}=={pinned.target.version}"
        task_key = f"{release} plan {digest} ticket {ticket['ticket']}"
        return _Sent(pinned, key, ticket["ticket"], ticket["task"], ticket["queue"], task_key)

    def _lost(self, task_id: str, queue: str) -> bool:
        """A task an earlier run sent that is nowhere: not finished, not started, its queue
        empty, and no worker holding it."""
        if AsyncResult(task_id, app=self.app).state != states.PENDING:
            return False
        with self.app.connection_for_write() as connection:
            try:
                declared = connection.default_channel.queue_declare(queue=queue, passive=True)
            except ChannelError:
                pass  # Redis keeps no empty list: a queue with nothing in it is not found
            else:
                if declared.message_count:
                    return False
            inspect = self.app.control.inspect(
                timeout=self._liveness.answer_s, connection=connection
            )
            held = [*(inspect.active() or {}).values(), *(inspect.reserved() or {}).values()]
        return not any(t.get("id") == task_id for tasks_of in held for t in tasks_of)

    def _spend(self, item: _Sent) -> None:
        try:
            known = self._redis.get(item.key)
            if known is not None and json.loads(known).get("ticket") == item.ticket:
                self._redis.delete(item.key)
        except app_module.BROKER_FAILURES as e:
            raise self._broker_lost(e) from e

    def _forget(self, item: _Sent) -> None:
        try:
            AsyncResult(item.task_id, app=self.app).forget()
        except app_module.BROKER_FAILURES as e:
            raise self._broker_lost(e) from e

    # --- following ----------------------------------------------------------------------

    def _follow(self, verifier: Verifier, item: _Sent) -> Any:
        """The task's work once it has finished (or cannot finish), else None."""
        result = AsyncResult(item.task_id, app=self.app)
        try:
            state = result.state
            info = result.info if state in (states.STARTED, *states.READY_STATES) else None
        except app_module.BROKER_FAILURES as e:
            raise self._broker_lost(e) from e
        if state == states.STARTED and isinstance(info, dict):
            worker = str(info.get("hostname") or "")
            if worker and worker != item.worker:
                item.worker, item.lost_since = worker, None
        if state in (states.STARTED, *states.READY_STATES) and not item.started:
            item.started = True
            verifier.on_event(BatchEvent(EventKind.STARTED, item.release))
        if state == states.SUCCESS:
            return self._work(item, info)
        if state in states.READY_STATES:  # failed or revoked on the worker
            error = DistributedError(
                f"{item.release.target}: the task failed on {item.worker or 'a worker'}: "
                f"{redact(_describe(info))}",
                hint="the worker's log says more",
            )
            return failed_work(item.release, error)
        return self._overdue(item)

    def _work(self, item: _Sent, document: Any) -> Any:
        try:
            if not isinstance(document, dict):
                raise ValueError("not a result document")
            if document.get("report") is None and document.get("report_file"):
                path = Path(str(document["report_file"]))
                document = {**document, "report": json.loads(path.read_text(encoding="utf-8"))}
            return work_from_document(document, task_key=item.task_key)
        except OSError as e:
            error = DistributedError(
                f"{item.release.target}: its report is at {document.get('report_file')} on the "
                f"worker's shared directory, which cannot be read here: {e}",
                hint="mount the workers' --artifacts directory at the same path here",
            )
        except (KeyError, TypeError, ValueError) as e:
            error = DistributedError(
                f"{item.release.target}: the worker returned a result this rebuild cannot "
                f"read ({redact(str(e))})",
                hint="run the same rebuild version on the coordinator and the workers",
            )
        return failed_work(item.release, error)

    def _overdue(self, item: _Sent) -> Any:
        """The failure of a task that can no longer finish in time, else None (wait on)."""
        now = time.monotonic()
        live = self._liveness.snapshot()
        if any(item.queue in queues for queues in live.values()):
            item.orphaned_since = None
        elif item.orphaned_since is None:
            item.orphaned_since = now
        if item.worker is not None and item.worker not in live:
            item.lost_since = item.lost_since or now
        elif item.worker is not None:
            item.lost_since = None
        target = item.release.target
        if item.orphaned_since is not None and now - item.orphaned_since > self.worker_timeout_s:
            self._revoke(item)
            running = f" ({item.worker}, which took it, stopped answering)" if item.worker else ""
            return failed_work(
                item.release,
                DistributedError(
                    f"{target}: no worker that can build it has answered for "
                    f"{self.worker_timeout_s:.0f} s{running}",
                    hint="start a worker for its queue "
                    f"({item.queue}), or wake the one that stopped; then run the batch again",
                ),
            )
        redelivery = app_module.visibility_timeout(self.timeout_s, self.setup_s)
        limit = redelivery + app_module.task_time_limit(self.timeout_s, self.setup_s)
        if item.lost_since is not None and now - item.lost_since > limit + self.worker_timeout_s:
            self._revoke(item)
            return failed_work(
                item.release,
                DistributedError(
                    f"{target}: its worker {item.worker} stopped answering mid-build and the "
                    f"task did not come back within {limit:.0f} s",
                    hint="run the batch again: the release is sent anew",
                ),
            )
        return None

    def _revoke(self, item: _Sent) -> None:
        try:
            self.app.control.revoke(item.task_id)
            self._redis.delete(item.key)
        except app_module.BROKER_FAILURES as e:
            raise self._broker_lost(e) from e


def _describe(info: Any) -> str:
    if isinstance(info, BaseException):
        return f"{type(info).__name__}: {info}"
    return str(info)
