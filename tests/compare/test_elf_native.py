"""The native decoder's two jobs: "surely the same" must never pass a change, and the call
graph's references must be what capstone reads, or more.

An attacker who knows the rules keeps a tampered function's instructions and changes only what
the fast path might set aside: the four bytes of a call's displacement, a RIP-relative operand,
an immediate; or leaves bytes that only one decoder reads. Each must come out "cannot tell", so
that capstone decides, and the report names the function.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from compare.elf_builds import host_shared_object
from compare.tamper import file_offset
from rebuild.compare import elf_native
from rebuild.compare.elf_code import Sameness, Symboliser, normalise, same_code
from rebuild.compare.elf_diff import diff_elf
from rebuild.compare.elf_invariants import _functions, _references, invariant_findings
from rebuild.compare.elf_native import Reference, references, surely_same
from rebuild.compare.elf_read import ElfImage, read_elf

SOURCE = """\
#define F __attribute__((noipa, noinline))
PADDING
F int safe(int x) { return x + 1; }
F int unsafe(int x) { return x * 7 - 3; }
F const char *greeting(void) { return "hello, reviewer"; }
const char *other_text(void) { return "rm -rf / --no-preserve-root"; }
F int caller(int x) { return safe(x) + 2; }
F long loop(long n) { long s = 0; for (long i = 0; i < n; i++) s += unsafe((int)i); return s; }
"""
# A function ahead of the others in the moved variant: everything after it changes address.
PADDING = (
    "F long ahead(long x) { long y = x; for (int i = 0; i < 9; i++) y = y * 31 + i; return y; }"
)
FUNCTIONS = ("safe", "unsafe", "greeting", "caller", "loop")


def _compile(build: Path, name: str, padding: str) -> bytes:
    return host_shared_object(build, name, SOURCE.replace("PADDING", padding))


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes]:
    """(the object, the same source with a function ahead of the rest: every address moves)."""
    build = tmp_path_factory.mktemp("native")
    return _compile(build, "original", ""), _compile(build, "moved", PADDING)


def _symbol(image: ElfImage, name: str) -> tuple[int, int]:
    (found,) = [(s.value, s.size) for s in image.symbols if s.name == name]
    return found


def _side(image: ElfImage, name: str, names: Symboliser) -> tuple[bytes, int, Symboliser]:
    start, size = _symbol(image, name)
    return image.bytes_at(start, size), start, names


def _re_aimed(data: bytes, function: str, rip: bool, target: int) -> ElfImage:
    """``function``'s one call (``rip``: one RIP-relative operand) re-aimed at ``target``: only
    the instruction's last four bytes, its displacement, change."""
    from iced_x86 import Decoder

    image = read_elf(data)
    start, size = _symbol(image, function)
    decoded = Decoder(64, image.bytes_at(start, size), ip=start)
    (chosen,) = [i for i in decoded if (i.is_ip_rel_memory_operand if rip else i.is_call_near)]
    at = file_offset(image, chosen.next_ip - 4)
    out = bytearray(data)
    struct.pack_into("<i", out, at, target - chosen.next_ip)
    return read_elf(bytes(out))


def _tampered_against(tampered: ElfImage, original: ElfImage, function: str) -> None:
    names = Symboliser(tampered), Symboliser(original)
    old, new = _side(tampered, function, names[0]), _side(original, function, names[1])
    assert not surely_same(old, new)
    assert normalise(*old) != normalise(*new)


def test_the_native_decoder_is_there_on_this_host() -> None:
    # CI runs on x86-64, where iced-x86 has wheels: the fast path must be the one tested.
    assert elf_native.AVAILABLE


def test_functions_that_only_moved_are_surely_the_same(pair: tuple[bytes, bytes]) -> None:
    original, moved = read_elf(pair[0]), read_elf(pair[1])
    names = Symboliser(original), Symboliser(moved)
    for function in FUNCTIONS:
        old, new = _side(original, function, names[0]), _side(moved, function, names[1])
        assert old[1] != new[1], f"{function} did not move"
        assert surely_same(old, new), function
        assert same_code(old, new) is Sameness.SAME, function


