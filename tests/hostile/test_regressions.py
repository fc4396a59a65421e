"""Regression tests for what the hostile corpus and the property tests found, one per bug."""

from __future__ import annotations

import io
import struct
import tarfile
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import pytest
from compare.wheels import BASE, DIST_INFO, make_wheel

from rebuild.archive import MAX_DEPTH, extract_sdist
from rebuild.compare import compare_wheels
from rebuild.errors import ArchiveError
from rebuild.plan import read_evidence

from .corpus import SDIST_TOP, SO_NAME, WHEEL_NAME
from .elf import MUTATIONS, shared_object

MiB = 1024 * 1024


def test_a_zip_sdist_written_by_writestr_is_not_taken_for_a_device(tmp_path: Path) -> None:
    # zipfile.writestr(name, data) stores permission bits (0o600) with no file type: a
    # regular file, which extraction refused as "a device, fifo or other special file".
    archive = tmp_path / f"{SDIST_TOP}.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(f"{SDIST_TOP}/PKG-INFO", b"Name: demo\n")
        zf.writestr(f"{SDIST_TOP}/demo/__init__.py", b"ANSWER = 42\n")
    top = extract_sdist(archive, tmp_path / "dest")
    assert (top / "demo" / "__init__.py").read_bytes() == b"ANSWER = 42\n"


def test_a_very_deep_sdist_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    # A tree a few thousand levels deep made the clean-up's rmtree raise RecursionError, which
    # escaped extract_sdist and left the partial tree behind.
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo(SDIST_TOP + "/d" * 1500 + "/x")
        tar.addfile(info, io.BytesIO(b""))
    archive = tmp_path / f"{SDIST_TOP}.tar.gz"
    archive.write_bytes(buffer.getvalue())
    with pytest.raises(ArchiveError, match=f"limit {MAX_DEPTH}"):
        extract_sdist(archive, tmp_path / "dest")
    assert not (tmp_path / "dest").exists()


def test_an_sdist_at_the_depth_limit_is_extracted(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.addfile(tarfile.TarInfo(SDIST_TOP + "/d" * (MAX_DEPTH - 2) + "/x"), io.BytesIO(b""))
    archive = tmp_path / f"{SDIST_TOP}.tar.gz"
    archive.write_bytes(buffer.getvalue())
    assert extract_sdist(archive, tmp_path / "dest").name == SDIST_TOP


def test_a_zip_sdist_member_named_by_a_nul_is_not_a_crash(tmp_path: Path) -> None:
    # zipfile cuts a name at NUL; ZipInfo.is_dir() then indexed an empty name (IndexError).
    archive = tmp_path / f"{SDIST_TOP}.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(f"{SDIST_TOP}/PKG-INFO", b"Name: demo\n")
        zf.writestr("Xhidden", b"x")
    archive.write_bytes(archive.read_bytes().replace(b"Xhidden", b"\0hidden"))
    assert extract_sdist(archive, tmp_path / "dest").name == SDIST_TOP


def _corrupt_wheel_member(path: Path) -> Path:
    """``path`` with the WHEEL member's deflate stream damaged (sizes and CRC untouched)."""
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(f"{DIST_INFO}/WHEEL")
    raw = bytearray(path.read_bytes())
    start = info.header_offset + 30 + len(info.orig_filename)
    raw[start] = 0xFF  # an invalid deflate block type
    path.write_bytes(bytes(raw))
    return path


def test_plan_reads_a_corrupt_wheel_member_as_an_archive_error(tmp_path: Path) -> None:
    # Found by test_properties: zlib.error escaped read_evidence, so `check` crashed instead
    # of reporting a failed verdict.
    wheel = _corrupt_wheel_member(make_wheel(tmp_path / WHEEL_NAME))
    with pytest.raises(zlib.error), zipfile.ZipFile(wheel) as zf:
        zf.read(f"{DIST_INFO}/WHEEL")
    with pytest.raises(ArchiveError, match="cannot be read as a zip"):
        read_evidence(wheel)


def test_plan_reads_a_wheel_with_an_unknown_compression_method(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / WHEEL_NAME, compression=zipfile.ZIP_STORED)
    raw = bytearray(wheel.read_bytes())
    at = 0
    while (at := raw.find(b"PK\x01\x02", at)) >= 0:
        struct.pack_into("<H", raw, at + 10, 99)
        at += 4
    wheel.write_bytes(bytes(raw))
    with pytest.raises(ArchiveError, match="cannot be read as a zip"):
        read_evidence(wheel)


def test_plan_reads_a_wheel_with_a_member_named_by_a_nul(tmp_path: Path) -> None:
    # Found by test_properties: a central name starting with NUL is empty to zipfile, and
    # ZipInfo.is_dir() raised IndexError in read_evidence.
    wheel = make_wheel(tmp_path / WHEEL_NAME, {**BASE, "\0x.py": b"x"})
    evidence = read_evidence(wheel)
    assert evidence.generator == "bdist_wheel (0.43.0)"


def test_comparing_a_small_elf_member_reserves_no_large_buffer(tmp_path: Path) -> None:
    # read_capped read(limit + 1): BufferedReader reserves the whole 512 MiB ELF cap per side
    # up front, for a member of a few hundred bytes.
    published = make_wheel(tmp_path / "p" / WHEEL_NAME, {**BASE, SO_NAME: shared_object()})
    broken = MUTATIONS["section-absurd-size"](shared_object())
    rebuilt = make_wheel(tmp_path / "r" / WHEEL_NAME, {**BASE, SO_NAME: broken})
    tracemalloc.start()
    try:
        compare_wheels(published, rebuilt)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 32 * MiB, f"peak {peak / MiB:.0f} MiB"
