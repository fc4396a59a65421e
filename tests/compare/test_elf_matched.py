"""What may tell two objects apart under the same compiler and still leave the code verified.

Three facts of a matched rebuild, each narrow enough that a tampered object is not one: the
CPython headers' PY_VERSION_HEX of another micro release (Cython compiles it into the module's
init), a GCC x.y.1 cut from its branch on another date (another compiler: it may attribute,
never explain), and the C runtime's own objects and symbol-version tables that one linker places
in sections the other does not make.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rebuild.compare.elf_diff import ElfAspect, diff_elf, python_version, version_only
from rebuild.compare.elf_read import read_elf
from rebuild.compare.elf_rules import compiler_versions, judge
from rebuild.images import ensure_image
from rebuild.models import Outcome

from .elf_builds import Variant, compile_variants


@pytest.mark.parametrize(
    ("value", "version"),
    [
        (0x030B07F0, "3.11.7"),
        (0x030B02F0, "3.11.2"),
        (0x030D00A2, "3.13.0a2"),
        (0x030E00C1, "3.14.0rc1"),
        (0x030B07F7, None),  # release level 7: not a level CPython has
        (0x020703F0, None),  # Python 2
        (0x030B07, None),  # too short to be one
    ],
)
def test_python_version_reads_py_version_hex(value: int, version: str | None) -> None:
    assert python_version(value) == version


def test_only_version_constants_of_the_same_minor_make_a_function_the_same() -> None:
    before = ("mov rax, qword ptr [rip + x]", "xor rdx, 0x30b07f0", "ret")
    after = ("mov rax, qword ptr [rip + x]", "xor rdx, 0x30b02f0", "ret")
    assert version_only(before, after) == (("3.11.7", "3.11.2"),)


_PUBLISHED = ("mov rax, qword ptr [rip + x]", "xor rdx, 0x30b07f0", "and rdx, 0x10", "ret")


@pytest.mark.parametrize(
    "rebuilt",
    [
        # Another minor: another ABI, not a header's micro release.
        ("mov rax, qword ptr [rip + x]", "xor rdx, 0x30c02f0", "and rdx, 0x10", "ret"),
        # Not shaped as a version (a final release has serial 0): a changed constant.
        ("mov rax, qword ptr [rip + x]", "xor rdx, 0x30b07f7", "and rdx, 0x10", "ret"),
        # The same version constant, and an instruction more.
        ("mov rax, qword ptr [rip + x]", "xor rdx, 0x30b02f0", "inc rdx", "and rdx, 0x10", "ret"),
        # The constant moved into another instruction.
        ("mov rax, qword ptr [rip + x]", "add rdx, 0x30b02f0", "and rdx, 0x10", "ret"),
        # The version and the register both changed.
        ("mov rax, qword ptr [rip + x]", "xor rcx, 0x30b02f0", "and rdx, 0x10", "ret"),
        # The version, and another constant elsewhere.
        ("mov rax, qword ptr [rip + x]", "xor rdx, 0x30b02f0", "and rdx, 0x20", "ret"),
        # Another data reference beside the version.
        ("mov rax, qword ptr [rip + y]", "xor rdx, 0x30b02f0", "and rdx, 0x10", "ret"),
    ],
)
def test_anything_more_than_the_version_still_differs(rebuilt: tuple[str, ...]) -> None:
    assert version_only(_PUBLISHED, rebuilt) is None


def test_a_branch_snapshot_names_another_compiler() -> None:
    red_hat = "GCC: (GNU) 10.2.1 20210130 (Red Hat 10.2.1-11)"
    debian = "GCC: (Debian 10.2.1-6) 10.2.1 20210110"
    assert compiler_versions([red_hat]) == {"GCC 10.2.1 20210130"}
    assert compiler_versions([red_hat]) != compiler_versions([debian])
    assert compiler_versions(["GCC: (Debian 12.2.0-14) 12.2.0"]) == {"GCC 12.2.0"}


# f05 of the synthetic extension gets a constant; each variant changes it in one way.
_VARIANTS = {
    "published": "x ^= 0x030b07f0L;",  # built against CPython 3.11.7's headers
    "rebuilt": "x ^= 0x030b02f0L;",  # 3.11.2's
    "other-minor": "x ^= 0x030c02f0L;",
    "tampered": "x ^= 0x030b02f0L; x += 0x41;",
}


@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    image = ensure_image("bookworm-py311").tag
    variants = [Variant(name, "/tmp/build-a", grow=grow) for name, grow in _VARIANTS.items()]
    paths = compile_variants(image, variants, tmp_path_factory.mktemp("versions"))
    return {name: Path(path).read_bytes() for name, path in paths.items()}


@pytest.mark.docker
def test_a_header_micro_release_alone_leaves_the_code_verified(versions: dict[str, bytes]) -> None:
    diff = diff_elf(read_elf(versions["published"]), read_elf(versions["rebuilt"]))
    assert diff.python_versions == (("3.11.7", "3.11.2"),)
    assert diff.python_version_functions == ("f05",)
    assert ElfAspect.CODE not in diff.aspects
    judgement = judge(diff)
    assert judgement.outcome is Outcome.VERIFIED, judgement
    (reason,) = [r for r in judgement.reasons if r.rule == "elf-python-version"]
    assert "f05" in reason.text
    assert "published 3.11.7, rebuilt 3.11.2" in reason.text


@pytest.mark.docker
@pytest.mark.parametrize("variant", ["other-minor", "tampered"])
def test_more_than_a_micro_release_is_unexplained(versions: dict[str, bytes], variant: str) -> None:
    diff = diff_elf(read_elf(versions["published"]), read_elf(versions[variant]))
    assert [c.name for c in diff.functions_changed] == ["f05"]
    assert diff.python_versions == ()
    assert judge(diff).outcome is Outcome.UNEXPLAINED
