"""Builds small test wheels with `zipfile`, so that each comparison test is one or two lines.

Every aspect the comparison looks at can be set per wheel (one value) or per member (a mapping):
contents, timestamps, modes, compression, entry order, comments, extra fields. RECORD is written
to match the members unless a test asks for another one.
"""

from __future__ import annotations

import base64
import hashlib
import io
import stat
import struct
import warnings
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer as Buffer

DIST_INFO = "demo-1.0.dist-info"
RECORD = f"{DIST_INFO}/RECORD"
EPOCH = (2023, 12, 31, 6, 30, 30)

METADATA = b"""\
Metadata-Version: 2.1
Name: demo
Version: 1.0
Summary: A demonstration
Requires-Dist: requests>=2
Classifier: Programming Language :: Python :: 3

A long description.
"""
WHEEL = b"""\
Wheel-Version: 1.0
Generator: bdist_wheel (0.43.0)
Root-Is-Purelib: true
Tag: py3-none-any
"""
BASE: dict[str, bytes] = {
    "demo/__init__.py": b'"""Demo."""\n\nfrom demo.core import answer\n',
    "demo/core.py": b"def answer():\n    return 42\n",
    f"{DIST_INFO}/METADATA": METADATA,
    f"{DIST_INFO}/WHEEL": WHEEL,
}

T = TypeVar("T")
Timestamp = tuple[int, int, int, int, int, int]


def record_for(members: Mapping[str, bytes]) -> bytes:
    """A RECORD that tells the truth about ``members``."""
    rows = []
    for name, data in members.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        rows.append(f"{name},sha256={digest},{len(data)}\n")
    rows.append(f"{RECORD},,\n")
    return "".join(rows).encode()


def _pick(value: T | Mapping[str, T], name: str, default: T) -> T:
    if isinstance(value, Mapping):
        return value.get(name, default)
    return value


def make_wheel(
    path: Path,
    members: Mapping[str, bytes] | None = None,
    *,
    changes: Mapping[str, bytes | None] | None = None,
    record: bytes | bool = True,
    timestamp: Timestamp | Mapping[str, Timestamp] = EPOCH,
    mode: int | Mapping[str, int] = 0o644,
    compression: int | Mapping[str, int] = zipfile.ZIP_DEFLATED,
    order: Sequence[str] | None = None,
    comment: bytes = b"",
    entry_comment: bytes | Mapping[str, bytes] = b"",
    extra: bytes | Mapping[str, bytes] = b"",
    duplicates: Mapping[str, bytes] | None = None,
) -> Path:
    """Write a wheel at ``path`` and return it.

    ``members`` defaults to :data:`BASE`; ``changes`` edits it (``None`` removes a member).
    ``record``: True writes a truthful RECORD, False none, bytes that content. ``mode`` is the
    full st_mode when it has a file type, else permission bits of a regular file. ``duplicates``
    are written as second entries under names already present.
    """
    content = dict(BASE if members is None else members)
    for name, data in (changes or {}).items():
        if data is None:
            content.pop(name, None)
        else:
            content[name] = data
    if record is True:
        content[RECORD] = record_for({n: d for n, d in content.items() if n != RECORD})
    elif isinstance(record, bytes):
        content[RECORD] = record
    names = list(order) if order is not None else list(content)
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive, warnings.catch_warnings():
        # zipfile warns on a duplicate name; writing one is the point of some tests.
        warnings.simplefilter("ignore", UserWarning)
        archive.comment = comment
        written = [(n, content[n]) for n in names] + list((duplicates or {}).items())
        for name, data in written:
            info = zipfile.ZipInfo(name, _pick(timestamp, name, EPOCH))
            info.compress_type = _pick(compression, name, zipfile.ZIP_DEFLATED)
            bits = _pick(mode, name, 0o644)
            info.external_attr = (bits if stat.S_IFMT(bits) else stat.S_IFREG | bits) << 16
            info.create_system = 3
            info.comment = _pick(entry_comment, name, b"")
            info.extra = _pick(extra, name, b"")
            archive.writestr(info, data)
    return path


def unseekable_copy(source: Path, path: Path) -> Path:
    """``source`` rewritten as a streaming writer does it: data descriptors after each member."""

    class Stream(io.RawIOBase):
        def __init__(self, target: IO[bytes]) -> None:
            self._target = target

        def writable(self) -> bool:
            return True

        def write(self, data: Buffer) -> int:
            return self._target.write(data)

    with (
        zipfile.ZipFile(source) as old,
        path.open("wb") as target,
        zipfile.ZipFile(Stream(target), "w") as new,
    ):
        for info in old.infolist():
            new.writestr(info, old.read(info))
    return path


def point_entry_at(path: Path, member: str, other: str) -> None:
    """Make ``member``'s central directory record point at ``other``'s local header."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        target = archive.getinfo(other).header_offset
    at = data.index(b"PK\x01\x02")
    while True:
        name_length, extra_length, comment_length = struct.unpack_from("<HHH", data, at + 28)
        if data[at + 46 : at + 46 + name_length] == member.encode():
            struct.pack_into("<L", data, at + 42, target)
            break
        at += 46 + name_length + extra_length + comment_length
    path.write_bytes(bytes(data))


def symlink_mode(target_bits: int = 0o777) -> int:
    return stat.S_IFLNK | target_bits


def patch_local_name(path: Path, member: str, new_name: str) -> None:
    """Rewrite a member's name in its local header only (same length), as a hostile zip might."""
    assert len(new_name.encode()) == len(member.encode())
    with zipfile.ZipFile(path) as archive:
        offset = archive.getinfo(member).header_offset
    data = bytearray(path.read_bytes())
    name_length = struct.unpack_from("<H", data, offset + 26)[0]
    assert data[offset + 30 : offset + 30 + name_length] == member.encode()
    data[offset + 30 : offset + 30 + name_length] = new_name.encode()
    path.write_bytes(bytes(data))


def stream_member(path: Path, name: str, size: int) -> Path:
    """A wheel holding one member of ``size`` zero bytes, written a chunk at a time."""
    chunk = bytes(1024 * 1024)
    # Level 1: deflating hundreds of MiB at the default level costs seconds a test need not pay.
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive,
        archive.open(name, "w") as stream,
    ):
        for start in range(0, size, len(chunk)):
            stream.write(chunk[: size - start])
    return path


def with_comment(source: Path, path: Path, comment: bytes) -> Path:
    """A copy of ``source`` whose archive comment is ``comment`` (entries untouched)."""
    path.write_bytes(source.read_bytes())
    with zipfile.ZipFile(path, "a") as archive:
        archive.comment = comment
    return path
