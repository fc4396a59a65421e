"""A batch over Celery workers: a real redis-server on 127.0.0.1, real `rebuild worker`
processes, real small releases; workers and the coordinator killed, stopped and resumed.

The redis-server is Debian's (scripts/test installs it), started by each test on a free port
with a password and a temporary directory: never a system service.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import leftover_containers

from rebuild import __version__
from rebuild.batch import Dispatch, failed_work
from rebuild.credentials import keep_secret_of, redact
from rebuild.errors import DistributedError, UsageError
from rebuild.inputs import PinnedRelease
from rebuild.models import Plan, Target, WheelSelector
from rebuild.store import Store

PASSWORD = "s3cret-Broker-pw"  # noqa: S105 - the test broker's own, on 127.0.0.1
RELEASES = ("idna==3.7", "six==1.16.0", "attrs==23.2.0", "click==8.1.7")
# Short limits, so that a killed worker's task comes back within the test: build 20 s, set-up
# 20 s, hence a visibility timeout of 71 s.
LIMITS = ("--timeout", "20")
WORKER_LIMITS = ("--timeout", "20", "--setup-timeout", "20")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Redis:
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://:{PASSWORD}@127.0.0.1:{self.port}/0"

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            ["redis-cli", "-p", str(self.port), "--no-auth-warning", "-a", PASSWORD, *args],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        )
        return done.stdout


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[Redis]:
    server = shutil.which("redis-server")
    if server is None:
        pytest.fail("redis-server is missing: scripts/test installs Debian's redis-server")
    port = free_port()
    data = tmp_path / "redis"
    data.mkdir()
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--requirepass", PASSWORD,
         "--save", "", "--appendonly", "no", "--dir", str(data)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    found = Redis(port, process)
    deadline = time.monotonic() + 20
    while True:
        with contextlib.suppress(subprocess.CalledProcessError):
            if "PONG" in found.cli("ping"):
                break
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            pytest.fail("redis-server did not start")
        time.sleep(0.1)
    try:
        yield found
    finally:
        process.terminate()
        process.wait(timeout=20)


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def pids(self) -> set[int]:
        """The worker's processes: its main process and its pool's."""
        listed = subprocess.run(
            ["ps", "-o", "pid=", "-g", str(self.process.pid)], capture_output=True, text=True
        )
        return {int(p) for p in listed.stdout.split()}

    def signal(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)


def _rebuild(*args: str) -> list[str]:
    return [sys.executable, "-m", "rebuild", *args]


StartWorker = Callable[..., Worker]


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[StartWorker]:
    """Start workers with ``start(broker, *args)``; each is killed at the end, stopped or not,
    and the containers of this session it may have left are waited for, then removed."""
    started: list[Worker] = []

    def start(broker: str, *args: str, cache: Path | None = None) -> Worker:
        log = tmp_path / f"worker-{len(started)}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                _rebuild("worker", "--broker", broker, *args,
                         "--cache-dir", str(cache or tmp_path / "worker-cache")),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: the pool dies with it
            )  # fmt: skip
        worker = Worker(process, log)
        started.append(worker)
        deadline = time.monotonic() + 90
        while " ready." not in worker.text():
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the worker did not start:\n{worker.text()[-3000:]}")
            time.sleep(0.2)
        return worker

    try:
        yield start
    finally:
        for worker in started:
            # A stopped worker must run again to die of anything but SIGKILL; SIGKILL it is.
            worker.signal(signal.SIGKILL)
            worker.process.wait(timeout=30)
        # A killed worker's build container goes on its own (auto_remove, bounded by the
        # build); waited for, then removed, so that one stuck test does not fail the next.
        deadline = time.monotonic() + 60
        while leftover_containers() and time.monotonic() < deadline:
            time.sleep(0.5)
        for container in leftover_containers():
            subprocess.run(["docker", "rm", "-f", container], capture_output=True, check=False)


def deps_file(tmp_path: Path, releases: tuple[str, ...] = RELEASES) -> Path:
    path = tmp_path / "deps.txt"
    path.write_text("\n".join(releases) + "\n")
    return path


def batch_argv(
    tmp_path: Path, broker: str, *extra: str, releases: tuple[str, ...] = RELEASES
) -> list[str]:
    return _rebuild(
        "batch", str(deps_file(tmp_path, releases)), "--broker", broker, "--store",
        str(tmp_path / "results.sqlite"), "--cache-dir", str(tmp_path / "coordinator-cache"),
        "--json", str(tmp_path / "summary.json"), *LIMITS, *extra,
    )  # fmt: skip


def wait_until(condition: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


def containers_gone(timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while leftover_containers():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def results_per_release(store_path: Path) -> dict[str, int]:
    with Store(store_path) as store:
        return {spec: len(store.history(Target.parse(spec).project)) for spec in RELEASES}


def received(*workers: Worker) -> list[str]:
    """The task ids the workers were given, one per delivery."""
    return [
        line.split("[", 2)[2].split("]", 1)[0]
        for w in workers
        for line in w.text().splitlines()
        if "Task rebuild.verify[" in line and line.rstrip().endswith("received")
    ]


# --- the whole thing, with real workers ----------------------------------------------------


@pytest.mark.docker
@pytest.mark.network
def test_a_worker_killed_mid_build_loses_nothing_and_doubles_nothing(
    tmp_path: Path, redis: Redis, workers: StartWorker
) -> None:
    one = workers(redis.url, "--concurrency", "1", *WORKER_LIMITS)
    two = workers(redis.url, "--concurrency", "1", *WORKER_LIMITS)
    batch = subprocess.Popen(
        batch_argv(tmp_path, redis.url), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )

    def one_is_building() -> bool:
        pids = one.pids()
        for container in leftover_containers():
            owner = subprocess.run(
                ["docker", "inspect", "-f", '{{index .Config.Labels "org.rebuild.owner"}}',
                 container], capture_output=True, text=True, check=False,
            ).stdout.split()  # fmt: skip
            if len(owner) > 1 and owner[1].isdigit() and int(owner[1]) in pids:
                return True
        return batch.poll() is not None

    wait_until(one_is_building, 180, "the first worker to start a build")
    assert batch.poll() is None, batch.communicate()
    one.signal(signal.SIGKILL)  # the worker and its pool, in the middle of the build
    one.process.wait(timeout=30)
    out, err = batch.communicate(timeout=400)
    assert batch.returncode == 0, err[-4000:]
    # Every release recorded exactly once, none failed: the killed worker's task came back.
    assert results_per_release(tmp_path / "results.sqlite") == dict.fromkeys(RELEASES, 1)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert {r["verdict"] for r in summary["releases"]} <= {"reproducible", "equivalent"}
    assert summary["run"]["checked"] == len(RELEASES)
    # One task was delivered twice (to the killed worker, then again), the others once.
    deliveries = received(one, two)
    assert len(set(deliveries)) == len(RELEASES)
    assert len(deliveries) == len(RELEASES) + 1
    # Nothing left behind: no container (the killed one's removed itself), no ticket.
    assert containers_gone(), "a container of the killed worker was left behind"
    assert redis.cli("--scan", "--pattern", "rebuild:ticket:*").split() == []
    # The broker's password is never shown.
    for text in (out, err, one.text(), two.text()):
        assert PASSWORD not in text
    assert "redis://****@127.0.0.1" in err


@pytest.mark.docker
@pytest.mark.network
def test_a_killed_coordinator_resumes_without_sending_anything_twice(
    tmp_path: Path, redis: Redis, workers: StartWorker
) -> None:
    worker = workers(redis.url, "--concurrency", "1", *WORKER_LIMITS)
    first = subprocess.Popen(
        batch_argv(tmp_path, redis.url), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert first.stderr is not None
    # Killed as soon as one release is recorded: the others are queued or building.
    for line in first.stderr:
        if any(line.startswith(f"· {spec}:") for spec in RELEASES):
            break
    first.kill()
    first.wait(timeout=30)
    for pipe in (first.stdout, first.stderr):
        assert pipe is not None
        pipe.close()
    with Store(tmp_path / "results.sqlite") as store:
        recorded = store.count("results")
    assert 1 <= recorded < len(RELEASES)
    again = subprocess.run(
        batch_argv(tmp_path, redis.url), capture_output=True, text=True, timeout=400
    )
    assert again.returncode == 0, again.stderr[-4000:]
    assert "was killed before it finished" in again.stderr
    assert "not sent again" in again.stderr
    # Each release sent once over both runs, recorded once; nothing left in Redis or the engine.
    assert len(received(worker)) == len(RELEASES)
    assert results_per_release(tmp_path / "results.sqlite") == dict.fromkeys(RELEASES, 1)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["run"]["reused"] == recorded
    assert redis.cli("--scan", "--pattern", "rebuild:ticket:*").split() == []
    assert containers_gone()
    # A third run sends nothing: every verdict is in the store.
    third = subprocess.run(
        batch_argv(tmp_path, redis.url), capture_output=True, text=True, timeout=200
    )
    assert third.returncode == 0, third.stderr[-3000:]
    assert len(received(worker)) == len(RELEASES)
    assert json.loads((tmp_path / "summary.json").read_text())["run"]["reused"] == len(RELEASES)


@pytest.mark.docker
@pytest.mark.network
def test_a_worker_that_stops_answering_fails_its_release_instead_of_a_wait(
    tmp_path: Path, redis: Redis, workers: StartWorker
) -> None:
    worker = workers(redis.url, "--concurrency", "1", *WORKER_LIMITS)
    argv = batch_argv(tmp_path, redis.url, "--worker-timeout", "10", releases=("six==1.16.0",))
    batch = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_until(lambda: received(worker), 180, "the worker to take the task")
    (task,) = received(worker)
    wait_until(
        lambda: "STARTED" in redis.cli("get", f"celery-task-meta-{task}"), 60, "the task to start"
    )
    worker.signal(signal.SIGSTOP)  # alive, but neither building nor answering
    started = time.monotonic()
    _, err = batch.communicate(timeout=120)
    assert time.monotonic() - started < 90
    assert batch.returncode == 0, err[-3000:]  # a failed release alone does not fail the gate
    (entry,) = json.loads((tmp_path / "summary.json").read_text())["releases"]
    assert entry["verdict"] == "failed"
    assert "no worker that can build it has answered for 10 s" in entry["failure"]["message"]
    assert "stopped answering" in entry["failure"]["message"]


@pytest.mark.docker
@pytest.mark.network
def test_a_release_no_worker_can_build_fails_with_that_reason(
    tmp_path: Path, redis: Redis, workers: StartWorker
) -> None:
    worker = workers(redis.url, "--image", "bullseye-py39", *WORKER_LIMITS)
    argv = batch_argv(tmp_path, redis.url, releases=("six==1.16.0",))
    done = subprocess.run(argv, capture_output=True, text=True, timeout=200)
    assert done.returncode == 0, done.stderr[-3000:]
    (entry,) = json.loads((tmp_path / "summary.json").read_text())["releases"]
    assert entry["verdict"] == "failed"
    message = entry["failure"]["message"]
    assert "no worker can build six==1.16.0: it needs the image bookworm-py311" in message
    assert "rebuild.any.cp39.bullseye-py39" in message  # what the workers do consume
    assert received(worker) == []


@pytest.mark.docker
def test_a_worker_without_the_image_it_is_told_to_use_refuses_to_start(redis: Redis) -> None:
    done = subprocess.run(
        _rebuild("worker", "--broker", redis.url, "--image", "no-such-image"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == DistributedError.exit_code
    assert "no build image is called no-such-image" in done.stderr


# --- failures that need no build -----------------------------------------------------------


def test_a_worker_without_docker_refuses_to_start_with_a_clear_message(tmp_path: Path) -> None:
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"}
    started = time.monotonic()
    done = subprocess.run(
        _rebuild("worker", "--broker", f"redis://:{PASSWORD}@127.0.0.1:{free_port()}/0"),
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert time.monotonic() - started < 30
    assert done.returncode == DistributedError.exit_code
    assert "this machine cannot be a worker: no Docker engine answers" in done.stderr
    assert "hint: a worker builds in containers" in done.stderr
    assert PASSWORD not in done.stdout + done.stderr


def test_an_unreachable_broker_is_a_clear_error_within_seconds(tmp_path: Path) -> None:
    started = time.monotonic()
    done = subprocess.run(
        _rebuild("batch", str(deps_file(tmp_path)), "--broker",
                 f"redis://:{PASSWORD}@127.0.0.1:{free_port()}/0",
                 "--store", str(tmp_path / "s.sqlite")),
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert time.monotonic() - started < 30
    assert done.returncode == DistributedError.exit_code, done.stderr
    assert "error (distributed): the broker redis://****@127.0.0.1:" in done.stderr
    assert "does not answer" in done.stderr
    assert "hint: is redis-server running there" in done.stderr
    assert PASSWORD not in done.stdout + done.stderr


def test_a_wrong_password_and_no_worker_are_clear_errors(redis: Redis) -> None:
    from rebuild.distributed.coordinator import CeleryExecutor

    wrong = CeleryExecutor(redis.url.replace(PASSWORD, "not-it"), timeout_s=20)
    with pytest.raises(DistributedError, match="refused the credentials") as refused:
        wrong.connect()
    assert "not-it" not in redact(str(refused.value))
    wrong.close()
    nobody = CeleryExecutor(redis.url, timeout_s=20, worker_timeout_s=3)
    started = time.monotonic()
    with pytest.raises(DistributedError, match="no worker answered on redis://\\*\\*\\*\\*@") as e:
        nobody.connect()
    assert time.monotonic() - started < 15
    assert e.value.hint is not None and "rebuild worker --broker" in e.value.hint
    nobody.close()


def test_a_ticket_whose_task_is_nowhere_is_lost_and_one_queued_is_not(redis: Redis) -> None:
    """What a run resuming another's tickets decides: follow the task, or send it again."""
    import uuid

    from rebuild.distributed.coordinator import CeleryExecutor

    executor = CeleryExecutor(redis.url, timeout_s=20, worker_timeout_s=3)
    queue = "rebuild.any.cp311.bookworm-py311"
    try:
        assert executor._lost(uuid.uuid4().hex, queue)  # never sent, its queue empty
        queued = uuid.uuid4().hex
        executor.app.send_task(
            "rebuild.verify", kwargs={"document": {}}, queue=queue, task_id=queued
        )
        assert not executor._lost(queued, queue)  # waiting in its queue for a worker
    finally:
        executor.close()


