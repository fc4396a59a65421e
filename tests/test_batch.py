"""`rebuild batch`: inputs, locked hashes, real container builds in parallel, reuse, and resume
after `kill -9`."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tarfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import SESSION, ServeRelease
from helpers_index import LocalServer, sha256
from sdists import BACKEND, PYPROJECT, SDE, build_on_host

from rebuild.batch import BatchOptions, locked_selector, run_batch
from rebuild.container import SESSION_LABEL
from rebuild.container import engine as container_engine
from rebuild.errors import EXIT_NEEDS_REVIEW, FetchError, UsageError
from rebuild.inputs import InputFormat, PinnedRelease, marker_environment, read_input
from rebuild.models import DistFile, DistKind, Release, Target, Verdict, WheelSelector
from rebuild.store import Attention, Store

A, B, C = "a" * 64, "b" * 64, "c" * 64


# --- inputs --------------------------------------------------------------------------------


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_requirements_with_hashes_continuations_comments_and_includes(tmp_path: Path) -> None:
    write(tmp_path / "more.txt", "six==1.16.0\n")
    deps = write(
        tmp_path / "requirements.txt",
        f"""# pinned by a tool
--index-url https://example.invalid/simple
attrs==23.2.0 \\
    --hash=sha256:{A} \\
    --hash sha256:{B.upper()}
click[extra]==8.1.7 ; python_version >= "3.8"  # why not
-r more.txt
attrs==23.2.0 --hash=sha256:{A} --hash=sha256:{B}
""",
    )
    batch = read_input(deps)
    assert batch.format is InputFormat.REQUIREMENTS
    # The index in force holds in the -r include too, as in pip.
    assert [(str(r.target), r.origin, r.index_url) for r in batch.releases] == [
        ("attrs==23.2.0", "requirements.txt:3", "https://example.invalid/simple"),
        ("click==8.1.7", "requirements.txt:6", "https://example.invalid/simple"),
        ("six==1.16.0", "more.txt:1", "https://example.invalid/simple"),
    ]
    assert batch.releases[0].hashes == frozenset({A, B})
    assert batch.releases[1].hashes == frozenset()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("attrs>=23", "deps.txt:2: 'attrs>=23' is not pinned to one release"),
        ("attrs", "deps.txt:2: 'attrs' is not pinned to one release"),
        ("attrs==23.*", "deps.txt:2: 'attrs==23.*' is not pinned"),
        ("attrs==23.2.0,!=1", "deps.txt:2: 'attrs==23.2.0,!=1' is not pinned"),
        ("attrs @ https://x.invalid/a.whl", "deps.txt:2: .* names a URL"),
        ("attrs==23.2.0 --hash=sha256:123", "deps.txt:2: 'sha256:123' is not a sha256"),
        ("--frobnicate", "deps.txt:2: unknown option"),
    ],
)
def test_a_line_that_pins_no_single_release_is_named(
    tmp_path: Path, line: str, message: str
) -> None:
    deps = write(tmp_path / "deps.txt", f"six==1.16.0\n{line}\n")
    with pytest.raises(UsageError, match=message):
        read_input(deps)


def test_the_same_release_pinned_with_other_hashes_is_refused(tmp_path: Path) -> None:
    deps = write(
        tmp_path / "deps.txt", f"six==1.16.0 --hash=sha256:{A}\nsix==1.16 --hash=sha256:{B}\n"
    )
    with pytest.raises(UsageError, match=r"deps.txt:2: six==1.16 is pinned again"):
        read_input(deps)


def test_pylock_packages_with_their_wheel_and_sdist_hashes(tmp_path: Path) -> None:
    lock = write(
        tmp_path / "pylock.toml",
        f"""lock-version = "1.0"
created-by = "a locker"

[[packages]]
name = "attrs"
version = "23.2.0"
index = "https://example.invalid/simple"
wheels = [{{ name = "attrs-23.2.0-py3-none-any.whl", hashes = {{ sha256 = "{A}" }} }}]
sdist = {{ name = "attrs-23.2.0.tar.gz", hashes = {{ sha256 = "{B}" }} }}

[[packages]]
name = "myapp"
directory = {{ path = "." }}

