"""What the dynamic loader maps, checked against what the section headers say.

Every comparison of an object is made section by section, but the loader ignores sections: it
maps the file ranges of the ``PT_LOAD`` segments. A hostile object could keep code or data in a
loaded range that no allocated section describes, or mark a section that lies inside one as not
loaded, and so hide it from every check. :func:`hidden_load` finds both. Gaps of padding between
sections (zero bytes, ``nop`` and ``int3`` fill) are what linkers leave and are allowed.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from rebuild.compare.elf_read import ElfImage

PT_LOAD = 1
MAX_SEGMENTS = 1_000
_PADDING = frozenset(b"\x00\x90\xcc")
_SHOWN = 5  # findings named before "and N more"


@dataclass(frozen=True)
class Segment:
    offset: int
    size: int  # bytes in the file (p_filesz)


def load_segments(data: bytes, bits: int) -> tuple[Segment, ...] | None:
    """The PT_LOAD segments' file ranges; None when the program headers cannot be trusted."""
    little = data[5:6] == b"\x01"
    order = "<" if little else ">"
    try:
        if bits == 64:
            phoff = struct.unpack_from(order + "Q", data, 0x20)[0]
            phentsize, phnum = struct.unpack_from(order + "HH", data, 0x36)
            layout, wanted = order + "IIQQQQQQ", 56
        else:
            phoff = struct.unpack_from(order + "I", data, 0x1C)[0]
            phentsize, phnum = struct.unpack_from(order + "HH", data, 0x2A)
            layout, wanted = order + "IIIIIIII", 32
    except struct.error:
        return None
    if phnum == 0:
        return ()
    if phentsize != wanted or phnum > MAX_SEGMENTS or phoff + phnum * phentsize > len(data):
        return None
    segments = []
    for index in range(phnum):
        fields = struct.unpack_from(layout, data, phoff + index * phentsize)
        if bits == 64:
            kind, offset, size = fields[0], fields[2], fields[5]
        else:
            kind, offset, size = fields[0], fields[1], fields[4]
        if kind == PT_LOAD and size:
            segments.append(Segment(offset, min(size, max(len(data) - offset, 0))))
    return tuple(segments)


def _headers_end(data: bytes, bits: int) -> int:
    """Where the ELF header and the program header table end (both are loaded, legitimately)."""
    order = "<" if data[5:6] == b"\x01" else ">"
    if bits == 64:
        phoff = struct.unpack_from(order + "Q", data, 0x20)[0]
        phentsize, phnum = struct.unpack_from(order + "HH", data, 0x36)
        header = 64
    else:
        phoff = struct.unpack_from(order + "I", data, 0x1C)[0]
        phentsize, phnum = struct.unpack_from(order + "HH", data, 0x2A)
        header = 52
    return max(header, int(phoff) + int(phentsize) * int(phnum))


def hidden_load(image: ElfImage) -> tuple[str, ...]:
    """Loaded bytes no allocated section describes, and unloaded sections inside loaded ranges."""
    data = image.data
    segments = load_segments(data, image.bits)
    if segments is None:
        return ("the program headers cannot be read: what the loader maps is unknown",)
    covered: list[tuple[int, int]] = [(0, _headers_end(data, image.bits))]
    problems: list[str] = []
    for section in image.sections:
        if section.kind == "SHT_NOBITS" or not section.fits or not section.size:
            continue
        span = (section.offset, section.offset + section.size)
        if section.allocated:
            covered.append(span)
            continue
        inside = [s for s in segments if span[0] < s.offset + s.size and s.offset < span[1]]
        if inside:
            problems.append(
                f"section {section.name!r} is marked not loaded, yet its bytes lie in a loaded "
                "segment"
            )
    for segment in segments:
        cursor = segment.offset
        end = segment.offset + segment.size
        for start, stop in sorted(covered):
            if stop <= cursor or start >= end:
                continue
            if start > cursor:
                problems += _gap(data, cursor, min(start, end))
            cursor = max(cursor, stop)
        if cursor < end:
            problems += _gap(data, cursor, end)
    if len(problems) > _SHOWN:
        problems = [*problems[:_SHOWN], f"… and {len(problems) - _SHOWN:,} more"]
    return tuple(problems)


def _gap(data: bytes, start: int, end: int) -> list[str]:
    payload = data[start:end]
    if not payload or set(payload) <= _PADDING:
        return []
    return [f"{end - start:,} loaded bytes at file offset {start:#x} lie in no allocated section"]


__all__ = ["Segment", "hidden_load", "load_segments"]