def test_a_call_re_aimed_is_not_the_same(pair: tuple[bytes, bytes]) -> None:
    original = read_elf(pair[0])
    tampered = _re_aimed(pair[0], "caller", False, _symbol(original, "unsafe")[0])
    _tampered_against(tampered, original, "caller")


def test_a_rip_operand_aimed_at_other_data_is_not_the_same(pair: tuple[bytes, bytes]) -> None:
    original = read_elf(pair[0])
    text = pair[0].index(b"rm -rf / --no-preserve-root")
    section = next(s for s in original.sections if s.offset <= text < s.offset + s.size)
    tampered = _re_aimed(pair[0], "greeting", True, section.addr + text - section.offset)
    _tampered_against(tampered, original, "greeting")


def test_a_changed_immediate_or_register_is_not_the_same(pair: tuple[bytes, bytes]) -> None:
    original = read_elf(pair[0])
    names = Symboliser(original)
    code, start, _ = _side(original, "unsafe", names)
    for at in range(len(code)):
        # Every single-byte change of the function: none may pass as the same.
        for flip in (0x01, 0x08, 0x80):
            changed = bytearray(code)
            changed[at] ^= flip
            assert not surely_same((bytes(changed), start, names), (code, start, names)), (at, flip)


def test_bytes_the_decoder_cannot_read_are_not_the_same(pair: tuple[bytes, bytes]) -> None:
    names = Symboliser(read_elf(pair[0]))
    code = bytes.fromhex("06c3")  # push es, invalid in 64-bit mode; then ret
    assert not surely_same((code, 0x1000, names), (code, 0x2000, names))


def test_a_function_cut_short_is_not_the_same(pair: tuple[bytes, bytes]) -> None:
    original = read_elf(pair[0])
    names = Symboliser(original)
    code, start, _ = _side(original, "loop", names)
    assert not surely_same((code[:-1], start, names), (code, start, names))
    assert not surely_same((code, start, names), (code[:-1], start, names))


def test_references_of_hand_written_code() -> None:
    base = 0x1000
    code = bytes.fromhex(
        "0f05"  # syscall
        "cd80"  # int 0x80
        "e810000000"  # call rel32 -> base + 4 + 5 + 0x10
        "ff1500010000"  # call [rip + 0x100]
        "488d0500020000"  # lea rax, [rip + 0x200]
        "ffe0"  # jmp rax: through a register, no address
        "06"  # bytes no decoder reads in 64-bit mode
        "0f05"  # syscall, after them
    )
    found = list(references(code, base))
    assert found == [
        (Reference.SYSCALL, base),
        (Reference.SYSCALL, base + 2),
        (Reference.BRANCH, base + 9 + 0x10),
        (Reference.BRANCH, base + 15 + 0x100),
        (Reference.LOAD, base + 22 + 0x200),
        (Reference.SYSCALL, base + 25),
    ]
    # capstone reads the same up to the bytes it cannot decode, and stops there.
    assert list(_references(code, base)) == found[:-1]


@pytest.mark.parametrize("path", [Path("/lib/x86_64-linux-gnu/libz.so.1")])
def test_references_agree_with_capstone_on_real_code(path: Path, pair: tuple[bytes, bytes]) -> None:
    for data in (path.read_bytes(), *pair):
        image = read_elf(data)
        for function in _functions(image):
            ours = list(references(function.code, function.start))
            assert ours == list(_references(function.code, function.start)), function.name


def test_both_decoders_give_the_same_comparison(
    pair: tuple[bytes, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    original, moved = read_elf(pair[0]), read_elf(pair[1])
    fast = diff_elf(original, moved), invariant_findings(original, moved)
    monkeypatch.setattr(elf_native, "AVAILABLE", False)
    slow = diff_elf(original, moved), invariant_findings(original, moved)
    assert fast == slow
    assert fast[0].functions_moved >= len(FUNCTIONS)
