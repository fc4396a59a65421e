"""The member analysers (text, metadata, binary fallback) and their dispatch by member kind."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from rebuild.compare import compare_wheels
from rebuild.compare.analysers import (
    DEFAULT_ANALYSERS,
    LazyAnalyser,
    MemberBlob,
    MemberKind,
    MemberPair,
    analyser_for,
    text,
)
from rebuild.compare.analysers.elf import ElfAnalyser
from rebuild.compare.analysers.metadata import MetadataAnalyser
from rebuild.compare.analysers.text import TextAnalyser, describe_change
from rebuild.compare.members import classify
from rebuild.models import Comparison, Divergence, DivergenceKind, Layer, Verdict

from .wheels import BASE, DIST_INFO, METADATA, WHEEL, make_wheel, record_for

ELF = b"\x7fELF\x02\x01\x01" + bytes(57)


def pair(
    name: str, old: bytes, new: bytes, kind: MemberKind, *, max_text_bytes: int = 4 << 20
) -> MemberPair:
    return MemberPair(
        name, kind, MemberBlob.from_bytes(old), MemberBlob.from_bytes(new), max_text_bytes
    )


def member_rows(result: Comparison, member: str) -> list[Divergence]:
    """The member's own divergences (not the RECORD rows that follow from them)."""
    return [
        d
        for d in result.divergences
        if d.member == member
        and d.layer is Layer.MEMBER
        and d.kind is not DivergenceKind.RECORD_ENTRY
    ]


def compare_change(tmp_path: Path, name: str, old: bytes, new: bytes) -> Comparison:
    pub = make_wheel(tmp_path / "p.whl", changes={name: old})
    reb = make_wheel(tmp_path / "r.whl", changes={name: new})
    return compare_wheels(pub, reb)


# --- dispatch ------------------------------------------------------------------------------


def test_classify() -> None:
    text, binary = MemberBlob.from_bytes(b"hello\n"), MemberBlob.from_bytes(b"\x00\x01")
    assert classify(f"{DIST_INFO}/RECORD", text, text, 100) is MemberKind.RECORD
    assert classify(f"{DIST_INFO}/METADATA", text, text, 100) is MemberKind.DIST_INFO
    assert classify("demo/x.pyi", binary, binary, 100) is MemberKind.PYTHON
    assert classify("demo/_x.so", MemberBlob.from_bytes(ELF), binary, 100) is MemberKind.ELF
    assert classify("demo/data.json", text, text, 100) is MemberKind.TEXT
    assert classify("demo/data.json", text, binary, 100) is MemberKind.BINARY
    assert classify("demo/x.bin", MemberBlob.from_bytes(b"\xff\xfe"), text, 100) is (
        MemberKind.BINARY
    )
    # Too large to read whole: the head decides (a cut multi-byte character is fine).
    big = MemberBlob.from_bytes("é".encode() * 10_000)
    assert classify("demo/big.txt", big, big, 100) is MemberKind.TEXT


def test_analyser_lookup() -> None:
    assert isinstance(analyser_for(MemberKind.PYTHON, DEFAULT_ANALYSERS), TextAnalyser)
    assert isinstance(analyser_for(MemberKind.RECORD, DEFAULT_ANALYSERS), MetadataAnalyser)
    elf = analyser_for(MemberKind.ELF, DEFAULT_ANALYSERS)
    # Loaded on first use: the ELF stack is not imported for wheels without compiled members.
    assert isinstance(elf, LazyAnalyser) and isinstance(elf.load(), ElfAnalyser)
    assert analyser_for(MemberKind.BINARY, DEFAULT_ANALYSERS) is None


def test_binary_member_is_unanalysed(tmp_path: Path) -> None:
    blob = bytes(range(256)) * 2  # not text, not ELF: no analyser has this kind
    result = compare_change(tmp_path, "demo/data.bin", blob, blob + b"\x01")
    assert result.verdict is Verdict.DIVERGENT
    assert result.unanalysed == ("demo/data.bin (binary)",)
    [row] = member_rows(result, "demo/data.bin")
    assert row.kind is DivergenceKind.CONTENT
    assert row.summary == "binary content differs: size 512 -> 513 bytes (+1); not analysed further"
    assert row.published is not None and "sha256" in row.published


