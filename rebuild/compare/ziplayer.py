"""The zip layer: reading a wheel's zip safely, and comparing the containers of two wheels.

`zipfile` lists the central directory; an installer that streams a wheel reads the local file
headers instead. Both views are read here and every disagreement is a finding, because a zip whose
two views disagree can install other bytes than it shows. Hostile archives (not a zip, truncated,
bombs, too many members) raise :class:`ArchiveError` before anything is decompressed.

The container comparison covers what an installer does not install: entry order, timestamps,
compression, modes, attributes, comments, extra fields. Differences are grouped so that a
timestamp changed on 5,000 entries is one row, not 5,000.
"""

from __future__ import annotations

import copy
import hashlib
import io
import lzma
import stat
import struct
import zipfile
import zlib
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from rebuild.errors import ArchiveError
from rebuild.models import Divergence, DivergenceKind, Side

if TYPE_CHECKING:
    from types import TracebackType

    from _typeshed import WriteableBuffer

    from rebuild.compare import CompareLimits

MiB = 1024 * 1024
MemberKey = tuple[str, int]  # (name, occurrence): duplicated names are paired copy by copy

_LOCAL = struct.Struct("<4sBBHHHHLLLHH")
_LOCAL_SIGNATURE = b"PK\x03\x04"
_ENCRYPTED = 0x0001
_DATA_DESCRIPTOR = 0x0008
_UTF8_NAMES = 0x0800
_ZIP64_EXTRA = 0x0001
_ZIP64_MARK = 0xFFFFFFFF
_METHODS = {
    zipfile.ZIP_STORED: "stored",
    zipfile.ZIP_DEFLATED: "deflated",
    zipfile.ZIP_BZIP2: "bzip2",
    zipfile.ZIP_LZMA: "lzma",
}
_SYSTEMS = {0: "MS-DOS", 3: "Unix", 7: "Macintosh", 10: "NTFS", 11: "MVS", 19: "OS X"}
_FLAGS = {
    _ENCRYPTED: "encrypted",
    0x0002: "compression option 1",
    0x0004: "compression option 2",
    _DATA_DESCRIPTOR: "data descriptor",
    _UTF8_NAMES: "UTF-8 names",
}
_FILE_TYPES = {
    0: "no file type",
    stat.S_IFREG: "regular file",
    stat.S_IFDIR: "directory",
    stat.S_IFLNK: "symlink",
    stat.S_IFCHR: "character device",
    stat.S_IFBLK: "block device",
    stat.S_IFIFO: "fifo",
    stat.S_IFSOCK: "socket",
}
_DESCRIPTOR_SIGNATURE = b"PK\x07\x08"
_ZIP64_END_SIGNATURE = b"PK\x06\x06"
_CENTRAL_FIXED = 46  # bytes of a central directory record before its name
_END_FIXED = 22  # bytes of the end-of-central-directory record before its comment
_ZIP64_LOCATOR = 20
_PREVIEW = 48  # bytes of unlisted data shown to a reviewer
_NAMES_SHOWN = 50  # member names listed in a grouped divergence before "and N more"
_READ_ERRORS = (zipfile.BadZipFile, OSError, EOFError, zlib.error, lzma.LZMAError)
_OPEN_ERRORS = (*_READ_ERRORS, ValueError, NotImplementedError, struct.error)


@dataclass(frozen=True)
class LocalHeader:
    """The fields of an entry's local file header that the central directory repeats."""

    name: bytes
    flags: int
    method: int
    dos_time: int
    dos_date: int
    crc: int
    compress_size: int
    file_size: int
    extract_version: int
    extra: bytes


@dataclass(frozen=True)
class Layout:
    """Where the file's bytes go: what no entry lists, and entries that share bytes."""

    # (offset, length, the first bytes) of each run of bytes outside every entry and record.
    unlisted: tuple[tuple[int, int, bytes], ...]
    # (member name or None for the central directory, what starts there, what it starts inside)
    overlaps: tuple[tuple[str | None, str, str], ...]


