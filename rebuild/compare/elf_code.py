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
import threading
from collections.abc import Callable, Iterator

import capstone

from rebuild.compare.elf_read import ElfImage, Section

# Architectures whose code is decoded and normalised; others are compared byte for byte.
NORMALISED = frozenset({"x86_64"})

_HEX_TARGET = re.compile(r"^0x[0-9a-f]+$")
_RIP = re.compile(r"\[rip ([+-]) 0x([0-9a-f]+)\]")
# Strings name the data they are (string_at): read 48 bytes first, the rest when it goes on.
_SHORT_STRING = 48
_MAX_STRING = 4096
_STRING = re.compile(rb"^[\x20-\x7e\t\n]{1,%d}\x00" % _MAX_STRING)
_PRINTABLE_RUN = re.compile(rb"[\x20-\x7e\t\n]+")
_PLT_SECTIONS = (".plt", ".plt.sec", ".plt.got")
_PADDING = frozenset({"nop", "int3", "xchg ax, ax", "data16", "cs nop"})


_LOCAL = threading.local()


def decoder() -> capstone.Cs:
    """This thread's x86-64 decoder: made once, not once per function (a tenth of the time)."""
    found: capstone.Cs | None = getattr(_LOCAL, "decoder", None)
    if found is None:
        found = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
        _LOCAL.decoder = found
    return found


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
    string = string_at(image, addr)
    if string is not None:
        return f"{section.name}:{string!r}"
    return f"{section.name}:[{image.bytes_at(addr, 8).hex()}]"


def string_at(image: ElfImage, addr: int) -> str | None:
    """The NUL-terminated printable string at ``addr``, whole (up to 4 KiB), or None.

    Whole, not its first 48 bytes: messages and commands that start alike are common, and an
    operand re-aimed from one to another that shares its start would read as the same.
    """
    head = image.bytes_at(addr, _SHORT_STRING + 1)
    string = _STRING.match(head)
    if string is None and _PRINTABLE_RUN.fullmatch(head):
        string = _STRING.match(image.bytes_at(addr, _MAX_STRING + 1))
    return None if string is None else string.group()[:-1].decode("ascii")


def plt_entries(image: ElfImage, *, limit: int | None = None) -> dict[int, str]:
    """PLT entry address -> the import its jump goes through, whatever the entry size: .plt and
    .plt.sec entries are 16 bytes, .plt.got ones 8 (16 with IBT, whose entries start with
    endbr64), so entries are found by their jumps, not by a stride."""
    entries: dict[int, str] = {}
    if image.machine not in NORMALISED:
        return entries
    for section in image.sections:
        if section.name not in _PLT_SECTIONS or not section.fits:
            continue
        previous: tuple[int, str] = (section.addr, "")
        code = image.section_bytes(section)
        for address, size, mnemonic, operands in decoder().disasm_lite(code, section.addr):
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
    match = _RIP.search(operands) if "rip" in operands else None
    if match is None:
        return None
    displacement = int(match.group(2), 16)
    return address + size + (displacement if match.group(1) == "+" else -displacement)


def _operands(
    address: int,
    size: int,
    mnemonic: str,
    operands: str,
    symboliser: Symboliser,
    within: tuple[int, int],
) -> str:
    """One instruction's operands with the address it refers to named."""
    if _is_branch(mnemonic) and _HEX_TARGET.match(operands):
        return symboliser.name(int(operands, 16), within=within)
    target = rip_target(address, size, operands)
    if target is not None:
        named = symboliser.name(target, within=within).replace("\\", "\\\\")
        return _RIP.sub(f"[{named}]", operands, count=1)
    return operands


def _names_nothing(mnemonic: str, operands: str) -> bool:
    """An instruction whose operands :func:`_operands` leaves as they are."""
    return "rip" not in operands and not (_is_branch(mnemonic) and _HEX_TARGET.match(operands))


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
    within = (addr, len(code))
    out: list[str] = []
    decoded = 0
    for address, size, mnemonic, operands in decoder().disasm_lite(code, addr):
        decoded += size
        if skip_padding and mnemonic in _PADDING:
            continue
        out.append(f"{mnemonic} {_operands(address, size, mnemonic, operands, symboliser, within)}")
        if deadline is not None and len(out) % 4096 == 0 and deadline():
            return None
    if decoded < len(code):
        # capstone stops at bytes it cannot decode: keep them, so they still count.
        out.append(f"(bytes) {code[decoded:].hex()}")
    return tuple(out)


class _Decoded:
    """One side's instructions as :func:`normalise` walks them, and the bytes left undecoded."""

    def __init__(self, code: bytes, addr: int, skip_padding: bool) -> None:
        self.code = code
        self.decoded = 0
        self._stream = decoder().disasm_lite(code, addr)
        self._skip = skip_padding

    def __iter__(self) -> Iterator[tuple[int, int, str, str]]:
        for address, size, mnemonic, operands in self._stream:
            self.decoded += size
            if self._skip and mnemonic in _PADDING:
                continue
            yield address, size, mnemonic, operands

    def tail(self) -> bytes:
        return self.code[self.decoded :]


class Sameness:
    """What :func:`same_code` found: both empty once normalised, the same, or not."""

    EMPTY = "empty"
    SAME = "same"
    DIFFERENT = "different"


def same_code(
    old: tuple[bytes, int, Symboliser],
    new: tuple[bytes, int, Symboliser],
    *,
    deadline: Callable[[], bool] | None = None,
    skip_padding: bool = False,
) -> str | None:
    """Whether :func:`normalise` gives both sides the same instructions, without building them.

    Each side is (code, address, symboliser). Cheap before deep: an instruction whose mnemonic
    and operand text are the same on both sides, and that refers to no address, is the same
    without more ado; an instruction that refers to an address (a call, a jump, a RIP-relative
    operand) is compared by the names of its targets, exactly as :func:`normalise` names them,
    so a call to another function or a displacement to other data still differs. The first
    difference ends the walk. Returns a :class:`Sameness` value, or None past the deadline.
    """
    (a_code, a_addr, a_names), (b_code, b_addr, b_names) = old, new
    a, b = _Decoded(a_code, a_addr, skip_padding), _Decoded(b_code, b_addr, skip_padding)
    a_within, b_within = (a_addr, len(a_code)), (b_addr, len(b_code))
    count = 0
    ours, theirs = iter(a), iter(b)
    for one in ours:
        other = next(theirs, None)
        if other is None:
            return Sameness.DIFFERENT
        if one[2] != other[2]:
            return Sameness.DIFFERENT
        if one[3] != other[3] or not _names_nothing(one[2], one[3]):
            mine = _operands(*one, a_names, a_within)
            yours = _operands(*other, b_names, b_within)
            if mine != yours:
                return Sameness.DIFFERENT
        count += 1
        if deadline is not None and count % 4096 == 0 and deadline():
            return None
    if next(theirs, None) is not None:
        return Sameness.DIFFERENT
    if a.tail() != b.tail():
        return Sameness.DIFFERENT
    if count == 0 and not a.tail():
        return Sameness.EMPTY
    return Sameness.SAME
