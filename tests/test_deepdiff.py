"""`rebuild diff`: diffoscope on one member, extracted safely, bounded in time and output."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from compare.wheels import BASE, make_wheel
from typer.testing import CliRunner

from rebuild.cli import app
from rebuild.compare import CompareLimits
from rebuild.deepdiff import extract_member, run_diffoscope
from rebuild.errors import ArchiveError, UsageError

SCRIPT = "demo/core.py"


def pair(tmp_path: Path, lines: int = 5) -> tuple[Path, Path]:
    old = "".join(f"value_{i} = {i}\n" for i in range(lines)).encode()
    new = "".join(f"value_{i} = {i + 1}\n" for i in range(lines)).encode()
    published = make_wheel(tmp_path / "p" / "demo-1.0-py3-none-any.whl", changes={SCRIPT: old})
    rebuilt = make_wheel(tmp_path / "r" / "demo-1.0-py3-none-any.whl", changes={SCRIPT: new})
    return published, rebuilt


def fake_diffoscope(tmp_path: Path, body: str) -> Path:
    """A stand-in diffoscope on PATH: a shell script with the given body."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "diffoscope"
    script.write_text(f'#!/bin/sh\nif [ "$1" = --version ]; then echo fake 1; exit 0; fi\n{body}\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return bin_dir


def test_diffoscope_shows_the_member_that_differs(tmp_path: Path) -> None:
    published, rebuilt = pair(tmp_path)
    html = tmp_path / "out.html"
    result = run_diffoscope(published, rebuilt, SCRIPT, html=html, workdir=tmp_path / "work")
    assert not result.identical and not result.truncated and not result.timed_out
    assert result.exit_code == 1
    assert result.tool.startswith("diffoscope")
    assert "-value_3 = 3" in result.lines and "+value_3 = 4" in result.lines
    assert result.total_lines == len(result.lines)
    assert result.html == html and "value_3" in html.read_text()
    # The extracted copies lived in a temporary directory of the work directory, now gone.
    assert list((tmp_path / "work").iterdir()) == []


def test_the_output_cap_cuts_and_says_so(tmp_path: Path) -> None:
    published, rebuilt = pair(tmp_path, lines=300)
    result = run_diffoscope(published, rebuilt, SCRIPT, max_lines=10, workdir=tmp_path)
    assert len(result.lines) == 10
    assert result.truncated and result.total_lines > 300


def test_the_same_bytes_need_no_diffoscope(tmp_path: Path) -> None:
    published, rebuilt = pair(tmp_path)
    result = run_diffoscope(published, rebuilt, "demo/__init__.py", workdir=tmp_path)
    assert result.identical and result.lines == () and result.exit_code is None


def test_a_member_missing_from_one_wheel_is_a_usage_error(tmp_path: Path) -> None:
    published, rebuilt = pair(tmp_path)
    with pytest.raises(UsageError, match=r"no member 'core\.py'") as raised:
        run_diffoscope(published, rebuilt, "core.py", workdir=tmp_path)
    assert raised.value.hint is not None and "demo/core.py" in raised.value.hint


def test_members_are_extracted_under_a_safe_name_only(tmp_path: Path) -> None:
    hostile = "../../escape/..hidden\x1b[31m.so"
    wheel = make_wheel(tmp_path / "demo-1.0-py3-none-any.whl", {**BASE, hostile: b"x"})
    dest = tmp_path / "dest"
    extracted = extract_member(wheel, hostile, dest, CompareLimits())
    assert extracted.parent == dest
    assert extracted.name == "hidden__31m.so"
    assert not (tmp_path / "escape").exists()


def test_a_bomb_member_is_refused_not_extracted(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "demo-1.0-py3-none-any.whl", {**BASE, "big.bin": bytes(4 << 20)})
    with pytest.raises(ArchiveError, match="zip bomb"):
        extract_member(wheel, "big.bin", tmp_path / "d", CompareLimits(max_member_ratio=10))


def test_a_hanging_diffoscope_is_stopped_at_the_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    published, rebuilt = pair(tmp_path)
    bin_dir = fake_diffoscope(tmp_path, "echo started\nexec sleep 60")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    result = run_diffoscope(published, rebuilt, SCRIPT, timeout_s=1, workdir=tmp_path)
    assert result.timed_out and result.exit_code is None
    assert result.lines == ("started",)
    assert result.duration_s < 30


def test_very_long_lines_are_cut(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    published, rebuilt = pair(tmp_path)
    body = "head -c 100000 /dev/zero | tr '\\0' a; echo; echo after; exit 1"
    monkeypatch.setenv("PATH", f"{fake_diffoscope(tmp_path, body)}{os.pathsep}{os.environ['PATH']}")
    result = run_diffoscope(published, rebuilt, SCRIPT, workdir=tmp_path)
    assert result.total_lines == 2
    assert result.lines[0].endswith("[line cut]") and len(result.lines[0]) < 5000
    assert result.lines[1] == "after"


def test_a_missing_diffoscope_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    published, rebuilt = pair(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    with pytest.raises(UsageError, match="diffoscope is not installed") as raised:
        run_diffoscope(published, rebuilt, SCRIPT, workdir=tmp_path)
    assert raised.value.hint is not None and "diffoscope-minimal" in raised.value.hint


def test_the_command_prints_the_report_and_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REBUILD_CACHE_DIR", str(tmp_path / "cache"))
    published, rebuilt = pair(tmp_path, lines=50)
    args = ["diff", str(published), str(rebuilt), "--member", SCRIPT, "--max-lines", "5"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    assert "cut: 5 of" in result.output
    same = CliRunner().invoke(app, [*args[:4], "demo/__init__.py"])
    assert same.exit_code == 0 and "nothing to diff" in same.output