def test_a_registered_analyser_takes_its_kind(tmp_path: Path) -> None:
    class ElfAnalyser:
        name = "elf"
        kinds = frozenset({MemberKind.ELF})

        def analyse(self, pair: MemberPair) -> list[Divergence]:
            return [Divergence(DivergenceKind.CONTENT, "build-id differs", member=pair.name)]

    pub = make_wheel(tmp_path / "p.whl", changes={"demo/_x.so": ELF})
    reb = make_wheel(tmp_path / "r.whl", changes={"demo/_x.so": ELF + b"\x01"})
    result = compare_wheels(pub, reb, analysers=[ElfAnalyser(), *DEFAULT_ANALYSERS])
    assert result.unanalysed == ()
    assert [d.summary for d in member_rows(result, "demo/_x.so")] == ["build-id differs"]


def test_an_analyser_that_finds_nothing_cannot_hide_a_difference(tmp_path: Path) -> None:
    class Blind:
        name = "blind"
        kinds = frozenset(MemberKind)

        def analyse(self, pair: MemberPair) -> list[Divergence]:
            return []

    pub = make_wheel(tmp_path / "p.whl")
    reb = make_wheel(tmp_path / "r.whl", changes={"demo/core.py": b"evil = 1\n"})
    result = compare_wheels(pub, reb, analysers=[Blind()])
    assert result.verdict is Verdict.DIVERGENT
    assert "demo/core.py (python)" in result.unanalysed
    assert member_rows(result, "demo/core.py")[0].kind is DivergenceKind.CONTENT


def test_an_analyser_that_fails_costs_one_member_not_the_check(tmp_path: Path) -> None:
    class Broken:
        name = "broken"
        kinds = frozenset({MemberKind.PYTHON})

        def analyse(self, pair: MemberPair) -> list[Divergence]:
            raise IndexError("tuple index out of range")

    pub = make_wheel(tmp_path / "p.whl", changes={"demo/data.txt": b"one\n"})
    changes = {"demo/core.py": b"evil = 1\n", "demo/data.txt": b"other\n"}
    reb = make_wheel(tmp_path / "r.whl", changes=changes)
    result = compare_wheels(pub, reb, analysers=[Broken(), TextAnalyser()])
    assert result.verdict is Verdict.DIVERGENT
    (row,) = member_rows(result, "demo/core.py")
    assert not row.explained
    assert "the broken analyser failed (IndexError: tuple index out of range)" in row.summary
    assert "demo/core.py (python)" in result.unanalysed
    # The other members are still compared by their analysers.
    assert member_rows(result, "demo/data.txt")[0].analyser == "text"


# --- text ----------------------------------------------------------------------------------


def test_crlf_only_difference_is_named(tmp_path: Path) -> None:
    result = compare_change(tmp_path, "demo/data.txt", b"a\r\nb\r\n", b"a\nb\n")
    [row] = member_rows(result, "demo/data.txt")
    assert row.summary == (
        "only line endings differ: published has 2 CRLF and 0 LF line endings, "
        "rebuilt has 0 CRLF and 2 LF line endings"
    )


def test_trailing_newline_only_difference_is_named() -> None:
    change = describe_change("x.py", b"x = 1\n", b"x = 1", max_lines=10)
    assert change.summary == (
        "only the trailing newline differs: published ends with '\\n', rebuilt with no newline"
    )


def test_big_diff_is_capped() -> None:
    old = b"".join(b"line %d\n" % i for i in range(1000))
    new = b"".join(b"LINE %d\n" % i for i in range(1000))
    [row] = TextAnalyser().analyse(pair("demo/big.py", old, new, MemberKind.PYTHON))
    assert row.summary == "content differs: 1,000 lines added, 1,000 removed"
    lines = row.detail.splitlines()
    assert len(lines) == 201
    assert lines[-1] == "… 1,804 more lines"


