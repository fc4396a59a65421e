"""`rebuild check` end to end: real containers, real builds, real (local or public) indexes."""

from __future__ import annotations

import base64
import hashlib
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from conftest import ServeRelease, leftover_containers, published_wheel
from helpers_index import LocalServer, from_the_real_index
from sdists import SDE, build_published_wheel, make_sdist

from rebuild.models import (
    BuildLimits,
    DivergenceKind,
    Layer,
    Report,
    Target,
    Verdict,
    WheelSelector,
)
from rebuild.pipeline import CheckOptions, check

pytestmark = pytest.mark.docker
DEMO = Target("demo", "1.0")
INJECTED = b"__import__('os').system('id')  # injected\n"


def run_check(
    target: Target, cache: Path, index_url: str | None = None, **options: object
) -> Report:
    opts = CheckOptions(index_url=index_url, cache_dir=cache, **options)  # type: ignore[arg-type]
    return check(target, WheelSelector(python="3.11"), opts)


def tamper(published: Path, out: Path, member: str) -> Path:
    """A copy of ``published`` with one line added to ``member`` and RECORD rewritten to match."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(published) as src, zipfile.ZipFile(out, "w") as dst:
        record = next(n for n in src.namelist() if n.endswith(".dist-info/RECORD"))
        changed = src.read(member) + INJECTED
        digest = base64.urlsafe_b64encode(hashlib.sha256(changed).digest()).rstrip(b"=").decode()
        for info in src.infolist():
            data = src.read(info)
            if info.filename == member:
                data = changed
            elif info.filename == record:
                rows = [
                    f"{member},sha256={digest},{len(changed)}" if r.startswith(f"{member},") else r
                    for r in data.decode().splitlines()
                ]
                data = ("\n".join(rows) + "\n").encode()
            dst.writestr(info, data)
    return out


def demo_release(tmp_path: Path, serve: ServeRelease, mode: str) -> str:
    published = build_published_wheel(tmp_path / "published")
    sdist = make_sdist(tmp_path / "sdist" / "demo-1.0.tar.gz", mode)
    return serve("demo", published, sdist)


# --- offline: a local index serving sdists the tests build ---------------------------------


def test_a_deterministic_build_is_reproducible(
    tmp_path: Path, local_index: tuple[LocalServer, ServeRelease]
) -> None:
    url = demo_release(tmp_path, local_index[1], "ok")
    report = run_check(DEMO, tmp_path / "cache", url)
    assert report.verdict is Verdict.REPRODUCIBLE, report.failure
    assert report.plan is not None and report.build is not None
    assert report.plan.source_date_epoch == SDE
    assert report.build.network == "none"
    assert report.build.image.image_id.startswith("sha256:")
    assert report.build.log_path.is_file()
    assert report.build.wheel.is_file()


def test_a_tampered_wheel_is_divergent_and_named_first(
    tmp_path: Path, local_index: tuple[LocalServer, ServeRelease]
) -> None:
    url = demo_release(tmp_path, local_index[1], "ok")
    mine = tamper(
        build_published_wheel(tmp_path / "again"),
        tmp_path / "mine" / "demo-1.0-py3-none-any.whl",
        "demo/__init__.py",
    )
    report = run_check(DEMO, tmp_path / "cache", url, wheel=mine)
    assert report.verdict is Verdict.DIVERGENT
    assert report.comparison is not None
    first = report.comparison.divergences[0]
    assert (first.member, first.kind, first.explained) == (
        "demo/__init__.py",
        DivergenceKind.CONTENT,
        False,
    )
    # The diff reads published -> rebuilt: the published wheel's extra line is a "-" line.
    assert "-__import__('os').system('id')" in first.detail
    assert any("NOT the index's" in note for note in report.notes)


def test_a_build_that_reaches_for_the_network_fails_inside_the_container(
    tmp_path: Path, local_index: tuple[LocalServer, ServeRelease]
) -> None:
    url = demo_release(tmp_path, local_index[1], "network")
    report = run_check(DEMO, tmp_path / "cache", url)
    assert report.verdict is Verdict.FAILED
    assert report.failure is not None
    assert report.failure.stage == "build"
    assert "NETWORK: unreachable" in report.failure.log_tail
    assert "no network" in (report.failure.hint or "")
    assert report.exit_code == 7


def test_a_failing_build_is_failed_with_its_log(
    tmp_path: Path, local_index: tuple[LocalServer, ServeRelease]
) -> None:
    url = demo_release(tmp_path, local_index[1], "fail")
    report = run_check(DEMO, tmp_path / "cache", url)
    assert report.verdict is Verdict.FAILED
    assert report.failure is not None
    assert "failed on purpose" in report.failure.log_tail
    assert report.failure.log_path is not None
    assert "failed on purpose" in report.failure.log_path.read_text()


def test_a_hanging_build_is_stopped_at_the_timeout(
    tmp_path: Path, local_index: tuple[LocalServer, ServeRelease]
) -> None:
    url = demo_release(tmp_path, local_index[1], "hang")
    started = time.monotonic()
    report = run_check(DEMO, tmp_path / "cache", url, limits=BuildLimits(timeout_s=8))
    assert time.monotonic() - started < 120
    assert report.verdict is Verdict.FAILED
    assert report.failure is not None
    assert "did not finish within 8 s" in report.failure.message


@pytest.mark.network
def test_what_the_backend_asks_for_at_build_time_is_resolved_and_given(
    tmp_path: Path, local_index: tuple[LocalServer, ServeRelease]
) -> None:
    # The sdist's backend names six only in get_requires_for_build_wheel, and imports it to
    # build: a frontend that never asks the hook fails offline ("six was not found").
    server, serve = local_index
    server.fallback = from_the_real_index  # six comes from the real index, as of the upload
    url = demo_release(tmp_path, serve, "asks")
    report = run_check(DEMO, tmp_path / "cache", url)
    assert report.verdict is Verdict.REPRODUCIBLE, report.failure
    assert report.build is not None and "six==1.16.0" in report.build.requirements
    assert any(
        n.startswith("the backend asked for six==1.16.0 at build time (an in-tree backend")
        for n in report.notes
    ), report.notes


CI_CONFIG = """
[tool.cibuildwheel]
environment = { DEMO_FLAVOUR = "from-ci" }
before-all = "yum install -y libffi-devel && ./fetch-and-build-things.sh"
"""


def test_upstream_s_ci_configuration_gives_the_build_its_variables_and_packages(
    tmp_path: Path, local_index: tuple[LocalServer, ServeRelease]
) -> None:
    # The backend builds only with the variable and libffi's header that cibuildwheel's
    # configuration gives it: the rebuild takes both from the sdist, in an image derived with
    # Debian's libffi-dev, and says so; the script it cannot replay is named.
    tag = "cp311-cp311-linux_x86_64"
    published = build_published_wheel(tmp_path / "published", tag=tag)
    sdist = make_sdist(tmp_path / "sdist" / "demo-1.0.tar.gz", "ci", pyproject=CI_CONFIG, tag=tag)
    url = local_index[1]("demo", published, sdist)
    report = run_check(DEMO, tmp_path / "cache", url)
    assert report.verdict is Verdict.REPRODUCIBLE, report.failure
    assert report.plan is not None and report.build is not None
    assert ("DEMO_FLAVOUR", "from-ci") in report.plan.environment
    assert report.plan.system_packages == ("libffi-dev",)
    origins = dict(report.plan.origins)
    assert origins["environment DEMO_FLAVOUR"] == ("pyproject.toml [tool.cibuildwheel] environment")
    assert report.build.image.name.startswith("bookworm-py311-with-")
    assert any("./fetch-and-build-things.sh" in n for n in report.plan.notes)


def test_a_release_without_sdist_is_failed_at_resolve(
    tmp_path: Path, local_index: tuple[LocalServer, ServeRelease]
) -> None:
    url = local_index[1]("demo", build_published_wheel(tmp_path / "published"))
    report = run_check(DEMO, tmp_path / "cache", url)
    assert report.verdict is Verdict.FAILED
    assert report.failure is not None
    assert (report.failure.stage, report.exit_code) == ("resolve", 3)
    assert "no sdist" in report.failure.message


def test_ctrl_c_during_a_build_removes_the_container(
    tmp_path: Path, local_index: tuple[LocalServer, ServeRelease]
) -> None:
    url = demo_release(tmp_path, local_index[1], "hang")
    cli = [sys.executable, "-m", "rebuild", "check", "demo==1.0", "--index-url", url]
    process = subprocess.Popen(
        [*cli, "--cache-dir", str(tmp_path / "cache"), "--python", "3.11"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "COLUMNS": "200"},
    )
    deadline = time.monotonic() + 120
    while not leftover_containers():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the build container never started"
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert leftover_containers() == []


# --- the acceptance releases, from the real index --------------------------------------------


@pytest.mark.network
@pytest.mark.parametrize("spec", ["attrs==23.2.0", "click==8.1.7"])
def test_real_releases_rebuild_byte_for_byte(spec: str, shared_cache: Path) -> None:
    report = run_check(Target.parse(spec), shared_cache)
    assert report.verdict is Verdict.REPRODUCIBLE, report.failure or report.comparison
    assert report.build is not None
    assert report.build.requirements  # every build requirement recorded with its version
    assert all("==" in r for r in report.build.requirements)


@pytest.mark.network
@pytest.mark.parametrize("spec", ["idna==3.7", "six==1.16.0"])
def test_real_releases_rebuild_equivalent_with_container_differences_listed(
    spec: str, shared_cache: Path
) -> None:
    report = run_check(Target.parse(spec), shared_cache)
    assert report.verdict is Verdict.EQUIVALENT, report.failure or report.comparison
    assert report.comparison is not None
    assert report.comparison.divergences
    assert {d.layer for d in report.comparison.divergences} == {Layer.CONTAINER}
    assert DivergenceKind.TIMESTAMP in {d.kind for d in report.comparison.divergences}


@pytest.mark.network
@pytest.mark.parametrize(
    ("spec", "tool"),
    [
        # WHEEL: `Generator: bdist_wheel (0.43.0)`, which only setuptools before 70.1 leaves
        # to wheel: setuptools<70.1 beside wheel==0.43.0.
        ("openpyxl==3.1.5", "wheel==0.43.0"),
        # METADATA: `Requires-Dist: botocore (<2.0a.0,>=1.37.4)` under setuptools 75.1.0, which
        # only an installed wheel 0.41.0 or older writes: built without isolation, with it.
        ("s3transfer==0.19.3", "wheel==0.41.0"),
        # Tagged py2.py3 by bdist_wheel, with no `universal` in their setup.cfg: built with it
        # set, under setuptools 70.0.0 and (refusing `--build-option=--universal`) 68.2.2.
        ("pytz==2026.6", "wheel==0.42.0"),
        ("shellingham==1.5.4", "setuptools==68.2.2"),
    ],
)
def test_tools_the_published_wheel_implies_are_replayed_to_the_byte(
    spec: str, tool: str, shared_cache: Path
) -> None:
    report = run_check(Target.parse(spec), shared_cache)
    assert report.verdict is Verdict.EQUIVALENT, report.failure or report.comparison
    assert report.build is not None and tool in report.build.requirements
    assert report.comparison is not None
    assert {d.layer for d in report.comparison.divergences} == {Layer.CONTAINER}


@pytest.mark.network
def test_a_real_wheel_with_an_injected_line_is_divergent(
    tmp_path: Path, shared_cache: Path
) -> None:
    first = run_check(Target.parse("attrs==23.2.0"), shared_cache)
    assert first.release is not None and first.release.wheel is not None
    published = published_wheel(shared_cache, first)
    mine = tamper(published, tmp_path / "mine" / published.name, "attr/_make.py")
    report = run_check(Target.parse("attrs==23.2.0"), shared_cache, wheel=mine)
    assert report.verdict is Verdict.DIVERGENT
    assert report.comparison is not None
    top = report.comparison.divergences[0]
    assert (top.member, top.explained) == ("attr/_make.py", False)
    assert "injected" in top.detail
