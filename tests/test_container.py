"""Tests of the sandbox: each property the build relies on, proved with a real container.

The docker-marked tests need a running engine and the bookworm-py311 image (made on first use,
offline, by debootstrap). After every one of them no container with rebuild's label may remain.
"""

from __future__ import annotations

import _thread
import threading
from pathlib import Path
from typing import Any

import docker.models.containers
import pytest
from conftest import leftover_containers

from rebuild import container
from rebuild.container import SandboxSpec, run_sandboxed
from rebuild.errors import ContainerError
from rebuild.images import ensure_image


@pytest.fixture(scope="module")
def image() -> str:
    return ensure_image("bookworm-py311").tag


def sh(image: str, script: str, **options: Any) -> SandboxSpec:
    return SandboxSpec(image=image, command=("/bin/sh", "-c", script), timeout_s=60, **options)


@pytest.mark.docker
def test_exit_code_and_log_come_back(image: str) -> None:
    seen: list[str] = []
    result = run_sandboxed(
        sh(image, "echo one; echo two; echo to-stderr >&2; printf 'no newline'; exit 3"),
        on_log=seen.append,
    )
    assert result.exit_code == 3
    assert not result.timed_out
    # stdout and stderr are separate pipes: their relative order is not kept, each one's is.
    assert sorted(result.log.splitlines()) == ["no newline", "one", "to-stderr", "two"]
    assert [line for line in seen if line != "to-stderr"] == ["one", "two", "no newline"]
    assert seen == result.log.splitlines()
    assert len(result.container_id) == 64
    assert result.duration > 0


@pytest.mark.docker
def test_network_is_off(image: str) -> None:
    script = (
        "ls /sys/class/net; "
        "python3 -c 'import socket; socket.create_connection((\"1.1.1.1\", 80), timeout=5)'"
    )
    result = run_sandboxed(sh(image, script))
    assert result.exit_code == 1
    lines = result.log.splitlines()
    assert lines[0] == "lo"
    assert "Network is unreachable" in result.log or "OSError" in result.log


@pytest.mark.docker
def test_capabilities_dropped_and_no_new_privileges(image: str) -> None:
    result = run_sandboxed(
        sh(image, "grep -E '^(CapEff|CapPrm|CapBnd|NoNewPrivs)' /proc/self/status")
    )
    fields = dict(line.split(":\t") for line in result.log.splitlines())
    assert fields["CapEff"] == fields["CapPrm"] == fields["CapBnd"] == "0" * 16
    assert fields["NoNewPrivs"] == "1"


@pytest.mark.docker
def test_runs_as_nobody(image: str) -> None:
    result = run_sandboxed(sh(image, "id -u; id -g; echo $HOME; echo $TMPDIR"))
    assert result.log.splitlines() == ["65534", "65534", "/tmp/home", "/tmp"]


@pytest.mark.docker
def test_limits_are_applied(image: str) -> None:
    script = (
        "cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max; "
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null "
        "|| cat /sys/fs/cgroup/memory.max"
    )
    result = run_sandboxed(sh(image, script, memory="256m", pids_limit=64))
    assert result.log.splitlines() == ["64", str(256 * 1024 * 1024)]


@pytest.mark.docker
def test_input_mount_is_read_only(image: str, tmp_path: Path) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    (inputs / "source.txt").write_text("from the host\n")
    result = run_sandboxed(
        sh(
            image,
            "cat /inputs/source.txt; echo changed > /inputs/source.txt; touch /inputs/new",
            read_only_mounts={str(inputs): "/inputs"},
        )
    )
    assert result.exit_code != 0
    assert "from the host" in result.log.splitlines()
    assert result.log.count("Read-only file system") == 2
    assert (inputs / "source.txt").read_text() == "from the host\n"
    assert sorted(p.name for p in inputs.iterdir()) == ["source.txt"]


