"""A private index the way pip and uv reach one: PEP 503 HTML or PEP 691 JSON, basic auth in the
URL, its credentials sent to its own host only and never shown; an outage has its own exit code.

The index is a real HTTP server on 127.0.0.1 that refuses every request without the password.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import sqlite3
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import helpers_keyring
import keyring
import pytest
import requests
from helpers_index import (
    SIMPLE_JSON,
    LocalServer,
    Reply,
    Seen,
    file_entry,
    from_the_real_index,
    json_reply,
    local_server,
    project_page,
)

from rebuild import credentials
from rebuild.http import http_session
from rebuild.index import DEFAULT_INDEX_URL
from rebuild.pipeline import newest_zip_time
from rebuild.simple_html import parse_project_page

SECRET = "s3cr3tPW"  # noqa: S105 - the test index's password, grepped for
USER = "alice"
REBUILD = [sys.executable, "-m", "rebuild"]


@pytest.fixture(autouse=True)
def _forget() -> Iterator[None]:
    yield
    credentials.forget()


# --- the credentials themselves -------------------------------------------------------------


def test_register_takes_the_credentials_out_and_keeps_them_for_that_host_only() -> None:
    clean = credentials.register(f"https://{USER}:{SECRET}@index.example:8443/simple/")
    assert clean == "https://index.example:8443/simple/"
    assert credentials.with_credentials("https://index.example:8443/files/a.whl") == (
        f"https://{USER}:{SECRET}@index.example:8443/files/a.whl"
    )
    # Another port, scheme or host is another origin: nothing is added.
    for other in (
        "https://index.example/simple/",
        "http://index.example:8443/simple/",
        "https://files.example:8443/a.whl",
    ):
        assert credentials.with_credentials(other) == other


def test_redact_hides_passwords_and_registered_secrets_but_not_plain_user_names() -> None:
    credentials.register(f"https://{USER}:{SECRET}@index.example/simple/")
    text = (
        f"could not reach https://bob:hunter2@other.example/simple/ (and {SECRET} again); "
        "source at ssh://git@code.example/project.git"
    )
    shown = credentials.redact(text)
    assert "hunter2" not in shown and SECRET not in shown
    assert "https://bob:****@other.example/simple/" in shown
    assert "ssh://git@code.example/project.git" in shown


def test_a_token_as_the_user_name_is_a_secret_too() -> None:
    credentials.register("https://ghp_TOKEN123@index.example/simple/")
    assert "ghp_TOKEN123" not in credentials.redact("GET https://index.example/ ghp_TOKEN123")


def test_variables_expand_as_pip_expands_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INDEX_TOKEN", SECRET)
    clean = credentials.register("https://ci:${INDEX_TOKEN}@index.example/simple/")
    assert clean == "https://index.example/simple/"
    assert credentials.with_credentials(clean) == f"https://ci:{SECRET}@index.example/simple/"
    assert credentials.expand_variables("${UNSET_VARIABLE_HERE}") == "${UNSET_VARIABLE_HERE}"


def test_sessions_send_the_credentials_to_the_index_host_and_nowhere_else() -> None:
    with local_server() as index, local_server() as elsewhere:
        for server in (index, elsewhere):
            server.route("/x", Reply(body=b"ok"))
        credentials.register(index.url("/simple/").replace("http://", f"http://{USER}:{SECRET}@"))
        with http_session() as session:
            session.get(index.url("/x"), timeout=5)
            session.get(elsewhere.url("/x"), timeout=5)
        assert index.seen[-1].headers.get("Authorization") == _basic(USER, SECRET)
        assert "Authorization" not in elsewhere.seen[-1].headers


def _keyring_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, entries: dict[str, list[str]]
) -> Path:
    """The test keyring (tests/helpers_keyring.py) for this process and its children."""
    path = tmp_path / "keyring.json"
    path.write_text(json.dumps({"entries": entries}))
    monkeypatch.setenv("REBUILD_TEST_KEYRING", str(path))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "helpers_keyring.FileKeyring")
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent))
    monkeypatch.delenv("PIP_KEYRING_PROVIDER", raising=False)
    # This process's keyring too, for this test only.
    monkeypatch.setattr(keyring.core, "_keyring_backend", helpers_keyring.FileKeyring())
    return path


def test_the_keyring_answers_an_index_that_wants_a_password_and_nothing_else(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with local_server() as index, local_server() as public:
        _guarded(index)
        for server in (index, public):
            server.route("/x", Reply(body=b"ok"))
        ring = _keyring_file(tmp_path, monkeypatch, {index.url("/simple/"): [USER, SECRET]})
        credentials.register(index.url("/simple/"))
        credentials.register(public.url("/simple/"))
        with http_session() as session:
            first = session.get(index.url("/x"), timeout=5)
            second = session.get(index.url("/x"), timeout=5)
            session.get(public.url("/x"), timeout=5)
        asked = json.loads(ring.read_text())["asked"]
    assert (first.status_code, second.status_code) == (200, 200)
    # The first request got a 401 and was sent again with the keyring's password; the second
    # carried it from the start. The public index, which wants none, was never asked about.
    assert [s.headers.get("Authorization") for s in index.seen] == [
        None,
        _basic(USER, SECRET),
        _basic(USER, SECRET),
    ]
    assert asked == [index.url("/simple/")]
    assert "Authorization" not in public.seen[-1].headers
    assert credentials.redact(f"failed: {SECRET}") == "failed: ****"


def test_a_user_name_alone_asks_the_keyring_for_that_users_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with local_server() as index:
        _guarded(index)
        index.route("/x", Reply(body=b"ok"))
        _keyring_file(tmp_path, monkeypatch, {index.url("/simple/"): [USER, SECRET]})
        credentials.register(index.url("/simple/").replace("http://", f"http://{USER}@"))
        with http_session() as session:
            answer = session.get(index.url("/x"), timeout=5)
    assert answer.status_code == 200
    assert index.seen[-1].headers.get("Authorization") == _basic(USER, SECRET)


def test_pip_keyring_provider_disabled_keeps_the_keyring_shut(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with local_server() as index:
        index.route("/x", Reply(body=b"ok"))
        _guarded(index)
        ring = _keyring_file(tmp_path, monkeypatch, {index.url("/simple/"): [USER, SECRET]})
        monkeypatch.setenv("PIP_KEYRING_PROVIDER", "disabled")
        credentials.register(index.url("/simple/"))
        with http_session() as session:
            answer = session.get(index.url("/x"), timeout=5)
    assert answer.status_code == 401
    assert "Authorization" not in index.seen[-1].headers
    assert "asked" not in json.loads(ring.read_text())


# --- PEP 503 pages ------------------------------------------------------------------------------


def test_an_html_page_reads_as_its_json_would() -> None:
    page = (
        "<!DOCTYPE html><html><body>"
        '<a href="../../files/demo-1.0-py3-none-any.whl#sha256=ABCD" '
        'data-requires-python="&gt;=3.8" data-core-metadata="sha256=beef">'
        "demo-1.0-py3-none-any.whl</a>"
        '<a href="/files/demo-1.0.tar.gz#sha256=abcd" data-yanked="broken">demo-1.0.tar.gz</a>'
        '<a name="no-href">nothing</a>'
        "</body></html>"
    )
    parsed = parse_project_page(page, "http://127.0.0.1:8080/simple/demo/")
    files = parsed["files"]
    assert isinstance(files, list)
    wheel, sdist = files
    assert wheel == {
        "filename": "demo-1.0-py3-none-any.whl",
        "url": "http://127.0.0.1:8080/files/demo-1.0-py3-none-any.whl",
        "hashes": {"sha256": "abcd"},
        "requires-python": ">=3.8",
        "core-metadata": {"sha256": "beef"},
    }
    assert sdist["yanked"] == "broken"
    assert "upload-time" not in wheel  # HTML has none (PEP 700 is JSON only)


def test_an_html_page_with_too_many_links_is_refused() -> None:
    from rebuild import simple_html

    page = '<a href="x.whl">x</a>' * (simple_html.MAX_LINKS + 1)
    with pytest.raises(ValueError, match="more than"):
        parse_project_page(page, "http://127.0.0.1/simple/x/")


def test_the_newest_zip_timestamp_stands_in_for_an_upload_time(tmp_path: Path) -> None:
    wheel = tmp_path / "demo-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(zipfile.ZipInfo("a.py", (2021, 5, 5, 10, 0, 0)), b"")
        archive.writestr(zipfile.ZipInfo("b.py", (2021, 5, 6, 11, 30, 2)), b"")
    assert newest_zip_time(wheel) is not None
    assert newest_zip_time(wheel).isoformat() == "2021-05-06T11:30:02+00:00"  # type: ignore[union-attr]
    placeholder = tmp_path / "placeholder-1.0-py3-none-any.whl"
    with zipfile.ZipFile(placeholder, "w") as archive:
        archive.writestr(zipfile.ZipInfo("a.py", (1980, 1, 1, 0, 0, 0)), b"")
    assert newest_zip_time(placeholder) is None


# --- a real private index -----------------------------------------------------------------------


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _guarded(server: LocalServer) -> None:
    """Refuse every request to the index without the password, as a private index does."""
    answer = server.next_reply

    def next_reply(path: str, headers: dict[str, str]) -> Reply:
        if headers.get("Authorization") != _basic(USER, SECRET):
            server.seen.append(Seen(path, headers))
            return Reply(status=401, body=b"auth", headers={"WWW-Authenticate": 'Basic realm="x"'})
        return answer(path, headers)

    server.next_reply = next_reply  # type: ignore[method-assign]


@pytest.fixture(scope="module")
def six_files() -> dict[str, bytes]:
    """six 1.16.0's wheel and sdist, as the real index serves them."""
    page = requests.get(
        f"{DEFAULT_INDEX_URL}six/", headers={"Accept": SIMPLE_JSON}, timeout=30
    ).json()
    wanted = {"six-1.16.0-py2.py3-none-any.whl", "six-1.16.0.tar.gz"}
    files = {}
    for entry in page["files"]:
        if entry["filename"] in wanted:
            body = requests.get(entry["url"], timeout=60).content
            assert hashlib.sha256(body).hexdigest() == entry["hashes"]["sha256"]
            files[entry["filename"]] = body
    assert set(files) == wanted
    return files


