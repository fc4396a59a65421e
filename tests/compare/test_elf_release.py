"""Platform wheels end to end: auditwheel's traces explained by rule, and a real release rebuilt.

The unmarked tests compare wheels built here: a published wheel repaired by auditwheel against a
rebuild that could not be repaired (its WHEEL tag and grafted libraries differ, each explained),
and zip directory entries present in one wheel only (container-level). The docker+network test is
the acceptance: MarkupSafe 2.1.5's manylinux wheel rebuilt in the bookworm image.
"""

from __future__ import annotations

import base64
import hashlib
import stat
import subprocess
import zipfile
from pathlib import Path

import pytest
from conftest import published_wheel

from compare.wheels import BASE, DIST_INFO, RECORD, make_wheel, record_for
from rebuild.compare import compare_wheels
from rebuild.compare.rules import _grafted_library
from rebuild.models import (
    Divergence,
    DivergenceKind,
    Layer,
    Outcome,
    Report,
    Target,
    Verdict,
    WheelSelector,
)
from rebuild.pipeline import CheckOptions, check

DIRECTORY = stat.S_IFDIR | 0o755
SO = "demo/_speedups.cpython-311-x86_64-linux-gnu.so"
GRAFT = "demo.libs/libz-0123abcd.so.1.2.13"


def _wheel_file(*tags: str) -> bytes:
    head = "Wheel-Version: 1.0\nGenerator: bdist_wheel (0.42.0)\nRoot-Is-Purelib: false\n"
    return (head + "".join(f"Tag: {t}\n" for t in tags)).encode()


def wheel(path: Path, members: dict[str, bytes]) -> Path:
    modes = {name: DIRECTORY for name in members if name.endswith("/")}
    # As wheel writers do, RECORD lists files, not directories.
    files = {name: data for name, data in members.items() if not name.endswith("/")}
    return make_wheel(path, {**members, RECORD: record_for(files)}, mode=modes, record=False)


def needing(tmp_path: Path, *sonames: str) -> bytes:
    """A shared object, compiled by the host gcc, whose DT_NEEDED names ``sonames``."""
    build = tmp_path / f"needing-{len(list(tmp_path.glob('needing-*')))}"
    build.mkdir()
    links = []
    for i, soname in enumerate(sonames):
        (build / f"s{i}.c").write_text(f"int f{i}(void) {{ return {i}; }}\n")
        subprocess.run(
            [
                "gcc",
                "-shared",
                "-fPIC",
                str(build / f"s{i}.c"),
                f"-Wl,-soname,{soname}",
                "-o",
                str(build / f"libs{i}.so"),
            ],
            check=True,
            capture_output=True,
        )
        links.append(f"-ls{i}")
    (build / "m.c").write_text("int g(void) { return 7; }\n")
    subprocess.run(
        [
            "gcc",
            "-shared",
            "-fPIC",
            str(build / "m.c"),
            "-o",
            str(build / "m.so"),
            f"-L{build}",
            "-Wl,--no-as-needed",
            *links,
        ],
        check=True,
        capture_output=True,
    )
    return (build / "m.so").read_bytes()


def grafted_pair(tmp_path: Path, needed: str) -> tuple[Path, Path]:
    """A manylinux wheel with a library in demo.libs/ and an extension that loads ``needed``,
    and its rebuild: the same extension, no library, the build's own linux tag."""
    code = needing(tmp_path, needed)
    published = wheel(
        tmp_path / "p" / "demo-1.0-cp311-cp311-manylinux_2_17_x86_64.whl",
        {
            **BASE,
            SO: code,
            GRAFT: b"\x7fELF libz",
            f"{DIST_INFO}/WHEEL": _wheel_file("cp311-cp311-manylinux_2_17_x86_64"),
        },
    )
    rebuilt = wheel(
        tmp_path / "r" / "demo-1.0-cp311-cp311-linux_x86_64.whl",
        {**BASE, SO: code, f"{DIST_INFO}/WHEEL": _wheel_file("cp311-cp311-linux_x86_64")},
    )
    return published, rebuilt


def by_member(divergences: tuple[Divergence, ...]) -> dict[str | None, Divergence]:
    return {d.member: d for d in divergences if d.kind is not DivergenceKind.RECORD_ENTRY}