@dataclass(frozen=True)
class Entry:
    """One central-directory entry with its local header."""

    index: int  # position in the central directory
    name: str  # exactly as stored (zipfile's ``orig_filename``)
    occurrence: int  # 0 for the first entry of this name, 1 for a duplicate...
    info: zipfile.ZipInfo
    local: LocalHeader
    # (field, central directory value, local header value) where the two views disagree.
    mismatches: tuple[tuple[str, str, str], ...]

    @property
    def key(self) -> MemberKey:
        return (self.name, self.occurrence)

    @property
    def label(self) -> str:
        return self.name if self.occurrence == 0 else f"{self.name} (copy {self.occurrence + 1})"

    @property
    def mode(self) -> int:
        return self.info.external_attr >> 16


def _fail(path: Path, problem: str, hint: str | None = None) -> ArchiveError:
    return ArchiveError(
        f"{path.name}: {problem}",
        hint=hint or "the file is not a usable wheel; download it again or inspect it by hand",
    )


def _raw_name(info: zipfile.ZipInfo) -> bytes:
    # zipfile decodes names as UTF-8 or cp437 by flag bit 11; both encodings round-trip.
    return info.orig_filename.encode("utf-8" if info.flag_bits & _UTF8_NAMES else "cp437")


def _has_zip64(extra: bytes) -> bool:
    while len(extra) >= 4:
        tag, length = struct.unpack_from("<HH", extra)
        if tag == _ZIP64_EXTRA:
            return True
        extra = extra[4 + length :]
    return False


def _local_sizes(local: LocalHeader) -> tuple[int, int] | None:
    """(compressed, uncompressed) sizes of a local header, read from Zip64 extra if marked."""
    if _ZIP64_MARK not in (local.compress_size, local.file_size):
        return local.compress_size, local.file_size
    extra = local.extra
    while len(extra) >= 4:
        tag, length = struct.unpack_from("<HH", extra)
        if tag == _ZIP64_EXTRA and length >= 16:
            file_size, compress_size = struct.unpack_from("<QQ", extra, 4)
            return compress_size, file_size
        extra = extra[4 + length :]
    return None


def _mismatches(info: zipfile.ZipInfo, local: LocalHeader) -> tuple[tuple[str, str, str], ...]:
    found: list[tuple[str, str, str]] = []
    central_name = _raw_name(info)
    if local.name != central_name:
        found.append(("name", repr(central_name)[1:], repr(local.name)[1:]))
    if local.method != info.compress_type:
        found.append(("compression method", str(info.compress_type), str(local.method)))
    if local.flags != info.flag_bits:
        found.append(("flags", f"0x{info.flag_bits:04x}", f"0x{local.flags:04x}"))
    if not local.flags & _DATA_DESCRIPTOR:
        # Without a data descriptor the local header must carry the real CRC and sizes.
        if local.crc != info.CRC:
            found.append(("crc", f"{info.CRC:08x}", f"{local.crc:08x}"))
        sizes = _local_sizes(local)
        if sizes is None:
            found.append(("sizes", "present", "Zip64 marker without a Zip64 extra field"))
        else:
            if sizes[0] != info.compress_size:
                found.append(("compressed size", str(info.compress_size), str(sizes[0])))
            if sizes[1] != info.file_size:
                found.append(("size", str(info.file_size), str(sizes[1])))
    return tuple(found)


class _MemberStream(io.RawIOBase):
    """A member's decompressed bytes, with zipfile's errors translated and the size enforced."""

    def __init__(self, source: IO[bytes], entry: Entry, path: Path, limits: CompareLimits):
        super().__init__()
        self._source = source
        self._entry = entry
        self._path = path
        self._limits = limits
        self._count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        try:
            data = self._source.read(len(view))
        except _READ_ERRORS as e:
            raise _fail(self._path, f"member {self._entry.label!r} is corrupt: {e}") from e
        self._count += len(data)
        info = self._entry.info
        if self._count > info.file_size:
            raise _fail(self._path, f"member {self._entry.label!r} is larger than it declares")
        if (
            self._count > self._limits.ratio_floor
            and self._count > self._limits.max_member_ratio * max(info.compress_size, 1)
        ):
            raise _fail(self._path, f"member {self._entry.label!r} expands like a zip bomb")
        if not data and len(view) and self._count != info.file_size:
            raise _fail(
                self._path,
                f"member {self._entry.label!r} ends after {self._count:,} of the "
                f"{info.file_size:,} bytes it declares",
            )
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._source.close()
        super().close()