def _html_page(server: LocalServer, files: dict[str, bytes]) -> Reply:
    links = []
    for name, body in files.items():
        server.route(f"/files/{name}", Reply(body=body))
        href = f"../../files/{name}#sha256={hashlib.sha256(body).hexdigest()}"
        links.append(f'<a href="{html.escape(href)}">{html.escape(name)}</a>')
    page = "<!DOCTYPE html><html><body>" + "<br>".join(links) + "</body></html>"
    return Reply(body=page.encode(), headers={"Content-Type": "text/html; charset=utf-8"})


def _authed(server: LocalServer) -> str:
    return server.url("/simple/").replace("http://", f"http://{USER}:{SECRET}@")


def _nothing_shows_the_secret(*texts: str | bytes) -> None:
    for text in texts:
        data = text.encode() if isinstance(text, str) else text
        assert SECRET.encode() not in data


@pytest.mark.network
@pytest.mark.parametrize("page", ["html", "json"])
def test_resolve_on_a_private_index_shows_no_password(
    page: str, six_files: dict[str, bytes], tmp_path: Path
) -> None:
    with local_server() as server:
        _guarded(server)
        if page == "html":
            server.route("/simple/six/", _html_page(server, six_files))
        else:
            entries = [file_entry(server, n, b) for n, b in six_files.items()]
            server.route("/simple/six/", json_reply(project_page("six", entries, None)))
        report = tmp_path / "resolve.json"
        done = subprocess.run(
            [*REBUILD, "resolve", "six==1.16.0", "--index-url", _authed(server), "--json", report],
            capture_output=True,
            text=True,
            check=False,
        )
        missing = subprocess.run(
            [*REBUILD, "resolve", "nosuchproject==1.0", "--index-url", _authed(server)],
            capture_output=True,
            text=True,
            check=False,
        )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "six-1.16.0-py2.py3-none-any.whl" in done.stdout
    assert missing.returncode == 3, missing.stdout + missing.stderr
    assert server.url("/simple/") in report.read_text()
    _nothing_shows_the_secret(
        done.stdout, done.stderr, missing.stdout, missing.stderr, report.read_bytes()
    )


