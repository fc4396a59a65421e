"""Checks that hold whatever compiler built either side: what a tampered object cannot hide.

When the rebuild used another compiler than the publisher, every function's code differs and the
instructions cannot be verified. Some facts survive a change of compiler, though: the strings the
source writes, the functions each function calls (up to inlining), the raw system calls, what runs
at load time, what each pointer in initialised data points to (struct layout is ABI), and which
function each export is. :func:`invariant_findings` lists each such fact of the published object
that the rebuild does not account for. An empty answer is what lets a comparison say "attributed
to the toolchain, code not verified"; any finding (including "could not check") means it cannot.

Every check is bounded (a deadline, capped counts) and fails closed: a check cut short or unable
to read the object reports that as a finding instead of reporting nothing.
"""

from __future__ import annotations

import bisect
import enum
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

import capstone

from rebuild.compare import elf_native as native
from rebuild.compare.elf_code import decoder, named_symbols, plt_entries, rip_target, string_at
from rebuild.compare.elf_imports import canonical, is_runtime_routine
from rebuild.compare.elf_native import Reference
from rebuild.compare.elf_read import PARSE_ERRORS, SHF_ALLOC, ElfImage, Section, Symbol
from rebuild.compare.elf_segments import hidden_data


class Invariant(enum.Enum):
    """One toolchain-invariant check."""

    STRINGS = "strings"
    CALLS = "calls"
    SYSCALLS = "syscalls"
    CONSTRUCTORS = "constructors"
    RELOCATIONS = "relocations"
    EXPORT_TARGETS = "export-targets"


@dataclass(frozen=True)
class InvariantFinding:
    """Something present in the published object that the rebuild does not account for."""

    check: Invariant
    what: str  # the string (escaped, capped), the call target, the constructor's target...
    where: str  # the function or section (data symbol + offset) it sits in


Deadline = Callable[[], bool]

# Shorter printable runs occur by chance in tables and code constants; measured on real pairs,
# 6 gives no false alarm while an injected command line is always far longer.
MIN_STRING = 6
_NEIGHBOUR_BYTES = 2  # printable bytes of adjacent binary data a run may start with
MAX_SHOWN = 80  # characters of a string shown in a finding
MAX_FINDINGS = 200  # per check: beyond that one more finding says how many were left out
MAX_STRINGS = 500_000  # printable runs read per object
MAX_CODE = 256 * 1024 * 1024  # bytes of code decoded per object
MAX_FUNCTIONS = 200_000
# How many calls deep the rebuild may reach a callee the published caller calls directly: the
# published compiler inlined the functions in between. Measured on real GCC 10 vs 12 pairs.
INLINE_DEPTH = 3
_CUT_SHORT = "(not checked: the time budget ran out)"
HIDDEN = "(loaded bytes no section describes)"

# GCC's names for the copies of a function it specialises or splits: foo.constprop.0,
# foo.isra.3, foo.part.1, foo.cold, foo.lto_priv.0, and chains of them.
_CLONE = re.compile(r"(?:\.(?:constprop|isra|part|cold|lto_priv|localalias|clone)(?:\.\d+)?)+$")
# GCC numbers function-local statics: id_html.0, completed.1.
_STATIC_LOCAL = re.compile(r"\.\d+$")
# An absolute directory, as a build directory is: nothing a shell would interpret.
_DIRECTORY = re.compile(r"(?:/[A-Za-z0-9_.+@~-]+)+")
_PRINTABLE = re.compile(rb"[\x20-\x7e\t\n\r]{%d,}" % MIN_STRING)
_SYSCALLS = frozenset({"syscall", "sysenter", "int 0x80"})
# Allocated data that is not the program's own: tables the toolchain derives from the rest.
_DERIVED = frozenset({".eh_frame", ".eh_frame_hdr", ".gcc_except_table", ".got", ".got.plt"})
_GOT = frozenset({".got", ".got.plt"})
_CHECK_ERRORS: tuple[type[BaseException], ...] = (*PARSE_ERRORS, capstone.CsError, RecursionError)


