"""Tests of the ar reader and the static-library analyser, on archives the host's gcc and ar make.

Every object is compiled here from a few lines of C; the archives are packed by ``ar`` or, for
malformed input, written byte by byte.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from rebuild.compare.analysers import MemberBlob, MemberKind, MemberPair
from rebuild.compare.analysers.archive import StaticLibraryAnalyser
from rebuild.compare.ar import MAX_MEMBERS, read_ar
from rebuild.compare.ar_diff import diff_objects
from rebuild.compare.elf_diff import ElfAspect
from rebuild.errors import ArchiveError
from rebuild.models import Divergence, DivergenceKind, Origin, Outcome

ADD = "long add(long a, long b) { return a + b; }\n"
ADD_CHANGED = "long add(long a, long b) { return a * 3 + b; }\n"
TWICE = "long add(long, long);\nlong twice(long x) { return add(x, x); }\n"
SCALE = "double scale(double x) { return x * 2.5 + 1.0; }\n"
SCALE_COS = "#include <math.h>\ndouble scale(double x) { return cos(x) * 2.5 + 1.0; }\n"
SCALE_SYSTEM = (
    "#include <stdlib.h>\n"
    'double scale(double x) { if (x > 1e300) system("true"); return x * 2.5 + 1.0; }\n'
)

Compile = Callable[..., bytes]


@pytest.fixture
def compile_c(tmp_path: Path) -> Compile:
    """Compile C source with the host gcc into a relocatable object; return its bytes."""
    counter = iter(range(1_000_000))

    def compile_(source: str, *flags: str) -> bytes:
        work = tmp_path / f"cc{next(counter)}"
        work.mkdir()
        (work / "unit.c").write_text(source)
        subprocess.run(
            ["gcc", "-O2", "-fPIC", "-c", "unit.c", "-o", "unit.o", *flags],
            cwd=work,
            check=True,
        )
        return (work / "unit.o").read_bytes()

    return compile_


def pack(tmp_path: Path, objects: list[tuple[str, bytes]], flags: str = "rcsD") -> bytes:
    """Pack objects (name, bytes) with the host ar, in order."""
    work = tmp_path / f"ar-{len(list(tmp_path.iterdir()))}"
    work.mkdir()
    for name, data in objects:
        (work / name).write_bytes(data)
        os.utime(work / name, (1_700_000_000, 1_700_000_000))
    subprocess.run(["ar", flags, "lib.a", *(name for name, _ in objects)], cwd=work, check=True)
    return (work / "lib.a").read_bytes()


def retag(obj: bytes) -> bytes:
    """The same object as if another gcc release had compiled it: .comment's version changed."""
    match = re.search(rb"GCC: \([^)]*\) (\d+)\.", obj)
    assert match is not None
    at = match.end(1) - 1
    digit = b"%d" % ((obj[at] - ord("0") + 1) % 10)
    return obj[:at] + digit + obj[at + 1 :]


def analyse(published: bytes, rebuilt: bytes) -> Divergence:
    pair = MemberPair(
        "pkg/lib/libdemo.a",
        MemberKind.STATIC_LIBRARY,
        MemberBlob.from_bytes(published),
        MemberBlob.from_bytes(rebuilt),
    )
    [divergence] = StaticLibraryAnalyser().analyse(pair)
    assert divergence.kind is DivergenceKind.CONTENT
    assert divergence.analyser == "static-library"
    assert "\n" not in divergence.summary
    return divergence


# --- the analyser on real objects -------------------------------------------------------------


def test_identical_objects_with_other_member_headers_are_explained(
    tmp_path: Path, compile_c: Compile
) -> None:
    objects = [("add.o", compile_c(ADD)), ("scale.o", compile_c(SCALE))]
    deterministic = pack(tmp_path, objects, "rcsD")
    stamped = pack(tmp_path, objects, "rcsU")  # real mtime, uid, gid and mode
    assert deterministic != stamped

    divergence = analyse(deterministic, stamped)

    assert divergence.explained, divergence.summary
    assert divergence.aspects == ()
    assert "2 objects, 2 identical, 0 differ" in divergence.summary
    assert "member headers differ for 2 objects" in divergence.summary
    assert "mtime 0 -> 1700000000" in divergence.detail
    assert "ar-member-headers" in divergence.rules


