"""Tests of the index client against a local server that answers like PyPI's JSON simple API."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from helpers_index import (
    SIMPLE_JSON,
    LocalServer,
    Reply,
    file_entry,
    json_reply,
    local_server,
    project_page,
    sha256,
)
from packaging import tags

from rebuild.errors import FetchError, ResolveError, UnreachableError, UsageError
from rebuild.http import http_session
from rebuild.index import (
    DEFAULT_INDEX_URL,
    IndexClient,
    choose_index_url,
    compatible_platforms,
    selector_tags,
)
from rebuild.models import DistKind, Release, Target, WheelSelector

PAGE = "/simple/pkg/"

METADATA = b"""Metadata-Version: 2.1
Name: Pkg
Version: 1.0
Summary: a test package
Home-page: https://pkg.example/
Project-URL: Source, https://git.example/pkg
Project-URL: Tracker, https://git.example/pkg/issues

Long description that is not a header.
"""

WHEELS = (
    "pkg-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    "pkg-1.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    "pkg-1.0-cp311-cp311-musllinux_1_1_x86_64.whl",
    "pkg-1.0-py3-none-any.whl",
)


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with local_server() as s:
        yield s


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with http_session(backoff=0) as s:
        yield s


def client(server: LocalServer, session: requests.Session, **kwargs: Any) -> IndexClient:
    return IndexClient(server.url("/simple/"), session=session, timeout=5, **kwargs)


def serve_release(
    server: LocalServer,
    filenames: tuple[str, ...] = (*WHEELS, "pkg-1.0.tar.gz"),
    *,
    versions: list[str] | None = None,
    extra: dict[str, object] | None = None,
) -> None:
    files = [file_entry(server, name, name.encode() * 3, **(extra or {})) for name in filenames]
    server.route(PAGE, json_reply(project_page("pkg", files, versions or ["0.9", "1.0"])))


def resolve(
    server: LocalServer,
    session: requests.Session,
    python: str | None = "3.11",
    platform: str | None = "manylinux_2_17_x86_64",
    version: str = "1.0",
) -> Release:
    selector = WheelSelector(python=python, platform=platform)
    return client(server, session, probe_metadata=False).resolve(Target("pkg", version), selector)


# --- wheel choice --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("python", "platform", "expected"),
    [
        ("3.11", "manylinux_2_17_x86_64", WHEELS[0]),
        ("3.11", "manylinux2014_x86_64", WHEELS[0]),  # the compound tag's other alias
        ("3.12", "manylinux_2_17_x86_64", WHEELS[1]),
        ("3.11", "musllinux_1_1_x86_64", WHEELS[2]),
        ("3.10", "manylinux_2_17_x86_64", WHEELS[3]),  # no cp310 wheel: the pure one
        ("3.11", "win_amd64", WHEELS[3]),
        ("3.11", "manylinux-2.17-x86_64", WHEELS[0]),  # a sysconfig-style spelling
    ],
)
def test_chooses_the_best_ranked_wheel(
    server: LocalServer, session: requests.Session, python: str, platform: str, expected: str
) -> None:
    serve_release(server)
    release = resolve(server, session, python, platform)
    assert release.wheel is not None
    assert release.wheel.filename == expected


def test_abi3_wheel_ranks_above_pure(server: LocalServer, session: requests.Session) -> None:
    abi3 = "pkg-1.0-cp39-abi3-manylinux_2_17_x86_64.whl"
    serve_release(server, ("pkg-1.0-py3-none-any.whl", abi3))
    release = resolve(server, session, "3.11", "manylinux_2_17_x86_64")
    assert release.wheel is not None
    assert release.wheel.filename == abi3


def test_default_selector_uses_this_interpreter() -> None:
    assert selector_tags(WheelSelector()) == list(tags.sys_tags())
    ranked = selector_tags(WheelSelector(platform="win_amd64"))
    assert {t.platform for t in ranked} <= {"win_amd64", "any"}


def test_bad_python_selector_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="not a Python version"):
        selector_tags(WheelSelector(python="eleven"))


# --- what a release's files carry ----------------------------------------------------------


def test_release_files_carry_the_index_data(server: LocalServer, session: requests.Session) -> None:
    wheel = file_entry(
        server,
        WHEELS[3],
        b"wheel bytes",
        yanked="broken on Windows",
        provenance="/integrity/pkg/1.0/pkg-1.0-py3-none-any.whl/provenance",
        **{"core-metadata": {"sha256": sha256(METADATA)}},
    )
    sdist = file_entry(
        server, "pkg-1.0.tar.gz", b"sdist bytes", **{"data-dist-info-metadata": True}
    )
    other = file_entry(server, "pkg-0.9.tar.gz", b"old")
    server.route(PAGE, json_reply(project_page("pkg", [other, wheel, sdist], ["0.9", "1.0"])))
    server.route(f"/files/{WHEELS[3]}.metadata", Reply(body=METADATA))

    release = client(server, session).resolve(Target("pkg", "1.0"), WheelSelector("3.11"))

    assert [f.filename for f in release.files] == [WHEELS[3], "pkg-1.0.tar.gz"]
    assert release.wheel is not None and release.sdist is not None
    w = release.wheel
    assert w.kind is DistKind.WHEEL
    assert w.sha256 == sha256(b"wheel bytes")
    assert w.size == len(b"wheel bytes")
    assert w.upload_time == datetime(2024, 2, 5, 23, 48, 1, 194769, tzinfo=UTC)
    assert w.yanked and w.yanked_reason == "broken on Windows"
    assert w.requires_python == ">=3.8"
    assert w.metadata_sha256 == sha256(METADATA)
    assert w.provenance_url == server.url("/integrity/pkg/1.0/pkg-1.0-py3-none-any.whl/provenance")
    assert release.sdist.kind is DistKind.SDIST
    assert not release.sdist.yanked and release.sdist.yanked_reason is None
    assert release.index_url == server.url("/simple/")
    assert release.project_urls == (
        ("Source", "https://git.example/pkg"),
        ("Tracker", "https://git.example/pkg/issues"),
        ("Home-page", "https://pkg.example/"),
    )
    assert server.hits(f"/files/{WHEELS[3]}.metadata") == 1


def test_request_headers(server: LocalServer, session: requests.Session) -> None:
    serve_release(server)
    resolve(server, session)
    headers = server.seen[0].headers
    # JSON first, HTML (PEP 503) accepted at a lower weight, as pip asks.
    assert headers["Accept"].split(",")[0] == SIMPLE_JSON
    assert "text/html; q=0.01" in headers["Accept"]
    assert headers["User-Agent"].startswith("rebuild/")


def test_versions_compare_as_versions(server: LocalServer, session: requests.Session) -> None:
    serve_release(server)
    release = resolve(server, session, version="1.0.0")
    assert release.wheel is not None and release.wheel.filename == WHEELS[0]


def test_relative_urls_and_odd_files(server: LocalServer, session: requests.Session) -> None:
    files = [
        {**file_entry(server, "Pkg_Name-1.0.tar.bz2", b"old sdist"), "url": "../../files/x"},
        file_entry(server, "pkg-1.0-py2.7.egg", b"egg"),
        file_entry(server, "pkg-1.0.win32.exe", b"exe"),
        file_entry(server, "pkg_name-1.0-py3-none-any.whl", b"wheel"),
    ]
    server.route("/simple/pkg-name/", json_reply(project_page("pkg-name", files, None)))
    release = client(server, session, probe_metadata=False).resolve(
        Target("Pkg.Name", "1.0"), WheelSelector("3.11")
    )
    assert [f.filename for f in release.files] == [
        "Pkg_Name-1.0.tar.bz2",
        "pkg_name-1.0-py3-none-any.whl",
    ]
    assert release.sdist is not None
    assert release.sdist.url == server.url("/files/x")


def test_missing_sdist_is_not_an_error(server: LocalServer, session: requests.Session) -> None:
    serve_release(server, WHEELS)
    assert resolve(server, session).sdist is None


def test_prefers_tar_gz_among_sdists(server: LocalServer, session: requests.Session) -> None:
    serve_release(server, (WHEELS[3], "pkg-1.0.zip", "pkg-1.0.tar.gz"))
    release = resolve(server, session)
    assert release.sdist is not None and release.sdist.filename == "pkg-1.0.tar.gz"


# --- core metadata -------------------------------------------------------------------------


def serve_with_metadata(server: LocalServer, metadata: bytes, **extra: object) -> None:
    wheel = file_entry(server, WHEELS[3], b"wheel", **extra)
    server.route(PAGE, json_reply(project_page("pkg", [wheel], ["1.0"])))
    server.route(f"/files/{WHEELS[3]}.metadata", Reply(body=metadata))


def test_core_metadata_hash_mismatch(server: LocalServer, session: requests.Session) -> None:
    serve_with_metadata(
        server, METADATA + b"tampered", **{"core-metadata": {"sha256": sha256(METADATA)}}
    )
    with pytest.raises(FetchError, match="core metadata") as caught:
        resolve(server, session, "3.11", None)
    assert sha256(METADATA) in caught.value.message


def test_core_metadata_size_is_bounded(server: LocalServer, session: requests.Session) -> None:
    huge = METADATA + b"x" * (6 * 1024 * 1024)
    serve_with_metadata(server, huge, **{"core-metadata": {"sha256": sha256(huge)}})
    with pytest.raises(FetchError, match="more than 5 MiB"):
        resolve(server, session, "3.11", None)


def test_unadvertised_metadata_is_probed(server: LocalServer, session: requests.Session) -> None:
    serve_with_metadata(server, METADATA)
    release = client(server, session).resolve(Target("pkg", "1.0"), WheelSelector("3.11"))
    assert ("Source", "https://git.example/pkg") in release.project_urls


def test_probed_metadata_of_another_release_is_ignored(
    server: LocalServer, session: requests.Session
) -> None:
    serve_with_metadata(server, METADATA.replace(b"Version: 1.0", b"Version: 6.6.6"))
    release = client(server, session).resolve(Target("pkg", "1.0"), WheelSelector("3.11"))
    assert release.project_urls == ()


def test_probe_failure_leaves_urls_empty(server: LocalServer, session: requests.Session) -> None:
    serve_with_metadata(server, METADATA)
    server.route(f"/files/{WHEELS[3]}.metadata", Reply(status=404))
    release = client(server, session).resolve(Target("pkg", "1.0"), WheelSelector("3.11"))
    assert release.project_urls == ()


def test_no_probe_when_disabled(server: LocalServer, session: requests.Session) -> None:
    serve_with_metadata(server, METADATA)
    release = resolve(server, session, "3.11", None)
    assert release.project_urls == ()
    assert server.hits(f"/files/{WHEELS[3]}.metadata") == 0


# --- errors --------------------------------------------------------------------------------


def test_missing_project(server: LocalServer, session: requests.Session) -> None:
    with pytest.raises(ResolveError, match="no project named 'pkg'") as caught:
        resolve(server, session)
    assert caught.value.hint is not None and "--index-url" in caught.value.hint
    assert server.hits(PAGE) == 1  # a 404 is an answer, not a transient failure


def test_missing_version_lists_nearest(server: LocalServer, session: requests.Session) -> None:
    versions = [f"1.{i}" for i in range(30)]
    serve_release(server, versions=versions)
    with pytest.raises(ResolveError) as caught:
        resolve(server, session, version="1.15.5")
    message = caught.value.message
    assert "no release 1.15.5" in message
    assert "1.15, 1.16" in message
    assert "1.0," not in message  # far away: left out
    assert "30 releases, newest 1.29" in message
    assert caught.value.hint == "pick an existing version, e.g. `pkg==1.29`"


def test_missing_version_without_version_list(
    server: LocalServer, session: requests.Session
) -> None:
    files = [file_entry(server, "pkg-0.5.tar.gz", b"a"), file_entry(server, WHEELS[3], b"b")]
    server.route(PAGE, json_reply(project_page("pkg", files, None)))
    with pytest.raises(ResolveError, match=r"nearest: 0\.5, 1\.0 \(2 releases"):
        resolve(server, session, version="2.0")


def test_no_wheel_for_selector(server: LocalServer, session: requests.Session) -> None:
    serve_release(server, (WHEELS[0], WHEELS[1], "pkg-1.0.tar.gz"))
    with pytest.raises(ResolveError) as caught:
        resolve(server, session, "3.11", "win_amd64")
    message = caught.value.message
    assert "no wheel for Python 3.11 on win_amd64" in message
    assert WHEELS[0] in message and WHEELS[1] in message
    assert caught.value.hint is not None
    assert "--python 3.11 --platform manylinux" in caught.value.hint


def test_release_without_wheels(server: LocalServer, session: requests.Session) -> None:
    serve_release(server, ("pkg-1.0.tar.gz",))
    with pytest.raises(ResolveError, match=r"publishes no wheel \(only: pkg-1.0.tar.gz\)"):
        resolve(server, session)


def test_file_without_sha256(server: LocalServer, session: requests.Session) -> None:
    serve_release(server, (WHEELS[3],), extra={"hashes": {"md5": "0" * 32}})
    with pytest.raises(ResolveError, match="without a sha256"):
        resolve(server, session)


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (json_reply(b"{not json"), "valid JSON"),
        (json_reply(b"[" * 100_000), "valid JSON"),
        (json_reply(b"[]"), "unexpected shape: not an object"),
        (json_reply(b'{"files": []}'), "no meta.api-version"),
        (json_reply(b'{"meta": {"api-version": "2.0"}, "files": []}'), "version 2.0"),
        (json_reply(b'{"meta": {"api-version": "1.0"}, "files": {}}'), "'files' is not a list"),
        (
            json_reply(b'{"meta": {"api-version": "1.1"}, "files": [], "versions": [1]}'),
            "'versions' is not a list of strings",
        ),
        (
            # An HTML page is read (PEP 503); one that links to nothing lists no release.
            Reply(body=b"<html></html>", headers={"Content-Type": "text/html"}),
            "lists no release",
        ),
    ],
)
def test_malformed_answers(
    server: LocalServer, session: requests.Session, reply: Reply, message: str
) -> None:
    server.route(PAGE, reply)
    with pytest.raises(ResolveError, match=message):
        resolve(server, session)


def test_malformed_file_entry(server: LocalServer, session: requests.Session) -> None:
    serve_release(server, (WHEELS[3],), extra={"upload-time": "yesterday"})
    with pytest.raises(ResolveError, match="bad upload-time"):
        resolve(server, session)


def test_server_error_is_retried(server: LocalServer, session: requests.Session) -> None:
    files = [file_entry(server, WHEELS[3], b"wheel")]
    good = json_reply(project_page("pkg", files, ["1.0"]))
    server.route(PAGE, Reply(status=503), Reply(status=502), good)
    release = resolve(server, session)
    assert release.wheel is not None
    assert server.hits(PAGE) == 3


def test_persistent_server_error(server: LocalServer, session: requests.Session) -> None:
    server.route(PAGE, Reply(status=500))
    with pytest.raises(ResolveError, match="HTTP 500"):
        resolve(server, session)
    assert server.hits(PAGE) == 4  # the first try and three retries


def test_forbidden_is_not_retried(server: LocalServer, session: requests.Session) -> None:
    server.route(PAGE, Reply(status=403))
    with pytest.raises(ResolveError, match="HTTP 403") as caught:
        resolve(server, session)
    assert caught.value.hint is not None and "credentials" in caught.value.hint
    assert server.hits(PAGE) == 1


def test_unreachable_index(session: requests.Session) -> None:
    with local_server() as gone:
        url = gone.url("/simple/")
    client = IndexClient(url, session=session, timeout=2)
    # An outage, with its own exit code: not "no such release" (3).
    with pytest.raises(UnreachableError, match="could not reach") as raised:
        client.resolve(Target("pkg", "1.0"), WheelSelector())
    assert raised.value.exit_code == 12


def test_client_without_session_closes_its_own(server: LocalServer) -> None:
    serve_release(server)
    client = IndexClient(server.url("/simple"), probe_metadata=False)
    release = client.resolve(Target("pkg", "1.0"), WheelSelector("3.11", "win_amd64"))
    assert release.wheel is not None and release.wheel.filename == WHEELS[3]


# --- choosing the index --------------------------------------------------------------------


def test_choose_index_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PIP_INDEX_URL", raising=False)
    assert choose_index_url(None) == DEFAULT_INDEX_URL
    monkeypatch.setenv("PIP_INDEX_URL", "https://mirror.example/simple")
    assert choose_index_url(None) == "https://mirror.example/simple/"
    assert choose_index_url("https://other.example/simple//") == "https://other.example/simple/"
    with pytest.raises(UsageError):
        choose_index_url("pypi.org/simple")


# --- the real index ------------------------------------------------------------------------


@pytest.mark.network
def test_real_numpy() -> None:
    release = IndexClient(DEFAULT_INDEX_URL).resolve(
        Target.parse("numpy==1.26.4"), WheelSelector("3.11", "manylinux_2_17_x86_64")
    )
    assert release.wheel is not None and release.sdist is not None
    assert (
        release.wheel.filename
        == "numpy-1.26.4-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
    )
    assert release.sdist.filename == "numpy-1.26.4.tar.gz"
    assert all(f.upload_time is not None for f in release.files)
    assert release.project_urls


@pytest.mark.network
def test_real_attrs() -> None:
    release = IndexClient(DEFAULT_INDEX_URL).resolve(
        Target.parse("attrs==23.2.0"), WheelSelector("3.11")
    )
    assert release.wheel is not None
    assert release.wheel.filename == "attrs-23.2.0-py3-none-any.whl"
    assert release.wheel.sha256 == (
        "99b87a485a5820b23b879f04c2305b44b951b502fd64be915879d77a7e8fc6f1"
    )


@pytest.mark.network
def test_real_missing_version() -> None:
    with pytest.raises(ResolveError) as caught:
        IndexClient(DEFAULT_INDEX_URL).resolve(Target.parse("attrs==23.2.99"), WheelSelector())
    assert "23.2.0" in caught.value.message
    assert "releases, newest" in caught.value.message


# --- platform compatibility and a wheel named by the user ----------------------------------


def test_a_newer_glibc_installs_older_manylinux_and_legacy_wheels() -> None:
    ranked = compatible_platforms("manylinux_2_36_x86_64")
    assert ranked[0] == "manylinux_2_36_x86_64"
    assert ranked.index("manylinux_2_28_x86_64") < ranked.index("manylinux2014_x86_64")
    assert "manylinux1_x86_64" in ranked
    assert ranked[-1] == "linux_x86_64"
    assert compatible_platforms("musllinux_1_1_x86_64") == ["musllinux_1_1_x86_64"]


def test_a_glibc_236_machine_gets_the_manylinux2014_wheel(
    server: LocalServer, session: requests.Session
) -> None:
    serve_release(server)
    release = resolve(server, session, "3.11", "manylinux_2_36_x86_64")
    assert release.wheel is not None
    assert release.wheel.filename == WHEELS[0]


def test_a_wheel_named_by_filename_is_chosen_whatever_the_tags(
    server: LocalServer, session: requests.Session
) -> None:
    serve_release(server)
    selector = WheelSelector(filename=WHEELS[1])
    release = client(server, session, probe_metadata=False).resolve(Target("pkg", "1.0"), selector)
    assert release.wheel is not None
    assert release.wheel.filename == WHEELS[1]
    assert release.sdist is not None


def test_a_wheel_named_by_filename_that_the_index_lacks_is_no_error(
    server: LocalServer, session: requests.Session
) -> None:
    serve_release(server)
    selector = WheelSelector(filename="pkg-1.0-cp313-cp313-win_amd64.whl")
    release = client(server, session, probe_metadata=False).resolve(Target("pkg", "1.0"), selector)
    assert release.wheel is None
    assert release.sdist is not None


def test_latest_is_the_newest_final_release_not_yanked(server: LocalServer) -> None:
    files = [
        file_entry(server, "pkg-1.0-py3-none-any.whl", b"a"),
        file_entry(server, "pkg-1.1.tar.gz", b"b"),
        file_entry(server, "pkg-1.2-py3-none-any.whl", b"c", yanked="broken"),
        file_entry(server, "pkg-2.0rc1-py3-none-any.whl", b"d"),
    ]
    server.route("/simple/pkg/", json_reply(project_page("pkg", files, None)))
    client = IndexClient(server.url("/simple/"))
    assert str(client.latest("pkg")) == "pkg==1.1"
    only_pre = [file_entry(server, "pre-3.0b1-py3-none-any.whl", b"e")]
    server.route("/simple/pre/", json_reply(project_page("pre", only_pre, None)))
    assert str(client.latest("pre")) == "pre==3.0b1"


def test_check_of_a_bare_name_checks_its_latest_and_says_so(
    server: LocalServer, capsys: pytest.CaptureFixture[str]
) -> None:
    from rebuild.cli import _target_or_latest

    files = [file_entry(server, "pkg-1.0-py3-none-any.whl", b"a")]
    server.route("/simple/pkg/", json_reply(project_page("pkg", files, None)))
    assert str(_target_or_latest("pkg", server.url("/simple/"))) == "pkg==1.0"
    assert "checking its latest release, pkg==1.0" in capsys.readouterr().err
    assert str(_target_or_latest("pkg==0.9", None)) == "pkg==0.9"
    with pytest.raises(UsageError, match="names several releases"):
        _target_or_latest("pkg==1.0 other==2.0", None)
