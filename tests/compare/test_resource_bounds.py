"""Hostile wheels that cost time or memory: an overlapping-entry zip bomb, a 511 MiB shared object
in a small wheel, a shared object with two million symbols.

Each wheel is made here (raw bytes, no blobs). The comparison runs in a child interpreter that
reports its own wall time and peak resident size, so the bound is the comparison's and not the
suite's high-water mark; the timeout is the hard bound.
"""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

import pytest
from helpers_child import run_measured

from rebuild.compare.elf_read import MAX_SYMBOLS

from .wheels import BASE, make_wheel, point_entry_at

MiB = 1024 * 1024
_CHILD = """
from pathlib import Path
from rebuild.compare import compare_wheels
from rebuild.errors import RebuildError
start = time.monotonic()
try:
    result = compare_wheels(Path(sys.argv[1]), Path(sys.argv[2]))
    outcome = {"verdict": result.verdict.value,
               "summaries": [d.summary for d in result.divergences],
               "unexplained": [d.member for d in result.unexplained]}
except RebuildError as e:
    outcome = {"error": e.message, "code": e.exit_code}
outcome["seconds"] = time.monotonic() - start
outcome["rss"] = hwm()
print(json.dumps(outcome))
"""


def compare_in_child(pub: Path, reb: Path, timeout: float) -> dict[str, object]:
    result = run_measured(_CHILD, pub, reb, timeout=timeout)
    print(f"{pub.name}: {result['seconds']:.1f} s, peak RSS {int(result['rss']) // MiB} MiB")  # type: ignore[call-overload]
    return result


# --- the overlapping-entry zip bomb ------------------------------------------------------------


def overlap_bomb(path: Path, entries: int = 48) -> Path:
    """One deflated kernel of zeros (about 127 KB stored) and ``entries`` central directory
    records all pointing at its local header: each declares the kernel's full size."""
    kernel = "demo/k00.bin"
    names = [f"demo/k{i:02d}.bin" for i in range(entries)]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        with archive.open(kernel, "w") as stream:
            chunk = bytes(MiB)
            for _ in range(128):
                stream.write(chunk)
        for name in names[1:]:
            archive.writestr(name, b"")
    with zipfile.ZipFile(path) as archive:
        source = archive.getinfo(kernel)
    data = bytearray(path.read_bytes())
    at = data.index(b"PK\x01\x02")
    while at >= 0:
        name_length, extra_length, comment_length = struct.unpack_from("<HHH", data, at + 28)
        if data[at + 46 : at + 46 + name_length] != kernel.encode():
            struct.pack_into(
                "<LLL", data, at + 16, source.CRC, source.compress_size, source.file_size
            )
        at = data.find(b"PK\x01\x02", at + 46 + name_length + extra_length + comment_length)
    path.write_bytes(bytes(data))
    for name in names[1:]:
        point_entry_at(path, name, kernel)
    return path


def test_an_overlapping_entry_bomb_is_refused_before_decompressing(tmp_path: Path) -> None:
    bomb = overlap_bomb(tmp_path / "demo-1.0-py3-none-any.whl")
    assert bomb.stat().st_size < 200_000
    clean = make_wheel(tmp_path / "clean.whl")
    result = compare_in_child(bomb, clean, timeout=60)
    assert result.get("code") == 5, result
    assert "entries share compressed data" in str(result["error"])
    # Refused from what the central directory declares: no decompression, so no time.
    assert float(result["seconds"]) < 5  # type: ignore[arg-type]
    assert int(result["rss"]) < 200 * MiB  # type: ignore[call-overload]


# --- a 511 MiB shared object in a small wheel ----------------------------------------------------


def padded_shared_object(path: Path, size: int, tail: bytes) -> Path:
    """A wheel whose demo/_big.so is a valid ELF header then zeros, ``size`` bytes in all."""
    from hostile.elf import shared_object

    head = shared_object()
    chunk = bytes(MiB)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, body in BASE.items():
            archive.writestr(name, body)
        with archive.open("demo/_big.cpython-311-x86_64-linux-gnu.so", "w") as stream:
            stream.write(head)
            left = size - len(head) - len(tail)
            while left > 0:
                stream.write(chunk[: min(left, len(chunk))])
                left -= len(chunk)
            stream.write(tail)
    return path


