"""Safe extraction of an sdist (.tar.gz, .tar.bz2, .tar.xz, .tar, .zip) into a work directory.

An sdist is untrusted input: it may try to write outside the directory (absolute names, ``..``,
links pointing out, writes through a link), create devices, or expand into far more bytes than it
holds (a bomb). Every member is checked before anything is written, files are written by this
module with the bytes actually produced counted against :class:`ExtractLimits`, and no write ever
goes through a link. On any refusal the partial tree is removed and :class:`ArchiveError` raised.
"""

from __future__ import annotations

import calendar
import contextlib
import gzip
import lzma
import os
import posixpath
import shutil
import stat
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

from rebuild.errors import ArchiveError

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

CHUNK_BYTES = 1 * MiB
# A symlink stored in a zip keeps its target as the member's content; no real target is longer.
MAX_LINK_TARGET = 4 * KiB
# No real sdist nests this deep; a deeper tree could not even be removed again, because the
# standard library's rmtree recurses once per level and runs out of stack near 1,000.
MAX_DEPTH = 256
# Timestamps outside this range are clamped: some archivers write garbage, and the OS refuses it.
MAX_MTIME = 2**33

# What goes wrong while reading a damaged archive, whichever library and codec notices it.
_CORRUPT = (
    gzip.BadGzipFile,
    tarfile.TarError,
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    lzma.LZMAError,
    EOFError,
    NotImplementedError,
    struct.error,
    ValueError,
)

# What reading a member of a damaged wheel raises: its codec, an unknown method, a bad header.
ZIP_READ_ERRORS: tuple[type[BaseException], ...] = (
    zipfile.BadZipFile,
    OSError,
    EOFError,
    zlib.error,
    NotImplementedError,
    ValueError,
)

HINT_HOSTILE = "the sdist is malformed or hostile; do not build it, and report it to the project"


@dataclass(frozen=True)
class ExtractLimits:
    """How much an sdist may expand to before extraction stops."""

    max_members: int = 100_000
    max_total_bytes: int = 4 * GiB
    max_member_bytes: int = 2 * GiB
    # Uncompressed over compressed size of the whole archive; judged only once the output is
    # past ``ratio_after_bytes``, since small text-heavy sdists compress very well.
    max_ratio: float = 200
    ratio_after_bytes: int = 10 * MiB


DEFAULT_LIMITS = ExtractLimits()

_Kind = Literal["file", "dir", "symlink", "hardlink"]


@dataclass(frozen=True)
class _Entry:
    """One archive member, whichever the archive format."""

    name: str
    kind: _Kind
    size: int  # as declared by the archive; the bytes written are counted separately
    mode: int
    mtime: float | None
    link: str | None  # symlink target, or the member a hardlink names
    open: Callable[[], IO[bytes]]


def extract_sdist(archive: Path, dest: Path, limits: ExtractLimits = DEFAULT_LIMITS) -> Path:
    """Extract ``archive`` into ``dest`` (absent or empty) and return its one top directory."""
    try:
        created = _prepare_dest(dest)
    except OSError as e:
        raise ArchiveError(f"cannot create the work directory {dest}: {e.strerror or e}") from e
    try:
        extractor = _Extractor(dest, limits, archive_size=archive.stat().st_size)
        with _entries(archive, dest) as entries:
            for entry in entries:
                extractor.add(entry)
        extractor.finish()
        return _top_directory(archive, dest)
    except ArchiveError:
        _clean(dest, created)
        raise
    except _CORRUPT as e:
        _clean(dest, created)
        raise ArchiveError(
            f"{archive.name} is corrupt or truncated: {e}",
            hint="download it again; if the index's hash matched, the sdist itself is broken",
        ) from e
    except OSError as e:
        _clean(dest, created)
        raise ArchiveError(
            f"cannot extract {archive.name} into {dest}: {e.strerror or e}",
            hint="the archive may be damaged, or the work directory unwritable or full",
        ) from e
    except BaseException:
        # Ctrl-C included: leave no half-extracted tree behind.
        _clean(dest, created)
        raise


