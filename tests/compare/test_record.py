"""RECORD: parsing, and each wheel's RECORD checked against its own members."""

from __future__ import annotations

import hashlib
from pathlib import Path

from rebuild.compare import compare_wheels
from rebuild.compare.record import (
    MemberFacts,
    check_record,
    find_record,
    parse_record,
    record_hash,
)
from rebuild.models import DivergenceKind, Layer, Side, Verdict

from .wheels import BASE, RECORD, make_wheel, record_for


def facts(members: dict[str, bytes]) -> list[MemberFacts]:
    return [MemberFacts(n, hashlib.sha256(d).digest(), len(d)) for n, d in members.items()]


def test_record_hash_is_urlsafe_base64_without_padding() -> None:
    assert record_hash(hashlib.sha256(b"").digest()) == (
        "sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"
    )


def test_a_truthful_record_has_no_findings() -> None:
    members = {**BASE, RECORD: b""}
    parsed = parse_record(record_for(BASE), max_rows=100)
    assert parsed.problems == ()
    assert check_record(RECORD, parsed, facts(members), Side.PUBLISHED) == []


def test_every_kind_of_lie() -> None:
    record = (
        b"demo/__init__.py,sha256=AAAA,44\n"  # wrong hash
        b"demo/core.py,,28\n"  # no hash
        b"demo/gone.py,sha256=AAAA,1\n"  # not in the wheel
        b"demo/__init__.py,sha256=AAAA,44\n"  # listed twice
        b"demo-1.0.dist-info/METADATA,md5=AAAA,1\n"  # another algorithm; and wrong size
        b"too,many,fields,here\n"
        b"demo-1.0.dist-info/RECORD,,\n"
    )
    parsed = parse_record(record, max_rows=100)
    summaries = [
        f.summary
        for f in check_record(RECORD, parsed, facts({**BASE, RECORD: b""}), Side.PUBLISHED)
    ]
    assert summaries == [
        "RECORD line 6 has 4 fields, not 3: 'too,many,fields,here'",
        "RECORD gives demo/__init__.py a hash its content does not have",
        "RECORD gives demo/__init__.py a size of 44; it has 42 bytes",
        "RECORD lists demo/core.py without a hash",
        "RECORD lists demo/gone.py, which is not in the wheel",
        "RECORD lists demo/__init__.py more than once",
        "RECORD hashes demo-1.0.dist-info/METADATA with md5; only sha256 is checked",
        "RECORD gives demo-1.0.dist-info/METADATA a size of 1; it has 167 bytes",
        "demo-1.0.dist-info/WHEEL is in the wheel but not in RECORD",
    ]


def test_malformed_record_is_a_finding_not_a_crash() -> None:
    parsed = parse_record(b'a.py,"sha256=x\x00,1\n\xff\xfe', max_rows=100)
    assert parsed.problems
    assert all("RECORD" in p for p in parsed.problems)


def test_row_cap() -> None:
    parsed = parse_record(b"a,,\n" * 10, max_rows=3)
    assert len(parsed.rows) == 3
    assert "more than 3 rows" in parsed.problems[0]


def test_find_record_prefers_the_wheels_own_dist_info() -> None:
    names = ["a-1.dist-info/RECORD", "demo-1.0.dist-info/RECORD"]
    chosen, problems = find_record(names, "demo-1.0-py3-none-any.whl")
    assert chosen == "demo-1.0.dist-info/RECORD"
    assert problems == [
        "the wheel has 2 RECORD files: a-1.dist-info/RECORD, demo-1.0.dist-info/RECORD"
    ]


def test_published_record_that_lies_is_a_published_finding(tmp_path: Path) -> None:
    # The published wheel ships a core.py its RECORD does not vouch for.
    lying = record_for(BASE)
    pub = make_wheel(tmp_path / "p.whl", changes={"demo/core.py": b"evil = 1\n"}, record=lying)
    reb = make_wheel(tmp_path / "r.whl")
    result = compare_wheels(pub, reb)
    assert result.verdict is Verdict.DIVERGENT
    lies = [d for d in result.divergences if d.kind is DivergenceKind.RECORD_MISMATCH]
    assert {(d.side, d.member) for d in lies} == {(Side.PUBLISHED, "demo/core.py")}
    assert all(d.layer is Layer.INTEGRITY and not d.explained for d in lies)
    # The member itself differs too, and carries the content divergence.
    assert any(
        d.kind is DivergenceKind.CONTENT and d.member == "demo/core.py" for d in result.divergences
    )


def test_missing_record(tmp_path: Path) -> None:
    result = compare_wheels(
        make_wheel(tmp_path / "p.whl", record=False), make_wheel(tmp_path / "r.whl")
    )
    assert result.verdict is Verdict.DIVERGENT
    [missing] = [d for d in result.divergences if d.kind is DivergenceKind.RECORD_MISMATCH]
    assert (missing.side, missing.summary) == (
        Side.PUBLISHED,
        "the wheel has no *.dist-info/RECORD",
    )