def test_diff_of_a_long_file_is_numbered_as_a_whole_file_diff() -> None:
    old = [f"line {i}" for i in range(10_000)]
    new = [*old[:5000], "inserted", *old[5000:9000], *old[9001:]]
    change = describe_change(
        "x.txt", "\n".join(old).encode(), "\n".join(new).encode(), max_lines=1000
    )
    expected = difflib.unified_diff(
        old, new, fromfile="published/x.txt", tofile="rebuilt/x.txt", lineterm=""
    )
    assert change.detail == "\n".join(expected)
    assert change.summary == "content differs: 1 line added, 1 removed"


def test_a_huge_changed_region_is_compared_as_line_sets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(text, "ALIGN_BUDGET", 10)
    old = b"".join(b"same\nold %d\n" % i for i in range(20))
    new = b"".join(b"same\nnew %d\n" % i for i in range(20))
    change = describe_change("x.txt", old, new, max_lines=3)
    assert change.summary == (
        "content differs: 20 lines added, 20 removed "
        "(the changed region is over 10 lines: lines compared as sets)"
    )
    assert change.detail.splitlines() == ["-old 0", "-old 1", "-old 2", "… 37 more lines"]


def test_text_over_the_limit_is_not_diffed() -> None:
    [row] = TextAnalyser().analyse(
        pair("demo/x.py", b"a" * 100, b"b" * 10, MemberKind.PYTHON, max_text_bytes=50)
    )
    assert row.summary == (
        "content differs; diff not computed: published is 100 bytes, over the 50-byte limit "
        "for a diff"
    )
    assert row.detail == ""


def test_undecodable_python_is_still_diffed() -> None:
    [row] = TextAnalyser().analyse(pair("x.py", b"s = '\xe9'\n", b"s = 'e'\n", MemberKind.PYTHON))
    assert "not valid UTF-8" in row.summary
    assert "-s = '\\xe9'" in row.detail


# --- metadata ------------------------------------------------------------------------------


def test_wheel_generator_differs(tmp_path: Path) -> None:
    name = f"{DIST_INFO}/WHEEL"
    old = WHEEL.replace(b"0.43.0", b"0.36.2")
    result = compare_change(tmp_path, name, old, WHEEL)
    [row] = member_rows(result, name)
    assert (row.kind, row.summary, row.published, row.rebuilt) == (
        DivergenceKind.METADATA_FIELD,
        "WHEEL field Generator differs",
        "bdist_wheel (0.36.2)",
        "bdist_wheel (0.43.0)",
    )
    assert row.explanation == "build backend version differs (toolchain)"


def test_wheel_generator_of_another_backend_is_unexplained(tmp_path: Path) -> None:
    name = f"{DIST_INFO}/WHEEL"
    new = WHEEL.replace(b"bdist_wheel (0.43.0)", b"setuptools (69.0.0)")
    [row] = member_rows(compare_change(tmp_path, name, WHEEL, new), name)
    assert not row.explained


def test_wheel_fields_each_reported(tmp_path: Path) -> None:
    name = f"{DIST_INFO}/WHEEL"
    new = WHEEL.replace(b"Root-Is-Purelib: true", b"Root-Is-Purelib: false") + b"Build: 1\n"
    rows = member_rows(compare_change(tmp_path, name, WHEEL, new), name)
    assert [r.summary for r in rows] == [
        "WHEEL field Root-Is-Purelib differs",
        "WHEEL field Build is only in the rebuilt wheel",
    ]


def test_requires_dist_added(tmp_path: Path) -> None:
    name = f"{DIST_INFO}/METADATA"
    new = METADATA.replace(b"Requires-Dist: requests>=2\n", b"Requires-Dist: requests>=2\n"
                           b"Requires-Dist: totally-not-malware\n")  # fmt: skip
    [row] = member_rows(compare_change(tmp_path, name, METADATA, new), name)
    assert (row.kind, row.summary) == (
        DivergenceKind.METADATA_FIELD,
        "METADATA Requires-Dist: added 'totally-not-malware'",
    )
    assert (row.published, row.rebuilt) == (None, "totally-not-malware")
    assert not row.explained