class WheelArchive:
    """An open wheel: its entries (central directory + local headers) and member streams."""

    def __init__(self, path: Path, limits: CompareLimits) -> None:
        self.path = path
        self._limits = limits
        try:
            self._file = path.open("rb")
        except OSError as e:
            raise _fail(path, f"cannot be read: {e.strerror or e}", hint="check the path") from e
        try:
            self._zip = zipfile.ZipFile(self._file)
            infos = self._zip.infolist()
            self._check_declared(infos)
            self.entries = self._read_entries(infos)
            self.comment = self._zip.comment
            self.layout = self._layout()
        except _OPEN_ERRORS as e:
            self.close()
            raise _fail(path, f"is not a readable zip archive: {e}") from e
        except ArchiveError:
            self.close()
            raise

    def _check_declared(self, infos: list[zipfile.ZipInfo]) -> None:
        """Refuse bombs and oversized archives from what they declare, before decompressing."""
        limits = self._limits
        hint = "the limits are in CompareLimits; raise them only for a wheel you trust"
        if len(infos) > limits.max_members:
            raise _fail(
                self.path, f"has {len(infos):,} entries (limit {limits.max_members:,})", hint
            )
        total = sum(info.file_size for info in infos)
        if total > limits.max_total_uncompressed:
            raise _fail(
                self.path,
                f"declares {total:,} bytes uncompressed "
                f"(limit {limits.max_total_uncompressed:,}): a zip bomb?",
                hint,
            )
        # The per-member ratio cannot see entries that share compressed bytes (the overlapping
        # zip bomb: every entry points into one deflate kernel). Honest deflate cannot exceed
        # about 1032:1 over the whole file either, so the whole archive is held to the ratio.
        self._file.seek(0, io.SEEK_END)
        size = self._file.tell()
        if total > limits.ratio_floor and total > limits.max_member_ratio * max(size, 1):
            raise _fail(
                self.path,
                f"declares {total:,} bytes uncompressed in a {size:,}-byte file (over "
                f"{limits.max_member_ratio}:1 for the whole archive, more than deflate can "
                "produce): entries share compressed data, a zip bomb?",
                hint,
            )
        for info in infos:
            ratio_limit = limits.max_member_ratio * max(info.compress_size, 1)
            if info.file_size > limits.ratio_floor and info.file_size > ratio_limit:
                raise _fail(
                    self.path,
                    f"member {info.orig_filename!r} declares {info.file_size:,} bytes from "
                    f"{info.compress_size:,} compressed (over {limits.max_member_ratio}:1): "
                    "a zip bomb?",
                    hint,
                )
            if info.flag_bits & _ENCRYPTED:
                raise _fail(self.path, f"member {info.orig_filename!r} is encrypted")
            if info.compress_type not in _METHODS:
                raise _fail(
                    self.path,
                    f"member {info.orig_filename!r} uses compression method "
                    f"{info.compress_type}, which installers cannot read",
                )

    def _read_entries(self, infos: list[zipfile.ZipInfo]) -> tuple[Entry, ...]:
        entries: list[Entry] = []
        seen: dict[str, int] = {}
        for index, info in enumerate(infos):
            local = self._read_local(info)
            occurrence = seen.get(info.orig_filename, 0)
            seen[info.orig_filename] = occurrence + 1
            entries.append(
                Entry(index, info.orig_filename, occurrence, info, local, _mismatches(info, local))
            )
        return tuple(entries)

    def _read_local(self, info: zipfile.ZipInfo) -> LocalHeader:
        self._file.seek(info.header_offset)
        fixed = self._file.read(_LOCAL.size)
        if len(fixed) != _LOCAL.size:
            raise _fail(self.path, f"the local header of {info.orig_filename!r} is truncated")
        (signature, version, _system, flags, method, dos_time, dos_date, crc, csize, usize,
         name_length, extra_length) = _LOCAL.unpack(fixed)  # fmt: skip
        if signature != _LOCAL_SIGNATURE:
            raise _fail(
                self.path,
                f"the central directory points {info.orig_filename!r} at offset "
                f"{info.header_offset}, where there is no local file header",
            )
        name = self._file.read(name_length)
        extra = self._file.read(extra_length)
        if len(name) != name_length or len(extra) != extra_length:
            raise _fail(self.path, f"the local header of {info.orig_filename!r} is truncated")
        return LocalHeader(
            name, flags, method, dos_time, dos_date, crc, csize, usize, version, extra
        )

    def _entry_end(self, entry: Entry) -> int:
        local = entry.local
        end = entry.info.header_offset + _LOCAL.size + len(local.name) + len(local.extra)
        end += entry.info.compress_size
        if local.flags & _DATA_DESCRIPTOR:
            self._file.seek(end)
            signed = self._file.read(4) == _DESCRIPTOR_SIGNATURE
            end += (4 if signed else 0) + 4 + (16 if _has_zip64(local.extra) else 8)
        return end

    def _layout(self) -> Layout:
        """Account for every byte of the file: entries, central directory, end records."""
        unlisted: list[tuple[int, int]] = []
        overlaps: list[tuple[str | None, str, str]] = []
        position, previous = 0, "the start of the file"
        spans: list[tuple[int, int, str | None, str]] = sorted(
            (e.info.header_offset, self._entry_end(e), e.name, e.label) for e in self.entries
        )
        central = self._zip.start_dir
        central_end = central + sum(
            _CENTRAL_FIXED + len(_raw_name(e.info)) + len(e.info.extra) + len(e.info.comment)
            for e in self.entries
        )
        spans.append((central, central_end, None, "the central directory"))
        for start, end, member, label in spans:
            if start > position:
                unlisted.append((position, start - position))
            elif start < position:
                overlaps.append((member, label, previous))
            if end > position:
                position, previous = end, label
        self._file.seek(0, io.SEEK_END)
        size = self._file.tell()
        self._file.seek(position)
        tail = _END_FIXED + len(self.comment)
        if self._file.read(4) == _ZIP64_END_SIGNATURE:
            (record,) = struct.unpack("<Q", self._file.read(8))
            tail += 12 + record + _ZIP64_LOCATOR
        if size - position > tail:
            unlisted.append((position, size - position - tail))
        previews = []
        for offset, length in unlisted:
            self._file.seek(offset)
            previews.append((offset, length, self._file.read(min(length, _PREVIEW))))
        return Layout(tuple(previews), tuple(overlaps))

    def raw_sha256(self, entry: Entry) -> bytes:
        """sha256 of the member's stored (compressed) bytes, read where zipfile reads them.

        Two members with the same method and the same stored bytes decompress to the same
        bytes: comparing these lets one decompression serve both wheels.
        """
        local = entry.local
        self._file.seek(entry.info.header_offset + _LOCAL.size + len(local.name) + len(local.extra))
        sha = hashlib.sha256()
        left = entry.info.compress_size
        while left > 0:
            chunk = self._file.read(min(left, MiB))
            if not chunk:
                raise _fail(self.path, f"member {entry.label!r} is truncated")
            sha.update(chunk)
            left -= len(chunk)
        return sha.digest()

    def open_member(self, entry: Entry) -> IO[bytes]:
        """A stream of the member's bytes as the central directory describes them."""
        info = entry.info
        if any(field == "name" for field, _, _ in entry.mismatches):
            # zipfile refuses a member whose local name differs. The disagreement is already a
            # finding; read the bytes the central directory points at, so the comparison goes on.
            encoding = "utf-8" if entry.local.flags & _UTF8_NAMES else "cp437"
            try:
                local_name = entry.local.name.decode(encoding)
            except UnicodeDecodeError as e:
                raise _fail(self.path, f"the local name of {entry.label!r} is undecodable") from e
            info = copy.copy(info)
            info.orig_filename = local_name
        try:
            source = self._zip.open(info)
        except _OPEN_ERRORS as e:
            raise _fail(self.path, f"member {entry.label!r} cannot be opened: {e}") from e
        return io.BufferedReader(_MemberStream(source, entry, self.path, self._limits), MiB)

    def close(self) -> None:
        zip_file = getattr(self, "_zip", None)
        if zip_file is not None:
            zip_file.close()
        self._file.close()

    def __enter__(self) -> WheelArchive:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


