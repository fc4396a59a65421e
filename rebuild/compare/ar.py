"""Reading a static library (a System V / GNU or BSD ``ar`` archive) from bytes, safely.

The archive comes from a published wheel: every header field may lie. Sizes are checked against
the bytes actually present before anything is sliced, the number of members and the length of
names are capped, and the long-name table is only indexed within its bounds. What cannot be
trusted raises :class:`~rebuild.errors.ArchiveError` with the reason; nothing is allocated from a
declared size. The symbol index (GNU ``/`` and ``/SYM64/``, BSD ``__.SYMDEF``) is kept as raw
bytes: it lists member offsets, which follow from the members themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rebuild.errors import ArchiveError

MAGIC = b"!<arch>\n"
THIN_MAGIC = b"!<thin>\n"
HEADER_SIZE = 60
_END = b"`\n"
MAX_MEMBERS = 100_000
MAX_NAME = 4096
_INDEX_NAMES = frozenset({"/", "/SYM64/", "__.SYMDEF", "__.SYMDEF SORTED"})
_BSD_PREFIX = b"#1/"


@dataclass(frozen=True)
class ArMember:
    """One file stored in the archive: its header fields and its bytes."""

    name: str  # undecodable bytes shown as \\x escapes
    mtime: int
    uid: int
    gid: int
    mode: int
    offset: int  # where its data starts in the archive
    data: bytes = field(repr=False)

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def header(self) -> tuple[int, int, int, int]:
        """What ``ar`` records about the file besides its name and bytes."""
        return (self.mtime, self.uid, self.gid, self.mode)


@dataclass(frozen=True)
class ArArchive:
    members: tuple[ArMember, ...]  # in archive order, the symbol index and name table excluded
    symbol_index: bytes = field(repr=False)  # the raw index members, concatenated


def _number(raw: bytes, base: int, what: str, at: int) -> int:
    text = raw.strip(b" ")
    if not text:
        # GNU ar leaves the fields of its name table blank.
        return 0
    try:
        value = int(text.decode("ascii"), base)
    except (UnicodeDecodeError, ValueError):
        raise ArchiveError(
            f"ar member header at offset {at:#x}: {what} field {raw!r} is not a number"
        ) from None
    if value < 0:
        raise ArchiveError(f"ar member header at offset {at:#x}: negative {what}")
    return value


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", "backslashreplace")


def _long_name(table: bytes | None, raw: bytes, at: int) -> str:
    """A GNU ``/<offset>`` name, looked up in the ``//`` table."""
    if table is None:
        raise ArchiveError(
            f"ar member at offset {at:#x} names the long-name table, which is absent"
        )
    offset = _number(raw[1:], 10, "long-name offset", at)
    if offset >= len(table):
        raise ArchiveError(
            f"ar member at offset {at:#x}: long-name offset {offset:,} lies past the "
            f"{len(table):,}-byte name table"
        )
    # Entries end with "/\n"; the last one may end with the table.
    end = table.find(b"\n", offset, offset + MAX_NAME + 2)
    if end < 0:
        if len(table) - offset > MAX_NAME + 1:
            raise ArchiveError(f"ar member at offset {at:#x}: long name over {MAX_NAME:,} bytes")
        end = len(table)
    name = table[offset:end]
    return _decode(name[:-1] if name.endswith(b"/") else name)


def read_ar(data: bytes, *, max_members: int = MAX_MEMBERS) -> ArArchive:
    """The members of an ``ar`` archive, in order; ArchiveError when it cannot be trusted."""
    if data.startswith(THIN_MAGIC):
        raise ArchiveError(
            "a thin archive: it names object files outside itself instead of holding them"
        )
    if not data.startswith(MAGIC):
        raise ArchiveError("not an ar archive (no !<arch> magic)")
    members: list[ArMember] = []
    index: list[bytes] = []
    names: bytes | None = None
    at = len(MAGIC)
    count = 0
    while at < len(data):
        if at % 2 and data[at : at + 1] == b"\n":
            at += 1  # the padding that keeps every header at an even offset
            continue
        header_at = at
        count += 1
        if count > max_members + 2:  # room for the symbol index and the name table
            raise ArchiveError(f"the archive holds over {max_members:,} members")
        header = data[at : at + HEADER_SIZE]
        if len(header) < HEADER_SIZE:
            raise ArchiveError(
                f"truncated ar member header at offset {at:#x}: {len(header)} of "
                f"{HEADER_SIZE} bytes"
            )
        if header[58:60] != _END:
            raise ArchiveError(f"ar member header at offset {at:#x} does not end with `\\n")
        raw_name = header[:16].rstrip(b" ")
        mtime = _number(header[16:28], 10, "mtime", at)
        uid = _number(header[28:34], 10, "uid", at)
        gid = _number(header[34:40], 10, "gid", at)
        mode = _number(header[40:48], 8, "mode", at)
        size = _number(header[48:58], 10, "size", at)
        start = at + HEADER_SIZE
        if size > len(data) - start:
            raise ArchiveError(
                f"ar member at offset {at:#x} claims {size:,} bytes; only "
                f"{len(data) - start:,} remain"
            )
        body = data[start : start + size]
        at = start + size
        if raw_name.startswith(_BSD_PREFIX):
            length = _number(raw_name[len(_BSD_PREFIX) :], 10, "BSD name length", header_at)
            if length > min(size, MAX_NAME):
                raise ArchiveError(
                    f"ar member at offset {header_at:#x}: BSD name of {length:,} "
                    f"bytes in a {size:,}-byte member (limit {MAX_NAME:,})"
                )
            name = _decode(body[:length].rstrip(b"\0"))
            body, start = body[length:], start + length
        elif raw_name == b"//":
            if names is not None:
                raise ArchiveError("the archive holds two long-name tables")
            names = body
            continue
        elif raw_name in (b"/", b"/SYM64/"):
            index.append(body)
            continue
        elif raw_name.startswith(b"/") and raw_name[1:2].isdigit():
            name = _long_name(names, raw_name, header_at)
        else:
            name = _decode(raw_name[:-1] if raw_name.endswith(b"/") else raw_name)
        if name in _INDEX_NAMES:
            index.append(body)
            continue
        members.append(ArMember(name, mtime, uid, gid, mode, start, body))
        if len(members) > max_members:
            raise ArchiveError(f"the archive holds over {max_members:,} members")
    return ArArchive(tuple(members), b"".join(index))