@pytest.mark.network
def test_resolve_takes_the_password_from_the_keyring_and_shows_it_nowhere(
    six_files: dict[str, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with local_server() as server:
        _guarded(server)
        server.route("/simple/six/", _html_page(server, six_files))
        _keyring_file(tmp_path, monkeypatch, {server.url("/simple/"): [USER, SECRET]})
        done = subprocess.run(
            [
                *REBUILD,
                "resolve",
                "six==1.16.0",
                "--index-url",
                server.url("/simple/"),
                "--json",
                "-",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "six-1.16.0-py2.py3-none-any.whl" in done.stdout
    _nothing_shows_the_secret(done.stdout, done.stderr)


def test_an_unreachable_index_is_an_outage_not_a_missing_release(tmp_path: Path) -> None:
    with local_server() as server:
        closed = _authed(server)
    # The server is gone: its port refuses connections.
    done = subprocess.run(
        [*REBUILD, "resolve", "six==1.16.0", "--index-url", closed],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 12, done.stdout + done.stderr
    assert "could not reach" in done.stderr
    _nothing_shows_the_secret(done.stdout, done.stderr)


@pytest.mark.network
@pytest.mark.docker
def test_a_batch_against_a_private_html_index_leaks_the_password_nowhere(
    six_files: dict[str, bytes], tmp_path: Path, shared_cache: Path
) -> None:
    store, summary, site = tmp_path / "store.sqlite", tmp_path / "summary.json", tmp_path / "site"
    deps = tmp_path / "deps.txt"
    deps.write_text("six==1.16.0\n")
    cache = tmp_path / "cache"  # its own: the downloads must go through the private index
    with local_server() as server:
        _guarded(server)
        server.fallback = from_the_real_index
        server.route("/simple/six/", _html_page(server, six_files))
        index = _authed(server)
        batch = subprocess.run(
            [
                *REBUILD,
                "batch",
                deps,
                "--store",
                store,
                "--index-url",
                index,
                "--json",
                summary,
                "--cache-dir",
                cache,
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=900,
        )
        asked = [s for s in server.seen if s.path.startswith(("/simple/six/", "/files/six"))]
    assert batch.returncode == 0, batch.stdout[-3000:] + batch.stderr[-3000:]
    # The wheel and the sdist came from the private index, with the credentials.
    assert {s.path for s in asked} >= {"/simple/six/", "/files/six-1.16.0-py2.py3-none-any.whl"}
    review = subprocess.run(
        [
            *REBUILD,
            "review",
            "--store",
            str(store),
            "--html",
            str(site),
            "--json",
            str(tmp_path / "r.json"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert review.returncode == 0, review.stdout + review.stderr
    files = [p for p in (*tmp_path.rglob("*"), *cache.rglob("*")) if p.is_file()]
    _nothing_shows_the_secret(
        batch.stdout, batch.stderr, review.stdout, review.stderr, *(p.read_bytes() for p in files)
    )
    # No upload time on an HTML page: the build was time-warped to the wheel's zip timestamps,
    # and the stored report says so.
    with sqlite3.connect(store) as db:
        notes = " ".join(row[0] for row in db.execute("SELECT notes_json FROM results"))
    assert "resolved as of the wheel's newest zip timestamp" in notes, notes