def test_changed_function_under_the_same_toolchain_is_unexplained_code(
    tmp_path: Path, compile_c: Compile
) -> None:
    scale = compile_c(SCALE)
    published = pack(tmp_path, [("add.o", compile_c(ADD)), ("scale.o", scale)])
    rebuilt = pack(tmp_path, [("add.o", compile_c(ADD_CHANGED)), ("scale.o", scale)])

    divergence = analyse(published, rebuilt)

    assert not divergence.explained
    assert divergence.aspects == ("code",)
    assert "2 objects, 1 identical, 1 differ (same compiler GCC" in divergence.summary
    assert "UNEXPLAINED: add.o: code differs (.text)" in divergence.summary
    assert "add.o (" in divergence.detail and "unexplained: code" in divergence.detail


def test_object_on_one_side_only_is_unexplained(tmp_path: Path, compile_c: Compile) -> None:
    add = compile_c(ADD)
    published = pack(tmp_path, [("add.o", add)])
    rebuilt = pack(tmp_path, [("add.o", add), ("scale.o", compile_c(SCALE))])

    divergence = analyse(published, rebuilt)

    assert not divergence.explained
    assert divergence.aspects == ("source-files",)
    assert "1 only rebuilt" in divergence.summary
    assert "objects only rebuilt: scale.o" in divergence.summary


def test_another_toolchain_only_attributes_code_and_layout(
    tmp_path: Path, compile_c: Compile
) -> None:
    published = pack(tmp_path, [("add.o", retag(compile_c(ADD))), ("scale.o", compile_c(SCALE))])
    rebuilt = pack(tmp_path, [("add.o", compile_c(ADD_CHANGED)), ("scale.o", compile_c(SCALE))])

    divergence = analyse(published, rebuilt)

    # The published .comment is the publisher's word: it attributes, never explains.
    assert divergence.outcome is Outcome.ATTRIBUTED, divergence.summary
    assert divergence.aspects == ()
    assert " vs GCC " in divergence.summary  # the two toolchains are named
    assert "elf-another-compiler" in divergence.rules
    assert divergence.reasons[-1].origin is Origin.PUBLISHER


def test_without_a_comment_nothing_attributes_the_code(compile_c: Compile) -> None:
    found = diff_objects("add.o", compile_c(ADD, "-fno-ident"), compile_c(ADD_CHANGED))

    assert not found.judgement.explained
    assert found.judgement.unexplained == {ElfAspect.CODE}
    assert found.diff.toolchain.published == ()


def test_a_new_system_call_stays_unexplained_under_another_toolchain(
    tmp_path: Path, compile_c: Compile
) -> None:
    published = pack(tmp_path, [("scale.o", retag(compile_c(SCALE)))])
    rebuilt = pack(tmp_path, [("scale.o", compile_c(SCALE_SYSTEM))])

    divergence = analyse(published, rebuilt)

    assert not divergence.explained
    assert divergence.aspects == ("imports",)
    assert "scale.o: undefined symbols only one side has: system" in divergence.summary


def test_a_math_routine_under_another_toolchain_is_the_c_library(
    tmp_path: Path, compile_c: Compile
) -> None:
    published = pack(tmp_path, [("scale.o", retag(compile_c(SCALE)))])
    rebuilt = pack(tmp_path, [("scale.o", compile_c(SCALE_COS))])

    divergence = analyse(published, rebuilt)

    assert divergence.explained, divergence.summary
    assert "elf-libc-routines" in divergence.rules
    assert "undefined C-library routines on one side only: cos" in divergence.detail


def test_calls_between_the_library_own_objects_are_code_not_imports(
    tmp_path: Path, compile_c: Compile
) -> None:
    add = compile_c(ADD)
    calling = compile_c(TWICE)
    inline = compile_c("long twice(long x) { return x + x; }\n")
    published = pack(tmp_path, [("add.o", add), ("twice.o", calling)])

    same_toolchain = analyse(published, pack(tmp_path, [("add.o", add), ("twice.o", inline)]))
    assert same_toolchain.aspects == ("code",)
    assert "calls add only published" in same_toolchain.summary

    other = pack(tmp_path, [("add.o", add), ("twice.o", retag(inline))])
    assert analyse(published, other).explained


