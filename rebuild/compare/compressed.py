"""Release steps after the build: data files published gzip-compressed, checked pair by pair.

botocore compresses its ``data/**/*.json`` after the build: its wheel holds ``X.json.gz`` where the
rebuild from the sdist holds ``X.json``, one member only in each wheel. A pair is matched here
only when the published ``.gz`` is one plain gzip member whose decompressed bytes are exactly the
rebuilt file's (its streamed sha256 and size, already computed), and whose wrapper carries no
bytes of its own beyond what a gzip writer must (no extra field, no comment, a stored name only
if it is the rebuilt file's, no data after the trailer). Decompression stops one byte past the
rebuilt file's size, so a ``.gz`` bomb costs no more than its counterpart.

Only ``.json`` files outside the dist-info and ``.data`` directories are paired (the class
seen), each installed with the executable bit of its counterpart. What an installer puts on disk
still differs: ``X.json.gz`` where the rebuild has ``X.json``. The rule that uses these pairs
says so in its reason; it holds because the bytes the release's code can read out of the file
are the rebuilt ones, and the release's code is compared member by member as everything else.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from rebuild.compare.installed import Trees
from rebuild.compare.members import CHUNK, HashedWheel
from rebuild.compare.ziplayer import Entry, installs_executable
from rebuild.errors import ArchiveError
from rebuild.models import Divergence, DivergenceKind, Side

SUFFIX = ".gz"
_DATA_SUFFIXES = (".json",)  # what is paired; widen only on a release that needs it
_FNAME = 0x08
_GZIP_HEADER = struct.Struct("<BBBBIBB")  # ID1 ID2 CM FLG MTIME XFL OS (RFC 1952)
_MAX_NAME = 1024  # a stored file name longer than this is refused
_LIB = "site-packages"  # where installed.py puts purelib and platlib files


@dataclass(frozen=True)
class GzipPair:
    """A published member that decompresses to a rebuilt member at the same place."""

    published: str  # "pkg/data/x.json.gz"
    rebuilt: str  # "pkg/data/x.json"


@dataclass(frozen=True)
class CompressedCheck:
    """The pairs that hold, and why each candidate that failed did not (by published member)."""

    pairs: frozenset[GzipPair]
    refused: Mapping[str, str]


class _Refused(Exception):
    """This candidate pair does not hold; the message says why, for the reviewer."""


def _candidate(name: str) -> bool:
    top = name.partition("/")[0]
    return (
        name.endswith(SUFFIX)
        and name[: -len(SUFFIX)].endswith(_DATA_SUFFIXES)
        and not top.endswith((".dist-info", ".data"))
    )


class _Reader:
    """The published member as a stream of bytes, read a chunk at a time."""

    def __init__(self, stream: Iterable[bytes]) -> None:
        self._chunks = iter(stream)
        self.pending = b""

    def take(self, count: int) -> bytes:
        while len(self.pending) < count:
            chunk = next(self._chunks, b"")
            if not chunk:
                raise _Refused("the gzip header is truncated")
            self.pending += chunk
        taken, self.pending = self.pending[:count], self.pending[count:]
        return taken

    def name(self) -> bytes:
        while b"\x00" not in self.pending[: _MAX_NAME + 1]:
            if len(self.pending) > _MAX_NAME:
                raise _Refused(f"the gzip header's file name is over {_MAX_NAME} bytes")
            chunk = next(self._chunks, b"")
            if not chunk:
                raise _Refused("the gzip header is truncated")
            self.pending += chunk
        name, _, self.pending = self.pending.partition(b"\x00")
        return name

    def rest(self) -> Iterable[bytes]:
        if self.pending:
            yield self.pending
        yield from self._chunks


def _check_header(reader: _Reader, counterpart: str) -> None:
    magic1, magic2, method, flags, _mtime, _xfl, _os = _GZIP_HEADER.unpack(
        reader.take(_GZIP_HEADER.size)
    )
    if (magic1, magic2, method) != (0x1F, 0x8B, 8):
        raise _Refused("not a gzip file with deflate")
    # FTEXT, FHCRC, FEXTRA, FCOMMENT and reserved bits would add bytes (or meaning) that
    # decompression never shows: refused, the stored name alone is what gzip writers add.
    if flags & ~_FNAME:
        raise _Refused(f"gzip header flags 0x{flags:02x}: only a stored file name is accepted")
    if flags & _FNAME:
        stored = reader.name()
        expected = counterpart.rpartition("/")[2]
        if stored != expected.encode("latin-1", "replace"):
            raise _Refused(f"the gzip header stores the name {stored[:80]!r}, not {expected!r}")


def _inflate(stream: Iterable[bytes], counterpart: str, limit: int) -> tuple[bytes, int]:
    """sha256 and size of the one gzip member in ``stream``, inflating at most ``limit + 1``
    bytes; raises _Refused for anything but one plain member with nothing after it."""
    reader = _Reader(stream)
    _check_header(reader, counterpart)
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    sha = hashlib.sha256()
    crc = size = 0
    tail = b""
    for chunk in reader.rest():
        if inflater.eof:
            tail += chunk
        else:
            data = chunk
            while data and not inflater.eof:
                # max_length bounds what one call may produce: never past limit + 1 in all.
                out = inflater.decompress(data, limit + 1 - size)
                size += len(out)
                sha.update(out)
                crc = zlib.crc32(out, crc)
                if size > limit:
                    raise _Refused(f"decompresses to over {limit:,} bytes, the rebuilt size")
                data = inflater.unconsumed_tail
            tail += inflater.unused_data if inflater.eof else b""
        if len(tail) > 8:
            raise _Refused("data after the gzip member's trailer (another member or padding)")
    if not inflater.eof:
        raise _Refused("the deflate stream is truncated")
    if len(tail) != 8:
        raise _Refused("the gzip trailer is truncated")
    stored_crc, stored_size = struct.unpack("<II", tail)
    if stored_crc != crc or stored_size != size & 0xFFFFFFFF:
        raise _Refused("the gzip trailer's CRC or size is not the decompressed data's")
    return sha.digest(), size


def _only(wheel: HashedWheel, name: str) -> Entry | None:
    found = [e for e in wheel.archive.entries if e.name == name]
    return found[0] if len(found) == 1 else None


def _installs_at(trees: Trees, name: str) -> tuple[bool, ...] | None:
    """The executable bit of ``name`` in each setup, when every setup installs that entry, and
    only it, at ``site-packages/<name>``; None otherwise."""
    bits = []
    for tree in trees.values():
        placed = tree.files.get(f"{_LIB}/{name}")
        if tree.refused is not None or placed is None or placed.written != (name,):
            return None
        bits.append(placed.executable)
    return tuple(bits)


def _check(
    pub: HashedWheel, reb: HashedWheel, name: str, counterpart: str, trees: tuple[Trees, Trees]
) -> None:
    published, rebuilt = _only(pub, name), _only(reb, counterpart)
    if published is None or rebuilt is None:
        raise _Refused("the name is not one entry on each side")
    if installs_executable(published.mode) != installs_executable(rebuilt.mode):
        raise _Refused("installed with another executable bit than the rebuilt file")
    # What pip and installer write on each CPython: each file at its stored name, the same bit.
    pub_trees, reb_trees = trees
    at = _installs_at(pub_trees, name), _installs_at(reb_trees, counterpart)
    if at[0] is None or at[1] is None or at[0] != at[1]:
        raise _Refused("not installed at its stored name, as the rebuilt file is, by every setup")
    want = reb.digests[rebuilt.key]
    try:
        with pub.archive.open_member(published) as stream:
            chunks = iter(lambda: stream.read(CHUNK), b"")
            sha256, size = _inflate(chunks, counterpart, want.size)
    except (zlib.error, ArchiveError) as e:
        raise _Refused(f"does not decompress: {str(e)[:200]}") from e
    if (sha256, size) != (want.sha256, want.size):
        raise _Refused(f"decompresses to other bytes than {counterpart} ({size:,} bytes)")


def check_compressed(
    pub: HashedWheel,
    reb: HashedWheel,
    divergences: Iterable[Divergence],
    trees: tuple[Trees, Trees],
) -> CompressedCheck:
    """Each published ``X.json.gz`` only in the published wheel whose ``X.json`` is only in the
    rebuilt one, checked: the pairs that hold and why the others do not. ``trees``: both
    wheels' installed trees (installed.installed_trees)."""
    divergences = list(divergences)
    only_pub = {
        d.member
        for d in divergences
        if d.kind is DivergenceKind.ONLY_PUBLISHED and d.side is Side.PUBLISHED and d.member
    }
    only_reb = {
        d.member
        for d in divergences
        if d.kind is DivergenceKind.ONLY_REBUILT and d.side is Side.REBUILT and d.member
    }
    pairs: set[GzipPair] = set()
    refused: dict[str, str] = {}
    for name in sorted(only_pub):
        counterpart = name[: -len(SUFFIX)]
        if not _candidate(name) or counterpart not in only_reb:
            continue
        try:
            _check(pub, reb, name, counterpart, trees)
        except _Refused as e:
            refused[name] = f"not the gzip of the rebuilt {counterpart}: {e}"
            continue
        pairs.add(GzipPair(name, counterpart))
    return CompressedCheck(frozenset(pairs), refused)


__all__ = ["SUFFIX", "CompressedCheck", "GzipPair", "check_compressed"]
