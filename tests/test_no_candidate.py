"""Which build requirement has no candidate as of the instant, read from the index itself:
a project it does not serve, a range nothing is in, releases in range all uploaded later. The
finding is never a guess: anything else (a candidate exists, a marker that does not hold in
the container, an unreadable page) says nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from helpers_index import LocalServer, file_entry, json_reply, local_server, project_page

from rebuild.index import IndexClient
from rebuild.no_candidate import MAX_LOOKUPS, find_no_candidates

INSTANT = datetime(2025, 1, 1, tzinfo=UTC)


@pytest.fixture
def index() -> Iterator[IndexClient]:
    with local_server() as server:
        _serve(server, "old", {"0.1.0": "2024-03-01T00:00:00Z", "0.1.1": "2024-06-01T00:00:00Z"})
        _serve(server, "late", {"0.1": "2024-01-01T00:00:00Z", "0.2": "2025-03-04T05:06:07Z"})
        _serve(server, "undated", {"2.0": None})
        _serve(server, "same", {"1.0": "2025-03-04T05:06:07.000005Z"})
        late_yank = file_entry(server, "yanked-1.0.tar.gz", b"x", yanked="withdrawn")
        early = file_entry(server, "yanked-0.9.tar.gz", b"y", **{"upload-time": "2020-01-01"})
        server.route(
            "/simple/yanked/", json_reply(project_page("yanked", [early, late_yank], None))
        )
        server.route("/simple/broken/", json_reply(b"{not json"))
        yield IndexClient(server.url("/simple/"), timeout=5)


def _serve(server: LocalServer, name: str, releases: dict[str, str | None]) -> None:
    files = [
        file_entry(server, f"{name}-{version}.tar.gz", version.encode(), **{"upload-time": when})
        for version, when in releases.items()
    ]
    server.route(f"/simple/{name}/", json_reply(project_page(name, files, list(releases))))


def test_a_project_the_index_does_not_serve_is_named(index: IndexClient) -> None:
    (found,) = find_no_candidates(
        ["old>=0.1", "python-sbom[hatch]>=0.1.2"], INSTANT, index, python="3.11"
    )
    assert found.name == "python-sbom"
    assert str(found) == (
        "python-sbom[hatch]>=0.1.2 has no candidate: the index serves no project named python-sbom"
    )


@pytest.mark.parametrize(
    "requirement", ["absent>=1; python_version >= '3.10'", "absent>=1; sys_platform == 'linux'"]
)
def test_a_marker_that_holds_in_the_container_is_judged(
    index: IndexClient, requirement: str
) -> None:
    # virtualenv's sdist asks `python-sbom[hatch]>=0.1.2; python_version >= "3.10"`.
    (found,) = find_no_candidates([requirement], INSTANT, index, python="3.11")
    assert found.why == "the index serves no project named absent"


def test_a_range_nothing_is_in_says_what_there_is(index: IndexClient) -> None:
    (found,) = find_no_candidates(["old>=0.1.2"], INSTANT, index, python="3.11")
    assert found.why == "no release of old is in that range (the index has 2, newest 0.1.1)"


def test_releases_in_range_uploaded_after_the_instant_say_when(index: IndexClient) -> None:
    (found,) = find_no_candidates(["late>=0.2"], INSTANT, index, python="3.11")
    assert found.why == (
        "the first release of late in that range, 0.2, was uploaded 2025-03-04 05:06:07 UTC, "
        "after 2025-01-01 00:00:00 UTC"
    )
    # As of today the same release is a candidate: nothing to say.
    assert find_no_candidates(["late>=0.2"], None, index, python="3.11") == []


def test_an_upload_in_the_same_second_is_told_apart(index: IndexClient) -> None:
    (found,) = find_no_candidates(
        ["same>=1"], datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC), index, python="3.11"
    )
    assert found.why.endswith(
        "was uploaded 2025-03-04 05:06:07.000005 UTC, after 2025-03-04 05:06:07.000000 UTC"
    )


def test_a_yanked_release_is_no_candidate(index: IndexClient) -> None:
    (found,) = find_no_candidates(["yanked>=1.0"], INSTANT, index, python="3.11")
    assert found.why == "no release of yanked is in that range (the index has 1, newest 0.9)"


@pytest.mark.parametrize(
    "requirement",
    [
        "late>=0.1",  # 0.1 was there in time
        "undated>=2",  # no upload time: it cannot be said to be late
        "broken>=1",  # the page is not JSON: uv's reason stands alone
        "old>=9; python_version < '3.10'",  # not needed in the container's 3.11
        "old>=9; sys_platform == 'win32'",
        "old>=9; extra == 'docs'",
        "not a requirement !!",
    ],
)
def test_anything_short_of_a_finding_says_nothing(index: IndexClient, requirement: str) -> None:
    assert find_no_candidates([requirement], INSTANT, index, python="3.11") == []


def test_a_long_list_asks_the_index_a_bounded_number_of_times() -> None:
    # The sdist under check writes the list: 500 absent projects, and one asked for twice.
    with local_server() as server:
        client = IndexClient(server.url("/simple/"), timeout=5)
        wanted = ["absent-0>=1", "absent-0<2", *(f"absent-{i}>=1" for i in range(1, 500))]
        found = find_no_candidates(wanted, INSTANT, client, python="3.11")
        pages = [s.path for s in server.seen if s.path.startswith("/simple/")]
    assert len(pages) == len(set(pages)) == MAX_LOOKUPS
    assert [f.requirement for f in found][:2] == ["absent-0>=1", "absent-0<2"]
    assert len(found) == MAX_LOOKUPS + 1