def test_an_unreplayed_repair_explains_the_tag_and_the_grafted_library(tmp_path: Path) -> None:
    # The extension loads the grafted library, as auditwheel leaves it.
    code = needing(tmp_path, GRAFT.rpartition("/")[2])
    published = wheel(
        tmp_path / "p" / "demo-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        {
            "demo/": b"",
            "demo.libs/": b"",
            **BASE,
            SO: code,
            GRAFT: b"\x7fELF libz",
            f"{DIST_INFO}/WHEEL": _wheel_file(
                "cp311-cp311-manylinux_2_17_x86_64", "cp311-cp311-manylinux2014_x86_64"
            ),
        },
    )
    rebuilt = wheel(
        tmp_path / "r" / "demo-1.0-cp311-cp311-linux_x86_64.whl",
        {**BASE, SO: code, f"{DIST_INFO}/WHEEL": _wheel_file("cp311-cp311-linux_x86_64")},
    )
    comparison = compare_wheels(published, rebuilt)
    assert comparison.verdict is Verdict.DIVERGENT
    assert comparison.unexplained == ()
    found = by_member(comparison.divergences)
    tag = found[f"{DIST_INFO}/WHEEL"]
    assert tag.explanation is not None
    assert tag.explanation.startswith("auditwheel repair not replayable here")
    graft = found[GRAFT]
    assert graft.kind is DivergenceKind.ONLY_PUBLISHED
    assert graft.explanation is not None and "grafted" in graft.explanation
    for directory in ("demo/", "demo.libs/"):
        assert found[directory].kind is DivergenceKind.DIRECTORY_ENTRY
        assert found[directory].layer is Layer.CONTAINER
        assert found[directory].explained


def test_a_library_nothing_in_the_wheel_loads_is_not_a_graft(tmp_path: Path) -> None:
    # Named like a graft, in demo.libs/, but no shared object of the wheel needs it: auditwheel
    # would never have put it there.
    published, rebuilt = grafted_pair(tmp_path, "libc.so.6")
    comparison = compare_wheels(published, rebuilt)
    assert [d.member for d in comparison.unexplained] == [GRAFT]


def test_a_library_only_in_a_repaired_published_wheel_stays_unexplained(tmp_path: Path) -> None:
    # Both wheels carry the manylinux tag: the repair was replayed, yet a library is extra.
    tags = _wheel_file("cp311-cp311-manylinux_2_17_x86_64")
    common = {**BASE, SO: b"\x7fELF", f"{DIST_INFO}/WHEEL": tags}
    published = wheel(tmp_path / "p" / "demo-1.0.whl", {**common, GRAFT: b"\x7fELF libz"})
    rebuilt = wheel(tmp_path / "r" / "demo-1.0.whl", common)
    comparison = compare_wheels(published, rebuilt)
    assert [d.member for d in comparison.unexplained] == [GRAFT]


def test_libraries_grafted_on_both_sides_from_different_copies_are_explained(
    tmp_path: Path,
) -> None:
    tags = _wheel_file("cp311-cp311-manylinux_2_17_x86_64")
    theirs = "demo.libs/libgfortran-040039e1.so.5.0.0"
    ours = "demo.libs/libgfortran-91ab22cd.so.5.0.0"
    other = "demo.libs/libquadmath-96973f99.so.0.0.0"
    # Each side's extension loads its own graft (and the published one libquadmath too).
    published = wheel(
        tmp_path / "p" / "demo-1.0.whl",
        {
            **BASE,
            SO: needing(tmp_path, theirs.rpartition("/")[2], other.rpartition("/")[2]),
            f"{DIST_INFO}/WHEEL": tags,
            theirs: b"a",
            other: b"q",
        },
    )
    rebuilt = wheel(
        tmp_path / "r" / "demo-1.0.whl",
        {
            **BASE,
            SO: needing(tmp_path, ours.rpartition("/")[2]),
            f"{DIST_INFO}/WHEEL": tags,
            ours: b"b",
        },
    )
    comparison = compare_wheels(published, rebuilt)
    found = by_member(comparison.divergences)
    assert found[theirs].explained and found[ours].explained
    # No libquadmath on the rebuilt side: nothing pairs with it. (The extensions differ too.)
    assert other in [d.member for d in comparison.unexplained]
    assert theirs not in [d.member for d in comparison.unexplained]


def test_a_wheel_differing_only_in_directory_entries_is_equivalent(tmp_path: Path) -> None:
    published = wheel(tmp_path / "p" / "demo-1.0-py3-none-any.whl", {"demo/": b"", **BASE})
    rebuilt = wheel(tmp_path / "r" / "demo-1.0-py3-none-any.whl", dict(BASE))
    comparison = compare_wheels(published, rebuilt)
    assert comparison.verdict is Verdict.EQUIVALENT
    (entry,) = [d for d in comparison.divergences if d.member == "demo/"]
    assert entry.kind is DivergenceKind.DIRECTORY_ENTRY
    assert entry.explanation is not None and "directory entry" in entry.explanation