# --- integrity: one wheel on its own ---------------------------------------------------------


def _unsafe_reasons(name: str, max_length: int) -> list[str]:
    reasons: list[str] = []
    if not name:
        reasons.append("empty name")
    if name.startswith("/"):
        reasons.append("absolute path")
    if len(name) >= 2 and name[1] == ":" and name[0].isascii() and name[0].isalpha():
        reasons.append("drive letter")
    if "\\" in name:
        reasons.append("backslash")
    if ".." in name.replace("\\", "/").split("/"):
        reasons.append("'..' component")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        reasons.append("NUL or control character")
    if len(name) > max_length:
        reasons.append(f"{len(name):,} characters long (limit {max_length:,})")
    return reasons


def integrity_findings(archive: WheelArchive, side: Side, max_name_length: int) -> list[Divergence]:
    """Findings about one wheel's zip on its own: names, symlinks, disagreeing headers."""
    findings: list[Divergence] = []
    counts: dict[str, int] = {}
    for entry in archive.entries:
        counts[entry.name] = counts.get(entry.name, 0) + 1
    for name, count in counts.items():
        if count > 1:
            findings.append(
                Divergence(
                    kind=DivergenceKind.DUPLICATE_NAME,
                    summary=f"{count} entries have the name {name!r}; installers differ on "
                    "which one wins",
                    member=name,
                    side=side,
                )
            )
    for entry in archive.entries:
        if entry.occurrence:
            continue
        reasons = _unsafe_reasons(entry.name, max_name_length)
        if reasons:
            findings.append(
                Divergence(
                    kind=DivergenceKind.UNSAFE_NAME,
                    summary=f"unsafe member name ({', '.join(reasons)}): {entry.name[:200]!r}",
                    member=entry.name,
                    side=side,
                )
            )
    for entry in archive.entries:
        if stat.S_ISLNK(entry.mode):
            findings.append(
                Divergence(
                    kind=DivergenceKind.SYMLINK,
                    summary=f"{entry.label} is a symlink entry; installers write it as a file "
                    "or follow it",
                    member=entry.name,
                    side=side,
                )
            )
        if entry.mismatches:
            findings.append(
                Divergence(
                    kind=DivergenceKind.HEADER_MISMATCH,
                    summary=f"the local header of {entry.label} disagrees with the central "
                    f"directory on {', '.join(f for f, _, _ in entry.mismatches)}",
                    member=entry.name,
                    side=side,
                    detail="\n".join(
                        f"{field}: central directory {central}, local header {local}"
                        for field, central, local in entry.mismatches
                    ),
                )
            )
    for member, label, other in archive.layout.overlaps:
        findings.append(
            Divergence(
                kind=DivergenceKind.HEADER_MISMATCH,
                summary=f"{label} starts inside the bytes of {other}: entries overlap, so the "
                "central directory and a sequential read see different members",
                member=member,
                side=side,
            )
        )
    unlisted = archive.layout.unlisted
    if unlisted:
        where = ", ".join(f"{length:,} at offset {offset:,}" for offset, length, _ in unlisted[:5])
        more = f" and {len(unlisted) - 5} more runs" if len(unlisted) > 5 else ""
        findings.append(
            Divergence(
                kind=DivergenceKind.UNLISTED_DATA,
                summary=f"{sum(length for _, length, _ in unlisted):,} bytes of the file belong "
                f"to no entry ({where}{more}); data an installer never sees",
                side=side,
                detail=_names(
                    [f"offset {offset:,}: {preview!r}" for offset, _, preview in unlisted]
                ),
            )
        )
    return findings