[[packages]]
name = "Click"
version = "8.1.7"
wheels = [{{ name = "click-8.1.7-py3-none-any.whl", hashes = {{ sha256 = "{C}" }} }}]
""",
    )
    batch = read_input(lock)
    assert batch.format is InputFormat.PYLOCK
    assert [(str(r.target), r.hashes, r.index_url) for r in batch.releases] == [
        ("attrs==23.2.0", frozenset({A, B}), "https://example.invalid/simple"),
        ("Click==8.1.7", frozenset({C}), None),
    ]
    assert batch.skipped == (
        "myapp (pylock.toml: packages[2] (myapp)): from a directory, not an index",
    )


def test_pylock_package_without_version_is_unpinned(tmp_path: Path) -> None:
    lock = write(tmp_path / "pylock.toml", 'lock-version = "1.0"\n[[packages]]\nname = "attrs"\n')
    with pytest.raises(UsageError, match=r"packages\[1\] \(attrs\) has no version"):
        read_input(lock)


def test_uv_lock_registry_packages_only(tmp_path: Path) -> None:
    lock = write(
        tmp_path / "uv.lock",
        f"""version = 1
requires-python = ">=3.11"

[[package]]
name = "attrs"
version = "23.2.0"
source = {{ registry = "https://pypi.org/simple" }}
sdist = {{ url = "https://x.invalid/attrs-23.2.0.tar.gz", hash = "sha256:{B}", size = 1 }}
wheels = [{{ url = "https://x.invalid/attrs-23.2.0-py3-none-any.whl", hash = "sha256:{A}" }}]

[[package]]
name = "myapp"
version = "0.1.0"
source = {{ editable = "." }}
dependencies = [{{ name = "attrs" }}]
""",
    )
    batch = read_input(lock)
    assert batch.format is InputFormat.UV_LOCK
    (attrs,) = batch.releases
    assert (str(attrs.target), attrs.hashes, attrs.index_url) == (
        "attrs==23.2.0",
        frozenset({A, B}),
        "https://pypi.org/simple",
    )
    assert batch.skipped == ("myapp (uv.lock: package[2] (myapp)): source editable, not an index",)


def dist(filename: str, digest: str, kind: DistKind = DistKind.WHEEL) -> DistFile:
    return DistFile(filename, f"https://x.invalid/{filename}", digest, kind)


def test_the_wheel_checked_is_the_one_the_lock_names() -> None:
    native = dist("pkg-1.0-cp311-cp311-manylinux_2_17_x86_64.whl", A)
    pure = dist("pkg-1.0-py3-none-any.whl", B)
    release = Release(
        target=Target("pkg", "1.0"),
        index_url="https://x.invalid/simple/",
        selector=WheelSelector(python="3.11", platform="manylinux_2_17_x86_64"),
        files=(native, pure, dist("pkg-1.0.tar.gz", C, DistKind.SDIST)),
        wheel=native,  # what the tags would choose
        sdist=None,
    )
    base = WheelSelector(python="3.11", platform="manylinux_2_17_x86_64")
    locked = PinnedRelease(Target("pkg", "1.0"), "deps.txt:1", frozenset({B, C}))
    assert locked_selector(release, locked, base).filename == pure.filename
    both = PinnedRelease(Target("pkg", "1.0"), "deps.txt:1", frozenset({A, B}))
    assert locked_selector(release, both, base).filename == native.filename
    stranger = PinnedRelease(Target("pkg", "1.0"), "deps.txt:1", frozenset({"d" * 64}))
    with pytest.raises(FetchError, match=r"no wheel of pkg==1\.0 .* deps\.txt:1 names"):
        locked_selector(release, stranger, base)


# --- real builds, offline: a local index serving sdists the tests make ----------------------

CODE = b'"""A test package."""\n\nANSWER = 42\n'


def _backend_for(name: str, version: str) -> str:
    source = BACKEND
    for old, new in (
        ('NAME, VERSION = "demo", "1.0"', f'NAME, VERSION = "{name}", "{version}"'),
        (
            'os.path.join(HERE, "demo", "__init__.py")',
            f'os.path.join(HERE, "{name}", "__init__.py")',
        ),
        ('"demo/__init__.py": code', f'"{name}/__init__.py": code'),
        ("Name: demo\\nVersion: 1.0", f"Name: {name}\\nVersion: {version}"),
    ):
        assert source.count(old) == 1, old
        source = source.replace(old, new)
    return source


def make_release(
    out: Path, name: str, version: str, mode: str = "ok", published_code: bytes = CODE
) -> tuple[Path, Path]:
    """(published wheel, sdist) of ``name`` ``version``; the sdist's backend acts as ``mode``.

    A ``published_code`` other than the sdist's makes a published wheel no rebuild reproduces.
    """
    backend = _backend_for(name, version)
    sdist = out / "sdist" / f"{name}-{version}.tar.gz"
    sdist.parent.mkdir(parents=True, exist_ok=True)
    files = {
        "PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        "pyproject.toml": PYPROJECT.encode(),
        "backend.py": backend.encode(),
        "mode.txt": mode.encode(),
        f"{name}/__init__.py": CODE,
    }
    with tarfile.open(sdist, "w:gz") as tar:
        for member, data in files.items():
            info = tarfile.TarInfo(f"{name}-{version}/{member}")
            info.size, info.mtime, info.mode = len(data), SDE, 0o644
            tar.addfile(info, io.BytesIO(data))
    tree = out / f"tree-{name}-{version}"
    (tree / name).mkdir(parents=True)
    (tree / "backend.py").write_text(backend)
    (tree / "mode.txt").write_text("ok")
    (tree / name / "__init__.py").write_bytes(published_code)
    wheels = out / "published"
    wheels.mkdir(exist_ok=True)
    return build_on_host(tree, wheels), sdist


TAMPERED = CODE + b"__import__('os').system('id')\n"


def publish(
    tmp_path: Path, serve: ServeRelease, releases: dict[str, list[tuple[str, str, bytes]]]
) -> str:
    """Serve each project's releases, given as (version, mode, published code)."""
    url = ""
    for name, versions in releases.items():
        files: list[Path] = []
        for version, mode, code in versions:
            files += make_release(tmp_path / name, name, version, mode, code)
        url = serve(name, *files)
    return url