def test_duplicate_names_are_paired_by_position(tmp_path: Path, compile_c: Compile) -> None:
    add, scale = compile_c(ADD), compile_c(SCALE)
    first = tmp_path / "first"
    second = tmp_path / "second"
    first.mkdir()
    second.mkdir()
    (first / "x.o").write_bytes(add)
    (second / "x.o").write_bytes(scale)
    libs: list[bytes] = []
    for order in (["first/x.o", "second/x.o"], ["first/x.o", "first/x.o"]):
        target = tmp_path / f"lib{len(libs)}.a"
        # "q" appends without replacing: two members named x.o.
        subprocess.run(["ar", "qcD", str(target), *order], cwd=tmp_path, check=True)
        libs.append(target.read_bytes())

    assert [m.name for m in read_ar(libs[0]).members] == ["x.o", "x.o"]
    divergence = analyse(libs[0], libs[1])

    assert "2 objects, 1 identical, 1 differ" in divergence.summary
    assert "x.o (#2)" in divergence.summary


def test_other_member_order_is_unexplained(tmp_path: Path, compile_c: Compile) -> None:
    objects = [("add.o", compile_c(ADD)), ("scale.o", compile_c(SCALE))]
    divergence = analyse(pack(tmp_path, objects), pack(tmp_path, objects[::-1]))

    assert divergence.aspects == ("member-order",)
    assert "stored in another order" in divergence.summary


def test_a_member_that_is_not_elf_is_not_compared_in_full(tmp_path: Path) -> None:
    published = pack(tmp_path, [("notes.txt", b"one\n")])
    rebuilt = pack(tmp_path, [("notes.txt", b"two\n")])

    divergence = analyse(published, rebuilt)

    assert divergence.aspects == ("incomplete",)
    assert "notes.txt: not compared in full" in divergence.summary


# --- malformed archives -------------------------------------------------------------------------


def header(name: bytes, size: int, *, size_field: bytes | None = None) -> bytes:
    fields = (
        name.ljust(16)
        + b"0".ljust(12)
        + b"0".ljust(6)
        + b"0".ljust(6)
        + b"644".ljust(8)
        + (size_field if size_field is not None else str(size).encode()).ljust(10)
    )
    return fields + b"`\n"


def member(name: bytes, data: bytes) -> bytes:
    return header(name, len(data)) + data + (b"\n" if len(data) % 2 else b"")


def archive(*members: bytes) -> bytes:
    return b"!<arch>\n" + b"".join(members)