# --- the container comparison --------------------------------------------------------------


def _timestamp(date_time: tuple[int, int, int, int, int, int]) -> str:
    year, month, day, hour, minute, second = date_time
    return f"{year:04d}-{month:02d}-{day:02d} {hour:02d}:{minute:02d}:{second:02d}"


def _dos_timestamp(dos_date: int, dos_time: int) -> str:
    return _timestamp(
        (
            (dos_date >> 9) + 1980,
            (dos_date >> 5) & 0xF,
            dos_date & 0x1F,
            dos_time >> 11,
            (dos_time >> 5) & 0x3F,
            (dos_time & 0x1F) * 2,
        )
    )


def _method(method: int) -> str:
    return _METHODS.get(method, f"method {method}")


def installs_executable(mode: int) -> bool:
    """Whether pip and installer make the installed file executable, from the entry's mode.

    Both read ``external_attr >> 16`` and add the executable bits only for a non-zero mode that
    types the entry as a regular file and has any x bit: pip's
    ``_internal/utils/unpacking.py::zip_item_is_executable`` (26.3) and installer's
    ``sources.py`` (1.1.0) both say ``bool(mode and stat.S_ISREG(mode) and mode & 0o111)``.
    """
    return bool(mode and stat.S_ISREG(mode) and mode & 0o111)


