"""Tests of sdist extraction: normal sdists come out whole, hostile ones write nothing outside."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import stat
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from rebuild.archive import ExtractLimits, extract_sdist
from rebuild.errors import ArchiveError

MiB = 1024 * 1024
ESCAPED = Path("/tmp/rebuild-test-escaped.txt")


@dataclass(frozen=True)
class M:
    """One member to put in a test archive."""

    name: str
    data: bytes = b""
    kind: str = "file"  # file, dir, symlink, hardlink, chr, fifo
    link: str = ""
    mode: int = 0o644


COMPRESS: dict[str, Callable[[bytes], bytes]] = {
    "gz": gzip.compress,
    "bz2": bz2.compress,
    "xz": lzma.compress,
}


def make_tar(path: Path, members: list[M], compression: str = "gz") -> Path:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tf:
        for m in members:
            info = tarfile.TarInfo(m.name)
            info.mode = m.mode
            info.mtime = 1_700_000_000
            info.type = {
                "file": tarfile.REGTYPE,
                "dir": tarfile.DIRTYPE,
                "symlink": tarfile.SYMTYPE,
                "hardlink": tarfile.LNKTYPE,
                "chr": tarfile.CHRTYPE,
                "fifo": tarfile.FIFOTYPE,
            }[m.kind]
            info.linkname = m.link
            info.size = len(m.data) if m.kind == "file" else 0
            tf.addfile(info, io.BytesIO(m.data) if m.kind == "file" else None)
    path.write_bytes(COMPRESS[compression](buffer.getvalue()))
    return path


def make_zip(path: Path, members: list[M]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for m in members:
            info = zipfile.ZipInfo(m.name, date_time=(2023, 11, 14, 22, 13, 20))
            info.create_system = 3
            info.compress_type = zipfile.ZIP_DEFLATED
            type_bits = {"file": stat.S_IFREG, "dir": stat.S_IFDIR, "symlink": stat.S_IFLNK}
            type_bits["fifo"] = stat.S_IFIFO
            info.external_attr = (type_bits[m.kind] | m.mode) << 16
            zf.writestr(info, m.link.encode() if m.kind == "symlink" else m.data)
    return path


NORMAL = [
    M("pkg-1.0", kind="dir", mode=0o755),
    M("pkg-1.0/PKG-INFO", b"Metadata-Version: 2.1\nName: pkg\nVersion: 1.0\n"),
    M("pkg-1.0/setup.py", b"from setuptools import setup\nsetup()\n"),
    M("pkg-1.0/pkg/__init__.py", b"VERSION = '1.0'\n"),  # parent dir not listed
    M("pkg-1.0/bin/tool", b"#!/bin/sh\necho hi\n", mode=0o775),
    M("pkg-1.0/LICENSE", b"MIT\n"),
    M("pkg-1.0/docs/LICENSE.txt", kind="symlink", link="../LICENSE"),
    M("pkg-1.0/COPYING", kind="hardlink", link="pkg-1.0/LICENSE"),
]


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """(where the test puts archives, dest), with nothing else under tmp_path allowed to change.

    dest sits a few levels down so that an escape by ``..`` lands somewhere the check sees.
    """
    archives = tmp_path / "archives"
    archives.mkdir()
    dest = tmp_path / "a" / "b" / "dest"
    dest.parent.mkdir(parents=True)
    for where in (tmp_path, tmp_path / "a", dest.parent):
        (where / "outside.txt").write_text("untouched")
    before = snapshot(tmp_path, exclude=(archives, dest))
    yield archives, dest
    assert snapshot(tmp_path, exclude=(archives, dest)) == before
    assert not ESCAPED.exists()


def snapshot(root: Path, *, exclude: tuple[Path, ...]) -> dict[str, bytes | str]:
    """Every path under ``root`` outside ``exclude``, with file contents and link targets."""
    state: dict[str, bytes | str] = {}
    for path in sorted(root.rglob("*")):
        if any(path == e or e in path.parents for e in exclude):
            continue
        key = str(path.relative_to(root))
        if path.is_symlink():
            state[key] = "-> " + str(path.readlink())
        elif path.is_file():
            state[key] = path.read_bytes()
        else:
            state[key] = "dir"
    return state


def check_normal_tree(top: Path) -> None:
    assert top.name == "pkg-1.0"
    assert (top / "setup.py").read_bytes() == b"from setuptools import setup\nsetup()\n"
    assert (top / "pkg" / "__init__.py").read_text() == "VERSION = '1.0'\n"
    assert stat.S_IMODE((top / "bin" / "tool").stat().st_mode) == 0o755
    assert stat.S_IMODE((top / "setup.py").stat().st_mode) == 0o644
    assert (top / "docs" / "LICENSE.txt").is_symlink()
    assert (top / "docs" / "LICENSE.txt").read_text() == "MIT\n"


@pytest.mark.parametrize("compression", ["gz", "bz2", "xz"])
def test_normal_tar_sdist(sandbox: tuple[Path, Path], compression: str) -> None:
    work, dest = sandbox
    archive = make_tar(work / f"pkg-1.0.tar.{compression}", NORMAL, compression)
    top = extract_sdist(archive, dest)
    check_normal_tree(top)
    copy = top / "COPYING"
    assert copy.read_text() == "MIT\n" and not copy.is_symlink()
    assert (top / "setup.py").stat().st_mtime == 1_700_000_000


def test_normal_zip_sdist(sandbox: tuple[Path, Path]) -> None:
    work, dest = sandbox
    members = [m for m in NORMAL if m.kind != "hardlink"]
    members[0] = M("pkg-1.0/", kind="dir", mode=0o755)
    top = extract_sdist(make_zip(work / "pkg-1.0.zip", members), dest)
    check_normal_tree(top)


def test_existing_empty_dest(sandbox: tuple[Path, Path]) -> None:
    work, dest = sandbox
    dest.mkdir()
    assert extract_sdist(make_tar(work / "a.tar.gz", NORMAL), dest) == dest / "pkg-1.0"


def test_dest_must_be_empty(sandbox: tuple[Path, Path]) -> None:
    work, dest = sandbox
    dest.mkdir()
    (dest / "old").write_text("x")
    with pytest.raises(ArchiveError, match="not empty"):
        extract_sdist(make_tar(work / "a.tar.gz", NORMAL), dest)
    assert (dest / "old").read_text() == "x"


def test_more_than_one_top_directory(sandbox: tuple[Path, Path]) -> None:
    work, dest = sandbox
    archive = make_tar(work / "a.tar.gz", [M("a/x", b"1"), M("b/y", b"2")])
    with pytest.raises(ArchiveError, match="one top-level directory"):
        extract_sdist(archive, dest)
    assert not dest.exists()


HOSTILE: dict[str, list[M]] = {
    "dotdot": [M("pkg-1.0/../../escaped.txt", b"x")],
    "absolute": [M(str(ESCAPED), b"x")],
    "symlink out": [M("pkg-1.0/link", kind="symlink", link="../../outside.txt")],
    "absolute symlink": [M("pkg-1.0/link", kind="symlink", link="/etc/passwd")],
    "write through symlink": [
        M("pkg-1.0/inner", kind="dir"),
        M("pkg-1.0/sub", kind="symlink", link="inner"),
        M("pkg-1.0/sub/file", b"x"),
    ],
    "symlink chain": [
        M("pkg-1.0/s", kind="symlink", link="."),
        M("pkg-1.0/s/s/s/link", kind="symlink", link="../../../.."),
    ],
    "later link redirects earlier one": [
        M("pkg-1.0/a/b", kind="dir"),
        M("pkg-1.0/a/b/up", kind="symlink", link="p/../../../.."),
        M("pkg-1.0/a/b/p", kind="symlink", link="."),
    ],
    "hardlink out": [M("pkg-1.0/hard", kind="hardlink", link="../outside.txt")],
    "hardlink absolute": [M("pkg-1.0/hard", kind="hardlink", link="/etc/passwd")],
    "hardlink to nothing": [M("pkg-1.0/hard", kind="hardlink", link="pkg-1.0/missing")],
    "device": [M("pkg-1.0/dev", kind="chr")],
    "fifo": [M("pkg-1.0/fifo", kind="fifo")],
    "file then dir": [M("pkg-1.0/x", b"1"), M("pkg-1.0/x/y", b"2")],
    "backslash": [M("pkg-1.0\\..\\..\\escaped.txt", b"x")],
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_tar(sandbox: tuple[Path, Path], case: str) -> None:
    work, dest = sandbox
    archive = make_tar(work / "evil.tar.gz", [M("pkg-1.0", kind="dir"), *HOSTILE[case]])
    with pytest.raises(ArchiveError) as caught:
        extract_sdist(archive, dest)
    assert caught.value.hint
    assert not dest.exists()  # the partial tree is removed


ZIP_HOSTILE = {
    k: v
    for k, v in HOSTILE.items()
    if not any(m.kind in ("hardlink", "chr") for m in v) and k != "absolute"
}
ZIP_HOSTILE["absolute"] = [M(str(ESCAPED), b"x")]


@pytest.mark.parametrize("case", sorted(ZIP_HOSTILE))
def test_hostile_zip(sandbox: tuple[Path, Path], case: str) -> None:
    work, dest = sandbox
    archive = make_zip(work / "evil.zip", [M("pkg-1.0/", kind="dir"), *ZIP_HOSTILE[case]])
    with pytest.raises(ArchiveError):
        extract_sdist(archive, dest)
    assert not dest.exists()


def test_encrypted_zip_member(sandbox: tuple[Path, Path]) -> None:
    work, dest = sandbox
    archive = make_zip(work / "a.zip", [M("pkg-1.0/a", b"secret")])
    data = bytearray(archive.read_bytes())
    # Set the "encrypted" flag in the local header and the central directory.
    data[6] |= 1
    central = data.rfind(b"PK\x01\x02")
    data[central + 8] |= 1
    archive.write_bytes(bytes(data))
    with pytest.raises(ArchiveError, match="encrypted"):
        extract_sdist(archive, dest)


def test_zip_bomb_by_ratio(sandbox: tuple[Path, Path]) -> None:
    work, dest = sandbox
    archive = make_zip(work / "bomb.zip", [M("pkg-1.0/zeros", bytes(20 * MiB))])
    with pytest.raises(ArchiveError, match="decompression bomb"):
        extract_sdist(archive, dest)
    assert not dest.exists()


def test_tar_bomb_by_ratio(sandbox: tuple[Path, Path]) -> None:
    work, dest = sandbox
    archive = make_tar(work / "bomb.tar.gz", [M("pkg-1.0/zeros", bytes(20 * MiB))])
    with pytest.raises(ArchiveError, match="decompression bomb"):
        extract_sdist(archive, dest)


def test_member_size_limit(sandbox: tuple[Path, Path]) -> None:
    work, dest = sandbox
    archive = make_tar(work / "big.tar.gz", [M("pkg-1.0/big", bytes(2 * MiB))])
    with pytest.raises(ArchiveError, match="declares"):
        extract_sdist(archive, dest, ExtractLimits(max_member_bytes=MiB))


def test_total_size_limit(sandbox: tuple[Path, Path]) -> None:
    work, dest = sandbox
    members = [M(f"pkg-1.0/f{i}", bytes(300 * 1024)) for i in range(5)]
    archive = make_tar(work / "many.tar.gz", members)
    with pytest.raises(ArchiveError, match="size limit"):
        extract_sdist(archive, dest, ExtractLimits(max_total_bytes=MiB))


def test_hardlinks_count_towards_the_total(sandbox: tuple[Path, Path]) -> None:
    work, dest = sandbox
    members = [M("pkg-1.0/big", bytes(600 * 1024))]
    members += [M(f"pkg-1.0/l{i}", kind="hardlink", link="pkg-1.0/big") for i in range(3)]
    archive = make_tar(work / "links.tar.gz", members)
    with pytest.raises(ArchiveError, match="size limit"):
        extract_sdist(archive, dest, ExtractLimits(max_total_bytes=2 * MiB))


def test_member_count_limit(sandbox: tuple[Path, Path]) -> None:
    work, dest = sandbox
    archive = make_tar(work / "n.tar.gz", [M(f"pkg-1.0/f{i}", b"x") for i in range(20)])
    with pytest.raises(ArchiveError, match="more than 10 members"):
        extract_sdist(archive, dest, ExtractLimits(max_members=10))


def test_written_bytes_are_counted_not_declared(sandbox: tuple[Path, Path]) -> None:
    work, dest = sandbox
    archive = make_zip(work / "liar.zip", [M("pkg-1.0/a", bytes(3 * MiB))])
    data = bytearray(archive.read_bytes())
    # Make the central directory claim the member is tiny; its real bytes are still 3 MiB.
    central = data.rfind(b"PK\x01\x02")
    data[central + 24 : central + 28] = (10).to_bytes(4, "little")
    archive.write_bytes(bytes(data))
    with pytest.raises(ArchiveError):
        extract_sdist(archive, dest, ExtractLimits(max_member_bytes=MiB))
    assert not dest.exists()


@pytest.mark.parametrize("damage", ["garbage", "empty", "truncated", "flipped"])
def test_corrupt_archives(sandbox: tuple[Path, Path], damage: str) -> None:
    work, dest = sandbox
    archive = make_tar(
        work / "pkg-1.0.tar.gz", [*NORMAL, M("pkg-1.0/data", bytes(range(256)) * 400)]
    )
    data = archive.read_bytes()
    damaged = {
        "garbage": b"this is not an archive at all" * 10,
        "empty": b"",
        "truncated": data[: len(data) // 2],
        "flipped": data[:100] + bytes(b ^ 0xFF for b in data[100:200]) + data[200:],
    }[damage]
    archive.write_bytes(damaged)
    with pytest.raises(ArchiveError):
        extract_sdist(archive, dest)
    assert not dest.exists()


def test_corrupt_zip(sandbox: tuple[Path, Path]) -> None:
    work, dest = sandbox
    archive = make_zip(work / "pkg-1.0.zip", [M("pkg-1.0/data", bytes(range(256)) * 400)])
    data = bytearray(archive.read_bytes())
    data[60:80] = bytes(20)  # inside the compressed data: the CRC check fails
    archive.write_bytes(bytes(data))
    with pytest.raises(ArchiveError, match="corrupt"):
        extract_sdist(archive, dest)


def test_missing_archive(sandbox: tuple[Path, Path]) -> None:
    work, dest = sandbox
    with pytest.raises(ArchiveError, match="cannot extract"):
        extract_sdist(work / "nope.tar.gz", dest)
    assert not dest.exists()
