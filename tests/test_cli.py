"""The command line as a user runs it: a real process, its output and its exit code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from compare.wheels import make_wheel
from helpers_cli import run_cli as run

from rebuild.errors import EXIT_CODES


def test_help_documents_every_exit_code() -> None:
    result = run("--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for code, meaning in EXIT_CODES.items():
        assert f"{code} {' '.join(meaning.split())}" in text


def test_compare_identical_wheels_is_reproducible(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "a" / "demo-1.0-py3-none-any.whl")
    copy = tmp_path / "b" / wheel.name
    copy.parent.mkdir()
    copy.write_bytes(wheel.read_bytes())
    result = run("compare", wheel, copy)
    assert result.returncode == 0, result.stderr
    assert "REPRODUCIBLE" in result.stdout


def test_compare_container_only_difference_is_equivalent_and_listed(tmp_path: Path) -> None:
    published = make_wheel(tmp_path / "a" / "demo-1.0-py3-none-any.whl", mode=0o664)
    rebuilt = make_wheel(tmp_path / "b" / "demo-1.0-py3-none-any.whl", mode=0o644)
    report = tmp_path / "out" / "report.json"
    result = run("compare", published, rebuilt, "--json", report)
    assert result.returncode == 0, result.stderr
    assert "EQUIVALENT" in result.stdout
    assert "permissions" in result.stdout
    document = json.loads(report.read_text())
    assert document["schema_version"] == 2
    assert document["summary"] == {
        "verdict": "equivalent",
        "exit_code": 0,
        "unexplained": 0,
        "verified": 0,
        "attributed": 0,
        "divergences": len(document["comparison"]["divergences"]),
    }
    kinds = {d["kind"] for d in document["comparison"]["divergences"]}
    assert kinds == {"permissions"}


def test_a_mode_that_changes_the_installed_executable_bit_is_divergent(tmp_path: Path) -> None:
    published = make_wheel(tmp_path / "a" / "demo-1.0-py3-none-any.whl", mode=0o755)
    rebuilt = make_wheel(tmp_path / "b" / "demo-1.0-py3-none-any.whl", mode=0o644)
    report = tmp_path / "report.json"
    result = run("compare", published, rebuilt, "--json", report)
    # Never "equivalent" with something unexplained: pip installs the files differently.
    assert result.returncode == 1, result.stdout
    assert "DIVERGENT" in result.stdout
    document = json.loads(report.read_text())
    kinds = {
        d["kind"] for d in document["comparison"]["divergences"] if d["outcome"] == "unexplained"
    }
    assert kinds == {"installed-mode"}


def test_compare_injected_code_is_divergent_unexplained_first(tmp_path: Path) -> None:
    published = make_wheel(tmp_path / "a" / "demo-1.0-py3-none-any.whl")
    injected = b"def answer():\n    __import__('os').system('id')\n    return 42\n"
    rebuilt = make_wheel(
        tmp_path / "b" / "demo-1.0-py3-none-any.whl", changes={"demo/core.py": injected}
    )
    report = tmp_path / "report.json"
    result = run("compare", published, rebuilt, "--json", report)
    assert result.returncode == 1
    assert "DIVERGENT" in result.stdout
    unexplained = result.stdout.index("Unexplained")
    assert result.stdout.index("demo/core.py", unexplained) > unexplained
    assert "+    __import__('os').system('id')" in result.stdout  # only the rebuilt has it
    first = json.loads(report.read_text())["comparison"]["divergences"][0]
    assert (first["member"], first["kind"], first["outcome"], first["reasons"]) == (
        "demo/core.py",
        "content",
        "unexplained",
        [],
    )


def test_hostile_member_names_are_escaped_in_every_format(tmp_path: Path) -> None:
    evil = "demo/\x1b[2J\x1b]0;owned\x07<script>x</script>.py"
    published = make_wheel(tmp_path / "a" / "demo-1.0-py3-none-any.whl")
    rebuilt = make_wheel(tmp_path / "b" / "demo-1.0-py3-none-any.whl", changes={evil: b"x = 1\n"})
    report = tmp_path / "report.json"
    result = run("compare", published, rebuilt, "--json", report)
    assert result.returncode == 1
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert "\\x1b[2J" in result.stdout
    raw = report.read_text()
    assert "\x1b" not in raw and "\\u001b" in raw


@pytest.mark.parametrize(
    ("content", "code", "words"),
    [(b"not a zip", 5, "archive"), (None, 2, "usage")],
)
def test_bad_input_gets_a_clear_error_and_its_exit_code(
    tmp_path: Path, content: bytes | None, code: int, words: str
) -> None:
    good = make_wheel(tmp_path / "a" / "demo-1.0-py3-none-any.whl")
    bad = tmp_path / "b" / "demo-1.0-py3-none-any.whl"
    if content is not None:
        bad.parent.mkdir()
        bad.write_bytes(content)
    result = run("compare", good, bad)
    assert result.returncode == code
    assert f"error ({words})" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_malformed_target_is_a_usage_error() -> None:
    result = run("resolve", "numpy>=1.0")
    assert result.returncode == 2
    assert "NAME==VERSION" in result.stderr


@pytest.mark.network
def test_resolve_numpy_shows_wheel_sdist_and_sources() -> None:
    result = run(
        "resolve", "numpy==1.26.4", "--python", "3.11", "--platform", "manylinux_2_17_x86_64"
    )
    assert result.returncode == 0, result.stderr
    assert (
        "numpy-1.26.4-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl" in result.stdout
    )
    assert "666dbfb6ec68962c033a450943ded891bed2d54e6755e35e5835d63f4f6931d5" in result.stdout
    assert "numpy-1.26.4.tar.gz" in result.stdout
    assert "https://github.com/numpy/numpy" in result.stdout


@pytest.mark.network
def test_resolve_a_missing_version_names_what_exists() -> None:
    result = run("resolve", "attrs==0.0.1")
    assert result.returncode == 3
    assert "23.2.0" in result.stderr or "nearest" in result.stderr


def test_a_bug_exits_10_not_1_which_means_divergent(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "demo-1.0-py3-none-any.whl")
    crash = (
        "import sys, rebuild.cli as cli, rebuild.local_compare as local_compare\n"
        "def broken(*args, **kwargs):\n"
        "    raise ZeroDivisionError('a bug')\n"
        "local_compare.compare = broken\n"
        "sys.argv = ['rebuild', *sys.argv[1:]]\n"
        "cli.main()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", crash, "compare", str(wheel), str(wheel)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 10
    assert "ZeroDivisionError" in result.stderr
    assert "internal error" in result.stderr


class _Status:
    """Records what a rich status line would show."""

    def __init__(self) -> None:
        self.shown: list[str] = []

    def update(self, text: str) -> None:
        self.shown.append(text)


def test_a_long_build_shows_its_elapsed_time_and_latest_log_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from rebuild import cli

    status = _Status()
    heartbeat = cli._Heartbeat(status, verbose=False)  # type: ignore[arg-type]
    monkeypatch.setattr(cli._Heartbeat, "EVERY_S", 0.0)
    heartbeat.progress("building in demo-image (no network)")
    heartbeat.log("[12/1283] Compiling C object numpy/core/foo.c.o\n")
    # The status line carries the stage, the time spent in it, and the build's own progress.
    assert status.shown[-1].startswith("building in demo-image (no network) · 0m00s · ")
    assert "[12/1283] Compiling C object" in status.shown[-1]
    # Without a terminal (a CI log), a line every EVERY_S seconds says the same.
    printed = capsys.readouterr().err
    assert "· building in demo-image (no network)" in printed
    assert "· … 0m00s: [12/1283] Compiling C object numpy/core/foo.c.o" in printed
    # A compiler warning's tail does not hide the build's own progress line.
    heartbeat.log("      |      ~~~~~~~~~\n")
    assert "[12/1283] Compiling C object" in status.shown[-1]
    heartbeat.log("[13/1283] Linking target numpy/core/foo.so\n")
    assert "[13/1283] Linking target" in status.shown[-1]


def test_dash_h_is_help_everywhere() -> None:
    for argv in (["-h"], ["check", "-h"], ["image", "list", "-h"]):
        done = subprocess.run(
            [sys.executable, "-m", "rebuild", *argv], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("Usage: "), done.stdout


def test_a_closed_pipe_is_not_a_verdict() -> None:
    # stdout is a pipe whose reader is already gone: every write fails with EPIPE. The tool
    # must not call that "divergent" (1) or a bug (10), nor print a traceback.
    script = (
        "import os, sys\n"
        "read, write = os.pipe()\n"
        "os.close(read)\n"
        "os.dup2(write, 1)\n"
        "sys.argv = ['rebuild', 'image', '--help']\n"
        "from rebuild.cli import main\n"
        "main()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert done.returncode == 141, done.stderr
    assert "Traceback" not in done.stderr


def test_quiet_drops_progress_and_color_is_forced_or_refused(tmp_path: Path) -> None:
    published = make_wheel(tmp_path / "a" / "demo-1.0-py3-none-any.whl")
    rebuilt = make_wheel(
        tmp_path / "b" / "demo-1.0-py3-none-any.whl", changes={"demo/__init__.py": b"x = 2\n"}
    )

    def run(*options: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
        return subprocess.run(
            [sys.executable, "-m", "rebuild", *options, "compare", str(published), str(rebuilt)],
            capture_output=True,
            text=True,
            check=False,
            env=env,
        )

    plain, quiet = run(), run("-q")
    assert plain.returncode == quiet.returncode == 1
    assert "· comparing" in plain.stderr
    assert "· comparing" not in quiet.stderr
    assert quiet.stdout == plain.stdout  # the report itself is the same
    assert "\x1b[" in run("--color").stdout  # forced, though stdout is a pipe
    assert "\x1b[" not in run("--no-color").stdout


def test_output_to_a_pipe_is_not_wrapped_at_80_columns(tmp_path: Path) -> None:
    # A log or `| grep` must find a member's path whole on one line, whatever its length.
    member = "demo/" + "/".join(f"level{i}_with_a_long_directory_name" for i in range(4)) + ".py"
    published = make_wheel(tmp_path / "a" / "demo-1.0-py3-none-any.whl", changes={member: b"1\n"})
    rebuilt = make_wheel(tmp_path / "b" / "demo-1.0-py3-none-any.whl", changes={member: b"2\n"})
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    done = subprocess.run(
        [sys.executable, "-m", "rebuild", "compare", str(published), str(rebuilt)],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    assert done.returncode == 1, done.stderr
    assert len(member) > 80
    assert any(member in line for line in done.stdout.splitlines()), done.stdout


@pytest.mark.network
def test_recipe_show_writes_the_plan_and_its_origins_as_json(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    result = run("recipe", "show", "six==1.16.0", "--json", path)
    assert result.returncode == 0, result.stderr
    plan = json.loads(path.read_text())["plan"]
    # The values a reviewer sees in the table, as data, each with where it came from.
    assert (plan["backend"], plan["backend_pins"]) == (
        "setuptools",
        ["wheel==0.36.2", "setuptools<70.1"],
    )
    assert plan["python"] in result.stdout and "wheel==0.36.2" in result.stdout
    origins = dict(plan["origins"])
    assert origins["backend_pins"] == (
        "version in WHEEL Generator: bdist_wheel (0.36.2); setuptools<70.1: wheel's bdist_wheel "
        "signed it, which setuptools 70.1 and later replace"
    )
    assert origins["exclude_newer"] == "the published wheel's upload time on the index"