def deps_file(tmp_path: Path, lines: list[str]) -> Path:
    return write(tmp_path / "deps.txt", "\n".join(lines) + "\n")


@pytest.mark.docker
def test_a_batch_verifies_in_parallel_records_everything_and_leads_with_the_regression(
    tmp_path: Path, local_index: tuple[LocalServer, ServeRelease]
) -> None:
    url = publish(
        tmp_path,
        local_index[1],
        {
            "alpha": [("1.0", "ok", CODE), ("1.1", "ok", TAMPERED)],
            "beta": [("1.0", "fail", CODE)],
            "gamma": [("2.0", "hang", CODE)],
        },
    )
    batch = read_input(deps_file(tmp_path, ["alpha==1.0", "alpha==1.1", "beta==1.0", "gamma==2.0"]))
    options = BatchOptions(
        jobs=2,
        timeout_s=6,
        index_url=url,
        cache_dir=tmp_path / "cache",
        selector=WheelSelector(python="3.11"),
    )
    started = time.monotonic()
    with Store(tmp_path / "results.sqlite") as store:
        result = run_batch(batch, store, options)
        elapsed = time.monotonic() - started
        verdicts = {str(o.release.target): o.verdict for o in result.outcomes}
        assert verdicts == {
            "alpha==1.0": Verdict.REPRODUCIBLE,
            "alpha==1.1": Verdict.DIVERGENT,
            "beta==1.0": Verdict.FAILED,
            "gamma==2.0": Verdict.FAILED,
        }
        order = [(e.attention, e.result.project, e.result.version) for e in result.review.entries]
        assert order == [
            (Attention.REGRESSION, "alpha", "1.1"),
            (Attention.FAILED, "beta", "1.0"),
            (Attention.FAILED, "gamma", "2.0"),
            (Attention.REPRODUCIBLE, "alpha", "1.0"),
        ]
        assert result.exit_code == EXIT_NEEDS_REVIEW
        regressed = result.review.entries[0].result
        (first, *_) = store.divergences(regressed.id)
        assert (first.member, first.explained) == ("alpha/__init__.py", False)
        assert "system('id')" in first.detail
        hung = store.current("gamma", "2.0")
        assert hung is not None and "did not finish within 6 s" in (hung.failure_message or "")
        good = store.current("alpha", "1.0")
        assert good is not None and good.image_id and good.plan_digest
        assert good.report_path is not None and good.report_path.is_file()
        assert good.log_path is not None and good.log_path.is_file()
        assert json.loads(good.report_path.read_text())["verdict"] == "reproducible"
        stages = dict(store.timings(good.id))
        assert {"resolve", "fetch", "plan", "prepare", "build", "compare", "total"} <= set(stages)
        # Two at a time: the hanging build (6 s) overlaps the others.
        assert elapsed < sum(o.seconds for o in result.outcomes)

        # Run again: verdicts reached by this version with the same plan are reused; failures
        # are retried.
        again = run_batch(batch, store, options)
        assert {str(o.release.target): o.reused for o in again.outcomes} == {
            "alpha==1.0": True,
            "alpha==1.1": True,
            "beta==1.0": False,
            "gamma==2.0": False,
        }
        assert [i.reused for i in store.run_items(again.run_id)] == [True, True, False, False]
        forced = run_batch(batch, store, replace(options, force=True))
        assert not any(o.reused for o in forced.outcomes)
        assert len(store.history("alpha")) == 4  # two versions, each verified twice
        assert store.count("results") == 4 + 2 + 4