def invariant_findings(
    published: ElfImage,
    rebuilt: ElfImage,
    *,
    deadline: Deadline | None = None,
    aliases: Mapping[str, str] | None = None,
) -> tuple[InvariantFinding, ...]:
    """What the published object holds that the rebuild does not account for, check by check.

    ``aliases``: published import -> the rebuild's import of the same function under another
    name (a library built with another symbol suffix, as the import comparison pairs them).
    """
    expired: Deadline = deadline or (lambda: False)
    found: list[InvariantFinding] = []
    # An import is data if either side's symbol table types it so: a published NOTYPE symbol
    # and a rebuilt OBJECT one are the same import, named alike on both sides.
    data = _imported_data(published) | _imported_data(rebuilt)
    pub_code = _Code(published, expired, aliases, data) if published.machine == "x86_64" else None
    reb_code = _Code(rebuilt, expired, None, data) if rebuilt.machine == "x86_64" else None
    checks: tuple[tuple[Invariant, Callable[[], Iterable[InvariantFinding]]], ...] = (
        (Invariant.STRINGS, lambda: _strings(published, rebuilt, expired)),
        (Invariant.CALLS, lambda: _calls(pub_code, reb_code, published, expired)),
        (Invariant.SYSCALLS, lambda: _syscalls(pub_code, reb_code, published)),
        (Invariant.CONSTRUCTORS, lambda: _constructors(published, rebuilt)),
        (
            Invariant.RELOCATIONS,
            lambda: _relocations(published, rebuilt, expired, pub_code, reb_code),
        ),
        (Invariant.EXPORT_TARGETS, lambda: _export_targets(published, rebuilt)),
    )
    for check, run in checks:
        if expired():
            found.append(InvariantFinding(check, _CUT_SHORT, ""))
            continue
        try:
            found.extend(_capped(check, run()))
        except _CutShort:
            found.append(InvariantFinding(check, _CUT_SHORT, ""))
        except _CHECK_ERRORS as e:
            found.append(InvariantFinding(check, f"(not checked: {type(e).__name__}: {e})", ""))
    return tuple(found)


class _CutShort(Exception):
    """The deadline passed in the middle of a check."""


def _capped(check: Invariant, findings: Iterable[InvariantFinding]) -> list[InvariantFinding]:
    kept: list[InvariantFinding] = []
    extra = 0
    for finding in dict.fromkeys(findings):
        if len(kept) < MAX_FINDINGS:
            kept.append(finding)
        else:
            extra += 1
    if extra:
        kept.append(InvariantFinding(check, f"(and {extra:,} more)", ""))
    return kept


def _shown(text: str) -> str:
    shown = repr(text)[1:-1]
    return shown if len(shown) <= MAX_SHOWN else shown[: MAX_SHOWN - 3] + "..."


def function_name(name: str) -> str:
    """A function's name without the suffixes GCC gives its clones and split parts."""
    return _CLONE.sub("", name.split("@", 1)[0])


def _data_name(name: str) -> str:
    return _STATIC_LOCAL.sub("", _CLONE.sub("", name.split("@", 1)[0]))


# --- naming addresses -------------------------------------------------------------------------