def test_broker_credentials_are_never_shown() -> None:
    assert keep_secret_of("redis://:pw-one-123@host:6379/0") == "redis://****@host:6379/0"
    assert keep_secret_of("rediss://default:pw-two-456@host/1") == "rediss://****@host/1"
    assert keep_secret_of("redis://tok3n-only@host/0") == "redis://****@host/0"
    assert keep_secret_of("redis://host:6379/0") == "redis://host:6379/0"
    # Registered: a library's message quoting them in another form is redacted too.
    text = redact("Error 111 connecting (password pw-one-123, token tok3n-only, pw-two-456)")
    assert "pw-one-123" not in text and "tok3n-only" not in text and "pw-two-456" not in text
    # A user name is no secret: the word stays readable elsewhere.
    assert "default" in redact("the default queue")


def test_a_broker_that_is_not_redis_is_a_clear_error() -> None:
    from rebuild.distributed.app import make_app

    with pytest.raises(DistributedError, match="is not a Redis URL"):
        make_app("amqp://guest:hunter22@host//", timeout_s=10)


def test_the_visibility_timeout_exceeds_the_longest_task() -> None:
    from rebuild.distributed.app import make_app, task_time_limit, visibility_timeout

    for timeout, setup in ((20, 20), (1800, 600), (4 * 3600, 600)):
        assert visibility_timeout(timeout, setup) > task_time_limit(timeout, setup)
    app = make_app("redis://127.0.0.1:1/0", timeout_s=1800, setup_s=600)
    assert app.conf.task_acks_late and app.conf.task_reject_on_worker_lost
    assert app.conf.worker_prefetch_multiplier == 1
    assert app.conf.accept_content == ["json"] and app.conf.task_serializer == "json"
    assert app.conf.broker_transport_options["visibility_timeout"] > app.conf.task_time_limit