def _mode_text(mode: int) -> str:
    installed = "installed executable" if installs_executable(mode) else "installed not executable"
    return f"{_file_type(mode)} {_permissions(mode)} ({installed})"


def _permissions(mode: int) -> str:
    return oct(stat.S_IMODE(mode)) if mode else "none"


def _file_type(mode: int) -> str:
    return _FILE_TYPES.get(stat.S_IFMT(mode), f"file type {oct(stat.S_IFMT(mode))}")


def _flags(flags: int) -> str:
    named = [label for bit, label in _FLAGS.items() if flags & bit]
    return f"0x{flags:04x}" + (f" ({', '.join(named)})" if named else "")


def _version(version: int) -> str:
    return f"{version // 10}.{version % 10}"


def _system(system: int) -> str:
    return f"{system} ({_SYSTEMS.get(system, 'other')})"


def _extra(extra: bytes) -> str:
    if not extra:
        return "none"
    blocks: list[str] = []
    rest = extra
    while len(rest) >= 4:
        tag, length = struct.unpack_from("<HH", rest)
        blocks.append(f"0x{tag:04x} ({length} bytes)")
        rest = rest[4 + length :]
    if rest:
        blocks.append(f"{len(rest)} trailing bytes")
    return ", ".join(blocks)


def _comment(comment: bytes) -> str:
    shown = repr(comment[:80])
    return shown + ("…" if len(comment) > 80 else "") if comment else "none"


@dataclass(frozen=True)
class _Field:
    """One container attribute compared entry by entry."""

    kind: DivergenceKind
    what: str
    value: Callable[[Entry], Hashable]  # what is compared
    render: Callable[[Entry], str]  # what a reviewer reads
    # Compared only where this holds for the pair (e.g. the central values already agree).
    when: Callable[[Entry, Entry], bool] | None = None


def _fields(same_content: Callable[[MemberKey], bool]) -> tuple[_Field, ...]:
    kind = DivergenceKind
    return (
        _Field(kind.TIMESTAMP, "timestamp",
               lambda e: e.info.date_time, lambda e: _timestamp(e.info.date_time)),
        _Field(kind.TIMESTAMP, "local header timestamp",
               lambda e: (e.local.dos_date, e.local.dos_time),
               lambda e: _dos_timestamp(e.local.dos_date, e.local.dos_time),
               when=lambda a, b: a.info.date_time == b.info.date_time),
        _Field(kind.COMPRESSION, "compression method",
               lambda e: e.info.compress_type, lambda e: _method(e.info.compress_type)),
        _Field(kind.COMPRESSION,
               "compressed stream (same method and content: another compressor or level)",
               lambda e: e.info.compress_size, lambda e: "",
               when=lambda a, b: a.info.compress_type == b.info.compress_type
               and same_content(a.key)),
        # One mode, split by what an installer does with it: whether the installed file is
        # executable is the member's business, the rest is the container's.
        _Field(kind.INSTALLED_MODE, "installed executable bit",
               lambda e: installs_executable(e.mode), lambda e: _mode_text(e.mode)),
        _Field(kind.PERMISSIONS, "permission mode",
               lambda e: stat.S_IMODE(e.mode), lambda e: _permissions(e.mode),
               when=lambda a, b: installs_executable(a.mode) == installs_executable(b.mode)),
        _Field(kind.PERMISSIONS, "file type",
               lambda e: stat.S_IFMT(e.mode), lambda e: _file_type(e.mode),
               when=lambda a, b: installs_executable(a.mode) == installs_executable(b.mode)),
        _Field(kind.ATTRIBUTES, "MS-DOS attributes",
               lambda e: e.info.external_attr & 0xFFFF,
               lambda e: f"0x{e.info.external_attr & 0xFFFF:04x}"),
        _Field(kind.ATTRIBUTES, "create_system",
               lambda e: e.info.create_system, lambda e: _system(e.info.create_system)),
        _Field(kind.ATTRIBUTES, "create_version",
               lambda e: e.info.create_version, lambda e: _version(e.info.create_version)),
        _Field(kind.ATTRIBUTES, "extract_version",
               lambda e: e.info.extract_version, lambda e: _version(e.info.extract_version)),
        _Field(kind.ATTRIBUTES, "local header extract_version",
               lambda e: e.local.extract_version, lambda e: _version(e.local.extract_version),
               when=lambda a, b: a.info.extract_version == b.info.extract_version),
        _Field(kind.ATTRIBUTES, "flag_bits",
               lambda e: e.info.flag_bits, lambda e: _flags(e.info.flag_bits)),
        _Field(kind.ATTRIBUTES, "internal_attr",
               lambda e: e.info.internal_attr, lambda e: f"0x{e.info.internal_attr:04x}"),
        _Field(kind.ATTRIBUTES, "volume/reserved field",
               lambda e: (e.info.volume, e.info.reserved),
               lambda e: f"volume {e.info.volume}, reserved {e.info.reserved}"),
        _Field(kind.ENTRY_COMMENT, "entry comment",
               lambda e: e.info.comment, lambda e: _comment(e.info.comment)),
        _Field(kind.EXTRA_FIELD, "extra field (central directory)",
               lambda e: e.info.extra, lambda e: _extra(e.info.extra)),
        _Field(kind.EXTRA_FIELD, "extra field (local header)",
               lambda e: e.local.extra, lambda e: _extra(e.local.extra)),
    )  # fmt: skip