class _Names:
    """Names addresses of one image: symbols first, unnamed data by content, code by section."""

    def __init__(self, image: ElfImage) -> None:
        self.image = image
        named = named_symbols(image)
        self._named = named
        self._starts = [value for value, _, _ in named]
        self._exact: dict[int, str] = {}
        for value, _, name in named:
            self._exact.setdefault(value, name)

    def symbol_at(self, addr: int) -> tuple[str, int] | None:
        """The symbol whose extent holds ``addr`` (or that starts there), and the offset."""
        if addr in self._exact:
            return self._exact[addr], 0
        index = bisect.bisect_right(self._starts, addr) - 1
        # Symbols may nest (an object inside a larger one): look back a little for a cover.
        for value, size, name in reversed(self._named[max(0, index - 8) : index + 1]):
            if value <= addr < value + size:
                return name, addr - value
        return None

    def target(self, addr: int) -> str:
        """What a pointer to ``addr`` points to, named so that a change of layout keeps it."""
        held = self.symbol_at(addr)
        if held is not None:
            name, offset = held
            return _data_name(name) + (f"+{offset:#x}" if offset else "")
        section = self.image.section_at(addr)
        if section is None:
            return f"{addr:#x} (outside the image)"
        if section.kind == "SHT_NOBITS" or section.executable:
            return f"({section.name})"
        string = string_at(self.image, addr)
        if string is not None:
            return f"{section.name}:{string!r}"
        return f"{section.name}:[{self.image.bytes_at(addr, 8).hex()}]"

    def location(self, addr: int) -> str:
        """Where ``addr`` lies: data symbol + offset, else the section (its layout varies)."""
        held = self.symbol_at(addr)
        if held is not None:
            name, offset = held
            return f"{_data_name(name)}+{offset:#x}"
        section = self.image.section_at(addr)
        return section.name if section is not None else f"{addr:#x}"


# --- strings ----------------------------------------------------------------------------------


def _string_sections(image: ElfImage) -> list[Section]:
    """The program's data, and the loaded bytes no section describes that the segment check
    lets pass as patchelf's leftovers (a payload hidden there is still read)."""
    hidden = [
        Section(HIDDEN, "SHT_PROGBITS", SHF_ALLOC, r.vaddr, r.offset, r.size, "", True)
        for r in hidden_data(image)
    ]
    return [
        s
        for s in image.sections
        if s.allocated
        and not s.executable
        and s.kind == "SHT_PROGBITS"
        and s.fits
        and s.name not in _DERIVED
    ] + hidden


def _runs(image: ElfImage, deadline: Deadline) -> Iterator[tuple[str, int]]:
    """Each printable run of the program's data, with its address; bounded."""
    count = 0
    for section in _string_sections(image):
        for match in _PRINTABLE.finditer(image.section_bytes(section)):
            count += 1
            if count > MAX_STRINGS:
                raise _CutShort
            if count % 4096 == 0 and deadline():
                raise _CutShort
            yield match.group().decode("ascii"), section.addr + match.start()


def _build_tails(rebuilt: ElfImage, strings: Iterable[str]) -> frozenset[str]:
    """The rebuild's strings that start in its own build directory, without that directory.

    The rebuilt object's DWARF comp_dir is our build's, not the publisher's word.
    """
    dirs = tuple(d.rstrip("/") + "/" for d in rebuilt.comp_dirs if d.startswith("/") and d != "/")
    tails = set()
    for text in strings:
        for directory in dirs:
            if text.startswith(directory) and len(text) > len(directory):
                tails.add(text[len(directory) - 1 :])
    return frozenset(tails)


def _only_build_dir_differs(text: str, tails: frozenset[str]) -> bool:
    # The published string must be exactly an absolute directory followed by a path the rebuild
    # wrote under its own build directory: a __FILE__ or comp_dir, nothing an attacker could
    # use to carry a command or a URL (no spaces, no shell characters in the directory).
    slash = text.find("/", 1)
    while slash != -1:
        if text[slash:] in tails and _DIRECTORY.fullmatch(text[:slash]):
            return True
        slash = text.find("/", slash + 1)
    return False


def _present(text: str, theirs: set[str], haystack: bytes) -> bool:
    if text in theirs or text.encode("ascii") in haystack:
        return True
    # A string placed right after other data starts with that data's last bytes when they
    # happen to be printable ("?too many boolean indices"): those belong to the neighbour.
    for skip in range(1, _NEIGHBOUR_BYTES + 1):
        rest = text[skip:]
        if len(rest) < MIN_STRING:
            # What is left is too short to be a string of its own ("P@" + "trunc"): the run is
            # a constant's bytes glued to a short word, and short words are not compared.
            return True
        if rest in theirs or rest.encode("ascii") in haystack:
            return True
    return False


