"""Metadata written by older tools: explained only when every parsed value is the same."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from rebuild.compare import compare_wheels
from rebuild.compare.rules import explain
from rebuild.compare.spelling import crlf_of, requirements_respelled
from rebuild.models import Comparison, Divergence, DivergenceKind, Verdict

from .wheels import DIST_INFO, METADATA, WHEEL, make_wheel

NAME = f"{DIST_INFO}/METADATA"
OLD_WHEEL = WHEEL.replace(b"bdist_wheel (0.43.0)", b"bdist_wheel (0.30.0)")


def metadata(*requires: str, body: bytes = b"A long description.\n") -> bytes:
    head = b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\nSummary: A demonstration\n"
    lines = b"".join(f"Requires-Dist: {r}\n".encode() for r in requires)
    return head + lines + b"\n" + body


def compared(tmp_path: Path, published: bytes, rebuilt: bytes) -> Comparison:
    pub = make_wheel(tmp_path / "p.whl", changes={NAME: published, f"{DIST_INFO}/WHEEL": OLD_WHEEL})
    reb = make_wheel(tmp_path / "r.whl", changes={NAME: rebuilt, f"{DIST_INFO}/WHEEL": OLD_WHEEL})
    return compare_wheels(pub, reb)


BOTO3_PUBLISHED = (
    "botocore (<1.45.0,>=1.44.8)",
    "jmespath (<2.0.0,>=0.7.1)",
    "s3transfer (<0.20.0,>=0.19.0)",
    "botocore[crt] (<2.0a0,>=1.21.0) ; extra == 'crt'",
)
BOTO3_REBUILT = (
    "botocore<1.45.0,>=1.44.8",
    "jmespath<2.0.0,>=0.7.1",
    "s3transfer<0.20.0,>=0.19.0",
    'botocore[crt]<2.0a0,>=1.21.0; extra == "crt"',
)


def test_parenthesised_requirements_of_an_older_tool_are_explained(tmp_path: Path) -> None:
    # boto3 1.44.8's published METADATA, against what today's setuptools writes.
    result = compared(tmp_path, metadata(*BOTO3_PUBLISHED), metadata(*BOTO3_REBUILT))
    assert result.unexplained == ()
    (field,) = [d for d in result.divergences if d.kind is DivergenceKind.METADATA_FIELD]
    assert field.field == "Requires-Dist"
    assert field.rules == ("requires-dist-spelling",)
    why = field.explanation or ""
    assert "parenthesised version specifiers and single-quoted markers" in why
    assert "the published wheel's were written by an older setuptools/wheel" in why
    assert "Generator: bdist_wheel (0.30.0)" in why
    # The RECORD row of METADATA follows from METADATA's own divergence.
    (row,) = [d for d in result.divergences if d.kind is DivergenceKind.RECORD_ENTRY]
    assert (row.member, row.rules) == (NAME, ("record-follows-member",))
    assert result.verdict is Verdict.DIVERGENT  # a member's bytes differ, explained


@pytest.mark.parametrize(
    ("published", "rebuilt"),
    [
        # A bound changed inside the parentheses.
        ("botocore (<1.45.0,>=1.44.8)", "botocore<1.45.0,>=1.44.7"),
        ("botocore (<1.45.0,>=1.44.8)", "botocore<1.46.0,>=1.44.8"),
        # An operator changed.
        ("botocore (==1.44.8)", "botocore===1.44.8"),
        # The same version spelled otherwise is another string: not judged equal.
        ("botocore (==1.44.8)", "botocore==1.44.8.0"),
        # An extra added or dropped.
        ("botocore (>=1)", "botocore[crt]>=1"),
        ("botocore[crt] (>=1)", "botocore>=1"),
        # A marker changed, added or dropped.
        ("x (>=1) ; extra == 'crt'", 'x>=1; extra == "s3"'),
        ("x (>=1) ; python_version < '3.8'", 'x>=1; python_version <= "3.8"'),
        ("x (>=1)", 'x>=1; python_version < "3.8"'),
        ("x (>=1) ; sys_platform == 'win32'", "x>=1"),
        # Another project, another spelling of the name, a URL.
        ("botocore (>=1)", "botocorf>=1"),
        ("zope.interface (>=1)", "zope-interface>=1"),
        ("x (>=1)", "x @ https://example.invalid/x-1.tar.gz"),
        ("x@ https://example.invalid/x-1.tar.gz", "x @ https://example.invalid/x-2.tar.gz"),
    ],
)
def test_a_changed_value_in_the_old_spelling_stays_unexplained(
    tmp_path: Path, published: str, rebuilt: str
) -> None:
    result = compared(tmp_path, metadata(published), metadata(rebuilt))
    assert result.verdict is Verdict.DIVERGENT
    (field,) = [d for d in result.divergences if d.kind is DivergenceKind.METADATA_FIELD]
    assert not field.explained
    assert field in result.unexplained


@pytest.mark.parametrize(
    ("published", "rebuilt"),
    [
        # One more requirement, or one fewer, in either spelling.
        (("a (>=1)", "b (>=2)"), ("a>=1",)),
        (("a (>=1)",), ("a>=1", "b>=2")),
        # A duplicate on one side: the multisets differ though the sets are equal.
        (("a (>=1)", "a (>=1)"), ("a>=1", "b>=1")),
        (("a (>=1)", "a (>=1)"), ("a>=1",)),
        (("a (>=1)", "a (>=1)", "b (>=1)"), ("a>=1", "b>=1", "b>=1")),
        # Two requirements swapping their bounds.
        (("a (>=1)", "b (>=2)"), ("a>=2", "b>=1")),
        # A value that does not parse.
        (("a (>=1", "b (>=2)"), ("a>=1", "b>=2")),
    ],
)
def test_another_dependency_set_stays_unexplained(
    tmp_path: Path, published: tuple[str, ...], rebuilt: tuple[str, ...]
) -> None:
    result = compared(tmp_path, metadata(*published), metadata(*rebuilt))
    fields = [d for d in result.divergences if d.kind is DivergenceKind.METADATA_FIELD]
    assert fields
    assert all(not d.explained for d in fields)


def test_requirements_only_on_one_side_stay_unexplained(tmp_path: Path) -> None:
    result = compared(tmp_path, metadata("a (>=1)"), metadata())
    (field,) = [d for d in result.divergences if d.kind is DivergenceKind.METADATA_FIELD]
    assert not field.explained


def test_a_reordered_respelling_is_the_same_multiset(tmp_path: Path) -> None:
    result = compared(
        tmp_path,
        metadata("a (>=1)", "b (<2,>=1)"),
        metadata("b>=1,<2", "a>=1"),  # and the specifiers in another order
    )
    assert result.unexplained == ()


def test_the_rule_is_bound_to_metadata_and_requires_dist() -> None:
    assert requirements_respelled(["a (>=1)"], ["a>=1"]) is not None
    assert requirements_respelled([], []) is None
    assert requirements_respelled(["a (>=1)"], []) is None
    same = ("-a (>=1)", "+a>=1")
    field = Divergence(
        DivergenceKind.METADATA_FIELD, "x", NAME, field="Requires-Dist", changed_lines=same
    )
    assert explain([field])[0].rules == ("requires-dist-spelling",)
    # Another member, another field, no changed lines, a nested METADATA: not this rule.
    for other in (
        replace(field, member=f"{DIST_INFO}/WHEEL"),
        replace(field, member=f"{DIST_INFO}/x.dist-info/METADATA"),
        replace(field, member="demo/METADATA"),
        replace(field, field="Requires-External"),
        replace(field, changed_lines=None),
        replace(field, kind=DivergenceKind.CONTENT),
    ):
        assert explain([other])[0].explanation is None


def test_another_field_in_the_old_spelling_stays_unexplained(tmp_path: Path) -> None:
    # Obsoletes-Dist / Provides-Dist / Requires-External are not Requires-Dist: not judged.
    pub = METADATA + b""
    pub = pub.replace(b"Requires-Dist: requests>=2\n", b"Obsoletes-Dist: old (>=1)\n")
    reb = METADATA.replace(b"Requires-Dist: requests>=2\n", b"Obsoletes-Dist: old>=1\n")
    result = compared(tmp_path, pub, reb)
    (field,) = [d for d in result.divergences if d.kind is DivergenceKind.METADATA_FIELD]
    assert field.field == "Obsoletes-Dist"
    assert not field.explained


def crlf(data: bytes) -> bytes:
    return data.replace(b"\n", b"\r\n")


def test_crlf_metadata_of_a_windows_build_is_explained(tmp_path: Path) -> None:
    # sniffio 1.3.1's published METADATA has CRLF line endings (its other files LF).
    result = compared(tmp_path, crlf(METADATA), METADATA)
    assert result.unexplained == ()
    (content,) = [d for d in result.divergences if d.member == NAME and d.kind.value == "content"]
    assert content.rules == ("metadata-crlf",)
    assert "CRLF line endings: built on Windows" in (content.explanation or "")
    assert content.summary.startswith("only line endings differ")
    (row,) = [d for d in result.divergences if d.kind is DivergenceKind.RECORD_ENTRY]
    assert row.rules == ("record-follows-member",)


@pytest.mark.parametrize(
    "published",
    [
        # CRLF and a changed value: every difference stays for the reviewer.
        crlf(METADATA.replace(b"requests>=2", b"requests>=1")),
        crlf(METADATA.replace(b"A long description.", b"A longer description.")),
        crlf(METADATA) + b"Requires-Dist: evil\r\n",
        # Mixed endings, a lone CR, a CR added before a CRLF.
        METADATA.replace(b"Version: 1.0\n", b"Version: 1.0\r\n"),
        crlf(METADATA).replace(b"Summary: A demonstration", b"Summary: A demon\rstration"),
        crlf(METADATA).replace(b"Version: 1.0\r\n", b"Version: 1.0\r\r\n"),
    ],
)
def test_crlf_with_anything_else_stays_unexplained(tmp_path: Path, published: bytes) -> None:
    result = compared(tmp_path, published, METADATA)
    member = [d for d in result.divergences if d.member == NAME and d.kind.value != "record-entry"]
    assert member
    assert any(not d.explained for d in member)
    assert result.verdict is Verdict.DIVERGENT


def test_crlf_on_the_rebuilt_side_or_in_another_file_is_not_this_rule(tmp_path: Path) -> None:
    assert not crlf_of(METADATA, crlf(METADATA))
    # A CR of the rebuild's own (here before a line ending) is not a Windows line ending.
    lone = METADATA.replace(b"Version: 1.0\n", b"Version: 1.0\r\n")
    assert not crlf_of(crlf(lone), lone)
    pub = make_wheel(tmp_path / "p.whl", changes={f"{DIST_INFO}/WHEEL": crlf(WHEEL)})
    reb = make_wheel(tmp_path / "r.whl")
    result = compare_wheels(pub, reb)
    assert [d.member for d in result.unexplained] == [f"{DIST_INFO}/WHEEL"]


def test_crlf_in_a_nested_metadata_file_is_not_this_rule(tmp_path: Path) -> None:
    nested = f"{DIST_INFO}/sub.dist-info/METADATA"
    pub = make_wheel(tmp_path / "p.whl", changes={nested: crlf(METADATA)})
    reb = make_wheel(tmp_path / "r.whl", changes={nested: METADATA})
    result = compare_wheels(pub, reb)
    assert nested in [d.member for d in result.unexplained]


def test_the_generator_named_in_the_reason_is_the_publishers_text_made_safe(
    tmp_path: Path,
) -> None:
    hostile = WHEEL.replace(b"bdist_wheel (0.43.0)", b"bdist_wheel (0.30.0)\x1b[2J\x07")
    pub = make_wheel(
        tmp_path / "p.whl", changes={NAME: metadata("a (>=1)"), f"{DIST_INFO}/WHEEL": hostile}
    )
    reb = make_wheel(
        tmp_path / "r.whl", changes={NAME: metadata("a>=1"), f"{DIST_INFO}/WHEEL": hostile}
    )
    result = compare_wheels(pub, reb)
    (field,) = [d for d in result.divergences if d.kind is DivergenceKind.METADATA_FIELD]
    why = field.explanation or ""
    assert "Generator: bdist_wheel (0.30.0)\\x1b[2J\\x07" in why
    assert "\x1b" not in why


def test_without_a_wheel_file_the_reason_names_no_generator(tmp_path: Path) -> None:
    pub = make_wheel(
        tmp_path / "p.whl", changes={NAME: metadata("a (>=1)"), f"{DIST_INFO}/WHEEL": None}
    )
    reb = make_wheel(
        tmp_path / "r.whl", changes={NAME: metadata("a>=1"), f"{DIST_INFO}/WHEEL": None}
    )
    (field,) = [
        d for d in compare_wheels(pub, reb).divergences if d.kind is DivergenceKind.METADATA_FIELD
    ]
    assert field.rules == ("requires-dist-spelling",)
    assert "Generator" not in (field.explanation or "")