@pytest.mark.docker
def test_a_lock_hash_that_matches_no_wheel_fails_without_a_build(
    tmp_path: Path, local_index: tuple[LocalServer, ServeRelease]
) -> None:
    url = publish(tmp_path, local_index[1], {"alpha": [("1.0", "ok", CODE)]})
    wheel = tmp_path / "alpha" / "published" / "alpha-1.0-py3-none-any.whl"
    right = sha256(wheel.read_bytes())
    batch = read_input(deps_file(tmp_path, [f"alpha==1.0 --hash=sha256:{right}"]))
    wrong = read_input(write(tmp_path / "wrong.txt", f"alpha==1.0 --hash=sha256:{A}\n"))
    options = BatchOptions(index_url=url, cache_dir=tmp_path / "cache")
    with Store(tmp_path / "results.sqlite") as store:
        (ok,) = run_batch(batch, store, options).outcomes
        assert ok.verdict is Verdict.REPRODUCIBLE
        stored = store.result(ok.result_id)
        assert stored is not None and stored.wheel_sha256 == right
        (bad,) = run_batch(wrong, store, options).outcomes
        failed = store.result(bad.result_id)
        assert failed is not None and failed.verdict is Verdict.FAILED
        assert failed.failure_stage == "fetch"
        assert "wrong.txt:1 names" in (failed.failure_message or "")
        assert failed.image_id is None  # refused before any build


@pytest.mark.docker
def test_a_reused_verdict_asks_the_index_nothing_while_its_answer_is_fresh(
    tmp_path: Path, local_index: tuple[LocalServer, ServeRelease]
) -> None:
    server, serve = local_index
    url = publish(tmp_path, serve, {"alpha": [("1.0", "ok", CODE)]})
    page = "/simple/alpha/"
    batch = read_input(deps_file(tmp_path, ["alpha==1.0"]))
    cache = tmp_path / "cache"
    options = BatchOptions(index_url=url, cache_dir=cache, selector=WheelSelector(python="3.11"))
    with Store(tmp_path / "results.sqlite") as store:
        (first,) = run_batch(batch, store, options).outcomes
        assert first.verdict is Verdict.REPRODUCIBLE and not first.reused
        asked = server.hits(page)
        assert asked >= 1

        (again,) = run_batch(batch, store, options).outcomes
        assert again.reused and server.hits(page) == asked  # answered from the store alone

        (refreshed,) = run_batch(batch, store, replace(options, refresh=True)).outcomes
        assert refreshed.reused and server.hits(page) == asked + 1
        asked += 1

        # What is remembered can only narrow reuse: an entry naming other bytes, or one too
        # old, sends the batch back to the index, whose answer decides.
        (entry,) = (cache / "releases").glob("*.json")
        document = json.loads(entry.read_text())
        real = document["release"]["files"][document["release"]["wheel"]]["sha256"]
        document["release"]["files"][document["release"]["wheel"]]["sha256"] = A
        entry.write_text(json.dumps(document))
        (spoilt,) = run_batch(batch, store, options).outcomes
        assert spoilt.reused and server.hits(page) == asked + 1
        remembered = json.loads(entry.read_text())["release"]
        assert remembered["files"][remembered["wheel"]]["sha256"] == real  # the index's again
        asked += 1

        document = json.loads(entry.read_text())
        document["seen"] = "2020-01-01T00:00:00+00:00"
        entry.write_text(json.dumps(document))
        (stale,) = run_batch(batch, store, options).outcomes
        assert stale.reused and server.hits(page) == asked + 1