@pytest.mark.docker
@pytest.mark.network
def test_markupsafe_manylinux_wheel_rebuilt_here(markupsafe_check: Report) -> None:
    # Rebuilt by GCC 12 on purpose (see the fixture): another compiler than the published one.
    report = markupsafe_check
    assert report.verdict is Verdict.DIVERGENT, report.failure
    assert report.plan is not None and report.plan.repair == "manylinux_2_17_x86_64"
    # The report says plainly that the publisher's image was not used here (the recipe's words
    # when recipes/markupsafe.toml applies, the inferred plan's otherwise).
    assert any("fallback image" in n or "manylinux image" in n for n in report.plan.notes)
    assert report.build is not None and report.build.repair is not None
    assert any(r.startswith("auditwheel==") for r in report.build.requirements)
    comparison = report.comparison
    assert comparison is not None
    so = "markupsafe/_speedups.cpython-311-x86_64-linux-gnu.so"
    (elf,) = [d for d in comparison.divergences if d.kind is DivergenceKind.CONTENT]
    assert elf.member == so
    assert "GCC 10.2.1 (Red Hat)" in elf.summary and "GCC 12.2.0 (Debian)" in elf.summary
    # Another compiler: the code is attributed (not verified) on the .comment's word.
    assert elf.outcome is Outcome.ATTRIBUTED, elf.summary
    assert elf.findings == ()
    assert "elf-another-compiler" in elf.rules
    assert comparison.attributed == (elf,)
    # Every other member difference is the extension's RECORD row, or the repair's traces.
    members = {d.member for d in comparison.divergences if d.layer is Layer.MEMBER}
    assert members <= {so, "MarkupSafe-2.1.5.dist-info/RECORD", "MarkupSafe-2.1.5.dist-info/WHEEL"}
    assert comparison.unexplained == ()
    # The pure-Python members are the published ones, byte for byte.
    assert not members & {"markupsafe/__init__.py", "markupsafe/_native.py"}
    assert comparison.identical_members >= 8


def retagged(wheel: Path, dest: Path, old: str, new: str) -> Path:
    """``wheel`` with its platform tag replaced in its name, WHEEL file and RECORD row."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as source, zipfile.ZipFile(dest, "w") as target:
        members = {info.filename: source.read(info) for info in source.infolist()}
        (name,) = [n for n in members if n.endswith(".dist-info/WHEEL")]
        members[name] = members[name].replace(old.encode(), new.encode())
        digest = base64.urlsafe_b64encode(hashlib.sha256(members[name]).digest()).rstrip(b"=")
        (record,) = [n for n in members if n.endswith(".dist-info/RECORD")]
        rows = [
            row
            if not row.startswith(f"{name},".encode())
            else b"%s,sha256=%s,%d" % (name.encode(), digest, len(members[name]))
            for row in members[record].splitlines()
        ]
        members[record] = b"\n".join(rows) + b"\n"
        for info in source.infolist():
            target.writestr(info, members[info.filename])
    return dest


@pytest.mark.docker
@pytest.mark.network
def test_a_repair_auditwheel_refuses_keeps_the_plain_wheel_and_is_explained(
    tmp_path: Path, shared_cache: Path
) -> None:
    # MarkupSafe's extension needs GLIBC_2.14 (memcpy): auditwheel cannot make it manylinux1.
    first = check(
        Target.parse("markupsafe==2.1.5"),
        WheelSelector(python="3.11", platform="manylinux_2_17_x86_64"),
        CheckOptions(cache_dir=shared_cache),
    )
    assert first.release is not None and first.release.wheel is not None
    published = published_wheel(shared_cache, first)
    name = "MarkupSafe-2.1.5-cp311-cp311-manylinux_2_5_x86_64.manylinux1_x86_64.whl"
    mine = retagged(published, tmp_path / name, "manylinux_2_17_x86_64", "manylinux_2_5_x86_64")
    mine = retagged(mine, tmp_path / "2" / name, "manylinux2014_x86_64", "manylinux1_x86_64")
    report = check(
        Target.parse("markupsafe==2.1.5"),
        WheelSelector(),
        CheckOptions(cache_dir=shared_cache, wheel=mine),
    )
    assert report.plan is not None and report.plan.repair == "manylinux_2_5_x86_64"
    assert report.build is not None and report.build.repair is not None
    assert not report.build.repair.replayed
    assert "too-recent versioned symbols" in report.build.repair.reason
    assert report.build.wheel.name.endswith("-linux_x86_64.whl")
    comparison = report.comparison
    assert comparison is not None and comparison.unexplained == ()
    wheel_file = next(d for d in comparison.divergences if d.summary.startswith("WHEEL Tag"))
    assert wheel_file.explanation is not None
    assert wheel_file.explanation.startswith("auditwheel repair not replayable here")
    directories = {
        d.member for d in comparison.divergences if d.kind is DivergenceKind.DIRECTORY_ENTRY
    }
    assert "MarkupSafe.libs/" in directories


@pytest.mark.parametrize(
    ("member", "library"),
    [
        ("demo.libs/libgfortran-040039e1.so.5.0.0", ("libgfortran", "so.5.0.0")),
        # numpy 1.26.4's OpenBLAS: the version sits between the hash and ".so".
        (
            "numpy.libs/libopenblas64_p-r0-0cf96a72.3.23.dev.so",
            ("libopenblas64_p-r0", "3.23.dev.so"),
        ),
        ("demo.libs/README.txt", None),
        ("demo.libs/libz-nothex00.so.1", None),
        ("demo/libz-040039e1.so.1", None),
    ],
)
def test_grafted_library_names_are_recognised(member: str, library: tuple[str, str] | None) -> None:
    assert _grafted_library(member) == library
