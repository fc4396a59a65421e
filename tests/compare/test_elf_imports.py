"""Imports, exports, DT_NEEDED and linked files that another C library or toolchain accounts for.

Shared objects are compiled by the host's gcc (no Python headers needed). The publisher's
"other toolchain" is simulated by rewriting the ``.comment`` section, which is where the ELF rules
read the compiler from. Each explained case has a twin that must stay unexplained: a call to
``system``, a library outside the wheel, a strong export, a linked file that is not a temporary.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from rebuild.compare.analysers import MemberBlob, MemberKind, MemberPair
from rebuild.compare.analysers.elf import ElfAnalyser
from rebuild.compare.elf_imports import canonical, classify_imports, is_runtime_routine
from rebuild.models import Divergence, Outcome

SO = "demo/_demo.cpython-311-x86_64-linux-gnu.so"
RED_HAT = b"GCC: (GNU) 10.2.1 20210130 (Red Hat 10.2.1-11)\x00"

Build = Callable[..., bytes]


# --- sorting imports ------------------------------------------------------------------------


def test_the_same_name_under_another_version_is_a_version_change() -> None:
    change = classify_imports(
        ["exp@GLIBC_2.2.5", "memcpy@GLIBC_2.14"], ["exp@GLIBC_2.29", "memcpy@GLIBC_2.14"]
    )
    assert change.versions == ("exp@GLIBC_2.2.5", "exp@GLIBC_2.29")
    assert not (change.runtime or change.suffixed or change.other)


def test_math_and_string_routines_and_redirected_calls_are_the_runtime() -> None:
    change = classify_imports(
        ["acos@GLIBC_2.2.5", "fscanf@GLIBC_2.2.5", "_IO_getc@GLIBC_2.2.5"],
        [
            "cacos@GLIBC_2.2.5",
            "__isoc99_fscanf@GLIBC_2.7",
            "getc@GLIBC_2.2.5",
            "strcmp@GLIBC_2.2.5",
        ],
    )
    assert set(change.runtime) == {
        "acos@GLIBC_2.2.5",
        "cacos@GLIBC_2.2.5",
        "fscanf@GLIBC_2.2.5",
        "__isoc99_fscanf@GLIBC_2.7",
        "_IO_getc@GLIBC_2.2.5",
        "getc@GLIBC_2.2.5",
        "strcmp@GLIBC_2.2.5",
    }
    assert change.other == ()


@pytest.mark.parametrize(
    "call",
    ["system", "execve", "popen", "dlopen", "socket", "connect", "mprotect", "fopen", "fscanf"],
)
def test_a_call_with_effects_on_one_side_is_never_the_runtime(call: str) -> None:
    change = classify_imports([f"{call}@GLIBC_2.2.5", "acos@GLIBC_2.2.5"], ["cacos@GLIBC_2.2.5"])
    assert change.other == (f"{call}@GLIBC_2.2.5",)


def test_a_routine_from_outside_glibc_is_not_the_runtime() -> None:
    # An unversioned `memcpy` may come from any library the object loads.
    assert not is_runtime_routine("memcpy")
    assert not is_runtime_routine("memcpy@MYLIB_1.0")
    assert is_runtime_routine("memcpy", versioned=False)  # relocatable objects carry no versions
    assert classify_imports(["memcpy"], []).other == ("memcpy",)


def test_canonical_names_undo_header_redirects() -> None:
    assert canonical("__isoc99_sscanf") == "sscanf"
    assert canonical("__memcpy_chk") == "memcpy"
    assert canonical("__exp_finite") == "exp"
    assert canonical("_IO_putc") == "putc"
    assert canonical("system") == "system"


def test_one_suffix_pairs_every_name_or_none() -> None:
    change = classify_imports(["cblas_ddot64_", "dgesv_64_"], ["cblas_ddot", "dgesv_"])
    assert change.suffix == "64_"
    assert set(change.suffixed) == {("cblas_ddot64_", "cblas_ddot"), ("dgesv_64_", "dgesv_")}
    assert change.other == ()
    # A name that pairs with nothing leaves every name unpaired: no partial matches.
    odd = classify_imports(["cblas_ddot64_", "backdoor64_"], ["cblas_ddot", "dgesv_"])
    assert odd.suffixed == ()
    assert len(odd.other) == 4


# --- whole objects --------------------------------------------------------------------------


@pytest.fixture
def build(tmp_path: Path) -> Build:
    """Compile C (and assembly) into a shared object with the host gcc; return its bytes."""
    counter = iter(range(1000))

    def compile_so(
        source: str,
        *,
        comment: bytes | None = None,
        libs: tuple[str, ...] = ("-lm",),
        flags: tuple[str, ...] = (),
        assembly: str = "",
    ) -> bytes:
        # Each build in its own directory, from files of the same names: the names are linked in.
        n = next(counter)
        where = tmp_path / f"build{n}"
        where.mkdir()
        c = where / "demo.c"
        c.write_text("#include <complex.h>\n#include <math.h>\n#include <stdlib.h>\n" + source)
        inputs = [str(c)]
        if assembly:
            s = where / "extra.s"
            s.write_text(assembly)
            inputs.append(str(s))
        out = tmp_path / f"out{n}.so"
        subprocess.run(
            [
                "gcc",
                "-O1",
                "-fPIC",
                "-shared",
                *inputs,
                "-o",
                str(out),
                f"-L{tmp_path}",
                *flags,
                *libs,
            ],
            check=True,
            capture_output=True,
        )
        if comment is not None:
            note = tmp_path / f"comment{n}"
            note.write_bytes(comment)
            subprocess.run(
                ["objcopy", f"--update-section=.comment={note}", str(out)],
                check=True,
                capture_output=True,
            )
        return out.read_bytes()

    return compile_so


@pytest.fixture
def library(tmp_path: Path) -> Callable[[str, str, str], None]:
    """Make lib<link>.so in tmp_path with the given soname, defining the given functions."""

    def make(link: str, soname: str, body: str) -> None:
        source = tmp_path / f"{link}.c"
        source.write_text(body)
        subprocess.run(
            [
                "gcc",
                "-fPIC",
                "-shared",
                str(source),
                f"-Wl,-soname,{soname}",
                "-o",
                str(tmp_path / f"lib{link}.so"),
            ],
            check=True,
            capture_output=True,
        )

    return make


def analyse(published: bytes, rebuilt: bytes, grafted: frozenset[str] = frozenset()) -> Divergence:
    pair = MemberPair(
        SO,
        MemberKind.ELF,
        MemberBlob.from_bytes(published),
        MemberBlob.from_bytes(rebuilt),
        published_libs=grafted,
    )
    (divergence,) = ElfAnalyser().analyse(pair)
    return divergence


# Both need libc.so.6 as well as libm.so.6 (through atol), as extensions do.
LIBC = "long n(const char *s) { return atol(s); }\n"
OWN_ACOS = LIBC + "double f(double x) { return acos(x) * 2.0; }\n"
GLIBC_CACOS = LIBC + "double complex f(double complex x) { return cacos(x); }\n"


def test_another_c_library_s_routines_are_explained_under_another_toolchain(build: Build) -> None:
    d = analyse(build(OWN_ACOS, comment=RED_HAT), build(GLIBC_CACOS))
    # The imports are a fact of glibc; the code another compiler made is only attributed.
    assert d.outcome is Outcome.ATTRIBUTED, d.summary
    assert "elf-libc-routines" in d.rules
    assert "from one glibc to another" in (d.explanation or "")
    assert "acos@GLIBC_2.2.5" in d.detail and "cacos@GLIBC_2.2.5" in d.detail


def test_an_added_system_call_stays_unexplained_under_another_toolchain(build: Build) -> None:
    backdoor = LIBC + 'double f(double x) { if (x > 2) system("id"); return acos(x) * 2.0; }\n'
    d = analyse(build(backdoor, comment=RED_HAT), build(GLIBC_CACOS))
    assert not d.explained
    # Both the import and the call to it: the call check holds whatever the compiler.
    assert d.aspects == ("imports", "invariants")
    assert "imports only one side has: system@GLIBC_2.2.5" in d.summary
    assert any(f.check == "calls" and "system" in f.what for f in d.findings)
    # The rest is still attributed, for a reviewer (and a recipe) to build on.
    assert "elf-libc-routines" in d.rules


def test_the_same_toolchain_explains_no_import_change(build: Build) -> None:
    d = analyse(build(OWN_ACOS), build(GLIBC_CACOS))
    # Under one compiler the code must match: it does not, and nothing attributes it.
    assert not d.explained
    assert d.aspects == ("code",)
    assert "elf-libc-routines" in d.rules  # the imports alone are a fact of glibc


def test_a_library_built_with_another_symbol_suffix(
    build: Build, library: Callable[[str, str, str], None]
) -> None:
    library("blas64", "libopenblas64_.so.0", "double ddot_64_(double x) { return x; }")
    library("blas", "libopenblas64.so.0", "double ddot_(double x) { return x; }")
    published = build(
        "double ddot_64_(double); double f(double x) { return ddot_64_(x); }",
        comment=RED_HAT,
        libs=("-lblas64",),
    )
    rebuilt = build(
        "double ddot_(double); double f(double x) { return ddot_(x); }", libs=("-lblas",)
    )
    d = analyse(published, rebuilt)
    assert "suffixed-imports" not in d.aspects, d.summary
    assert "elf-symbol-suffix" in d.rules
    assert any("'64_'" in r.text for r in d.reasons)


def test_dt_needed_and_rpath_naming_the_wheel_s_grafted_library(
    build: Build, library: Callable[[str, str, str], None]
) -> None:
    library("foo_grafted", "libfoo-0123abcd.so.1", "int foo(void) { return 1; }")
    library("foo", "libfoo.so.1", "int foo(void) { return 1; }")
    source = "int foo(void); int f(void) { return foo(); }"
    published = build(
        source, comment=RED_HAT, libs=("-lfoo_grafted",), flags=("-Wl,-rpath,$ORIGIN/../demo.libs",)
    )
    rebuilt = build(source, libs=("-lfoo",))

    grafted = analyse(published, rebuilt, frozenset({"libfoo-0123abcd.so.1"}))
    assert grafted.explained, grafted.summary
    assert "elf-auditwheel-graft" in grafted.rules

    # The same object, but the wheel ships no such library: nothing vouches for the change.
    loose = analyse(published, rebuilt)
    assert not loose.explained
    assert set(loose.aspects) == {"needed", "rpath"}


def test_a_library_added_to_the_wheel_that_the_rebuild_does_not_need_stays_unexplained(
    build: Build, library: Callable[[str, str, str], None]
) -> None:
    # The published object needs a library shipped in its .libs/ under auditwheel's naming, but
    # it is not a graft of anything the source's own build links: an added library.
    library("evil_grafted", "libevil-0123abcd.so.1", "int foo(void) { return 1; }")
    library("foo", "libfoo.so.1", "int foo(void) { return 1; }")
    source = "int foo(void); int f(void) { return foo(); }"
    published = build(
        source,
        comment=RED_HAT,
        libs=("-levil_grafted",),
        flags=("-Wl,-rpath,$ORIGIN/../demo.libs",),
    )
    d = analyse(published, build(source, libs=("-lfoo",)), frozenset({"libevil-0123abcd.so.1"}))
    assert not d.explained
    assert set(d.aspects) == {"needed", "rpath"}


def test_an_rpath_outside_the_wheel_is_never_auditwheel_s(
    build: Build, library: Callable[[str, str, str], None]
) -> None:
    library("foo_grafted", "libfoo-0123abcd.so.1", "int foo(void) { return 1; }")
    library("foo", "libfoo.so.1", "int foo(void) { return 1; }")
    source = "int foo(void); int f(void) { return foo(); }"
    published = build(
        source, comment=RED_HAT, libs=("-lfoo_grafted",), flags=("-Wl,-rpath,/home/attacker/lib",)
    )
    d = analyse(published, build(source, libs=("-lfoo",)), frozenset({"libfoo-0123abcd.so.1"}))
    assert not d.explained
    assert d.aspects == ("rpath",)


def test_weak_cxx_instantiations_on_one_side_follow_the_toolchain(build: Build) -> None:
    weak = "__attribute__((weak)) int _Z3maxIiET_S0_S0_(int a, int b) { return a > b ? a : b; }\n"
    base = "int f(int x) { return x + 1; }\n"
    d = analyse(build(base + weak, comment=RED_HAT), build(base))
    assert d.outcome is Outcome.ATTRIBUTED, d.summary
    assert "elf-another-compiler" in d.rules

    strong = "int _Z3maxIiET_S0_S0_(int a, int b) { return a > b ? a : b; }\n"
    d = analyse(build(base + strong, comment=RED_HAT), build(base))
    assert not d.explained
    assert d.aspects == ("exports",)
    assert d.symbols == ("_Z3maxIiET_S0_S0_",)  # what a recipe's `symbols` is matched against


def _asm(file_name: str) -> str:
    return f'\t.file "{file_name}"\n\t.text\n\t.globl g\n\t.type g, @function\ng:\n\tret\n'


def test_compiler_temporary_object_names_are_their_own_aspect(build: Build) -> None:
    base = "int f(int x) { return x + 1; }\n"
    d = analyse(
        build(base, assembly=_asm("/tmp/ccAbC123.o")), build(base, assembly=_asm("ccXyZ789.o"))
    )
    assert d.aspects == ("temp-objects",)
    assert "compiler-temporary object names differ" in d.summary

    other = analyse(build(base, assembly=_asm("evil.c")), build(base, assembly=_asm("ccXyZ789.o")))
    assert other.aspects == ("source-files",)
    assert "evil.c (only published)" in other.summary


def test_the_stack_protector_s_handler_is_the_compiler_s() -> None:
    change = classify_imports(
        ["acos@GLIBC_2.2.5"], ["acos@GLIBC_2.2.5", "__stack_chk_fail@GLIBC_2.4"]
    )
    assert change.runtime == ("__stack_chk_fail@GLIBC_2.4",) and change.other == ()


def test_libc_left_out_by_the_linker_is_explained_under_another_toolchain(
    build: Build, library: Callable[[str, str, str], None]
) -> None:
    source = "int f(int x) { return x + 1; }\n"
    with_libc = build(source, comment=RED_HAT, flags=("-Wl,--no-as-needed",), libs=())
    without = build(source, flags=("-Wl,--as-needed",), libs=())
    d = analyse(with_libc, without)
    assert d.explained, d.summary
    assert "elf-libc-merged" in d.rules
    # Any other library on the published side only is for the reviewer.
    library("evil", "libevil.so.1", "int g(void) { return 2; }")
    evil = build(source, comment=RED_HAT, flags=("-Wl,--no-as-needed",), libs=("-levil",))
    assert b"libevil.so.1" in evil
    d = analyse(evil, without)
    assert not d.explained and d.aspects == ("needed",)


def test_the_system_c_and_cxx_runtime_in_dt_needed_is_the_linker_s_choice(build: Build) -> None:
    # Linked without --as-needed, an object records libstdc++ and libgcc_s whatever it uses;
    # every manylinux policy takes them from the system.
    source = "long f(long x) { return x * 3; }\n"
    runtime = ("-lm", "-Wl,--no-as-needed", "-l:libstdc++.so.6", "-lgcc_s")
    d = analyse(build(source, comment=RED_HAT, libs=runtime), build(source))
    assert "needed" not in d.aspects, d.summary
    assert "elf-libc-merged" in d.rules
    # Any other library is one the source's own build does not load: unexplained.
    other = analyse(build(source, comment=RED_HAT, libs=(*runtime, "-lz")), build(source))
    assert "needed" in other.aspects
    assert not other.explained
