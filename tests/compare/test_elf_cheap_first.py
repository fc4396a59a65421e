"""Cheap before deep in the ELF comparison must not let a real change through.

Functions are compared instruction by instruction as they are decoded, the addresses they refer
to by name, and only those that still differ are normalised whole. An attacker who changes
nothing but where a call goes, or what a RIP-relative operand points to, leaves every other byte
of the function as it was: these tests patch exactly those four bytes of an object gcc compiled
here and check that the function is still reported, unexplained.
"""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import capstone
import pytest

from compare.elf_builds import host_shared_object
from compare.tamper import file_offset
from rebuild.compare.analysers import MemberBlob, MemberKind, MemberPair
from rebuild.compare.analysers.elf import ElfAnalyser
from rebuild.compare.elf_code import Sameness, Symboliser, normalise, same_code
from rebuild.compare.elf_diff import ElfAspect, diff_elf
from rebuild.compare.elf_read import ElfImage, read_elf
from rebuild.models import Outcome

SOURCE = """\
#define F __attribute__((noipa, noinline))
F int safe(int x) { return x + 1; }
F int unsafe(int x) { return x * 7 - 3; }
F const char *greeting(void) { return "hello, reviewer"; }
const char *other_text(void) { return "rm -rf / --no-preserve-root"; }
F int caller(int x) { return safe(x) + 2; }
"""


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    build = tmp_path_factory.mktemp("cheap")
    (build / "m.c").write_text(SOURCE)
    subprocess.run(
        ["gcc", "-O1", "-fPIC", "-shared", str(build / "m.c"), "-o", str(build / "m.so")],
        check=True,
        capture_output=True,
    )
    return (build / "m.so").read_bytes()


def _symbol(image: ElfImage, name: str) -> tuple[int, int]:
    (found,) = [(s.value, s.size) for s in image.symbols if s.name == name]
    return found


def _re_aimed(data: bytes, function: str, wanted: str, target: int) -> bytes:
    """``function``'s one instruction ``wanted`` re-aimed at address ``target``: only its
    32-bit displacement, the instruction's last four bytes (call rel32, lea [rip+d32]),
    changes."""
    image = read_elf(data)
    start, size = _symbol(image, function)
    decoder = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    ((address, length),) = [
        (a, n)
        for a, n, m, _ in decoder.disasm_lite(image.bytes_at(start, size), start)
        if m == wanted
    ]
    patched = bytearray(data)
    struct.pack_into(
        "<i", patched, file_offset(image, address) + length - 4, target - (address + length)
    )
    return bytes(patched)


def _patch(data: bytes, function: str, wanted: str, target: str) -> bytes:
    """``function``'s one instruction ``wanted`` re-aimed at symbol ``target``."""
    return _re_aimed(data, function, wanted, _symbol(read_elf(data), target)[0])


def _report(published: bytes, rebuilt: bytes) -> tuple[list[str], Outcome | None]:
    diff = diff_elf(read_elf(published), read_elf(rebuilt))
    assert ElfAspect.CODE in diff.aspects
    pair = MemberPair(
        "demo/m.so",
        MemberKind.ELF,
        MemberBlob.from_bytes(published),
        MemberBlob.from_bytes(rebuilt),
    )
    (divergence,) = ElfAnalyser().analyse(pair)
    return [c.name for c in diff.functions_changed], divergence.outcome


def test_a_call_re_aimed_at_another_function_is_reported(original: bytes) -> None:
    tampered = _patch(original, "caller", "call", "unsafe")
    assert tampered != original and len(tampered) == len(original)
    changed, outcome = _report(tampered, original)
    assert changed == ["caller"]
    assert outcome is Outcome.UNEXPLAINED


def _lea_re_aimed(data: bytes, function: str, text: bytes) -> bytes:
    """``function``'s one lea aimed at the string ``text`` (found by its bytes)."""
    image = read_elf(data)
    at = data.index(text)
    section = next(s for s in image.sections if s.offset <= at < s.offset + s.size)
    return _re_aimed(data, function, "lea", section.addr + at - section.offset)


def test_a_rip_relative_operand_re_aimed_at_other_data_is_reported(original: bytes) -> None:
    tampered = _lea_re_aimed(original, "greeting", b"rm -rf / --no-preserve-root")
    changed, outcome = _report(tampered, original)
    assert changed == ["greeting"]
    assert outcome is Outcome.UNEXPLAINED


LONG_STRINGS = """\
#define F __attribute__((noipa, noinline))
F const char *command(void) {
    return "sh -c 'echo the nightly checks are done, nothing more to run here; exit 0'";
}
const char *other(void) {
    return "sh -c 'echo the nightly checks are done, nothing more to run here; rm -rf ~'";
}
"""


def test_an_operand_re_aimed_at_a_string_that_starts_alike_is_reported(
    tmp_path: Path,
) -> None:
    # The two commands share their first 67 bytes: data named by its first 48 (or 8) bytes
    # read both as the same string.
    original = host_shared_object(tmp_path, "long", LONG_STRINGS)
    tampered = _lea_re_aimed(
        original,
        "command",
        b"sh -c 'echo the nightly checks are done, nothing more to run here; rm",
    )
    changed, outcome = _report(tampered, original)
    assert changed == ["command"]
    assert outcome is Outcome.UNEXPLAINED


def test_the_cheap_comparison_agrees_with_the_whole_one(original: bytes) -> None:
    tampered = _patch(original, "caller", "call", "unsafe")
    ours, theirs = read_elf(tampered), read_elf(original)
    names = (Symboliser(ours), Symboliser(theirs))
    for function in ("safe", "unsafe", "greeting", "caller"):
        start, size = _symbol(ours, function)
        a, b = ours.bytes_at(start, size), theirs.bytes_at(start, size)
        whole = normalise(a, start, names[0]) == normalise(b, start, names[1])
        cheap = same_code((a, start, names[0]), (b, start, names[1]))
        assert (cheap is Sameness.SAME) == whole, function
    # And an object against itself moved: nothing differs, whatever the bytes at each address.
    start, size = _symbol(theirs, "caller")
    code = theirs.bytes_at(start, size)
    assert same_code((code, start, names[1]), (code, start, names[1])) is Sameness.SAME
