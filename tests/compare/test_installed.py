"""The installed-tree model against the real zipfile of each CPython present."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hostile.installs import Raw, interpreter, unicode_path_extra, write_wheel

from rebuild.compare import CompareLimits
from rebuild.compare.installed import entry_points, zipfile_name
from rebuild.compare.ziplayer import WheelArchive

NAMES = [
    Raw(b"demo/x.py", b"1", central_extra=unicode_path_extra(b"demo/x.py", "evil.pth")),
    Raw(b"demo/y.py", b"2", central_extra=unicode_path_extra(b"not-the-name", "evil2.pth")),
    Raw(b"demo/z.py\x00.txt", b"3"),
    Raw(b"demo//w.py", b"4"),
]


@pytest.mark.parametrize("python", ["3.11", "3.12", "3.13"])
def test_names_are_the_ones_each_cpython_reports(tmp_path: Path, python: str) -> None:
    exe = interpreter(python)
    # Each CPython the comparison models must be here to prove it: a missing one fails.
    assert exe is not None, f"CPython {python} is not on this machine (pyenv's versions)"
    wheel = write_wheel(tmp_path / "demo-1.0-py3-none-any.whl", NAMES)
    script = "import sys, zipfile; print('\\n'.join(zipfile.ZipFile(sys.argv[1]).namelist()))"
    real = subprocess.run(
        [str(exe), "-c", script, str(wheel)], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    with WheelArchive(wheel, CompareLimits()) as archive:
        modelled = [zipfile_name(e, python) for e in archive.entries]
    assert modelled == real


def test_entry_points_keep_case_and_read_only_script_sections() -> None:
    text = "[console_scripts]\nTool = demo:main\n[other]\nx = y\n[gui_scripts]\ng=demo:gui\n"
    assert entry_points(text) == (
        ("console_scripts", "Tool", "demo:main"),
        ("gui_scripts", "g", "demo:gui"),
    )