def test_multivalued_reorder_is_named() -> None:
    old = b"Name: demo\nClassifier: A\nClassifier: B\n\n"
    new = b"Name: demo\nClassifier: B\nClassifier: A\n\n"
    [row] = MetadataAnalyser().analyse(pair("d.dist-info/METADATA", old, new, MemberKind.DIST_INFO))
    assert row.summary == "METADATA Classifier: the same 2 values in another order"


def test_description_body_is_diffed() -> None:
    old = METADATA
    new = METADATA.replace(b"A long description.", b"A longer description.")
    [row] = MetadataAnalyser().analyse(pair("d.dist-info/METADATA", old, new, MemberKind.DIST_INFO))
    assert row.summary == "METADATA description differs: 1 line added, 1 removed"
    assert "+A longer description." in row.detail


def test_header_layout_only_falls_back_to_text() -> None:
    old = b"Name: demo\nVersion: 1.0\n\n"
    new = b"Version: 1.0\nName: demo\n\n"
    [row] = MetadataAnalyser().analyse(pair("d.dist-info/METADATA", old, new, MemberKind.DIST_INFO))
    assert (row.kind, row.summary) == (
        DivergenceKind.CONTENT,
        "content differs: 1 line added, 1 removed",
    )


def test_entry_points() -> None:
    old = b"[console_scripts]\ndemo = demo:main\nDemo = demo:Main\n"
    new = b"[console_scripts]\ndemo = demo:evil\nDemo = demo:Main\n[gui_scripts]\ng = demo:g\n"
    rows = MetadataAnalyser().analyse(
        pair("d.dist-info/entry_points.txt", old, new, MemberKind.DIST_INFO)
    )
    assert [(r.summary, r.published, r.rebuilt) for r in rows] == [
        ("entry point [console_scripts] demo differs", "demo:main", "demo:evil"),
        ("entry point [gui_scripts] g is only in the rebuilt wheel", None, "demo:g"),
    ]


def test_record_rows() -> None:
    old = b"a.py,sha256=A,1\nb.py,sha256=B,2\nd.dist-info/RECORD,,\n"
    new = b"a.py,sha256=A,1\nb.py,sha256=C,3\nc.py,sha256=D,4\nd.dist-info/RECORD,,\n"
    rows = MetadataAnalyser().analyse(pair("d.dist-info/RECORD", old, new, MemberKind.RECORD))
    assert [(r.kind, r.member, r.summary) for r in rows] == [
        (DivergenceKind.RECORD_ENTRY, "b.py", "RECORD row differs in hash and size"),
        (DivergenceKind.RECORD_ENTRY, "c.py", "RECORD row only in the rebuilt wheel"),
    ]


def test_record_row_order() -> None:
    old = b"a.py,sha256=A,1\nb.py,sha256=B,2\n"
    new = b"b.py,sha256=B,2\na.py,sha256=A,1\n"
    [row] = MetadataAnalyser().analyse(pair("d.dist-info/RECORD", old, new, MemberKind.RECORD))
    assert (row.member, row.summary) == (
        "d.dist-info/RECORD",
        "RECORD lists the same rows in another order",
    )


def test_record_row_of_an_unchanged_member_stays_unexplained(tmp_path: Path) -> None:
    # The rebuilt RECORD claims another size for a member whose bytes are the same.
    lying = record_for(BASE).replace(b",28\n", b",29\n")
    result = compare_wheels(
        make_wheel(tmp_path / "p.whl"), make_wheel(tmp_path / "r.whl", record=lying)
    )
    rows = [d for d in result.divergences if d.kind is DivergenceKind.RECORD_ENTRY]
    assert [(r.member, r.explained) for r in rows] == [("demo/core.py", False)]
