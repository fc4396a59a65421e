"""Several indexes, as pip reads --index-url with --extra-index-url: the release comes from the
first that has it (or the one with the wheel a lock names), and a report warns when another one
serves it with other bytes, which pip, merging the indexes, might install instead.

Each index is a real HTTP server on 127.0.0.1 serving PEP 691 JSON pages.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers_index import LocalServer, file_entry, json_reply, local_server, project_page

from rebuild import credentials
from rebuild.errors import ResolveError
from rebuild.indexes import choose_extra_index_urls, resolve_across
from rebuild.models import Target, WheelSelector

WHEEL = "demo-1.0-py3-none-any.whl"
SDIST = "demo-1.0.tar.gz"
TARGET = Target.parse("demo==1.0")


@pytest.fixture(autouse=True)
def _forget() -> Iterator[None]:
    yield
    credentials.forget()


def _serve(server: LocalServer, files: dict[str, bytes]) -> None:
    entries = [file_entry(server, name, body) for name, body in files.items()]
    server.route("/simple/demo/", json_reply(project_page("demo", entries, ["1.0"])))


def _urls(*servers: LocalServer) -> list[str]:
    return [s.url("/simple/") for s in servers]


def test_a_release_missing_from_the_primary_comes_from_an_extra_index_and_says_so() -> None:
    with local_server() as primary, local_server() as extra:
        _serve(extra, {WHEEL: b"wheel", SDIST: b"sdist"})
        resolved = resolve_across(_urls(primary, extra), TARGET, WheelSelector())
    assert resolved.index.index_url == extra.url("/simple/")
    assert resolved.release.wheel is not None and resolved.release.wheel.filename == WHEEL
    assert resolved.notes == (
        f"demo==1.0 is not on {primary.url('/simple/')}: verified from the extra index "
        f"{extra.url('/simple/')}",
    )


def test_the_same_release_with_other_bytes_on_another_index_is_a_warning() -> None:
    with local_server() as primary, local_server() as extra:
        _serve(primary, {WHEEL: b"wheel", SDIST: b"sdist"})
        _serve(extra, {WHEEL: b"not the same wheel", SDIST: b"sdist"})
        resolved = resolve_across(_urls(primary, extra), TARGET, WheelSelector())
    assert resolved.index.index_url == primary.url("/simple/")
    (note,) = resolved.notes
    assert note.startswith(f"WARNING: {extra.url('/simple/')} also serves demo==1.0")
    assert f"1 file(s) of the same name with other bytes ({WHEEL})" in note
    assert "pip, which merges the indexes, may install those instead" in note


def test_the_same_files_on_another_index_are_said_plainly_not_warned() -> None:
    with local_server() as primary, local_server() as extra:
        files = {WHEEL: b"wheel", SDIST: b"sdist"}
        _serve(primary, files)
        _serve(extra, {WHEEL: files[WHEEL]})  # a mirror holding some of them, byte for byte
        resolved = resolve_across(_urls(primary, extra), TARGET, WheelSelector())
    assert resolved.notes == (
        f"{extra.url('/simple/')} serves demo==1.0 too, with none but the same files",
    )


def test_a_lock_hash_picks_the_index_that_serves_the_locked_wheel() -> None:
    locked = b"the wheel the lock was written against"
    with local_server() as primary, local_server() as extra:
        _serve(primary, {WHEEL: b"wheel"})
        _serve(extra, {WHEEL: locked})
        resolved = resolve_across(
            _urls(primary, extra),
            TARGET,
            WheelSelector(),
            hashes={hashlib.sha256(locked).hexdigest()},
        )
    assert resolved.index.index_url == extra.url("/simple/")
    assert any(
        n.startswith(f"WARNING: {primary.url('/simple/')} also serves") for n in resolved.notes
    )


def test_no_index_having_it_is_the_primarys_answer_naming_the_extras() -> None:
    with (
        local_server() as primary,
        local_server() as extra,
        pytest.raises(ResolveError) as caught,
    ):
        resolve_across(_urls(primary, extra), TARGET, WheelSelector())
    assert caught.value.message.startswith("no project named 'demo' on ")
    assert f"nor on the 1 extra index(es): {extra.url('/simple/')}" in caught.value.message


def test_an_unreachable_extra_index_is_a_note_not_a_failure() -> None:
    with local_server() as gone:
        unreachable = gone.url("/simple/")
    with local_server() as primary:
        _serve(primary, {WHEEL: b"wheel"})
        resolved = resolve_across([primary.url("/simple/"), unreachable], TARGET, WheelSelector())
    assert resolved.notes == (
        f"the extra index {unreachable} could not be reached: it was not compared",
    )


def test_extra_indexes_come_from_pip_s_variable_and_lose_their_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "PIP_EXTRA_INDEX_URL", "https://a.example/simple https://u:pw@b.example/simple/"
    )
    assert choose_extra_index_urls() == ("https://a.example/simple/", "https://b.example/simple/")
    assert choose_extra_index_urls(["https://c.example/simple"]) == ("https://c.example/simple/",)


def test_resolve_on_the_command_line_reads_extra_indexes_and_warns(tmp_path: Path) -> None:
    with local_server() as primary, local_server() as extra:
        _serve(primary, {WHEEL: b"wheel"})
        _serve(extra, {WHEEL: b"another wheel"})
        report = tmp_path / "resolve.json"
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "rebuild",
                "resolve",
                "demo==1.0",
                "--index-url",
                primary.url("/simple/"),
                "--extra-index-url",
                extra.url("/simple/"),
                "--json",
                str(report),
            ],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "NO_COLOR": "1"},
        )
    assert done.returncode == 0, done.stderr
    assert f"note: WARNING: {extra.url('/simple/')} also serves demo==1.0" in done.stderr
    assert json.loads(report.read_text())["notes"][0].startswith("WARNING: ")
