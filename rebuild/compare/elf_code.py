"""Machine code compared as instructions whose targets are named, not as raw bytes.

When one function grows, everything linked after it moves, and every ``call``, ``jmp`` and
RIP-relative operand that reaches a moved target changes its bytes although its meaning does not.
Each function is therefore decoded (capstone) and every address an instruction refers to is
replaced by what lives there: a symbol (``PyLong_Type``, ``helper+0x10``), an import through the
PLT or GOT (``memcpy@plt``), or, for unnamed data, the data itself (a string, a few bytes). Two
functions are the same when those instruction lists are.
"""

from __future__ import annotations

import bisect
import re
import struct
from collections.abc import Callable

import capstone

from rebuild.compare.elf_read import ElfImage, Section

# Architectures whose code is decoded and normalised; others are compared byte for byte.
NORMALISED = frozenset({"x86_64"})

_HEX_TARGET = re.compile(r"^0x[0-9a-f]+$")
_RIP = re.compile(r"\[rip ([+-]) 0x([0-9a-f]+)\]")
_STRING = re.compile(rb"^[\x20-\x7e\t\n]{1,48}\x00")
_PLT_SECTIONS = (".plt", ".plt.sec", ".plt.got")
_PADDING = frozenset({"nop", "int3", "xchg ax, ax", "data16", "cs nop"})


def _is_branch(mnemonic: str) -> bool:
    return mnemonic.startswith(("call", "j", "loop")) or mnemonic in ("xbegin",)


def named_symbols(image: ElfImage) -> list[tuple[int, int, str]]:
    """(address, size, name) of every defined function and data symbol, by address."""
    return sorted(
        {
            (s.value, s.size, s.name)
            for s in image.symbols
            if s.defined and s.name and s.value and s.kind in ("STT_FUNC", "STT_OBJECT")
        }
    )


class Symboliser:
    """Names an address of one image by what is there."""

    def __init__(self, image: ElfImage) -> None:
        self.image = image
        named = named_symbols(image)
        self._starts = [value for value, _, _ in named]
        self._named = named
        self._plt = {addr: f"{name}@plt" for addr, name in plt_entries(image).items()}
        # Switch jump tables met while naming code: address -> length in bytes. Their bytes
        # are compared through the code that uses them (by where their entries land).
        self.tables: dict[int, int] = {}

    def name(self, addr: int, *, within: tuple[int, int] | None = None) -> str:
        """What ``addr`` refers to; ``within`` is the current function (start, size)."""
        if addr in self._plt:
            return self._plt[addr]
        if addr in self.image.got:
            return f"{self.image.got[addr]}@got"
        if addr in self.image.relative:
            return f"&{self._symbol_or_data(self.image.relative[addr], within)}@got"
        return self._symbol_or_data(addr, within)

    def _symbol_or_data(self, addr: int, within: tuple[int, int] | None) -> str:
        if within is not None and within[0] <= addr < within[0] + within[1]:
            # A jump inside the function: its offset is stable when the function is.
            return f".+{addr - within[0]:#x}"
        index = bisect.bisect_right(self._starts, addr) - 1
        if index >= 0:
            value, size, name = self._named[index]
            if addr == value:
                return name
            if addr < value + size:
                return f"{name}+{addr - value:#x}"
        section = self.image.section_at(addr)
        if section is None:
            return "?"
        if within is not None:
            table = _jump_table(self.image, addr, within)
            if table is not None:
                self.tables[addr] = 4 * (table.count(",") + 1)
                return table
        return _by_content(self.image, section, addr)


_MAX_TABLE = 4096  # entries of one switch's jump table followed


def _jump_table(image: ElfImage, addr: int, within: tuple[int, int]) -> str | None:
    """A switch's jump table at ``addr``, named by where its entries land in the function.

    GCC writes such a table as 32-bit offsets from the table's own address to the case labels,
    so its bytes change whenever the code moves against the data: it is named by the labels'
    offsets within the function instead, which only the code itself decides.
    """
    start, size = within
    data = image.bytes_at(addr, _MAX_TABLE * 4)
    landings = []
    for (entry,) in struct.iter_unpack("<i", data[: len(data) // 4 * 4]):
        target = addr + entry
        if not start <= target < start + size:
            break
        landings.append(target - start)
    if len(landings) < 2:
        return None
    shown = ",".join(f"{x:#x}" for x in landings)
    return f"jump-table[{shown}]"


def _by_content(image: ElfImage, section: Section, addr: int) -> str:
    """Unnamed data named by its content, so that moving it does not count as a change."""
    if section.kind == "SHT_NOBITS":
        return f"{section.name}+{addr - section.addr:#x}"
    head = image.bytes_at(addr, 49)
    string = _STRING.match(head)
    if string is not None:
        return f"{section.name}:{string.group()[:-1].decode('ascii')!r}"
    return f"{section.name}:[{head[:8].hex()}]"


def plt_entries(image: ElfImage, *, limit: int | None = None) -> dict[int, str]:
    """PLT entry address -> the import its jump goes through, whatever the entry size: .plt and
    .plt.sec entries are 16 bytes, .plt.got ones 8 (16 with IBT, whose entries start with
    endbr64), so entries are found by their jumps, not by a stride."""
    entries: dict[int, str] = {}
    if image.machine not in NORMALISED:
        return entries
    decoder = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    for section in image.sections:
        if section.name not in _PLT_SECTIONS or not section.fits:
            continue
        previous: tuple[int, str] = (section.addr, "")
        code = image.section_bytes(section)
        for address, size, mnemonic, operands in decoder.disasm_lite(code, section.addr):
            if mnemonic.startswith(("jmp", "bnd jmp")):
                slot = rip_target(address, size, operands)
                if slot is not None and slot in image.got:
                    start = previous[0] if previous[1].startswith("endbr") else address
                    entries.setdefault(start, image.got[slot])
            previous = (address, mnemonic)
            if limit is not None and len(entries) > limit:
                break
    return entries


def rip_target(address: int, size: int, operands: str) -> int | None:
    """The address an instruction's RIP-relative operand refers to, or None."""
    match = _RIP.search(operands)
    if match is None:
        return None
    displacement = int(match.group(2), 16)
    return address + size + (displacement if match.group(1) == "+" else -displacement)


def normalise(
    code: bytes,
    addr: int,
    symboliser: Symboliser,
    *,
    deadline: Callable[[], bool] | None = None,
    skip_padding: bool = False,
) -> tuple[str, ...] | None:
    """The instructions with every address replaced by its name; None past the deadline.

    ``skip_padding`` drops nops and int3 (the filler between functions, whose length follows
    alignment, not meaning).
    """
    decoder = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    within = (addr, len(code))
    out: list[str] = []
    decoded = 0
    for address, size, mnemonic, operands in decoder.disasm_lite(code, addr):
        decoded += size
        if skip_padding and mnemonic in _PADDING:
            continue
        if _is_branch(mnemonic) and _HEX_TARGET.match(operands):
            operands = symboliser.name(int(operands, 16), within=within)
        else:
            target = rip_target(address, size, operands)
            if target is not None:
                named = symboliser.name(target, within=within).replace("\\", "\\\\")
                operands = _RIP.sub(f"[{named}]", operands, count=1)
        out.append(f"{mnemonic} {operands}")
        if deadline is not None and len(out) % 4096 == 0 and deadline():
            return None
    if decoded < len(code):
        # capstone stops at bytes it cannot decode: keep them, so they still count.
        out.append(f"(bytes) {code[decoded:].hex()}")
    return tuple(out)