def _names(labels: list[str]) -> str:
    shown = labels[:_NAMES_SHOWN]
    more = len(labels) - len(shown)
    return "\n".join(shown) + (f"\n… and {more:,} more" if more else "")


def _grouped(
    pairs: list[tuple[Entry, Entry]], same_content: Callable[[MemberKey], bool]
) -> Iterator[Divergence]:
    groups: dict[tuple[_Field, str, str], list[str]] = {}
    for field in _fields(same_content):
        for old, new in pairs:
            if field.when is not None and not field.when(old, new):
                continue
            if field.value(old) == field.value(new):
                continue
            shown = (field.render(old), field.render(new))
            if shown[0] == shown[1]:
                # Equal when rendered (e.g. extra fields with the same layout): say so.
                shown = (shown[0], shown[1] + " (other bytes)") if shown[0] else ("", "")
            groups.setdefault((field, *shown), []).append(old.label)
    for (field, before, after), labels in groups.items():
        entries = "entry" if len(labels) == 1 else "entries"
        values = f": {before} vs {after}" if before else ""
        yield Divergence(
            kind=field.kind,
            summary=f"{field.what} differs on {len(labels):,} {entries}{values}",
            member=labels[0],
            published=before or None,
            rebuilt=after or None,
            detail=_names(labels),
            entries=tuple(labels),
        )


def _order(pub: WheelArchive, reb: WheelArchive, common: set[MemberKey]) -> Divergence | None:
    old = [e.label for e in pub.entries if e.key in common]
    new = [e.label for e in reb.entries if e.key in common]
    if old == new:
        return None
    first = next(i for i, (a, b) in enumerate(zip(old, new, strict=True)) if a != b)
    moved = sum(a != b for a, b in zip(old, new, strict=True))

    def sortedness(labels: list[str]) -> str:
        return "sorted by name" if labels == sorted(labels) else "not sorted by name"

    return Divergence(
        kind=DivergenceKind.ENTRY_ORDER,
        summary=f"entry order departs at entry {first + 1:,} of {len(old):,}: {moved:,} "
        "entries common to both wheels are at another position",
        member=old[first],
        published=old[first],
        rebuilt=new[first],
        detail=f"published order: {sortedness(old)}\nrebuilt order: {sortedness(new)}",
    )


def compare_containers(
    pub: WheelArchive, reb: WheelArchive, same_content: Callable[[MemberKey], bool]
) -> list[Divergence]:
    """Container-layer differences for the members both wheels hold, grouped."""
    rebuilt = {e.key: e for e in reb.entries}
    pairs = [(e, rebuilt[e.key]) for e in pub.entries if e.key in rebuilt]
    found = list(_grouped(pairs, same_content))
    order = _order(pub, reb, {old.key for old, _ in pairs})
    if order is not None:
        found.insert(0, order)
    if pub.comment != reb.comment:
        found.append(
            Divergence(
                kind=DivergenceKind.ZIP_COMMENT,
                summary="the archive comment differs",
                published=_comment(pub.comment),
                rebuilt=_comment(reb.comment),
            )
        )
    return found
