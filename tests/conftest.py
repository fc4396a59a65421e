"""Fixtures shared across the suite: a local package index and the container hygiene check."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers_index import LocalServer, file_entry, json_reply, local_server, project_page

from rebuild.container import SESSION_LABEL, SESSION_VARIABLE
from rebuild.models import Report, Target, WheelSelector
from rebuild.pipeline import CheckOptions, check

ServeRelease = Callable[..., str]


@pytest.fixture
def local_index() -> Iterator[tuple[LocalServer, ServeRelease]]:
    """A PEP 691 index on 127.0.0.1 and a function that publishes files of one release on it.

    ``serve(name, *paths)`` lists the files under the project ``name`` and returns the index URL.
    """
    with local_server() as server:

        def serve(name: str, *paths: Path, upload_time: str = "2024-02-05T23:48:01Z") -> str:
            files = [
                file_entry(server, p.name, p.read_bytes(), **{"upload-time": upload_time})
                for p in paths
            ]
            server.route(f"/simple/{name}/", json_reply(project_page(name, files, ["1.0"])))
            return server.url("/simple/")

        yield server, serve


# This test session's tag on every container it makes (rebuild.container reads it, and the
# tool's child processes inherit it): the checks below count this session's containers only,
# not those of another run sharing the engine.
SESSION = f"tests-{os.getpid()}-{uuid.uuid4().hex[:8]}"
os.environ[SESSION_VARIABLE] = SESSION


def leftover_containers() -> list[str]:
    listed = subprocess.run(
        ["docker", "ps", "-a", "-q", "--filter", f"label={SESSION_LABEL}={SESSION}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return listed.stdout.split()


@pytest.fixture(autouse=True)
def _no_container_left_behind(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test that touches the engine must leave no container of ours behind."""
    yield
    if request.node.get_closest_marker("docker") is not None:
        assert leftover_containers() == [], "a container was left behind"


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One download cache for the whole run: real releases are fetched once."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def markupsafe_check(shared_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Report:
    """MarkupSafe 2.1.5's cp311 manylinux wheel checked here once with its recipe, rebuilt by
    another compiler on purpose: bookworm's GCC 12, not the matched bullseye-py311 (GCC 10.2.1)
    the recipe falls back to, so that what holds whatever the compiler can be tested."""
    recipe = tmp_path_factory.mktemp("recipe") / "markupsafe.toml"
    text = (Path(__file__).resolve().parent.parent / "recipes" / "markupsafe.toml").read_text()
    assert 'fallback = "bullseye-py311"' in text
    recipe.write_text(text.replace('fallback = "bullseye-py311"', 'fallback = "bookworm-py311"'))
    report = check(
        Target.parse("markupsafe==2.1.5"),
        WheelSelector(python="3.11", platform="manylinux_2_17_x86_64"),
        CheckOptions(cache_dir=shared_cache, recipe=recipe),
    )
    assert report.build is not None and report.release is not None, report.failure
    return report


def published_wheel(cache: Path, report: Report) -> Path:
    """The published wheel of ``report`` in the download cache, by its sha256: other files of
    the same name (a tampered copy checked with --wheel) live there too."""
    assert report.release is not None and report.release.wheel is not None
    wheel = report.release.wheel
    path = cache / "files" / "sha256" / wheel.sha256[:2] / wheel.sha256 / wheel.filename
    assert path.is_file(), path
    return path


@pytest.fixture
def containers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the repository's image specs that a test may change."""
    from rebuild.images import containers_dir

    root = tmp_path / "containers"
    shutil.copytree(containers_dir(), root)
    monkeypatch.setenv("REBUILD_CONTAINERS_DIR", str(root))
    return root


@pytest.fixture(autouse=True)
def _reports_follow_their_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every JSON report a test renders in this process is validated against the schema."""
    import json

    import jsonschema

    from rebuild.report import json as json_report
    from rebuild.report.schema import report_schema

    render = json_report.render
    validator = jsonschema.Draft202012Validator(report_schema())

    def validated(report: Report) -> str:
        text = render(report)
        validator.validate(json.loads(text))
        return text

    monkeypatch.setattr(json_report, "render", validated)
