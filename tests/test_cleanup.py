"""Work directories are removed whatever depth a build wrote into them; containers a killed
run left are removed by the engine when they stop, or swept by the next run."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rebuild import container
from rebuild.cleanup import remove_tree


def deep_tree(root: Path, depth: int) -> None:
    """``depth`` nested directories, made level by level relative to the last (past PATH_MAX)."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir("deeper-directory", dir_fd=fd)
            child = os.open("deeper-directory", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
        leaf = os.open("f", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(leaf, b"x")
        os.close(leaf)
    finally:
        os.close(fd)


def test_a_tree_deeper_than_rmtree_and_path_max_is_removed(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    deep_tree(work, 2_000)  # about 34,000 bytes of path: neither rmtree nor a path reaches it
    with contextlib.suppress(RecursionError):
        shutil.rmtree(work)  # on Python 3.11 it gives up part way, leaving the rest
    remove_tree(work)
    assert not work.exists()


def test_an_ordinary_or_missing_tree(tmp_path: Path) -> None:
    work = tmp_path / "work"
    (work / "a" / "b").mkdir(parents=True)
    (work / "a" / "b" / "f").write_text("x")
    outside = tmp_path / "outside"
    outside.mkdir()
    (work / "link").symlink_to(outside)
    remove_tree(work)
    assert not work.exists()
    assert outside.exists()  # a link is removed, never followed
    remove_tree(work)  # already gone: nothing to do


# --- containers a killed run left behind ---------------------------------------------------------

_RUNNER = """
import sys
from rebuild.container import SandboxSpec, run_sandboxed
spec = SandboxSpec(image=sys.argv[1], command=("/bin/sh", "-c", sys.argv[2]), timeout_s=600)
run_sandboxed(spec, on_log=lambda line: print(line, flush=True))
"""


def _killed_runner(image: str, script: str) -> str:
    """Start a real run in a child process, kill -9 it once its container speaks; its owner."""
    child = subprocess.Popen(
        [sys.executable, "-c", _RUNNER, image, script], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "started"
        owner = container.owner_of(child.pid)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        if child.stdout is not None:
            child.stdout.close()
    return owner


def _containers_of(owner: str) -> list[str]:
    found = container.engine().containers.list(
        all=True, sparse=True, filters={"label": f"{container.OWNER_LABEL}={owner}"}
    )
    return [str(c.id) for c in found]


@pytest.fixture(scope="module")
def image() -> str:
    from rebuild.images import ensure_image

    return ensure_image("bookworm-py311").tag


@pytest.mark.docker
def test_the_engine_removes_a_killed_runs_container_when_it_stops(image: str) -> None:
    owner = _killed_runner(image, "echo started; sleep 3")
    assert len(_containers_of(owner)) == 1  # still running: its process was killed -9
    deadline = time.monotonic() + 30
    while _containers_of(owner) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _containers_of(owner) == []  # auto_remove: the engine removed it when it stopped


@pytest.mark.docker
def test_the_next_run_sweeps_a_killed_runs_running_container(image: str) -> None:
    owner = _killed_runner(image, "echo started; sleep 600")
    (left,) = _containers_of(owner)
    assert left in container.orphaned_containers(owner)
    assert container.sweep_orphans(owner) == 1
    assert _containers_of(owner) == []


@pytest.mark.docker
def test_a_live_runs_containers_are_not_swept(image: str) -> None:
    runner = subprocess.Popen(
        [sys.executable, "-c", _RUNNER, image, "echo started; sleep 600"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert runner.stdout is not None
        assert runner.stdout.readline().strip() == "started"
        owner = container.owner_of(runner.pid)
        assert container.orphaned_containers(owner) == []
        assert container.sweep_orphans(owner) == 0
        assert len(_containers_of(owner)) == 1
    finally:
        runner.send_signal(signal.SIGKILL)
        runner.wait(timeout=30)
        if runner.stdout is not None:
            runner.stdout.close()
    assert container.sweep_orphans(owner) == 1


def test_an_owner_label_is_judged_on_this_host_by_pid_and_start_time() -> None:
    me = container.owner_of(os.getpid())
    assert not container._orphaned(me)
    host, pid, started = me.split(" ")
    assert container._orphaned(f"{host} {pid} {int(started) + 1}")  # the pid was reused
    assert not container._orphaned(f"another-host {pid} {started}")  # not ours to judge
    child = subprocess.Popen(["true"])
    child.wait()
    assert container._orphaned(f"{host} {child.pid} 1")