def test_rebuild_help_does_not_import_celery() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import sys, rebuild.cli; print('celery' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "False"


def test_each_release_goes_to_the_queue_of_its_image() -> None:
    from rebuild.distributed.capabilities import Capabilities, queue_for, unroutable, wheel_arch

    assert wheel_arch(("py3-none-any",)) == "any"
    assert wheel_arch(("cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64",)) == "x86_64"
    assert wheel_arch(("cp311-cp311-macosx_11_0_arm64",)) == "aarch64"
    plan = Plan(
        image="bullseye-py311-numeric", python="3.11",
        wheel_tags=("cp311-cp311-manylinux_2_17_x86_64",), pure=False, generator=None,
        backend=None, backend_pins=(), exclude_newer=None, source_date_epoch=None, umask=None,
    )  # fmt: skip
    assert queue_for(plan) == "rebuild.x86_64.cp311.bullseye-py311-numeric"
    can = Capabilities("x86_64", (("bookworm-py311", "3.11"), ("bullseye-py39", "3.9")))
    assert can.pythons == ("3.9", "3.11")
    assert "rebuild.any.cp39.bullseye-py39" in can.queues
    assert unroutable("rebuild.any.cp311.bookworm-py311", can.queues, "six==1.16.0") is None
    why = unroutable(queue_for(plan), can.queues, "numpy==1.26.4")
    assert why is not None and "needs the image bullseye-py311-numeric (Python 3.11" in why.message


# --- the task, without a build -------------------------------------------------------------


PINNED = PinnedRelease(Target.parse("six==1.16.0"), origin="deps.txt:1")


def test_a_result_too_large_is_a_clear_failure_or_goes_to_the_shared_directory(
    tmp_path: Path,
) -> None:
    from rebuild.distributed import tasks
    from rebuild.distributed.coordinator import CeleryExecutor, _Sent

    big = failed_work(PINNED, DistributedError("x" * 5000))
    small = tasks.WorkerSettings(timeout_s=60, max_result_bytes=4000)
    result = tasks.finish(big, PINNED, small, ticket="t1", worker="w@host")
    failure = result["report"]["failure"]
    assert failure["stage"] == "distributed"
    assert "the report is" in failure["message"] and "over the 4,000" in failure["message"]
    assert "--artifacts" in failure["hint"]
    # With a shared directory, the report goes there and the coordinator reads it from there.
    shared = tasks.WorkerSettings(timeout_s=60, max_result_bytes=4000, artifacts=tmp_path)
    result = tasks.finish(big, PINNED, shared, ticket="t2", worker="w@host")
    assert result["report"] is None and Path(result["report_file"]).parent == tmp_path / "t2"
    executor = CeleryExecutor("redis://127.0.0.1:1/0", timeout_s=60)
    item = _Sent(PINNED, "key", "t2", "task", "queue", "six==1.16.0 plan p ticket t2")
    work = executor._work(item, json.loads(json.dumps(result)))
    assert work.report is not None and work.report.failure is not None
    assert work.report.failure.message == "x" * 5000 and work.task_key == item.task_key
    # A report file the coordinator cannot see: said so.
    Path(result["report_file"]).unlink()
    lost = executor._work(item, result)
    assert lost.report is not None and lost.report.failure is not None
    assert "cannot be read here" in lost.report.failure.message


def test_a_task_asking_for_a_longer_build_than_the_worker_runs_fails_at_once() -> None:
    from rebuild.distributed import tasks

    document = tasks.payload(
        PINNED, Dispatch("https://pypi.org/simple/", (), WheelSelector()), timeout_s=3600
    )
    result = tasks.run({**document, "ticket": "t"}, tasks.WorkerSettings(timeout_s=60), "w@h")
    failure = result["report"]["failure"]
    assert "asks for builds of up to 3600 s" in failure["message"]
    assert "at most 60 s" in failure["message"]
    with pytest.raises(DistributedError, match="cannot read"):
        tasks.run({"schema_version": 99}, tasks.WorkerSettings(timeout_s=60), "w@h")
    assert document["tool_version"] == __version__


def test_a_payload_reads_back_as_what_was_sent() -> None:
    from rebuild.distributed import tasks

    pinned = PinnedRelease(
        Target.parse("six==1.16.0"), "deps.txt:3", frozenset({"a" * 64}),
        "https://index.example/simple/", ("https://other.example/simple/",), ("extra",),
    )  # fmt: skip
    dispatch = Dispatch(
        "https://index.example/simple/", ("https://other.example/simple/",),
        WheelSelector(python="3.11", filename="six-1.16.0-py2.py3-none-any.whl"),
    )  # fmt: skip
    document = json.loads(json.dumps(tasks.payload(pinned, dispatch, timeout_s=120)))
    assert tasks.read_payload(document) == (pinned, dispatch, 120.0)


def test_a_bad_worker_option_is_a_usage_error() -> None:
    done = subprocess.run(
        _rebuild("worker", "--broker", "redis://127.0.0.1:1/0", "--max-result-mb", "0"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == UsageError.exit_code
    assert "--max-result-mb must be positive" in done.stderr
