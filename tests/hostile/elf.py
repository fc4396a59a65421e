"""A minimal ELF shared object written byte by byte, and the ways a hostile one can be broken.

No toolchain is needed: the object has a header, a .text section with one function, a symbol
table and its string tables, which is all a reader must walk. Each mutation breaks one field
the way a malicious or damaged extension module might.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

_HEADER = struct.Struct("<16sHHIQQQIHHHHHH")
_SECTION = struct.Struct("<IIQQQQIIQQ")
_SYMBOL = struct.Struct("<IBBHQQ")
_EHDR = 64

SHT_PROGBITS, SHT_SYMTAB, SHT_STRTAB = 1, 2, 3
# Section indexes in the object below.
TEXT, SYMTAB, STRTAB, SHSTRTAB = 1, 2, 3, 4
# Header fields by name: (offset in the header, struct format).
_FIELDS = {
    "e_phoff": (32, "<Q"),
    "e_shoff": (40, "<Q"),
    "e_phentsize": (54, "<H"),
    "e_phnum": (56, "<H"),
    "e_shentsize": (58, "<H"),
    "e_shnum": (60, "<H"),
    "e_shstrndx": (62, "<H"),
}
_SECTION_FIELDS = {
    "sh_name": (0, "<I"),
    "sh_type": (4, "<I"),
    "sh_offset": (24, "<Q"),
    "sh_size": (32, "<Q"),
    "sh_link": (40, "<I"),
    "sh_entsize": (56, "<Q"),
}

# xor eax, eax; ret — repeated: a function a disassembler can walk.
CODE = b"\x31\xc0\xc3" * 8


def _align(data: bytearray, to: int) -> None:
    data.extend(b"\0" * (-len(data) % to))


def shared_object(code: bytes = CODE) -> bytes:
    """A valid little-endian x86-64 ET_DYN object exporting one function, ``PyInit_demo``."""
    body = bytearray(b"\0" * _EHDR)
    text_at = len(body)
    body += code
    strtab = b"\0PyInit_demo\0"
    strtab_at = len(body)
    body += strtab
    _align(body, 8)
    symtab_at = len(body)
    body += _SYMBOL.pack(0, 0, 0, 0, 0, 0)
    body += _SYMBOL.pack(1, 0x12, 0, TEXT, text_at, len(code))  # GLOBAL FUNC in .text
    symtab_size = len(body) - symtab_at
    names = b"\0.text\0.symtab\0.strtab\0.shstrtab\0"
    shstrtab_at = len(body)
    body += names
    _align(body, 8)
    shoff = len(body)
    sections = [
        (0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
        (names.index(b".text"), SHT_PROGBITS, 0x6, text_at, text_at, len(code), 0, 0, 16, 0),
        (names.index(b".symtab"), SHT_SYMTAB, 0, 0, symtab_at, symtab_size, STRTAB, 1, 8, 24),
        (names.index(b".strtab"), SHT_STRTAB, 0, 0, strtab_at, len(strtab), 0, 0, 1, 0),
        (names.index(b".shstrtab"), SHT_STRTAB, 0, 0, shstrtab_at, len(names), 0, 0, 1, 0),
    ]
    for fields in sections:
        body += _SECTION.pack(*fields)
    ident = b"\x7fELF\x02\x01\x01" + b"\0" * 9
    header = _HEADER.pack(ident, 3, 62, 1, 0, 0, shoff, 0, _EHDR, 56, 0, 64, len(sections), 4)
    body[:_EHDR] = header
    return bytes(body)


def set_header(data: bytes, field: str, value: int) -> bytes:
    offset, fmt = _FIELDS[field]
    out = bytearray(data)
    struct.pack_into(fmt, out, offset, value)
    return bytes(out)


def set_section(data: bytes, index: int, field: str, value: int) -> bytes:
    (shoff,) = struct.unpack_from("<Q", data, _FIELDS["e_shoff"][0])
    offset, fmt = _SECTION_FIELDS[field]
    out = bytearray(data)
    struct.pack_into(fmt, out, shoff + index * _SECTION.size + offset, value)
    return bytes(out)


def section_offset(data: bytes, index: int) -> int:
    (shoff,) = struct.unpack_from("<Q", data, _FIELDS["e_shoff"][0])
    (value,) = struct.unpack_from("<Q", data, shoff + index * _SECTION.size + 24)
    return int(value)


def _symbol_name_out_of_range(data: bytes) -> bytes:
    out = bytearray(data)
    struct.pack_into("<I", out, section_offset(data, SYMTAB) + _SYMBOL.size, 0x7FFFFFFF)
    return bytes(out)


HUGE = 2**62
# name -> how the valid object is broken.
MUTATIONS: dict[str, Callable[[bytes], bytes]] = {
    "truncated-ident": lambda d: d[:10],
    "truncated-header": lambda d: d[:40],
    "header-only": lambda d: d[:_EHDR],
    "truncated-section-table": lambda d: d[: len(d) - 70],
    "shoff-out-of-range": lambda d: set_header(d, "e_shoff", HUGE),
    "shnum-absurd": lambda d: set_header(d, "e_shnum", 0xFFFF),
    "shentsize-wrong": lambda d: set_header(d, "e_shentsize", 1),
    "shstrndx-out-of-range": lambda d: set_header(d, "e_shstrndx", 0xFEFF),
    "phnum-absurd": lambda d: set_header(set_header(d, "e_phoff", 64), "e_phnum", 0xFFFF),
    "section-out-of-range": lambda d: set_section(d, TEXT, "sh_offset", HUGE),
    "section-absurd-size": lambda d: set_section(d, TEXT, "sh_size", HUGE),
    "symtab-absurd-size": lambda d: set_section(d, SYMTAB, "sh_size", HUGE),
    "symtab-entsize-zero": lambda d: set_section(d, SYMTAB, "sh_entsize", 0),
    "symtab-links-itself": lambda d: set_section(d, SYMTAB, "sh_link", SYMTAB),
    "symtab-link-out-of-range": lambda d: set_section(d, SYMTAB, "sh_link", 0xFFFF),
    "overlapping-sections": lambda d: set_section(d, SYMTAB, "sh_offset", section_offset(d, TEXT)),
    "strtab-overlaps-header": lambda d: set_section(d, STRTAB, "sh_offset", 0),
    "section-name-out-of-range": lambda d: set_section(d, TEXT, "sh_name", 0x7FFFFFFF),
    "symbol-name-out-of-range": _symbol_name_out_of_range,
    "garbage-after-magic": lambda d: b"\x7fELF" + bytes(range(256)) * 64,
}