MALFORMED = {
    "truncated header": archive(member(b"a.o/", b"xy"))[:-30],
    "size past the end": archive(header(b"a.o/", 1_000_000) + b"tiny"),
    "bogus long-name offset": archive(
        member(b"//", b"long_name_object.o/\n"), member(b"/999", b"")
    ),
    "long name without a table": archive(member(b"/0", b"data")),
    "size not a number": archive(header(b"a.o/", 0, size_field=b"12x") + b"x" * 12),
    "no end marker": archive(member(b"a.o/", b"ab")[:58] + b"XX" + b"ab"),
    "thin archive": b"!<thin>\n" + header(b"a.o/", 10),
    "not an archive": b"\x7fELF" + b"\0" * 100,
    "huge member count": archive(*[member(b"e/", b"")] * (MAX_MEMBERS + 5)),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_archive_is_an_unexplained_finding(tmp_path: Path, case: str) -> None:
    good = archive(member(b"a.o/", b"ab"))

    divergence = analyse(MALFORMED[case], good)

    assert not divergence.explained
    assert divergence.aspects == ("incomplete",)
    assert divergence.summary.startswith(
        "static library differs; not analysed: the published archive could not be read: "
    )


def test_malformed_object_inside_is_a_finding(tmp_path: Path, compile_c: Compile) -> None:
    add = compile_c(ADD)
    broken = add[:64] + b"\xff" * (len(add) - 64)  # the section table points at garbage

    # Written by hand: ar itself refuses to index the broken object.
    divergence = analyse(archive(member(b"add.o/", add)), archive(member(b"add.o/", broken)))

    assert not divergence.explained
    assert "incomplete" in divergence.aspects
    assert "add.o: not compared in full" in divergence.summary


def test_hostile_names_are_escaped(compile_c: Compile) -> None:
    add = compile_c(ADD)
    name = b"evil\x1b[31m.o/"
    published = archive(member(name, add))
    rebuilt = archive(member(name, compile_c(ADD_CHANGED)))

    divergence = analyse(published, rebuilt)

    assert "\x1b" not in divergence.summary + divergence.detail
    assert "evil\\x1b[31m.o" in divergence.summary


# --- the ar reader ------------------------------------------------------------------------------


def test_reads_what_gnu_ar_writes(tmp_path: Path, compile_c: Compile) -> None:
    long_name = "a_rather_long_object_name.o"  # over 15 bytes: stored in the // table
    odd = b"odd"  # 3 bytes: followed by a padding byte
    lib = pack(tmp_path, [(long_name, compile_c(ADD)), ("odd.txt", odd), ("b.o", b"bb")])

    members = read_ar(lib).members

    assert [m.name for m in members] == [long_name, "odd.txt", "b.o"]
    assert members[1].data == odd and members[2].data == b"bb"
    assert read_ar(lib).symbol_index  # ar s wrote one, for add; it is not a member
    assert members[0].mode == 0o644 and members[0].mtime == 0


def test_reads_gnu_long_names_symbol_tables_and_padding() -> None:
    table = b"first_long_member_name.o/\nsecond_long_member_name.o/\n"
    data = archive(
        member(b"/", b"\0\0\0\0"),
        member(b"/SYM64/", b"\0" * 8),
        member(b"//", table),
        member(b"/0", b"one"),
        member(b"/26", b"two!"),
        member(b"short.o/", b"x"),
    )

    parsed = read_ar(data)

    assert [(m.name, m.data) for m in parsed.members] == [
        ("first_long_member_name.o", b"one"),
        ("second_long_member_name.o", b"two!"),
        ("short.o", b"x"),
    ]
    assert parsed.symbol_index == b"\0" * 12


def test_reads_bsd_names_and_skips_the_bsd_symbol_table() -> None:
    name = b"a_bsd_style_long_name.o"
    data = archive(
        member(b"#1/12", b"__.SYMDEF\0\0\0" + b"\1\2"),
        member(b"#1/%d" % len(name), name + b"body"),
    )

    parsed = read_ar(data)

    assert [(m.name, m.data) for m in parsed.members] == [(name.decode(), b"body")]
    assert parsed.symbol_index == b"\1\2"


def test_a_bsd_name_longer_than_its_member_is_refused() -> None:
    with pytest.raises(ArchiveError, match="BSD name of 40 bytes in a 4-byte member"):
        read_ar(archive(member(b"#1/40", b"abcd")))


def test_a_long_name_without_an_end_is_bounded() -> None:
    data = archive(member(b"//", b"n" * 10_000), member(b"/0", b""))
    with pytest.raises(ArchiveError, match="long name over 4,096 bytes"):
        read_ar(data)


def test_the_member_cap_is_enforced() -> None:
    data = archive(*[member(b"e/", b"")] * 11)
    assert len(read_ar(data, max_members=11).members) == 11
    with pytest.raises(ArchiveError, match="over 10 members"):
        read_ar(data, max_members=10)


def test_an_empty_archive_has_no_members() -> None:
    assert read_ar(b"!<arch>\n").members == ()


def test_objects_past_the_comparison_cap_are_listed_not_compared(
    monkeypatch: pytest.MonkeyPatch, compile_c: Compile
) -> None:
    monkeypatch.setattr("rebuild.compare.ar_diff.MAX_COMPARED_OBJECTS", 1)
    old, new = retag(compile_c(ADD)), compile_c(ADD_CHANGED)
    published = archive(member(b"a.o/", old), member(b"b.o/", old))
    rebuilt = archive(member(b"a.o/", new), member(b"b.o/", new))

    divergence = analyse(published, rebuilt)

    assert divergence.aspects == ("incomplete",)
    assert "b.o: not compared in full (not compared: over 1 objects differ)" in divergence.summary
    assert "a.o" not in divergence.summary.split("UNEXPLAINED")[1]
