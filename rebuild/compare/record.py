"""A wheel's RECORD: parsing it, and checking it against the members the wheel really holds.

Installers trust RECORD to say what a wheel installs and with which hashes; a RECORD that lists a
file the wheel does not hold, misses one it does, or gives a wrong hash or size is a finding a
reviewer must see, whatever the other wheel looks like. The check uses the member hashes the
comparison already computed: no member is read twice.
"""

from __future__ import annotations

import base64
import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rebuild.models import Divergence, DivergenceKind, Side

# Signatures of RECORD, which RECORD cannot list with a hash of itself.
UNHASHED = ("RECORD", "RECORD.jws", "RECORD.p7s")
_RECORD_PATH = re.compile(r"^(?P<dir>[^/]+\.dist-info)/RECORD$")
_HASH = re.compile(r"^(?P<algorithm>[A-Za-z0-9_-]+)=(?P<digest>[A-Za-z0-9_=-]*)$")


@dataclass(frozen=True)
class RecordRow:
    path: str
    hash: str
    size: str
    line: int


@dataclass(frozen=True)
class ParsedRecord:
    rows: tuple[RecordRow, ...]
    problems: tuple[str, ...]  # malformed lines, undecodable text, too many rows


@dataclass(frozen=True)
class MemberFacts:
    """What the comparison learnt of one member: enough to check its RECORD row."""

    name: str
    sha256: bytes
    size: int


def record_hash(sha256: bytes) -> str:
    """A digest as RECORD writes it: ``sha256=`` + urlsafe base64 without padding."""
    return "sha256=" + base64.urlsafe_b64encode(sha256).rstrip(b"=").decode("ascii")


def find_record(names: Iterable[str], wheel_filename: str) -> tuple[str | None, list[str]]:
    """The RECORD to check, and problems (none, or several dist-info directories)."""
    found = sorted({n for n in names if _RECORD_PATH.match(n)})
    if not found:
        return None, ["the wheel has no *.dist-info/RECORD"]
    if len(found) == 1:
        return found[0], []
    # The dist-info directory is named after the project and version the filename carries.
    stem = "-".join(wheel_filename.split("-")[:2]).lower()
    chosen = next((n for n in found if n.lower().startswith(stem + ".dist-info/")), found[0])
    return chosen, [f"the wheel has {len(found)} RECORD files: {', '.join(found)}"]


def parse_record(data: bytes, *, max_rows: int) -> ParsedRecord:
    """Parse RECORD as CSV; malformed input becomes problems, never an exception."""
    problems: list[str] = []
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        problems.append(f"RECORD is not valid UTF-8 (byte {e.start})")
        text = data.decode("utf-8", errors="replace")
    rows: list[RecordRow] = []
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        for fields in reader:
            if not fields:
                continue
            if len(rows) >= max_rows:
                problems.append(f"RECORD has more than {max_rows:,} rows; the rest is not read")
                break
            if len(fields) != 3:
                problems.append(
                    f"RECORD line {reader.line_num} has {len(fields)} fields, not 3: "
                    f"{','.join(fields)[:200]!r}"
                )
                continue
            rows.append(RecordRow(fields[0], fields[1], fields[2], reader.line_num))
    except csv.Error as e:
        problems.append(f"RECORD is malformed at line {reader.line_num}: {e}")
    return ParsedRecord(tuple(rows), tuple(problems))


def _finding(summary: str, side: Side, member: str | None = None, detail: str = "") -> Divergence:
    return Divergence(
        kind=DivergenceKind.RECORD_MISMATCH,
        summary=summary,
        member=member,
        side=side,
        detail=detail,
    )


def _check_row(row: RecordRow, member: MemberFacts, side: Side) -> list[Divergence]:
    findings: list[Divergence] = []
    actual = record_hash(member.sha256)
    match = _HASH.match(row.hash)
    if not row.hash:
        findings.append(_finding(f"RECORD lists {row.path} without a hash", side, row.path))
    elif match is None:
        findings.append(_finding(f"RECORD has a malformed hash for {row.path}", side, row.path))
    elif match["algorithm"] != "sha256":
        findings.append(
            _finding(
                f"RECORD hashes {row.path} with {match['algorithm']}; only sha256 is checked",
                side,
                row.path,
            )
        )
    elif row.hash == "sha256=" + member.sha256.hex():
        # Reported once for the whole RECORD by check_record: the hash is right, its form not.
        pass
    elif row.hash != actual:
        findings.append(
            _finding(
                f"RECORD gives {row.path} a hash its content does not have",
                side,
                row.path,
                detail=f"RECORD: {row.hash}\nmember: {actual}",
            )
        )
    if not row.size:
        findings.append(_finding(f"RECORD lists {row.path} without a size", side, row.path))
    elif row.size != str(member.size):
        findings.append(
            _finding(
                f"RECORD gives {row.path} a size of {row.size}; it has {member.size:,} bytes",
                side,
                row.path,
            )
        )
    return findings


def check_record(
    record_name: str,
    parsed: ParsedRecord,
    members: Sequence[MemberFacts],
    side: Side,
) -> list[Divergence]:
    """Findings where RECORD and the wheel's members disagree, in RECORD's order."""
    findings = [_finding(problem, side, record_name) for problem in parsed.problems]
    dist_info = record_name.rsplit("/", 1)[0]
    unhashed = {f"{dist_info}/{name}" for name in UNHASHED}
    by_name: dict[str, list[MemberFacts]] = {}
    for member in members:
        by_name.setdefault(member.name, []).append(member)
    listed: set[str] = set()
    hex_rows: list[str] = []
    for row in parsed.rows:
        if row.path in listed:
            findings.append(_finding(f"RECORD lists {row.path} more than once", side, row.path))
            continue
        listed.add(row.path)
        copies = by_name.get(row.path)
        if copies is None:
            findings.append(
                _finding(f"RECORD lists {row.path}, which is not in the wheel", side, row.path)
            )
        elif row.path not in unhashed:
            # Every copy of a duplicated name is checked: an installer may take any of them.
            for member in copies:
                findings.extend(_check_row(row, member, side))
                if row.hash == "sha256=" + member.sha256.hex():
                    hex_rows.append(row.path)
    if hex_rows:
        findings.append(
            _finding(
                f"RECORD writes {len(hex_rows):,} sha256 digests in hex, not urlsafe base64 "
                "without padding: the digests match, their encoding is not the standard one",
                side,
                record_name,
                detail="\n".join(hex_rows[:50])
                + (f"\n… and {len(hex_rows) - 50:,} more" if len(hex_rows) > 50 else ""),
            )
        )
    for name in by_name:
        # Directory entries are not files; RECORD lists files only.
        if name not in listed and name not in unhashed and not name.endswith("/"):
            findings.append(_finding(f"{name} is in the wheel but not in RECORD", side, name))
    return findings
