"""The build sandbox, each property proved by a malicious sdist through the real `check`.

Every test publishes the demo project on a local index with an sdist whose backend attacks
the sandbox (see :mod:`hostile.sdists`); the check must end ``failed`` at the build stage,
the probe's report in the log must say the sandbox held, and no container may remain.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

import pytest
from conftest import ServeRelease, leftover_containers
from helpers_index import LocalServer
from sdists import build_published_wheel

from rebuild.build import DEPS_MOUNT, OUT_MOUNT, SCRIPT_MOUNT, SOURCE_MOUNT, UV_MOUNT
from rebuild.models import BuildLimits, Report, Target, Verdict, WheelSelector
from rebuild.pipeline import CheckOptions, check

from .sdists import FAILED_ON_PURPOSE, make_hostile_sdist

pytestmark = pytest.mark.docker
DEMO = Target("demo", "1.0")
# Short limits: each attack must end quickly, and the run must stay bounded if it does not.
LIMITS = BuildLimits(timeout_s=120, memory="512m", pids=128)


def run_probe(
    tmp_path: Path,
    local_index: tuple[LocalServer, ServeRelease],
    probe: str,
    *,
    limits: BuildLimits = LIMITS,
    **values: object,
) -> Report:
    published = build_published_wheel(tmp_path / "published")
    sdist = make_hostile_sdist(tmp_path / "sdist" / "demo-1.0.tar.gz", probe, **values)
    url = local_index[1]("demo", published, sdist)
    options = CheckOptions(index_url=url, cache_dir=tmp_path / "cache", limits=limits)
    report = check(DEMO, WheelSelector(python="3.11"), options)
    assert leftover_containers() == [], "the build container was left behind"
    assert report.verdict is Verdict.FAILED
    assert report.failure is not None
    assert (report.failure.stage, report.exit_code) == ("build", 7), report.failure
    return report


def full_log(report: Report) -> str:
    assert report.failure is not None and report.failure.log_path is not None
    return report.failure.log_path.read_text()


def assert_held(report: Report, probe: str) -> str:
    log = full_log(report)
    assert f"PROBE {probe}: HELD" in log, log[-3000:]
    assert "BROKEN" not in log
    assert FAILED_ON_PURPOSE in log
    return log


def test_no_network(tmp_path: Path, local_index: tuple[LocalServer, ServeRelease]) -> None:
    report = run_probe(tmp_path, local_index, "network")
    log = assert_held(report, "network")
    assert "interfaces: lo" in log
    assert "connect 1.1.1.1:53: refused" in log


def test_no_capabilities(tmp_path: Path, local_index: tuple[LocalServer, ServeRelease]) -> None:
    log = assert_held(run_probe(tmp_path, local_index, "capabilities"), "capabilities")
    assert "CapEff = 0x0" in log
    assert "chown a file to root: refused" in log


def test_not_root_inside(tmp_path: Path, local_index: tuple[LocalServer, ServeRelease]) -> None:
    log = assert_held(run_probe(tmp_path, local_index, "user"), "user")
    assert "uid=65534 euid=65534" in log


def test_inputs_are_read_only(
    tmp_path: Path, local_index: tuple[LocalServer, ServeRelease]
) -> None:
    log = assert_held(run_probe(tmp_path, local_index, "readonly"), "read-only")
    assert "write a new file in the source mount (/inputs/source/pwned): refused" in log
    assert "write a new file in /deps (/deps/pwned.whl): refused" in log


def test_no_host_paths_beyond_inputs_and_output(
    tmp_path: Path,
    local_index: tuple[LocalServer, ServeRelease],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    canary = tmp_path / "host-canary"
    canary.write_text("a host file the build must not see\n")
    monkeypatch.setenv("REBUILD_HOSTILE_SECRET_TOKEN", "host credential")
    report = run_probe(
        tmp_path,
        local_index,
        "host_paths",
        canary=str(canary),
        host_name=socket.gethostname(),
    )
    log = assert_held(report, "host-paths")
    line = next(x for x in log.splitlines() if x.startswith("MOUNTS "))
    mounts = set(json.loads(line.removeprefix("MOUNTS ")))
    inputs = {
        SOURCE_MOUNT,
        DEPS_MOUNT,
        SCRIPT_MOUNT,
        "/inputs/constraints.txt",
        UV_MOUNT,
        OUT_MOUNT,
    }
    # What the engine itself provides: the image's root, kernel filesystems, scratch tmpfs, and
    # the container's own name and resolver files (written by the engine, not the host's).
    engine = {"/", "/tmp", "/tmp/home", "/etc/hostname", "/etc/hosts", "/etc/resolv.conf"}
    kernel = {m for m in mounts if m.split("/")[1] in ("proc", "dev", "sys")}
    assert mounts - kernel - engine == inputs, sorted(mounts - kernel - engine - inputs)


def test_a_fork_bomb_ends(tmp_path: Path, local_index: tuple[LocalServer, ServeRelease]) -> None:
    started = time.monotonic()
    report = run_probe(tmp_path, local_index, "fork_bomb", pids=LIMITS.pids)
    log = assert_held(report, "pids")
    forked = int(next(x for x in log.splitlines() if x.startswith("FORKED ")).split()[1])
    assert 0 < forked < LIMITS.pids
    assert time.monotonic() - started < LIMITS.timeout_s


def test_an_allocation_bomb_ends(
    tmp_path: Path, local_index: tuple[LocalServer, ServeRelease]
) -> None:
    report = run_probe(tmp_path, local_index, "memory_bomb")
    log = full_log(report)
    allocated = [int(x.split()[1]) for x in log.splitlines() if x.startswith("ALLOCATED ")]
    assert allocated, log[-2000:]
    assert max(allocated) <= 512  # the limit: the kernel killed the bomb at it
    assert "PROBE memory" not in log  # it never got to report: it was killed
    assert report.failure is not None
    assert "exited with status" in report.failure.message


def test_an_endless_build_ends(
    tmp_path: Path, local_index: tuple[LocalServer, ServeRelease]
) -> None:
    started = time.monotonic()
    report = run_probe(
        tmp_path, local_index, "endless", limits=BuildLimits(timeout_s=8, memory="512m", pids=128)
    )
    assert time.monotonic() - started < 90
    assert report.failure is not None
    assert "did not finish within 8 s" in report.failure.message
    assert "spinning" in full_log(report)


def test_the_host_environment_is_unchanged_by_the_probes() -> None:
    # The probes ran inside containers; none of their targets exist on the host.
    for path in ("/deps/pwned.whl", "/inputs/source/pwned", "/usr/lib/pwned", "/etc/pwned"):
        assert not os.path.lexists(path)


def test_a_tree_too_deep_for_rmtree_in_the_output_is_cleaned_up(
    tmp_path: Path, local_index: tuple[LocalServer, ServeRelease]
) -> None:
    report = run_probe(tmp_path, local_index, "deep_output", out=OUT_MOUNT, depth=3_000)
    assert "wrote 3000 levels" in assert_held(report, "deep_output")
    # The work directory (and the tree the build wrote into it) is gone: nothing left behind.
    assert list((tmp_path / "cache" / "work").iterdir()) == []