def _prepare_dest(dest: Path) -> bool:
    """Make sure ``dest`` is an empty directory; True if it had to be created."""
    if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
        raise ArchiveError(f"cannot extract into {dest}: not a directory")
    if dest.exists():
        if any(dest.iterdir()):
            raise ArchiveError(
                f"cannot extract into {dest}: the directory is not empty",
                hint="extract into a new or empty work directory",
            )
        return False
    dest.mkdir(parents=True)
    return True


def _clean(dest: Path, created: bool) -> None:
    with contextlib.suppress(OSError):
        if created:
            shutil.rmtree(dest)
            return
        for child in dest.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()


def _top_directory(archive: Path, dest: Path) -> Path:
    children = sorted(dest.iterdir())
    if len(children) == 1 and children[0].is_dir() and not children[0].is_symlink():
        return children[0]
    names = ", ".join(c.name for c in children[:5]) or "nothing"
    raise ArchiveError(
        f"{archive.name} should hold one top-level directory (name-version/), not: {names}",
        hint="this is not a standard sdist; check the file is the project's source archive",
    )


# --- reading the two formats ---------------------------------------------------------------


@contextlib.contextmanager
def _entries(archive: Path, dest: Path) -> Iterator[Iterator[_Entry]]:
    with archive.open("rb") as f:
        magic = f.read(4)
    if magic in (b"PK\x03\x04", b"PK\x05\x06"):
        with zipfile.ZipFile(archive) as zf:
            yield _zip_entries(zf)
    else:
        with tarfile.open(archive, "r:*") as tf:
            yield _tar_entries(tf, dest)


def _tar_entries(tf: tarfile.TarFile, dest: Path) -> Iterator[_Entry]:
    for member in tf:
        kind = _tar_kind(member)
        # The standard library's own judgement as a second opinion, on the tree as extracted so
        # far: it refuses absolute and escaping names and links, and special files.
        try:
            tarfile.data_filter(member, str(dest))
        except tarfile.FilterError as e:
            raise ArchiveError(f"member {member.name!r} refused: {e}", hint=HINT_HOSTILE) from e
        yield _Entry(
            name=member.name,
            kind=kind,
            size=member.size if kind == "file" else 0,
            mode=member.mode,
            mtime=member.mtime,
            link=member.linkname if kind in ("symlink", "hardlink") else None,
            open=_tar_opener(tf, member),
        )


def _tar_kind(member: tarfile.TarInfo) -> _Kind:
    if member.isreg():
        return "file"
    if member.isdir():
        return "dir"
    if member.issym():
        return "symlink"
    if member.islnk():
        return "hardlink"
    raise ArchiveError(
        f"member {member.name!r} is a device, fifo or other special file",
        hint=HINT_HOSTILE,
    )


def _tar_opener(tf: tarfile.TarFile, member: tarfile.TarInfo) -> Callable[[], IO[bytes]]:
    def open_member() -> IO[bytes]:
        stream = tf.extractfile(member)
        if stream is None:  # pragma: no cover - only for non-files, which are not opened
            raise ArchiveError(f"member {member.name!r} has no content")
        return stream

    return open_member


def _zip_entries(zf: zipfile.ZipFile) -> Iterator[_Entry]:
    for info in zf.infolist():
        if info.flag_bits & 0x1:
            raise ArchiveError(
                f"member {info.filename!r} is encrypted",
                hint="an sdist has no reason to be encrypted; " + HINT_HOSTILE,
            )
        kind = _zip_kind(info)
        yield _Entry(
            name=info.filename,
            kind=kind,
            size=info.file_size,
            mode=(info.external_attr >> 16) & 0o7777,
            # A zip's times are the creator's local time; read them as UTC, which is stable.
            mtime=calendar.timegm((*info.date_time, 0, 0, 0)),
            link=_zip_link(zf, info) if kind == "symlink" else None,
            open=_zip_opener(zf, info),
        )


