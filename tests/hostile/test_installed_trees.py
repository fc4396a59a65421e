"""Wheel pairs that install differently than their stored names say, with real installs.

Each case writes a published and a rebuilt wheel with the raw writer, installs both with the real
pip and installer on each CPython present, and asserts that whenever what lands on disk differs
rebuild's verdict is neither reproducible nor equivalent; and that rebuild names what it must.
"""

from __future__ import annotations

import subprocess
import sys
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from rebuild.compare import compare_wheels
from rebuild.models import Comparison, DivergenceKind, Layer, Verdict

from .installs import WHEEL_NAME, Raw, install, interpreter, unicode_path_extra, write_wheel

GOOD = b"def f():\n    return 1\n"
EVIL = b"import os; os.system('echo pwned')\n"
PTH = b"import os; os.system('echo pwned')\n"
X = 0o100755


@dataclass(frozen=True)
class Case:
    name: str
    published: list[Raw]
    rebuilt: list[Raw]
    # Kinds at least one unexplained divergence or finding must have.
    expect: frozenset[DivergenceKind]


def _core(name: str, data: bytes, mode: int = 0o100644) -> Raw:
    return Raw(name.encode("utf-8"), data, mode)


NFC = unicodedata.normalize("NFC", "demo/caf\u00e9.py")
NFD = unicodedata.normalize("NFD", "demo/caf\u00e9.py")

CASES = [
    Case(
        "unicode-path-renames-to-pth",
        [Raw(b"demo/x.py", PTH, central_extra=unicode_path_extra(b"demo/x.py", "evil.pth"))],
        [Raw(b"demo/x.py", PTH)],
        frozenset({DivergenceKind.RUNS_ON_ITS_OWN, DivergenceKind.INSTALL_DEPENDS}),
    ),
    Case(
        "unicode-path-crc-mismatch-is-ignored",
        [Raw(b"demo/x.py", GOOD, central_extra=unicode_path_extra(b"other", "evil.pth"))],
        [Raw(b"demo/x.py", GOOD)],
        frozenset(),  # every CPython ignores a field whose CRC is not the name's: same trees
    ),
    Case(
        "dot-segment-swapped",
        [_core("demo/core.py", EVIL), _core("demo/./core.py", GOOD)],
        [_core("demo/./core.py", GOOD), _core("demo/core.py", EVIL)],
        frozenset({DivergenceKind.INSTALLED_FILE, DivergenceKind.INSTALL_DEPENDS}),
    ),
    Case(
        "doubled-slash-swapped",
        [_core("demo/core.py", EVIL), _core("demo//core.py", GOOD)],
        [_core("demo//core.py", GOOD), _core("demo/core.py", EVIL)],
        frozenset({DivergenceKind.INSTALLED_FILE, DivergenceKind.PATH_COLLISION}),
    ),
    Case(
        "nul-cut-swapped",
        [_core("demo/core.py", EVIL), Raw(b"demo/core.py\x00.txt", GOOD)],
        [Raw(b"demo/core.py\x00.txt", GOOD), _core("demo/core.py", EVIL)],
        frozenset({DivergenceKind.INSTALLED_FILE}),
    ),
    Case(
        "case-collision-swapped",
        [_core("demo/core.py", GOOD), _core("demo/CORE.py", EVIL)],
        [_core("demo/CORE.py", EVIL), _core("demo/core.py", GOOD)],
        frozenset({DivergenceKind.PATH_COLLISION}),
    ),
    Case(
        "nfc-nfd-collision-swapped",
        [_core(NFC, GOOD), _core(NFD, EVIL)],
        [_core(NFD, EVIL), _core(NFC, GOOD)],
        frozenset({DivergenceKind.PATH_COLLISION}),
    ),
    Case(
        "mode-without-file-type",
        [_core("demo/tool.sh", b"#!/bin/sh\n", 0o000755)],
        [_core("demo/tool.sh", b"#!/bin/sh\n", 0o100755)],
        frozenset({DivergenceKind.INSTALLED_MODE}),
    ),
    Case(
        "executable-dropped",
        [_core("demo/tool.sh", b"#!/bin/sh\n", 0o100755)],
        [_core("demo/tool.sh", b"#!/bin/sh\n", 0o100644)],
        frozenset({DivergenceKind.INSTALLED_MODE}),
    ),
    Case(
        "data-scripts-only-published",
        [_core("demo/__init__.py", GOOD), _core("demo-1.0.data/scripts/tool", b"#!python\n", X)],
        [_core("demo/__init__.py", GOOD)],
        frozenset({DivergenceKind.RUNS_ON_ITS_OWN}),
    ),
    Case(
        "pycache-installed-by-pip-only",
        [_core("demo/__pycache__/core.cpython-311.pyc", b"\0" * 16)],
        [_core("demo/__pycache__/core.cpython-311.pyc", b"\1" * 16)],
        frozenset({DivergenceKind.INSTALL_DEPENDS}),
    ),
]