def _splat(text: str) -> bool:
    """A vector constant whose bytes happen to be printable: one 2-, 4- or 8-byte unit repeated
    (``}Q=XL}>XL}>XL}>``, a float broadcast). No command or address repeats so."""
    for unit in (2, 4, 8):
        # The run may begin with the last bytes of the constant before it, fewer than four:
        # too few to spell a command in front of the repeated unit.
        for start in range(min(unit, 4)):
            body = text[start:]
            whole = len(body) // unit * unit
            if whole >= 3 * unit and body[:whole] == body[:unit] * (whole // unit):
                return True
    return False


def _strings(published: ElfImage, rebuilt: ElfImage, deadline: Deadline) -> list[InvariantFinding]:
    theirs = {text for text, _ in _runs(rebuilt, deadline)}
    # The linker merges a string into the tail of a longer one: search the rebuilt data whole.
    haystack = b"\0".join(rebuilt.section_bytes(s) for s in _string_sections(rebuilt))
    tails = _build_tails(rebuilt, theirs)
    names = _Names(published)
    found = []
    for text, addr in _runs(published, deadline):
        if _present(text, theirs, haystack):
            continue
        if _only_build_dir_differs(text, tails) or _splat(text):
            continue
        found.append(InvariantFinding(Invariant.STRINGS, _shown(text), names.location(addr)))
    return found


# --- code: calls and system calls -------------------------------------------------------------


@dataclass(frozen=True)
class _Function:
    name: str  # without clone suffixes: the clones of one function are one node
    start: int
    code: bytes
    local: bool


class _Code:
    """The call graph and system-call counts of one image's functions, decoded once."""

    def __init__(
        self,
        image: ElfImage,
        deadline: Deadline,
        aliases: Mapping[str, str] | None = None,
        data: frozenset[str] | None = None,
    ) -> None:
        self.image = image
        self.deadline = deadline
        self.aliases = dict(aliases or {})
        self.names = _Names(image)
        self.calls: dict[str, set[str]] = defaultdict(set)
        self.syscalls: Counter[str] = Counter()
        self.functions: set[str] = set()
        self.local: set[str] = set()
        # Functions present only as GCC's constant-propagated clones (foo.constprop.0): their
        # code is specialised for the constant arguments every remaining caller passes.
        self.specialised: set[str] = set()
        self._decoded = False
        self._plt = plt_entries(image, limit=MAX_FUNCTIONS)
        # Imports of C-library routines that only compute on memory: compilers inline them, or
        # call them, as they see fit (the same allowlist the import comparison uses).
        self.runtime = {
            f"{canonical(function_name(s.name))}@plt"
            for s in image.dynamic_symbols
            if not s.defined and s.name and is_runtime_routine(f"{s.name}@{s.version or ''}")
        }
        self._data = _imported_data(image) if data is None else data
        self._defined = {
            function_name(s.name)
            for s in image.dynamic_symbols
            if s.defined and s.kind == "STT_FUNC" and s.name
        }

    def decode(self) -> _Code:
        if self._decoded:
            return self
        budget = MAX_CODE
        plain = {s.name for s in self.image.symbols if s.kind == "STT_FUNC" and s.name}
        self.specialised = {
            function_name(n) for n in plain if ".constprop." in n and function_name(n) not in plain
        }
        for function in _functions(self.image):
            budget -= len(function.code)
            if budget < 0 or self.deadline():
                raise _CutShort
            self.functions.add(function.name)
            if function.local:
                self.local.add(function.name)
            self._walk(function)
        self._decoded = True
        return self

    def _walk(self, function: _Function) -> None:
        end = function.start + len(function.code)
        walked = native.references if native.AVAILABLE else _references
        for kind, target in walked(function.code, function.start):
            if kind is Reference.SYSCALL:
                self.syscalls[function.name] += 1
            elif kind is Reference.LOAD:
                # Loading an import's address from its GOT slot is how code built with -fno-plt
                # (and the C runtime's optional hooks) calls it: through a register, next.
                # A function this object defines has its address loaded from the GOT when
                # another object could interpose it: that takes its address, it does not call.
                if target in self.image.got:
                    name = function_name(self.image.got[target])
                    if name not in self._defined:
                        self.calls[function.name].add(self._referenced(name))
            elif not function.start <= target < end:
                callee = self._callee(target)
                if callee is not None and callee != function.name:
                    self.calls[function.name].add(callee)

    def _callee(self, target: int) -> str | None:
        """The function or import a branch to ``target`` reaches (a GOT slot for indirect)."""
        if target in self.image.got:
            return self._import(self.image.got[target])
        if target in self._plt:
            return self._import(self._plt[target])
        held = self.names.symbol_at(target)
        if held is not None:
            return function_name(held[0])
        section = self.image.section_at(target)
        if section is None:
            # A direct branch to bytes no section describes (hidden code): never the rebuild's.
            return f"(code outside every section, {target:#x})"
        if not section.executable:
            return None  # a jump through a data pointer: not a direct call
        return f"(code without a symbol in {section.name})"

    def _import(self, name: str) -> str:
        # A function the object defines and exports is called through the PLT unless it was
        # linked with -Bsymbolic(-functions), as Debian's Python links extensions: one node.
        name = function_name(name)
        return name if name in self._defined else f"{self._canonical(name)}@plt"

    def _referenced(self, name: str) -> str:
        suffix = "@got" if name in self._data else "@plt"
        return f"{self._canonical(name)}{suffix}"

    def _canonical(self, name: str) -> str:
        return canonical(self.aliases.get(name, name))

    def pure(self, function: str, depth: int = INLINE_DEPTH) -> bool:
        """A function of this object that reaches nothing but the C library's pure routines.

        Such a function computes: it makes no system call and calls no import beyond the
        math and string routines, so a call to it (or a pointer to it) reaches no capability.
        """
        if function not in self.functions or self.syscalls[function]:
            return False
        return all(
            callee in self.runtime or (depth > 0 and self.pure(callee, depth - 1))
            for callee in self.calls.get(function, ())
            if callee != function
        )

    def reach(self, starts: Iterable[str], depth: int) -> set[str]:
        seen: set[str] = set()
        frontier = set(starts)
        for _ in range(depth):
            frontier = {c for f in frontier for c in self.calls.get(f, ())} - seen
            seen |= frontier
        return seen


def _imported_data(image: ElfImage) -> frozenset[str]:
    """The data objects (and thread-local variables) the image imports."""
    return frozenset(
        function_name(s.name)
        for s in image.dynamic_symbols
        if not s.defined and s.kind in ("STT_OBJECT", "STT_TLS") and s.name
    )


def _references(code: bytes, addr: int) -> Iterator[tuple[Reference, int]]:
    """:func:`rebuild.compare.elf_native.references` read from capstone's text, for hosts
    without iced-x86. capstone stops at bytes it cannot decode: what follows is not read."""
    for address, size, mnemonic, operands in decoder().disasm_lite(code, addr):
        if mnemonic in _SYSCALLS or (mnemonic == "int" and operands.strip() == "0x80"):
            yield Reference.SYSCALL, address
        elif mnemonic.startswith(("call", "j")):
            target = _branch_target(address, size, operands)
            if target is not None:
                yield Reference.BRANCH, target
        elif "rip" in operands:
            slot = rip_target(address, size, operands)
            if slot is not None:
                yield Reference.LOAD, slot


def _branch_target(address: int, size: int, operands: str) -> int | None:
    if operands.startswith("0x"):
        try:
            return int(operands, 16)
        except ValueError:
            return None
    if not operands.startswith("qword ptr [rip"):
        return None  # through a register: not a direct call
    return rip_target(address, size, operands)


def _functions(image: ElfImage) -> Iterator[_Function]:
    """Every function with an extent, then the code no function covers, one run per section."""
    executable = [
        s for s in image.sections if s.executable and s.fits and not s.name.startswith(".plt")
    ]
    symbols = sorted(
        (s for s in image.symbols if s.defined and s.kind == "STT_FUNC" and s.size and s.name),
        key=lambda s: (s.value, s.name),
    )[:MAX_FUNCTIONS]
    spans: dict[str, list[tuple[int, int]]] = defaultdict(list)
    # Each section's bytes sliced once: slicing them again per function copies the section.
    contents: dict[int, bytes] = {}
    for symbol in symbols:
        section = _containing(executable, symbol)
        if section is None:
            continue
        spans[section.name].append((symbol.value, symbol.value + symbol.size))
        start = symbol.value - section.addr
        held = contents.get(id(section))
        if held is None:
            held = contents[id(section)] = image.section_bytes(section)
        code = held[start : start + symbol.size]
        yield _Function(function_name(symbol.name), symbol.value, code, _is_local(symbol))
    for section in executable:
        yield from _uncovered(image, section, sorted(spans[section.name]))


def _is_local(symbol: Symbol) -> bool:
    return symbol.binding == "STB_LOCAL"


def _containing(sections: list[Section], symbol: Symbol) -> Section | None:
    for section in sections:
        if (
            section.addr <= symbol.value
            and symbol.value + symbol.size <= section.addr + section.size
        ):
            return section
    return None


def _uncovered(
    image: ElfImage, section: Section, spans: list[tuple[int, int]]
) -> Iterator[_Function]:
    # Start-up stubs and code a stripped (or doctored) symbol table hides: one node per section,
    # so that a call or syscall hidden there still counts.
    name = f"(code without a symbol in {section.name})"
    data = image.section_bytes(section)
    cursor = section.addr
    for start, end in [*spans, (section.addr + section.size, section.addr + section.size)]:
        if start > cursor:
            yield _Function(name, cursor, data[cursor - section.addr : start - section.addr], True)
        cursor = max(cursor, end)


def _calls(
    pub: _Code | None, reb: _Code | None, published: ElfImage, deadline: Deadline
) -> list[InvariantFinding]:
    if pub is None or reb is None:
        return _not_decoded(Invariant.CALLS, published)
    pub.decode()
    reb.decode()
    found = []
    for caller in sorted(pub.calls):
        if deadline():
            raise _CutShort
        for callee in sorted(pub.calls[caller]):
            if not _accounted(pub, reb, caller, callee, INLINE_DEPTH):
                found.append(InvariantFinding(Invariant.CALLS, callee, caller))
    return found


def _stand_ins(pub: _Code, reb: _Code, function: str) -> set[str]:
    """The rebuilt functions that hold ``function``'s code: itself, or its callers if inlined."""
    if function in reb.functions:
        return {function}
    return {c for c, callees in pub.calls.items() if function in callees and c in reb.functions}


def _accounted(pub: _Code, reb: _Code, caller: str, callee: str, depth: int) -> bool:
    """Whether the rebuild explains the published call ``caller`` -> ``callee``.

    It does when the rebuilt caller reaches the callee through functions the published compiler
    inlined, or when the callee is absent from the rebuild or is a local function the rebuild
    inlined into the caller, and then everything that callee calls is accounted for in turn.
    A call to an import must be reached in the rebuild; so must a call to an exported function
    (with -fPIC, GCC does not inline a function another object could interpose).
    """
    if callee in pub.runtime:
        return True
    if pub.pure(callee) and callee in reb.functions:
        # The same local function, which only computes: the published build's own math where
        # the rebuild's C library has the routine (numpy's npy_cacos -> npy_atan2).
        return True
    holders = _stand_ins(pub, reb, caller)
    if not holders:
        # The caller has no counterpart: only its calls to functions the rebuild never calls
        # are out of place.
        return any(callee in callees for callees in reb.calls.values())
    if callee in reb.reach(holders, depth):
        return True
    if (
        holders <= reb.specialised
        and callee.endswith("@plt")
        and any(callee in callees for callees in reb.calls.values())
    ):
        # The rebuild kept only a copy specialised for the arguments its callers pass, which
        # drops the branches those constants rule out; the import itself is one the rebuild
        # calls elsewhere (numpy's gentype_generic_method: PyObject_Call when kwds != NULL).
        return True
    inlined = callee not in reb.functions or (callee in pub.local and callee in reb.local)
    if callee.endswith("@plt") or not inlined or depth == 0:
        return False
    return all(
        _accounted(pub, reb, caller, further, depth - 1)
        for further in pub.calls.get(callee, ())
        if further != caller
    )


def _syscalls(pub: _Code | None, reb: _Code | None, published: ElfImage) -> list[InvariantFinding]:
    if pub is None or reb is None:
        return _not_decoded(Invariant.SYSCALLS, published)
    pub.decode()
    reb.decode()
    found = []
    for function, count in sorted(pub.syscalls.items()):
        holders = _stand_ins(pub, reb, function) or {function}
        theirs = max(reb.syscalls.get(h, 0) for h in holders)
        if count > theirs:
            found.append(InvariantFinding(Invariant.SYSCALLS, f"{count - theirs} more", function))
    return found


def _not_decoded(check: Invariant, published: ElfImage) -> list[InvariantFinding]:
    # Fail closed: code of an architecture we cannot decode is not checked, and says so.
    return [InvariantFinding(check, f"(not checked: {published.machine} code is not decoded)", "")]


# --- load-time code, data pointers, exports ---------------------------------------------------


def _constructor_names(image: ElfImage) -> Counter[tuple[str, str]]:
    names = _Names(image)
    found: Counter[tuple[str, str]] = Counter()
    for entry in image.initialisers:
        if entry.symbol:
            target = function_name(entry.symbol) + "@plt"
        elif entry.target == 0:
            continue  # an empty slot runs nothing (the loader skips 0 and -1)
        else:
            held = names.symbol_at(entry.target)
            target = function_name(held[0]) if held is not None else names.target(entry.target)
        found[(entry.table, target)] += 1
    return found


def _constructors(published: ElfImage, rebuilt: ElfImage) -> list[InvariantFinding]:
    extra = _constructor_names(published) - _constructor_names(rebuilt)
    return [
        InvariantFinding(Invariant.CONSTRUCTORS, target, table)
        for (table, target) in sorted(extra.elements())
    ]


def _pointers(
    image: ElfImage, deadline: Deadline, elsewhere: frozenset[str]
) -> Iterator[tuple[str, bool, str]]:
    """(location, named, target) for each relocated word of the program's data and code.

    Two kinds of word the code comparison sees only when both sides were built by one compiler:

    - a GOT slot holding the address of something this object defines (``-fPIC`` code loads an
      exported function's address from the GOT) names it only in its relocation; re-aimed at
      another of the object's functions, the code loading it is the same. Slots against the
      symbols ``elsewhere`` names are left to the checks that cover them.
    - a text relocation (DT_TEXTREL: an absolute address written into an instruction at load)
      leaves the instruction's bytes saying nothing of its target; its location is the function
      and offset.
    """
    names = _Names(image)
    for count, reloc in enumerate(image.relocations):
        if count % 65536 == 0 and deadline():
            raise _CutShort
        section = image.section_at(reloc.offset)
        if section is None or (section.name in _DERIVED and section.name not in _GOT):
            continue
        if section.name in _GOT and reloc.symbol in elsewhere:
            continue
        if reloc.symbol:
            target = reloc.symbol + (f"{reloc.addend:+#x}" if reloc.addend else "")
        else:
            target = names.target(reloc.addend)
        held = names.symbol_at(reloc.offset)
        yield names.location(reloc.offset), held is not None, target


def _relocations(
    published: ElfImage,
    rebuilt: ElfImage,
    deadline: Deadline,
    pub_code: _Code | None = None,
    reb_code: _Code | None = None,
) -> list[InvariantFinding]:
    # Static locals of one name (__pyx_pyargnames.3 in many functions) are numbered by each
    # compiler in its own order: a location is a name + offset, and a published pointer must
    # be one the rebuild has at some location of that name.
    pairs: set[tuple[str, str]] = set()
    locations: set[str] = set()
    targets: set[str] = set()
    pub_imports, reb_imports = _imported_names(published), _imported_names(rebuilt)
    imported = pub_imports & reb_imports
    # GOT slots left to other checks: what either side imports (one side may link statically
    # what the other imports), and what only one side defines (the exports and functions
    # comparisons name it).
    elsewhere = pub_imports | reb_imports | (_defined_names(published) ^ _defined_names(rebuilt))
    for location, named, target in _pointers(rebuilt, deadline, elsewhere):
        targets.add(target)
        if named:
            pairs.add((location, target))
            locations.add(location)
    found = []
    for location, named, target in _pointers(published, deadline, elsewhere):
        if named and location in locations and (location, target) not in pairs:
            theirs = sorted(t for loc, t in pairs if loc == location)[:3]
            shown = f"{target} (rebuilt: {', '.join(theirs)})"
            found.append(InvariantFinding(Invariant.RELOCATIONS, shown, location))
        elif target not in targets and (
            named or not _reaches_nothing_new(target, pub_code, reb_code, imported)
        ):
            found.append(InvariantFinding(Invariant.RELOCATIONS, target, location))
    return found


def _imported_names(image: ElfImage) -> frozenset[str]:
    return frozenset(s.name for s in image.dynamic_symbols if not s.defined and s.name)


def _defined_names(image: ElfImage) -> frozenset[str]:
    return frozenset(s.name for s in image.dynamic_symbols if s.defined and s.name)


def _reaches_nothing_new(
    target: str, pub: _Code | None, reb: _Code | None, imported: frozenset[str]
) -> bool:
    """A pointer in unnamed data that reaches nothing the rebuild cannot: an object both
    import (``_Py_NoneStruct``), or a local function both have that only computes."""
    if target in imported:
        return True
    if pub is None or reb is None:
        return False
    pub.decode()
    reb.decode()
    return pub.pure(target) and target in reb.functions


def _export_names(image: ElfImage) -> dict[str, frozenset[str]]:
    """Each exported function -> the names the object's own symbol table gives its address."""
    by_address: dict[int, set[str]] = defaultdict(set)
    for symbol in image.symbols:
        if symbol.defined and symbol.kind == "STT_FUNC" and symbol.name:
            by_address[symbol.value].add(function_name(symbol.name))
    return {
        s.name: frozenset(by_address.get(s.value, ()))
        for s in image.dynamic_symbols
        if s.defined and s.kind == "STT_FUNC" and s.name
    }


def _export_targets(published: ElfImage, rebuilt: ElfImage) -> list[InvariantFinding]:
    theirs = _export_names(rebuilt)
    found = []
    for export, names in sorted(_export_names(published).items()):
        if export not in theirs:
            continue  # an export on one side only is the ELF comparison's EXPORTS aspect
        # Identical-code folding may give an export an alias the other compiler did not: only
        # a published name the rebuild never gives that export is out of place, and the export's
        # own name must be among them.
        extra = names - theirs[export]
        if extra or (function_name(export) not in names and names):
            shown = ", ".join(sorted(names)) or "no function"
            found.append(InvariantFinding(Invariant.EXPORT_TARGETS, shown, export))
    return found