def test_a_huge_shared_object_is_hashed_not_analysed_whole(tmp_path: Path) -> None:
    size = 511 * MiB
    pub = padded_shared_object(tmp_path / "p.whl", size, b"published")
    reb = padded_shared_object(tmp_path / "r.whl", size, b"rebuilt!!")
    assert pub.stat().st_size < 2 * MiB
    result = compare_in_child(pub, reb, timeout=300)
    assert result["verdict"] == "divergent", result
    summaries = " ".join(str(s) for s in result["summaries"])  # type: ignore[attr-defined]
    assert "over the 268,435,456-byte analysis limit" in summaries
    assert "demo/_big.cpython-311-x86_64-linux-gnu.so" in result["unexplained"]  # type: ignore[operator]
    assert int(result["rss"]) < 300 * MiB  # type: ignore[call-overload]


# --- two million symbols -------------------------------------------------------------------------


def many_symbols(count: int, odd: str) -> bytes:
    """An x86-64 ET_DYN object whose .symtab holds ``count`` global functions (f0000000…)."""
    header = struct.Struct("<16sHHIQQQIHHHHHH")
    section = struct.Struct("<IIQQQQIIQQ")
    symbol = struct.Struct("<IBBHQQ")
    code = b"\x31\xc0\xc3" * 8
    body = bytearray(64)
    text_at = len(body)
    body += code
    names = bytearray(b"\0")
    symbols = bytearray(symbol.pack(0, 0, 0, 0, 0, 0))
    for i in range(count):
        at = len(names)
        names += (odd if i == count - 1 else f"f{i:07d}").encode() + b"\0"
        symbols += symbol.pack(at, 0x12, 0, 1, text_at, 3)
    strtab_at = len(body)
    body += names
    body += b"\0" * (-len(body) % 8)
    symtab_at = len(body)
    body += symbols
    shnames = b"\0.text\0.symtab\0.strtab\0.shstrtab\0"
    shstrtab_at = len(body)
    body += shnames
    body += b"\0" * (-len(body) % 8)
    shoff = len(body)
    for fields in (
        (0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
        (shnames.index(b".text"), 1, 0x6, text_at, text_at, len(code), 0, 0, 16, 0),
        (shnames.index(b".symtab"), 2, 0, 0, symtab_at, len(symbols), 3, 1, 8, 24),
        (shnames.index(b".strtab"), 3, 0, 0, strtab_at, len(names), 0, 0, 1, 0),
        (shnames.index(b".shstrtab"), 3, 0, 0, shstrtab_at, len(shnames), 0, 0, 1, 0),
    ):
        body += section.pack(*fields)
    ident = b"\x7fELF\x02\x01\x01" + b"\0" * 9
    body[:64] = header.pack(ident, 3, 62, 1, 0, 0, shoff, 0, 64, 56, 0, 64, 5, 4)
    return bytes(body)


@pytest.mark.parametrize("count", [MAX_SYMBOLS + 1, 2_000_000])
def test_a_symbol_table_past_the_limit_is_refused_in_bounded_time(
    tmp_path: Path, count: int
) -> None:
    name = "demo/_sym.cpython-311-x86_64-linux-gnu.so"
    pub = make_wheel(tmp_path / "p.whl", {**BASE, name: many_symbols(count, "published_only")})
    reb = make_wheel(tmp_path / "r.whl", {**BASE, name: many_symbols(count, "rebuilt_only")})
    result = compare_in_child(pub, reb, timeout=120)
    assert result.get("verdict") == "divergent", result
    assert name in result["unexplained"]  # type: ignore[operator]


def _with_member(wheel: Path, name: str, data: bytes) -> Path:
    with zipfile.ZipFile(wheel, "a") as archive:
        archive.writestr(name, data)
    return wheel


def test_a_published_only_graft_does_not_read_every_object_whole(tmp_path: Path) -> None:
    # A library under demo.libs/ only published makes the comparison read what the wheel's
    # shared objects load (DT_NEEDED): a 500 MiB object must be read through a spool, not whole.
    from hostile.elf import shared_object

    size = 500 * MiB
    pub = padded_shared_object(tmp_path / "p.whl", size, b"same-tail")
    reb = padded_shared_object(tmp_path / "r.whl", size, b"same-tail")
    _with_member(pub, "demo.libs/libx-0123abcd.so.1", shared_object())
    result = compare_in_child(pub, reb, timeout=300)
    assert result["verdict"] == "divergent", result
    assert "demo.libs/libx-0123abcd.so.1" in result["unexplained"]  # type: ignore[operator]
    assert int(result["rss"]) < 200 * MiB  # type: ignore[call-overload]
