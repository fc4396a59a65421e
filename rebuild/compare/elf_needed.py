"""DT_NEEDED read from a shared object's dynamic segment while its bytes stream past.

The graft check asks what the published wheel's shared objects load. Those objects are streamed
once anyway, to be hashed: a :class:`NeededReader` fed the same chunks keeps the object's head
(bounded), picks the program headers out of it, and captures the dynamic segment and the few
strings its DT_NEEDED entries point to as they go by, so that no object is read a second time.
This is the loader's view (program headers, ``PT_DYNAMIC``, ``DT_STRTAB``), not the section
table's.

Only a plain object is read this way. Anything unusual (no program header table in the head,
extended numbering, a string table the stream had already passed, a name without its NUL) makes
:meth:`NeededReader.result` return None, and the caller reads the object again with the full
ELF reader: the fast path never answers for a file it could not read as the loader would.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

HEAD_BYTES = 2 * 1024 * 1024  # kept from the start of each object: headers, often .dynstr
MAX_PHDRS = 4096
MAX_DYNAMIC = 64 * 1024  # bytes of the dynamic segment read (4,096 entries)
MAX_NEEDED = 10_000
MAX_NAME = 4096  # a DT_NEEDED name longer than this is not read on the fast path
_PT_LOAD = 1
_PT_DYNAMIC = 2
_DT_NULL = 0
_DT_NEEDED = 1
_DT_STRTAB = 5
_DT_STRSZ = 10


Step = Callable[[bytes], None]


def program_header_table(head: bytes, order: str, bits: int) -> tuple[int, int, int]:
    """Where an ELF header says its program header table is: (offset, entry size, count).

    ``head``: at least the ELF header's bytes; ``order``: "<" or ">"; ``bits``: 32 or 64.
    """
    if bits == 64:
        (phoff,) = struct.unpack_from(order + "Q", head, 0x20)
        phentsize, phnum = struct.unpack_from(order + "HH", head, 0x36)
    else:
        (phoff,) = struct.unpack_from(order + "I", head, 0x1C)
        phentsize, phnum = struct.unpack_from(order + "HH", head, 0x2A)
    return int(phoff), int(phentsize), int(phnum)


class NeededReader:
    """Fed an object's bytes in order; then its DT_NEEDED names, or None if not read here."""

    __slots__ = ("_chunk", "_failed", "_format", "_head", "_loads", "_names", "_pos", "_wanted")

    def __init__(self) -> None:
        self._head = bytearray()
        self._pos = 0  # bytes fed so far
        self._chunk: tuple[int, bytes] = (0, b"")  # the chunk being fed, and where it starts
        self._format: tuple[str, int] | None = None  # (struct byte order, 32 or 64)
        self._loads: list[tuple[int, int, int]] = []  # (vaddr, offset, filesz)
        # Regions still to come, each with what to do once it is whole:
        # (offset, length, the bytes so far, the step).
        self._wanted: list[tuple[int, int, bytearray, Step]] = []
        self._names: tuple[str, ...] | None = None
        self._failed = False

    def feed(self, chunk: bytes) -> None:
        if self._failed or self._names is not None:
            return
        self._chunk = (self._pos, chunk)
        self._pos += len(chunk)
        if len(self._head) < HEAD_BYTES:
            self._head += chunk[: HEAD_BYTES - len(self._head)]
        if self._format is None and (len(self._head) >= 64 or self._pos >= HEAD_BYTES):
            self._begin()
        for wanted in list(self._wanted):
            if wanted in self._wanted:
                self._take(wanted)

    def _take(self, wanted: tuple[int, int, bytearray, Step]) -> None:
        """Add what the current chunk holds of a wanted region; run its step once whole."""
        offset, length, buffer, step = wanted
        start, chunk = self._chunk
        # From where the buffer stops: a region met twice in one chunk is not filled twice.
        low, high = max(offset + len(buffer), start), min(offset + length, start + len(chunk))
        if low < high:
            buffer += chunk[low - start : high - start]
        if len(buffer) == length:
            self._wanted.remove(wanted)
            self._run(step, bytes(buffer))

    def result(self) -> tuple[str, ...] | None:
        """The names (``()`` for an object that loads nothing), or None: read it again."""
        return None if self._failed else self._names

    # --- each step runs once its bytes are in hand -------------------------------------------

    def _fail(self) -> None:
        self._failed = True
        self._wanted.clear()

    def _want(self, offset: int, length: int, step: Step) -> None:
        if offset + length <= len(self._head):
            self._run(step, bytes(self._head[offset : offset + length]))
        elif offset >= self._chunk[0]:
            wanted = (offset, length, bytearray(), step)
            self._wanted.append(wanted)
            self._take(wanted)  # the current chunk may hold some of it already
        else:
            self._fail()  # already streamed past, and not in the head

    def _run(self, step: Step, data: bytes) -> None:
        try:
            step(data)
        except (struct.error, ValueError):
            self._fail()

    def _begin(self) -> None:
        head = bytes(self._head[:64])
        if (
            len(head) < 64
            or head[:4] != b"\x7fELF"
            or head[4] not in (1, 2)
            or head[5] not in (1, 2)
        ):
            self._fail()
            return
        order = "<" if head[5] == 1 else ">"
        bits = 32 if head[4] == 1 else 64
        self._format = (order, bits)
        phoff, phentsize, phnum = program_header_table(head, order, bits)
        expected = 56 if bits == 64 else 32
        if phentsize != expected or not 0 < phnum <= MAX_PHDRS or phoff == 0:
            self._fail()  # no program headers, extended numbering (0xffff), or odd entries
            return
        self._want(phoff, phnum * phentsize, self._program_headers)

    def _shape(self) -> tuple[str, int]:
        if self._format is None:
            raise ValueError("no ELF header read")
        return self._format

    def _program_headers(self, data: bytes) -> None:
        order, bits = self._shape()
        dynamic: tuple[int, int] | None = None
        size = 56 if bits == 64 else 32
        for at in range(0, len(data), size):
            if bits == 64:
                kind, _, offset, vaddr, _, filesz = struct.unpack_from(order + "IIQQQQ", data, at)
            else:
                kind, offset, vaddr, _, filesz = struct.unpack_from(order + "IIIII", data, at)
            if kind == _PT_LOAD:
                self._loads.append((vaddr, offset, filesz))
            elif kind == _PT_DYNAMIC:
                if dynamic is not None:
                    raise ValueError("two dynamic segments")
                dynamic = (offset, filesz)
        if dynamic is None:
            self._names = ()  # no dynamic segment: the loader loads nothing for it
            return
        offset, filesz = dynamic
        if filesz > MAX_DYNAMIC:
            raise ValueError("dynamic segment too large")
        self._want(offset, filesz, self._dynamic)

    def _dynamic(self, data: bytes) -> None:
        order, bits = self._shape()
        shape = order + ("qQ" if bits == 64 else "iI")
        size = 16 if bits == 64 else 8
        needed: list[int] = []
        table: dict[int, int] = {}
        for at in range(0, len(data) - size + 1, size):
            tag, value = struct.unpack_from(shape, data, at)
            if tag == _DT_NULL:
                break
            if tag == _DT_NEEDED:
                needed.append(value)
            elif tag in (_DT_STRTAB, _DT_STRSZ):
                if tag in table:
                    raise ValueError("two string tables")
                table[tag] = value
        if not needed:
            self._names = ()
            return
        strtab, strsz = table.get(_DT_STRTAB), table.get(_DT_STRSZ)
        if strtab is None or strsz is None or len(needed) > MAX_NEEDED or max(needed) >= strsz:
            raise ValueError("DT_NEEDED without a string table that holds it")
        offset = self._file_offset(strtab, strsz)
        if offset is None:
            raise ValueError("the string table lies in no loaded segment")
        low = min(needed)
        length = min(max(needed) + MAX_NAME, strsz) - low
        self._want(offset + low, length, lambda data: self._strings(data, needed, low))

    def _file_offset(self, vaddr: int, length: int) -> int | None:
        """Where the loader finds ``length`` bytes at ``vaddr``, within one loaded segment."""
        for start, offset, filesz in self._loads:
            if start <= vaddr and vaddr + length <= start + filesz:
                return offset + vaddr - start
        return None

    def _strings(self, data: bytes, needed: list[int], low: int) -> None:
        names = []
        for value in needed:
            at = value - low
            end = data.find(b"\0", at, at + MAX_NAME)
            if end < 0:
                raise ValueError("a DT_NEEDED name without its NUL")
            names.append(data[at:end].decode("utf-8", errors="replace"))
        self._names = tuple(names)
