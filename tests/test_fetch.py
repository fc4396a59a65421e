"""Tests of the download cache against a local file server: hashes, retries, atomicity."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from helpers_index import LocalServer, Reply, local_server, sha256

from rebuild import fetch
from rebuild.errors import FetchError, UsageError
from rebuild.fetch import Cache, default_cache_dir, local_artifact, sha256_file
from rebuild.http import http_session
from rebuild.index import DEFAULT_INDEX_URL, IndexClient
from rebuild.models import DistFile, DistKind, Target, WheelSelector

CONTENT = b"PK\x03\x04 not really a wheel, but bytes to hash " * 1000
FILENAME = "pkg-1.0-py3-none-any.whl"
PATH = f"/files/{FILENAME}"


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with local_server() as s:
        yield s


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[Cache]:
    with http_session(backoff=0) as session:
        yield Cache(tmp_path / "cache", session=session, timeout=5, backoff=0)


def dist(server: LocalServer, content: bytes = CONTENT, **changes: object) -> DistFile:
    file = DistFile(
        filename=FILENAME,
        url=server.url(PATH),
        sha256=sha256(content),
        kind=DistKind.WHEEL,
        size=len(content),
    )
    return dataclasses.replace(file, **changes)  # type: ignore[arg-type]


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if not p.is_dir()) if root.exists() else []


def test_download_is_hashed_and_placed(server: LocalServer, cache: Cache) -> None:
    server.route(PATH, Reply(body=CONTENT))
    seen: list[tuple[int, int | None]] = []
    artifact = cache.fetch(dist(server), progress=lambda done, total: seen.append((done, total)))
    digest = sha256(CONTENT)
    assert artifact.path == cache.root / "files" / "sha256" / digest[:2] / digest / FILENAME
    assert artifact.path.read_bytes() == CONTENT
    assert artifact.sha256 == digest
    assert artifact.size == len(CONTENT)
    assert artifact.origin == server.url(PATH)
    assert seen[-1] == (len(CONTENT), len(CONTENT))
    assert files_under(cache.root) == [artifact.path]  # no temp file left beside it


def test_cache_hit_makes_no_request(server: LocalServer, cache: Cache) -> None:
    server.route(PATH, Reply(body=CONTENT))
    first = cache.fetch(dist(server))
    second = cache.fetch(dist(server))
    assert second == first
    assert server.hits(PATH) == 1


def test_damaged_cache_entry_is_fetched_again(server: LocalServer, cache: Cache) -> None:
    server.route(PATH, Reply(body=CONTENT))
    artifact = cache.fetch(dist(server))
    artifact.path.write_bytes(CONTENT[:-1] + b"!")  # same size, other bytes
    assert cache.fetch(dist(server)).path.read_bytes() == CONTENT
    assert server.hits(PATH) == 2


def test_hash_mismatch_leaves_nothing(server: LocalServer, cache: Cache) -> None:
    server.route(PATH, Reply(body=CONTENT))
    expected = sha256(b"what the index promised")
    with pytest.raises(FetchError) as caught:
        cache.fetch(dist(server, sha256=expected))
    assert expected in caught.value.message and sha256(CONTENT) in caught.value.message
    assert files_under(cache.root) == []


@pytest.mark.parametrize("send_length", [True, False])
def test_over_long_body_is_aborted(server: LocalServer, cache: Cache, send_length: bool) -> None:
    server.route(PATH, Reply(body=CONTENT * 20, send_length=send_length))
    with pytest.raises(FetchError, match="more than the"):
        cache.fetch(dist(server))
    assert files_under(cache.root) == []


def test_undeclared_size_is_still_bounded(
    server: LocalServer, cache: Cache, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fetch, "MAX_UNDECLARED_BYTES", 1000)
    server.route(PATH, Reply(body=CONTENT, send_length=False))
    with pytest.raises(FetchError, match="more than the 1000 bytes rebuild accepts"):
        cache.fetch(dist(server, size=None))
    assert files_under(cache.root) == []


def test_short_body_is_refused(server: LocalServer, cache: Cache) -> None:
    server.route(PATH, Reply(body=CONTENT[:-10], send_length=False))
    with pytest.raises(FetchError, match="received"):
        cache.fetch(dist(server))
    assert files_under(cache.root) == []


def test_dropped_connection_is_retried(server: LocalServer, cache: Cache) -> None:
    server.route(PATH, Reply(body=CONTENT, cut_after=1000), Reply(body=CONTENT))
    artifact = cache.fetch(dist(server))
    assert artifact.path.read_bytes() == CONTENT
    assert server.hits(PATH) == 2


def test_interrupted_download_leaves_nothing(server: LocalServer, cache: Cache) -> None:
    server.route(PATH, Reply(body=CONTENT, cut_after=1000))
    with pytest.raises(FetchError, match="after 3 attempts"):
        cache.fetch(dist(server))
    assert server.hits(PATH) == 3
    assert files_under(cache.root) == []


def test_ctrl_c_leaves_nothing(server: LocalServer, cache: Cache) -> None:
    server.route(PATH, Reply(body=CONTENT))

    def interrupt(done: int, total: int | None) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cache.fetch(dist(server), progress=interrupt)
    assert files_under(cache.root) == []


def test_server_errors(server: LocalServer, cache: Cache) -> None:
    server.route(PATH, Reply(status=503), Reply(body=CONTENT))
    assert cache.fetch(dist(server)).path.read_bytes() == CONTENT


def test_not_found_is_not_retried(server: LocalServer, cache: Cache) -> None:
    server.route(PATH, Reply(status=404))
    with pytest.raises(FetchError, match="HTTP 404"):
        cache.fetch(dist(server))
    assert server.hits(PATH) == 1


@pytest.mark.parametrize(
    "filename", ["../evil.whl", "a/b.whl", "a\\b.whl", ".hidden.whl", "x\0.whl", "", "..whl"]
)
def test_unsafe_filenames_are_refused(server: LocalServer, cache: Cache, filename: str) -> None:
    with pytest.raises(FetchError, match="not a plain file name"):
        cache.fetch(dist(server, filename=filename))
    assert server.seen == []
    assert not cache.root.exists()


def test_malformed_sha256_is_refused(server: LocalServer, cache: Cache) -> None:
    with pytest.raises(FetchError, match="malformed sha256"):
        cache.fetch(dist(server, sha256="../../" + "0" * 58))
    assert server.seen == []


def test_cache_without_session(server: LocalServer, tmp_path: Path) -> None:
    server.route(PATH, Reply(body=CONTENT))
    artifact = Cache(tmp_path).fetch(dist(server))
    assert artifact.sha256 == sha256(CONTENT)


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("REBUILD_CACHE_DIR", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("REBUILD_CACHE_DIR")
    assert default_cache_dir().name == "rebuild"


def test_local_artifact(tmp_path: Path) -> None:
    path = tmp_path / FILENAME
    path.write_bytes(CONTENT)
    artifact = local_artifact(path)
    assert artifact.sha256 == sha256(CONTENT) == sha256_file(path)
    assert artifact.size == len(CONTENT)
    assert artifact.origin == "local file"
    with pytest.raises(UsageError):
        local_artifact(tmp_path / "missing.whl")
    with pytest.raises(UsageError):
        local_artifact(tmp_path)


def test_unreadable_local_artifact() -> None:
    # A regular file whose read fails even for root: offset 0 of a process's memory is unmapped.
    with pytest.raises(UsageError, match="cannot read"):
        local_artifact(Path("/proc/self/mem"))


@pytest.mark.network
def test_real_attrs_wheel(tmp_path: Path) -> None:
    release = IndexClient(DEFAULT_INDEX_URL).resolve(
        Target.parse("attrs==23.2.0"), WheelSelector("3.11")
    )
    assert release.wheel is not None
    with requests.Session() as session:
        artifact = Cache(tmp_path, session=session).fetch(release.wheel)
    assert artifact.sha256 == "99b87a485a5820b23b879f04c2305b44b951b502fd64be915879d77a7e8fc6f1"
    assert sha256_file(artifact.path) == artifact.sha256
