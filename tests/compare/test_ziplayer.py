"""The zip layer: hostile and malformed archives, and findings about one wheel on its own."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from rebuild.compare import CompareLimits, compare_wheels
from rebuild.compare.ziplayer import WheelArchive, integrity_findings
from rebuild.errors import ArchiveError
from rebuild.models import Divergence, DivergenceKind, Side, Verdict

from .wheels import (
    RECORD,
    make_wheel,
    patch_local_name,
    point_entry_at,
    symlink_mode,
    unseekable_copy,
)

LIMITS = CompareLimits()


def findings(path: Path, limits: CompareLimits = LIMITS) -> list[Divergence]:
    with WheelArchive(path, limits) as archive:
        return integrity_findings(archive, Side.PUBLISHED, limits.max_name_length)


def test_a_clean_wheel_has_no_findings(tmp_path: Path) -> None:
    assert findings(make_wheel(tmp_path / "a.whl")) == []


def test_duplicate_names(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "a.whl", duplicates={"demo/core.py": b"evil = 1\n"})
    [dup] = findings(wheel)
    assert (dup.kind, dup.member, dup.side) == (
        DivergenceKind.DUPLICATE_NAME,
        "demo/core.py",
        Side.PUBLISHED,
    )
    assert dup.summary.startswith("2 entries have the name 'demo/core.py'")


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("../x.py", "'..' component"),
        ("demo/../../x.py", "'..' component"),
        ("/abs/x.py", "absolute path"),
        ("C:/x.py", "drive letter"),
        ("demo\\x.py", "backslash"),
        ("demo/x\x01.py", "NUL or control character"),
        ("d/" + "x" * 1100, "characters long"),
    ],
)
def test_unsafe_names(tmp_path: Path, name: str, reason: str) -> None:
    wheel = make_wheel(tmp_path / "a.whl", changes={name: b"x = 1\n"})
    unsafe = [f for f in findings(wheel) if f.kind is DivergenceKind.UNSAFE_NAME]
    assert [f.member for f in unsafe] == [name]
    assert reason in unsafe[0].summary


def test_nul_in_a_name(tmp_path: Path) -> None:
    # zipfile cuts names at NUL when writing, so the NUL is patched into the written bytes.
    wheel = make_wheel(tmp_path / "a.whl", changes={"demo/xZ.py": b"x = 1\n"})
    wheel.write_bytes(wheel.read_bytes().replace(b"demo/xZ.py", b"demo/x\x00.py"))
    unsafe = [f for f in findings(wheel) if f.kind is DivergenceKind.UNSAFE_NAME]
    assert [f.member for f in unsafe] == ["demo/x\x00.py"]


def test_symlink_entry(tmp_path: Path) -> None:
    wheel = make_wheel(
        tmp_path / "a.whl",
        changes={"demo/link": b"/etc/passwd"},
        mode={"demo/link": symlink_mode()},
    )
    [link] = [f for f in findings(wheel) if f.kind is DivergenceKind.SYMLINK]
    assert link.member == "demo/link"


def test_local_header_disagreeing_with_central_directory(tmp_path: Path) -> None:
    pub = make_wheel(tmp_path / "p.whl")
    patch_local_name(pub, "demo/core.py", "demo/evil.py")
    [mismatch] = findings(pub)
    assert mismatch.kind is DivergenceKind.HEADER_MISMATCH
    assert mismatch.member == "demo/core.py"
    assert "name" in mismatch.summary
    assert "local header 'demo/evil.py'" in mismatch.detail
    # The comparison goes on: the member's bytes are still read and match.
    result = compare_wheels(pub, make_wheel(tmp_path / "r.whl"))
    assert result.verdict is Verdict.DIVERGENT
    assert result.identical_members == 5
    assert [d.kind for d in result.unexplained] == [DivergenceKind.HEADER_MISMATCH]


def test_overlapping_entries(tmp_path: Path) -> None:
    same = {"demo/a.py": b"x = 1\n", "demo/b.py": b"x = 1\n"}
    wheel = make_wheel(tmp_path / "a.whl", same, record=False)
    point_entry_at(wheel, "demo/b.py", "demo/a.py")
    found = {(f.kind, f.summary.split(":")[0]) for f in findings(wheel)}
    assert (
        DivergenceKind.HEADER_MISMATCH,
        "demo/b.py starts inside the bytes of demo/a.py",
    ) in found
    assert (
        DivergenceKind.HEADER_MISMATCH,
        "the local header of demo/b.py disagrees with the central directory on name",
    ) in found
    # b.py's own local header and data are now listed by nothing.
    assert DivergenceKind.UNLISTED_DATA in {kind for kind, _ in found}


def test_zip64_and_data_descriptor_layouts_account_for_every_byte(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "a.whl", comment=b"a comment")
    streamed = unseekable_copy(wheel, tmp_path / "s.whl")
    zip64 = tmp_path / "z.whl"
    with zipfile.ZipFile(wheel) as source, zipfile.ZipFile(zip64, "w") as target:
        for info in source.infolist():
            data = source.read(info)  # before the writer rewrites the shared ZipInfo's offsets
            with target.open(info, "w", force_zip64=True) as stream:
                stream.write(data)
    for path in (wheel, streamed, zip64):
        assert findings(path) == [], path.name


def test_local_header_crc_mismatch(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "a.whl")
    with zipfile.ZipFile(wheel) as archive:
        offset = archive.getinfo("demo/core.py").header_offset
    data = bytearray(wheel.read_bytes())
    data[offset + 14] ^= 0xFF  # first byte of the local CRC-32
    wheel.write_bytes(bytes(data))
    [mismatch] = findings(wheel)
    assert mismatch.summary.endswith("on crc")


def test_not_a_zip(tmp_path: Path) -> None:
    path = tmp_path / "a.whl"
    path.write_bytes(b"<html>404 not found</html>")
    with pytest.raises(ArchiveError, match="not a readable zip") as caught:
        compare_wheels(path, path)
    assert caught.value.hint


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match="cannot be read"):
        compare_wheels(tmp_path / "nope.whl", tmp_path / "nope.whl")


def test_truncated_zip(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "a.whl")
    truncated = tmp_path / "t.whl"
    truncated.write_bytes(wheel.read_bytes()[: wheel.stat().st_size // 2])
    with pytest.raises(ArchiveError):
        compare_wheels(wheel, truncated)


def test_corrupt_member_data(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "a.whl", changes={"demo/big.py": b"x = 1\n" * 1000})
    with zipfile.ZipFile(wheel) as archive:
        info = archive.getinfo("demo/big.py")
    data = bytearray(wheel.read_bytes())
    start = info.header_offset + 30 + len(info.filename)
    data[start + 5 : start + 25] = bytes(20)
    wheel.write_bytes(bytes(data))
    with pytest.raises(ArchiveError, match=r"demo/big\.py"):
        compare_wheels(wheel, make_wheel(tmp_path / "r.whl"))


def test_bomb_by_declared_ratio(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "a.whl", changes={"demo/zeros.bin": bytes(2 * 1024 * 1024)})
    with pytest.raises(ArchiveError, match="zip bomb"):
        compare_wheels(wheel, wheel, limits=CompareLimits(max_member_ratio=100))


def test_bomb_by_declared_total(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "a.whl")
    with pytest.raises(ArchiveError, match="uncompressed"):
        compare_wheels(wheel, wheel, limits=CompareLimits(max_total_uncompressed=100))


def test_too_many_members(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "a.whl")
    with pytest.raises(ArchiveError, match="entries"):
        compare_wheels(wheel, wheel, limits=CompareLimits(max_members=3))


def test_local_header_size_mismatch(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "a.whl", compression=zipfile.ZIP_STORED)
    with zipfile.ZipFile(wheel) as archive:
        info = archive.getinfo(RECORD)
    data = bytearray(wheel.read_bytes())
    size_at = info.header_offset + 22  # the uncompressed size in the local header
    data[size_at : size_at + 4] = (info.file_size - 10).to_bytes(4, "little")
    wheel.write_bytes(bytes(data))
    [mismatch] = findings(wheel)
    assert mismatch.summary.endswith("on size")
    assert f"central directory {info.file_size}" in mismatch.detail