def containers_of(root: Path) -> list[Any]:
    """rebuild's containers whose mounts are under ``root`` (this test's, not a neighbour's)."""
    found = container_engine().containers.list(
        all=True, sparse=True, filters={"label": f"{SESSION_LABEL}={SESSION}"}
    )
    return [
        c
        for c in found
        if any(m.get("Source", "").startswith(str(root)) for m in c.attrs.get("Mounts", []))
    ]


def remove_containers_of(root: Path) -> list[str]:
    removed = []
    for container in containers_of(root):
        container.remove(force=True)
        removed.append(str(container.short_id))
    return removed


def _count_results(store: Path) -> int:
    try:
        with contextlib.closing(sqlite3.connect(store, timeout=5)) as db:
            return int(db.execute("SELECT count(*) FROM results").fetchone()[0])
    except sqlite3.OperationalError:
        return 0  # not created yet


@pytest.mark.docker
def test_a_batch_killed_mid_way_is_finished_by_the_rerun(
    tmp_path: Path, local_index: tuple[LocalServer, ServeRelease]
) -> None:
    names = ["alpha", "beta", "gamma", "delta", "epsilon"]
    url = publish(tmp_path, local_index[1], {n: [("1.0", "ok", CODE)] for n in names})
    deps = deps_file(tmp_path, [f"{n}==1.0" for n in names])
    store = tmp_path / "results.sqlite"
    cli = [
        sys.executable,
        "-m",
        "rebuild",
        "batch",
        str(deps),
        "--store",
        str(store),
        "--index-url",
        url,
        "--cache-dir",
        str(tmp_path / "cache"),
        "--python",
        "3.11",
    ]
    with subprocess.Popen(cli, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as first:
        deadline = time.monotonic() + 180
        # Mid-way and mid-build: two results stored, the third release's container running.
        while _count_results(store) < 2 or not containers_of(tmp_path):
            assert first.poll() is None, "the batch ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)
    done_before = _count_results(store)
    assert 2 <= done_before < len(names)
    # A build container the killed batch was running stays behind (no process is left to
    # remove it). The test removes it the way rebuild.container.remove_leftovers does, but only
    # this batch's: other checks may be running on the same engine.
    removed = remove_containers_of(tmp_path)
    print(f"removed {len(removed)} container(s) left by the killed batch: {removed}")
    # Usually one; none if the build finished in the instant between the look and the kill.
    assert len(removed) <= 1

    rerun = subprocess.run(
        [*cli, "--json", str(tmp_path / "summary.json")], capture_output=True, text=True
    )
    assert rerun.returncode == 0, rerun.stderr
    assert "was killed before it finished" in rerun.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["run"]["killed_runs"] == [1]
    assert summary["run"]["reused"] == done_before
    assert summary["run"]["checked"] == len(names) - done_before
    with contextlib.closing(sqlite3.connect(store)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        rows = db.execute(
            "SELECT project, count(*), sum(current) FROM results JOIN releases "
            "ON releases.id = results.release_id GROUP BY project ORDER BY project"
        ).fetchall()
        # Every release has exactly one result, and it is current: nothing verified twice.
        assert rows == [(n, 1, 1) for n in sorted(names)]
        assert db.execute(
            "SELECT count(*) FROM results r WHERE r.divergences != "
            "(SELECT count(*) FROM divergences WHERE result_id = r.id)"
        ).fetchone() == (0,)
        assert db.execute("SELECT id, status FROM runs ORDER BY id").fetchall() == [
            (1, "interrupted"),
            (2, "finished"),
        ]
    assert containers_of(tmp_path) == []


# --- real releases from the public index -----------------------------------------------------


@pytest.mark.network
@pytest.mark.docker
def test_real_releases_end_to_end(tmp_path: Path, shared_cache: Path) -> None:
    deps = deps_file(tmp_path, ["attrs==23.2.0", "click==8.1.7"])
    store = tmp_path / "results.sqlite"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "rebuild",
            "batch",
            str(deps),
            "--jobs",
            "2",
            "--store",
            str(store),
            "--cache-dir",
            str(shared_cache),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert done.returncode == 0, done.stderr
    assert "2 verified, 0 reused" in done.stdout
    history = subprocess.run(
        [sys.executable, "-m", "rebuild", "history", "attrs", "--store", str(store)],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert "attrs==23.2.0  reproducible" in history.stdout
    assert datetime.now(UTC).strftime("%Y-%m-%d") in history.stdout


def test_markers_are_evaluated_for_the_target_interpreter_and_platform(tmp_path: Path) -> None:
    deps = write(
        tmp_path / "deps.txt",
        "six==1.16.0\n"
        'pywin32==306 ; sys_platform == "win32"\n'
        'tomli==2.0.1 ; python_version < "3.11"\n'
        'exceptiongroup==1.2.0 ; python_version < "3.11" and sys_platform == "linux"\n',
    )
    linux_311 = read_input(deps, marker_environment("3.11", "manylinux_2_17_x86_64"))
    assert [str(r.target) for r in linux_311.releases] == ["six==1.16.0"]
    assert len(linux_311.skipped) == 3
    assert any(
        'pywin32 (deps.txt:2): its marker `sys_platform == "win32"` is false for Python 3.11'
        in line
        for line in linux_311.skipped
    ), linux_311.skipped
    windows_310 = read_input(deps, marker_environment("3.10", "win_amd64"))
    assert [str(r.target) for r in windows_310.releases] == [
        "six==1.16.0",
        "pywin32==306",
        "tomli==2.0.1",
    ]
    assert marker_environment("3.10", "win_amd64")["platform_machine"] == "AMD64"
    assert marker_environment("3.12", "macosx_11_0_arm64")["sys_platform"] == "darwin"


def test_uv_export_s_editable_project_is_skipped_and_listed(tmp_path: Path) -> None:
    # `uv export --format requirements-txt` writes the project itself as `-e .`.
    deps = write(tmp_path / "requirements.txt", f"-e .\nsix==1.16.0 --hash=sha256:{A}\n")
    batch = read_input(deps)
    assert [str(r.target) for r in batch.releases] == ["six==1.16.0"]
    assert batch.skipped == (". (requirements.txt:1): an editable install, not an index",)


def test_require_hashes_refuses_an_unhashed_pin_as_pip_would(tmp_path: Path) -> None:
    write(tmp_path / "more.txt", "attrs==23.2.0\n")
    deps = write(
        tmp_path / "requirements.txt",
        f"--require-hashes\nsix==1.16.0 --hash=sha256:{A}\n-r more.txt\n",
    )
    with pytest.raises(UsageError, match=r"--require-hashes is set, but more.txt:1 has no --hash"):
        read_input(deps)
    write(tmp_path / "more.txt", f"attrs==23.2.0 --hash=sha256:{B}\n")
    assert len(read_input(deps).releases) == 2


def test_a_pylock_package_whose_marker_is_false_is_skipped(tmp_path: Path) -> None:
    lock = write(
        tmp_path / "pylock.toml",
        'lock-version = "1.0"\ncreated-by = "test"\n\n'
        '[[packages]]\nname = "six"\nversion = "1.16.0"\n\n'
        '[[packages]]\nname = "pywin32"\nversion = "306"\nmarker = \'sys_platform == "win32"\'\n',
    )
    batch = read_input(lock, marker_environment("3.11", "manylinux_2_17_x86_64"))
    assert [str(r.target) for r in batch.releases] == ["six==1.16.0"]
    assert len(batch.skipped) == 1 and batch.skipped[0].startswith("pywin32 (pylock.toml")


@pytest.mark.network
def test_dry_run_prints_each_plan_and_builds_nothing(tmp_path: Path) -> None:
    deps = write(
        tmp_path / "deps.txt",
        'six==1.16.0\npywin32==306 ; sys_platform == "win32"\nnosuchproject-rebuild-x==1.0\n',
    )
    store = tmp_path / "store.sqlite"
    argv = [sys.executable, "-m", "rebuild", "batch", str(deps), "--dry-run", "--store", str(store)]
    argv += ["--python", "3.11", "--platform", "manylinux_2_17_x86_64"]
    argv += ["--cache-dir", str(tmp_path / "cache")]
    done = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert done.returncode == 2, done.stdout + done.stderr  # one release cannot be planned
    assert "six==1.16.0: py2-none-any py3-none-any in bookworm-py311 (Python 3.11)" in done.stdout
    assert "cannot plan nosuchproject-rebuild-x==1.0" in done.stdout
    assert "1 of 2 releases planned; nothing built (--dry-run)" in done.stdout
    assert "skipped pywin32" in done.stderr
    assert not store.exists()


def test_index_options_hold_for_every_requirement_and_extras_are_kept(tmp_path: Path) -> None:
    write(tmp_path / "more.txt", "six==1.16.0\n--extra-index-url https://b.invalid/simple\n")
    deps = write(
        tmp_path / "requirements.txt",
        "attrs==23.2.0\n"
        "--extra-index-url https://a.invalid/simple\n"
        "requests[socks,use-chardet]==2.32.3\n"
        "-r more.txt\n"
        "--index-url https://private.invalid/simple\n",
    )
    batch = read_input(deps)
    # As pip: options apply to the whole file, wherever written; the last --index-url wins.
    assert {(r.index_url, r.extra_index_urls) for r in batch.releases} == {
        ("https://private.invalid/simple", ("https://a.invalid/simple", "https://b.invalid/simple"))
    }
    assert [r.extras for r in batch.releases] == [(), ("socks", "use-chardet"), ()]


def test_uv_lock_installs_what_its_markers_reach_for_the_target(tmp_path: Path) -> None:
    # The lock uv writes for a project: a dependency edge carries its marker, a forked
    # resolution holds two versions of one package, an edge's extra pulls optional deps.
    lock = write(
        tmp_path / "uv.lock",
        """version = 1
requires-python = ">=3.10"
resolution-markers = ["python_full_version >= '3.12'", "python_full_version < '3.12'"]

[[package]]
name = "myapp"
version = "0.1.0"
source = { editable = "." }
dependencies = [
    { name = "requests", extra = ["socks"] },
    { name = "colorama", marker = "sys_platform == 'win32'" },
    { name = "tomli", marker = "python_full_version < '3.11'" },
    { name = "numpy", version = "1.26.4", marker = "python_full_version < '3.12'" },
    { name = "numpy", version = "2.1.0", marker = "python_full_version >= '3.12'" },
]

[package.dev-dependencies]
dev = [{ name = "iniconfig" }]

[[package]]
name = "requests"
version = "2.32.3"
source = { registry = "https://pypi.org/simple" }
dependencies = [{ name = "idna" }]

[package.optional-dependencies]
socks = [{ name = "pysocks" }]
chardet = [{ name = "chardet" }]

[[package]]
name = "idna"
version = "3.7"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "pysocks"
version = "1.7.1"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "chardet"
version = "5.2.0"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "colorama"
version = "0.4.6"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "tomli"
version = "2.0.1"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "numpy"
version = "1.26.4"
source = { registry = "https://pypi.org/simple" }
resolution-markers = ["python_full_version < '3.12'"]

[[package]]
name = "numpy"
version = "2.1.0"
source = { registry = "https://pypi.org/simple" }
resolution-markers = ["python_full_version >= '3.12'"]

[[package]]
name = "iniconfig"
version = "2.0.0"
source = { registry = "https://pypi.org/simple" }
""",
    )
    linux_311 = read_input(lock, marker_environment("3.11", "manylinux_2_17_x86_64"))
    assert [str(r.target) for r in linux_311.releases] == [
        "requests==2.32.3",
        "idna==3.7",
        "pysocks==1.7.1",
        "numpy==1.26.4",
        "iniconfig==2.0.0",
    ]
    not_installed = sorted(line.split(" ")[0] for line in linux_311.skipped)
    assert not_installed == ["chardet", "colorama", "myapp", "numpy", "tomli"]
    assert any(
        "numpy (uv.lock: package[9] (numpy)): no dependency of the project reaches it" in line
        for line in linux_311.skipped
    )
    windows_310 = read_input(lock, marker_environment("3.10", "win_amd64"))
    assert {"colorama==0.4.6", "tomli==2.0.1", "numpy==1.26.4"} <= {
        str(r.target) for r in windows_310.releases
    }
    linux_312 = read_input(lock, marker_environment("3.12", "manylinux_2_17_x86_64"))
    assert "numpy==2.1.0" in {str(r.target) for r in linux_312.releases}
    assert "numpy==1.26.4" not in {str(r.target) for r in linux_312.releases}