def _zip_opener(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> Callable[[], IO[bytes]]:
    def open_member() -> IO[bytes]:
        return zf.open(info)

    return open_member


def _zip_kind(info: zipfile.ZipInfo) -> _Kind:
    mode = info.external_attr >> 16
    # Only a zip made on Unix (create_system 3) carries file types in its attributes.
    if info.create_system == 3 and mode:
        if stat.S_ISLNK(mode):
            return "symlink"
        if stat.S_ISDIR(mode):
            return "dir"
        # Permission bits without a file type (zipfile's writestr) mean a regular file.
        if stat.S_IFMT(mode) and not stat.S_ISREG(mode):
            raise ArchiveError(
                f"member {info.filename!r} is a device, fifo or other special file",
                hint=HINT_HOSTILE,
            )
    # Not is_dir(): it indexes the name, and a name cut to nothing at a NUL is empty.
    return "dir" if info.filename.endswith("/") else "file"


def _zip_link(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> str:
    with zf.open(info) as f:
        target = f.read(MAX_LINK_TARGET + 1)
    if len(target) > MAX_LINK_TARGET:
        raise ArchiveError(f"symlink {info.filename!r} has an oversized target", hint=HINT_HOSTILE)
    return target.decode("utf-8", "surrogateescape")


# --- writing -------------------------------------------------------------------------------


def _safe_parts(name: str, what: str = "member") -> tuple[str, ...]:
    """The path components of an archive name, refusing anything that could leave the tree."""
    if "\0" in name or "\\" in name:
        raise ArchiveError(f"{what} {name!r} has a NUL or backslash in its name", hint=HINT_HOSTILE)
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise ArchiveError(f"{what} {name!r} has an absolute path", hint=HINT_HOSTILE)
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    if ".." in parts:
        raise ArchiveError(f"{what} {name!r} climbs out with '..'", hint=HINT_HOSTILE)
    if len(parts) > MAX_DEPTH:
        raise ArchiveError(
            f"{what} {name[:200]!r}… is {len(parts)} directories deep (limit {MAX_DEPTH})",
            hint=HINT_HOSTILE,
        )
    return parts


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root + os.sep)


def _file_mode(mode: int) -> int:
    # Keep only "executable or not": ownership, setuid and odd permissions are not the sdist's
    # to decide, and fixed modes keep the tree the same whatever the host's umask.
    return 0o755 if mode & 0o111 else 0o644


class _Extractor:
    """Writes entries under ``dest``, never through a link, counting every byte written."""

    def __init__(self, dest: Path, limits: ExtractLimits, *, archive_size: int) -> None:
        self.dest = dest
        self.root = os.path.realpath(dest)
        self.limits = limits
        self.archive_size = max(archive_size, 1)
        self.members = 0
        self.written = 0
        self.files: dict[tuple[str, ...], Path] = {}
        self.symlinks: list[tuple[str, Path]] = []

    def add(self, entry: _Entry) -> None:
        self.members += 1
        if self.members > self.limits.max_members:
            raise ArchiveError(
                f"the archive has more than {self.limits.max_members} members",
                hint=HINT_HOSTILE,
            )
        parts = _safe_parts(entry.name)
        if not parts:
            return  # the archive's own root ("./")
        if entry.kind == "dir":
            self._directory(parts, name=entry.name)
        elif entry.kind == "file":
            self._file(parts, entry)
        elif entry.kind == "symlink":
            self._symlink(parts, entry)
        else:
            self._hardlink(parts, entry)

    def finish(self) -> None:
        # Links were checked as they were made; one made later may have changed where an
        # earlier one leads, so judge them all again on the finished tree.
        for name, path in self.symlinks:
            if path.is_symlink() and not _inside(os.path.realpath(path), self.root):
                raise ArchiveError(f"symlink {name!r} points outside the sdist", hint=HINT_HOSTILE)

    def _directory(self, parts: tuple[str, ...], *, name: str) -> Path:
        """``dest/parts``, made as needed, after checking no part of it is a link or a file."""
        path = self.dest
        for part in parts:
            path = path / part
            try:
                info = path.lstat()
            except FileNotFoundError:
                path.mkdir()
                continue
            if stat.S_ISLNK(info.st_mode):
                raise ArchiveError(
                    f"member {name!r} would be written through the symlink "
                    f"{path.relative_to(self.dest)}",
                    hint=HINT_HOSTILE,
                )
            if not stat.S_ISDIR(info.st_mode):
                raise ArchiveError(
                    f"member {name!r} needs {path.relative_to(self.dest)} to be a "
                    "directory, but the archive made it a file",
                    hint=HINT_HOSTILE,
                )
        return path

    def _free(self, path: Path, name: str) -> None:
        """Make room for a new entry at ``path``: only a regular file may be replaced."""
        try:
            info = path.lstat()
        except FileNotFoundError:
            return
        if not stat.S_ISREG(info.st_mode):
            raise ArchiveError(
                f"member {name!r} would replace a directory or link of the same name",
                hint=HINT_HOSTILE,
            )
        path.unlink()

    def _file(self, parts: tuple[str, ...], entry: _Entry) -> None:
        name = "/".join(parts)
        self._check_declared(name, entry.size)
        target = self._directory(parts[:-1], name=name) / parts[-1]
        self._free(target, name)
        with entry.open() as source:
            self._write(target, source, name, _file_mode(entry.mode))
        if entry.mtime is not None:
            mtime = min(max(entry.mtime, 0), MAX_MTIME)
            os.utime(target, (mtime, mtime), follow_symlinks=False)
        self.files[parts] = target

    def _symlink(self, parts: tuple[str, ...], entry: _Entry) -> None:
        name = "/".join(parts)
        link = entry.link or ""
        if not link or "\0" in link or link.startswith("/") or "\\" in link:
            raise ArchiveError(
                f"symlink {name!r} has an absolute or malformed target {link!r}",
                hint=HINT_HOSTILE,
            )
        lexical = posixpath.normpath(posixpath.join(*parts[:-1], link) if parts[:-1] else link)
        if lexical == ".." or lexical.startswith("../"):
            raise ArchiveError(f"symlink {name!r} points outside the sdist", hint=HINT_HOSTILE)
        parent = self._directory(parts[:-1], name=name)
        if not _inside(os.path.realpath(parent / link), self.root):
            raise ArchiveError(f"symlink {name!r} points outside the sdist", hint=HINT_HOSTILE)
        target = parent / parts[-1]
        self._free(target, name)
        self.files.pop(parts, None)
        target.symlink_to(link)
        self.symlinks.append((name, target))

    def _hardlink(self, parts: tuple[str, ...], entry: _Entry) -> None:
        # A copy, not a link: it keeps the tree free of shared inodes and makes the copied
        # bytes count against the limits (a thousand links to one big file are a bomb too).
        name = "/".join(parts)
        source_parts = _safe_parts(entry.link or "", what="hardlink target")
        source = self.files.get(source_parts)
        if source is None:
            raise ArchiveError(
                f"hardlink {name!r} names {entry.link!r}, which is no earlier file of the archive",
                hint=HINT_HOSTILE,
            )
        target = self._directory(parts[:-1], name=name) / parts[-1]
        if target == source:
            return
        self._check_declared(name, source.stat().st_size)
        self._free(target, name)
        fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as reader:
            self._write(target, reader, name, stat.S_IMODE(source.stat().st_mode))
        self.files[parts] = target

    def _check_declared(self, name: str, size: int) -> None:
        # Refuse early on what the headers claim; _write still counts what really comes.
        if size > self.limits.max_member_bytes:
            raise self._too_big(f"member {name!r} declares {size} bytes")
        if self.written + size > self.limits.max_total_bytes:
            raise self._too_big(f"member {name!r} would take the sdist past its size limit")

    def _write(self, target: Path, source: IO[bytes], name: str, mode: int) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        fd = os.open(target, flags, 0o600)
        with os.fdopen(fd, "wb") as out:
            member_bytes = 0
            while chunk := source.read(CHUNK_BYTES):
                member_bytes += len(chunk)
                self.written += len(chunk)
                self._check_written(name, member_bytes)
                out.write(chunk)
            os.fchmod(out.fileno(), mode)

    def _check_written(self, name: str, member_bytes: int) -> None:
        limits = self.limits
        if member_bytes > limits.max_member_bytes:
            raise self._too_big(f"member {name!r} expands past {limits.max_member_bytes} bytes")
        if self.written > limits.max_total_bytes:
            raise self._too_big(f"the sdist expands past {limits.max_total_bytes} bytes")
        ratio = self.written / self.archive_size
        if self.written > limits.ratio_after_bytes and ratio > limits.max_ratio:
            raise self._too_big(
                f"the sdist expands more than {limits.max_ratio:g} times its compressed size "
                "(a decompression bomb)"
            )

    def _too_big(self, message: str) -> ArchiveError:
        return ArchiveError(
            message,
            hint="if this sdist is genuinely that large, raise the extraction limits; "
            "otherwise it is a decompression bomb",
        )