@pytest.mark.docker
def test_only_the_output_mount_is_writable(image: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    script = (
        "echo built > /out/result.txt && echo out-ok; "
        "for d in / /usr /etc /var/tmp /opt; do "
        "touch $d/probe 2>/dev/null && echo writable $d; done; "
        # The scratch space is writable and allows running what a build puts there.
        "printf '#!/bin/sh\\necho scratch-ok\\n' > /tmp/run.sh && chmod +x /tmp/run.sh "
        "&& /tmp/run.sh; "
        "touch $HOME/.cache && echo home-ok"
    )
    result = run_sandboxed(sh(image, script, output_mount=(str(out), "/out")))
    assert result.log.splitlines() == ["out-ok", "scratch-ok", "home-ok"]
    assert (out / "result.txt").read_text() == "built\n"


@pytest.mark.docker
def test_timeout_kills_the_run(image: str) -> None:
    result = run_sandboxed(
        SandboxSpec(image=image, command=("sh", "-c", "echo begun; sleep 600"), timeout_s=2)
    )
    assert result.timed_out
    assert result.exit_code != 0
    assert 2 <= result.duration < 30
    assert result.log == "begun\n"


@pytest.mark.docker
def test_interrupt_from_on_log_removes_the_container(image: str) -> None:
    def interrupt(line: str) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_sandboxed(sh(image, "echo started; sleep 600"), on_log=interrupt)
    assert leftover_containers() == []


@pytest.mark.docker
def test_interrupt_of_the_main_thread_removes_the_container(image: str) -> None:
    timer = threading.Timer(1.0, _thread.interrupt_main)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            run_sandboxed(sh(image, "sleep 600"))
    finally:
        timer.cancel()
    assert leftover_containers() == []


@pytest.mark.docker
def test_interrupt_while_the_engine_creates_the_container_removes_it(
    image: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ctrl-C after the engine made the container but before its id came back to us.
    collection = docker.models.containers.ContainerCollection
    real_create = collection.create

    def create_then_interrupt(self: object, *args: object, **kwargs: object) -> object:
        real_create(self, *args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(collection, "create", create_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        run_sandboxed(sh(image, "sleep 600"))
    monkeypatch.undo()
    assert leftover_containers() == []


@pytest.mark.docker
def test_keep_leaves_the_container_for_remove_leftovers(
    image: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run_sandboxed(sh(image, "true"), keep=True)
    assert result.container_id in container.leftover_containers()
    # The engine may be shared with other runs: clean up this test's container only.
    monkeypatch.setattr(container, "leftover_containers", lambda: [result.container_id])
    assert container.remove_leftovers() == 1
    monkeypatch.undo()
    assert result.container_id not in container.leftover_containers()


@pytest.mark.docker
def test_log_keeps_the_tail(image: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(container, "LOG_CAP", 1000)
    result = run_sandboxed(sh(image, "seq 1 5000"))
    lines = result.log.splitlines()
    assert lines[0] == "[… earlier output dropped …]"
    assert lines[-1] == "5000"
    assert len(result.log) < 1100


@pytest.mark.docker
def test_unknown_image_is_a_container_error() -> None:
    with pytest.raises(ContainerError, match="not in the local engine"):
        run_sandboxed(SandboxSpec(image="rebuild/no-such-image:0", command=("true",)))


def test_missing_mount_source_is_refused(tmp_path: Path) -> None:
    spec = SandboxSpec(
        image="unused", command=("true",), read_only_mounts={str(tmp_path / "gone"): "/in"}
    )
    with pytest.raises(ContainerError, match="does not exist"):
        run_sandboxed(spec)


def test_no_engine_is_a_container_error_with_a_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    with pytest.raises(ContainerError) as caught:
        container.engine()
    assert str(caught.value) == "no Docker engine answers at unix:///nonexistent/docker.sock"
    assert caught.value.hint is not None
    assert "scripts/ensure-docker.sh" in caught.value.hint