def _wheels(case: Case, tmp_path: Path) -> tuple[Path, Path]:
    return (
        write_wheel(tmp_path / "published" / WHEEL_NAME, case.published),
        write_wheel(tmp_path / "rebuilt" / WHEEL_NAME, case.rebuilt),
    )


def _unexplained_kinds(result: Comparison) -> set[DivergenceKind]:
    return {d.kind for d in result.divergences if not d.explained or d.layer is Layer.INTEGRITY}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_rebuild_names_what_installs_differently(case: Case, tmp_path: Path) -> None:
    published, rebuilt = _wheels(case, tmp_path)
    result = compare_wheels(published, rebuilt)
    assert case.expect <= _unexplained_kinds(result), [
        (d.kind, d.summary) for d in result.divergences
    ]
    if case.expect:
        assert result.verdict is Verdict.DIVERGENT


def test_the_published_pth_is_named_first(tmp_path: Path) -> None:
    published, rebuilt = _wheels(CASES[0], tmp_path)
    result = compare_wheels(published, rebuilt)
    first = result.divergences[0]
    assert (first.kind, first.member, first.explained) == (
        DivergenceKind.RUNS_ON_ITS_OWN,
        "site-packages/evil.pth",
        False,
    )
    assert any(line.startswith("site-packages/evil.pth") for line in result.autorun)


def _check_real_installs(
    tool: str, tmp_path: Path, installer_wheel: Path | None, python: str
) -> None:
    exe = interpreter(python)
    # Each CPython the comparison models must be here to prove it: a missing one fails.
    assert exe is not None, f"CPython {python} is not on this machine (pyenv's versions)"
    tried = differ = 0
    for case in CASES:
        published, rebuilt = _wheels(case, tmp_path / case.name)
        pub = install(tool, exe, published, tmp_path / case.name / "pub-tree", installer_wheel)
        reb = install(tool, exe, rebuilt, tmp_path / case.name / "reb-tree", installer_wheel)
        tried += 1
        if pub != reb:
            differ += 1
            verdict = compare_wheels(published, rebuilt).verdict
            assert verdict not in (Verdict.REPRODUCIBLE, Verdict.EQUIVALENT), (case.name, pub, reb)
    assert tried == len(CASES)


@pytest.mark.parametrize("python", ["3.11", "3.12", "3.13"])
def test_real_pip_installs_that_differ_are_never_equivalent(tmp_path: Path, python: str) -> None:
    _check_real_installs("pip", tmp_path, None, python)


@pytest.fixture(scope="module")
def installer_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("installer")
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
         "-q", "-d", str(where), "installer==1.1.0"],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (wheel,) = where.glob("installer-1.1.0-*.whl")
    return wheel


@pytest.mark.network
@pytest.mark.parametrize("python", ["3.11", "3.12", "3.13"])
def test_real_installer_installs_that_differ_are_never_equivalent(
    tmp_path: Path, python: str, installer_wheel: Path
) -> None:
    _check_real_installs("installer", tmp_path, installer_wheel, python)


@pytest.mark.network
def test_six_with_a_published_pth_exits_1_naming_it_first(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
         "-q", "-d", str(tmp_path), "six==1.16.0"],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (real,) = tmp_path.glob("six-1.16.0-*.whl")
    published = tmp_path / "published" / real.name
    published.parent.mkdir()
    with zipfile.ZipFile(real) as source, zipfile.ZipFile(published, "w") as out:
        for info in source.infolist():
            out.writestr(info, source.read(info))
        out.writestr("six-evil.pth", PTH)
    done = subprocess.run(
        [sys.executable, "-m", "rebuild", "compare", str(published), str(real)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    named = [m for m in ("six-evil.pth", "six.py", "RECORD") if m in done.stdout]
    assert named and named[0] == "six-evil.pth", done.stdout
    assert done.stdout.index("six-evil.pth") < done.stdout.index("RECORD"), done.stdout
