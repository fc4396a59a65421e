"""Tests of the bytecode analyser on .pyc files the tests compile, and on hostile payloads.

Each .pyc is made here: a PEP 552 header written by hand in front of ``marshal.dumps`` of code
that ``compile()`` produced, at whatever source path, modification time or magic number a test
needs. The hostile payloads are marshal streams crafted to exhaust memory, recurse or hang.
"""

from __future__ import annotations

import importlib.util
import marshal
import struct
import sys
import time
from pathlib import Path
from types import CodeType
from typing import Any

import pytest

from rebuild.compare import compare_wheels
from rebuild.compare.analysers import DEFAULT_ANALYSERS, MemberBlob, MemberKind, MemberPair
from rebuild.compare.analysers.bytecode import BytecodeAnalyser
from rebuild.compare.pyc import DecoderLimits, Invalidation, PycHeader, cpython_for, parse_header
from rebuild.models import Divergence, DivergenceKind, Layer, Verdict

from .wheels import make_wheel

MEMBER = "demo/__pycache__/core.cpython-311.pyc"
RUNNING = f"{sys.version_info.major}.{sys.version_info.minor}"
MAGIC = importlib.util.MAGIC_NUMBER
OTHER_VERSION, OTHER_MAGIC = ("3.12", 3531) if RUNNING != "3.12" else ("3.11", 3495)
UPSTREAM = "/project/demo/core.py"
OURS = "/tmp/src/demo-1.0/demo/core.py"
PUBLISHED_MTIME, REBUILT_MTIME = 0x65C159D3, 0x65C1507C

SOURCE = '''\
"""Demo."""

import functools

LIMIT = 10


def answer():
    return 42


class Box:
    def __init__(self, value):
        self.value = value

    def double(self):
        return [v * 2 for v in (self.value,)]


def make_adder(n):
    return lambda x: x + n


@functools.cache
def table():
    return {"a": 1.5, "b": frozenset({"x", "y", "z"}), "c": (1, 2, 3)}
'''


def pyc(
    source: str = SOURCE,
    filename: str = UPSTREAM,
    *,
    mtime: int = PUBLISHED_MTIME,
    magic: bytes = MAGIC,
    hash_based: bool = False,
    payload: bytes | None = None,
    code: CodeType | None = None,
) -> bytes:
    """A .pyc: a PEP 552 header, then the marshalled code (or ``payload`` as given)."""
    if payload is None:
        if code is None:
            code = compile(source, filename, "exec", dont_inherit=True)
        payload = marshal.dumps(code)
    raw = source.encode()
    if hash_based:
        flags = 0b11  # checked hash
        tail = importlib.util.source_hash(raw)
    else:
        flags = 0
        tail = mtime.to_bytes(4, "little") + len(raw).to_bytes(4, "little")
    return magic + flags.to_bytes(4, "little") + tail + payload


def analyse(
    published: bytes, rebuilt: bytes, analyser: BytecodeAnalyser | None = None
) -> Divergence:
    pair = MemberPair(
        MEMBER,
        MemberKind.BYTECODE,
        MemberBlob.from_bytes(published),
        MemberBlob.from_bytes(rebuilt),
    )
    (divergence,) = (analyser or BytecodeAnalyser()).analyse(pair)
    assert divergence.kind is DivergenceKind.CONTENT
    assert divergence.analyser == "bytecode"
    assert divergence.member == MEMBER
    return divergence


def other_magic(number: int) -> bytes:
    return number.to_bytes(2, "little") + b"\r\n"


# --- the same code -------------------------------------------------------------------------


def test_same_code_at_another_path_and_mtime_is_explained() -> None:
    d = analyse(pyc(), pyc(filename=OURS, mtime=REBUILT_MTIME))
    assert d.explained
    assert d.explanation == (
        f"compiled from the same code: only the recorded source path ({UPSTREAM} vs {OURS}) and "
        "the source file's modification time (2024-02-05 21:57:39 UTC vs 2024-02-05 21:17:48 UTC)"
        " differ"
    )
    # The module, answer, Box, __init__, double, its comprehension, make_adder, the lambda, table.
    assert d.summary == "bytecode: the same code in 9 code objects (co_filename set aside)"
    assert f"published: CPython {RUNNING} (magic " in d.detail
    assert "flags 0x0 (timestamp), source mtime 2024-02-05 21:57:39 UTC (0x65c159d3)" in d.detail
    assert f"source size {len(SOURCE):,} bytes" in d.detail
    assert "9 on both sides compared (co_filename set aside), 0 differ" in d.detail


def test_only_the_mtime_differs() -> None:
    d = analyse(pyc(), pyc(mtime=REBUILT_MTIME))
    assert d.explanation is not None
    assert d.explanation.startswith(
        "compiled from the same code: only the source file's modification time ("
    )
    assert "source path" not in d.explanation


def test_hash_based_pycs_of_sources_differing_outside_the_code_are_explained() -> None:
    # A trailing comment changes the source (and so its hash) but not one code object.
    d = analyse(pyc(hash_based=True), pyc(SOURCE + "# end\n", OURS, hash_based=True))
    assert d.explanation == (
        f"compiled from the same code: only the recorded source path ({UPSTREAM} vs {OURS}) and "
        "the recorded source hash differ"
    )
    assert "flags 0x3 (checked hash), source hash " in d.detail


def test_timestamp_against_hash_based_is_explained_as_the_invalidation_mode() -> None:
    # py_compile writes hash-based .pyc files when SOURCE_DATE_EPOCH is set.
    d = analyse(pyc(), pyc(hash_based=True))
    assert d.explanation == (
        "compiled from the same code: only the invalidation mode (timestamp vs checked hash) "
        "differs"
    )


def test_identical_code_in_another_encoding_is_explained() -> None:
    code = compile(SOURCE, UPSTREAM, "exec", dont_inherit=True)
    # Version 0 writes no object references: other bytes, the same code objects.
    d = analyse(pyc(code=code), pyc(payload=marshal.dumps(code, 0)))
    assert d.explanation is not None
    assert "only the marshal encoding differs" in d.explanation


# --- code that differs ---------------------------------------------------------------------


def test_a_changed_constant_is_unexplained_and_names_the_function() -> None:
    d = analyse(pyc(), pyc(SOURCE.replace("return 42", "return 43"), OURS))
    assert not d.explained
    assert d.summary == "bytecode: code differs in 1 code object: answer"
    assert "  differs: answer (line 8): co_consts" in d.detail
    assert "    constants only published: 42" in d.detail
    assert "    constants only rebuilt: 43" in d.detail


def test_an_added_function_is_unexplained_and_named() -> None:
    extra = SOURCE + "\n\ndef extra():\n    return __import__('os').system('id')\n"
    d = analyse(pyc(), pyc(extra))
    assert not d.explained
    assert d.summary.startswith("bytecode: code differs in 2 code objects: <module>, ")
    assert "extra (only rebuilt)" in d.summary
    assert "  only rebuilt:   extra" in d.detail
    assert "    names only rebuilt: 'extra'" in d.detail


def test_a_changed_nested_function_names_only_that_function() -> None:
    changed = SOURCE.replace("x + n", "x - n")
    d = analyse(pyc(), pyc(changed))
    assert d.summary == "bytecode: code differs in 1 code object: make_adder.<locals>.<lambda>"


def test_moved_lines_alone_are_unexplained_as_line_numbers() -> None:
    moved = SOURCE.replace("LIMIT = 10\n", "LIMIT = 10\n\n\n")
    d = analyse(pyc(), pyc(moved))
    assert not d.explained
    assert d.summary.startswith("bytecode: line numbers differ in ")
    # 3.11's line table is relative to the first line: moving a function changes only that.
    assert "  differs: answer (line 8): co_firstlineno\n" in d.detail


def test_a_changed_set_constant_is_seen_whatever_its_order() -> None:
    changed = SOURCE.replace('{"x", "y", "z"}', '{"x", "y", "w"}')
    d = analyse(pyc(), pyc(changed))
    assert d.summary == "bytecode: code differs in 1 code object: table"


def test_untrusted_names_are_escaped() -> None:
    code = compile(SOURCE, UPSTREAM, "exec", dont_inherit=True)
    evil = "answer\x1b[2J\x00"
    consts = tuple(
        c.replace(co_qualname=evil, co_name=evil)
        if isinstance(c, CodeType) and c.co_name == "answer"
        else c
        for c in code.co_consts
    )
    d = analyse(pyc(code=code), pyc(code=code.replace(co_consts=consts)))
    assert not d.explained
    assert "answer\\x1b[2J\\x00" in d.summary
    for text in (d.summary, d.detail):
        assert "\x1b" not in text
        assert "\x00" not in text


def test_bytes_after_the_code_object_are_unexplained() -> None:
    d = analyse(
        pyc(),
        pyc(
            payload=marshal.dumps(compile(SOURCE, UPSTREAM, "exec", dont_inherit=True)) + b"hidden"
        ),
    )
    assert not d.explained
    assert d.summary == "bytecode: bytes after the code object (rebuilt 6)"


# --- other interpreters --------------------------------------------------------------------


def test_another_cpython_is_never_explained() -> None:
    d = analyse(pyc(), pyc(magic=other_magic(OTHER_MAGIC)))
    assert not d.explained
    versions = sorted([RUNNING, OTHER_VERSION], key=lambda v: v != RUNNING)
    assert d.summary == f"compiled by another CPython ({versions[0]} vs {versions[1]})"
    assert f"rebuilt: CPython {OTHER_VERSION} (magic {OTHER_MAGIC})" in d.detail


def test_a_cpython_this_interpreter_cannot_load_is_not_decoded() -> None:
    magic = other_magic(OTHER_MAGIC)
    d = analyse(pyc(magic=magic), pyc(filename=OURS, magic=magic))
    assert not d.explained
    assert d.summary == (
        f"bytecode differs; not decoded: compiled by CPython {OTHER_VERSION} (magic "
        f"{OTHER_MAGIC}), which this interpreter ({RUNNING}) cannot load"
    )
    assert "source mtime 2024-02-05 21:57:39 UTC" in d.detail


def test_cpython_versions_by_magic_number() -> None:
    assert cpython_for(int.from_bytes(MAGIC[:2], "little")) == RUNNING
    assert cpython_for(3413) == "3.8"
    assert cpython_for(3531) == "3.12"
    assert cpython_for(3520) == "3.12 (a pre-release)"
    assert cpython_for(3571) == "3.13"
    assert cpython_for(3610) == "3.14"
    assert cpython_for(3540) is None  # after 3.12's final number, before 3.13's series
    assert cpython_for(62211) is None  # Python 2.7
    assert cpython_for(12) is None


def test_headers_are_parsed() -> None:
    stamp = parse_header(pyc())
    assert stamp == PycHeader(
        int.from_bytes(MAGIC[:2], "little"), 0, PUBLISHED_MTIME, len(SOURCE), None
    )
    assert isinstance(stamp, PycHeader)
    assert stamp.invalidation is Invalidation.TIMESTAMP
    hashed = parse_header(pyc(hash_based=True))
    assert isinstance(hashed, PycHeader)
    assert hashed.invalidation is Invalidation.CHECKED_HASH
    assert hashed.source_hash == importlib.util.source_hash(SOURCE.encode())
    assert parse_header(b"\x00" * 8) == "8 bytes, shorter than a .pyc header (16 bytes)"
    assert parse_header(b"PK\x03\x04" + bytes(12)) == "no CPython magic number (starts 504b0304)"


# --- what cannot be decoded ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (marshal.dumps(compile(SOURCE, UPSTREAM, "exec"))[:-40], "could not be decoded: EOFError"),
        (b"\xff" * 64, "could not be decoded: ValueError: bad marshal data"),
        (b"", "could not be decoded: EOFError"),
        (marshal.dumps((1, "a")), "could not be decoded: the payload is not a code object"),
        # A tuple that declares 2**31 - 1 items: the memory limit stops the allocation.
        (b"(" + (2**31 - 1).to_bytes(4, "little"), "could not be decoded: MemoryError"),
        (b")\x01" * 5000 + b"N", "could not be decoded: ValueError: recursion limit exceeded"),
    ],
    ids=["truncated", "garbage", "empty", "not-code", "huge-size", "deep"],
)
def test_payloads_that_cannot_be_decoded_are_unexplained(payload: bytes, why: str) -> None:
    d = analyse(pyc(), pyc(payload=payload))
    assert not d.explained
    assert d.summary.startswith(f"bytecode differs; the rebuilt bytecode {why}")
    assert "published bytecode" not in d.summary


def _hashing_bomb() -> bytes:
    """A frozenset holding a tuple DAG 64 levels deep: hashing it walks 2**64 paths."""
    nested: Any = ()  # typeshed's marshal types have no recursive tuple
    for _ in range(64):
        nested = (nested, nested)
    # '>' is marshal's frozenset; marshal writes the shared halves once, as references.
    return b">" + (1).to_bytes(4, "little") + marshal.dumps(nested)


def test_a_decoder_that_hangs_is_stopped_by_the_timeout() -> None:
    analyser = BytecodeAnalyser(limits=DecoderLimits(timeout_s=1.5, cpu_s=60))
    started = time.monotonic()
    d = analyse(pyc(payload=_hashing_bomb()), pyc(payload=_hashing_bomb()), analyser)
    assert time.monotonic() - started < 10
    assert not d.explained
    assert d.summary == (
        "bytecode differs; the bytecode could not be decoded: the decoder was stopped after 1.5 s"
    )


def test_a_decoder_that_spins_is_killed_by_the_cpu_limit() -> None:
    analyser = BytecodeAnalyser(limits=DecoderLimits(timeout_s=60, cpu_s=1))
    started = time.monotonic()
    d = analyse(pyc(), pyc(payload=_hashing_bomb()), analyser)
    assert time.monotonic() - started < 10
    assert not d.explained
    assert d.summary == (
        "bytecode differs; the bytecode could not be decoded: the decoder ran out of CPU time "
        "and was killed (SIGXCPU)"
    )


def test_members_that_are_not_pyc_files_are_unexplained() -> None:
    d = analyse(pyc(), b"not bytecode at all")
    assert d.summary == (
        "bytecode differs; not decoded: the rebuilt member is not a .pyc: no CPython magic "
        "number (starts 6e6f7420)"
    )
    assert not d.explained


def test_invalid_flags_are_unexplained() -> None:
    data = bytearray(pyc())
    data[4] = 0b100
    d = analyse(pyc(), bytes(data))
    assert d.summary == "bytecode differs; not decoded: header flags no CPython writes"
    assert "flags 0x4 (invalid)" in d.detail


def test_members_over_the_cap_are_not_decoded() -> None:
    d = analyse(pyc(), pyc(filename=OURS), BytecodeAnalyser(max_bytes=100))
    assert not d.explained
    assert d.summary.startswith("bytecode differs; not decoded: the published .pyc is ")
    assert d.summary.endswith(" bytes, over 100")


# --- through the comparison ----------------------------------------------------------------


def test_a_rebuilt_wheel_whose_pyc_differs_only_in_path_and_mtime(tmp_path: Path) -> None:
    published = make_wheel(tmp_path / "p.whl", changes={MEMBER: pyc()})
    rebuilt = make_wheel(tmp_path / "r.whl", changes={MEMBER: pyc(filename=OURS, mtime=1)})
    result = compare_wheels(published, rebuilt, analysers=(BytecodeAnalyser(), *DEFAULT_ANALYSERS))
    (own,) = [
        d for d in result.divergences if d.member == MEMBER and d.kind is DivergenceKind.CONTENT
    ]
    assert own.analyser == "bytecode"
    assert own.explanation is not None
    assert own.explanation.startswith("compiled from the same code: only the recorded source path")
    assert MEMBER not in " ".join(result.unanalysed)
    # Only the .pyc (and its RECORD row) differ, and every divergence is explained.
    assert all(d.explained for d in result.divergences if d.layer is Layer.MEMBER)
    assert result.verdict is Verdict.DIVERGENT


def _with_constant(value: object) -> CodeType:
    code = compile("X = 1.5\n", UPSTREAM, "exec", dont_inherit=True)
    return code.replace(co_consts=tuple(value if c == 1.5 else c for c in code.co_consts))


_NAN = struct.unpack("<d", bytes.fromhex("000000000000f87f"))[0]
_NEGATIVE_NAN = struct.unpack("<d", bytes.fromhex("000000000000f8ff"))[0]
_PAYLOAD_NAN = struct.unpack("<d", bytes.fromhex("010000000000f87f"))[0]


@pytest.mark.parametrize(
    ("published", "rebuilt"),
    [
        (_NAN, _NEGATIVE_NAN),
        (_NAN, _PAYLOAD_NAN),
        (0.0, -0.0),
        (complex(1.0, _NAN), complex(1.0, _NEGATIVE_NAN)),
        (complex(_NAN, 0.0), complex(_NAN, -0.0)),
    ],
)
def test_constants_that_differ_only_in_their_bits_are_not_the_same_code(
    published: object, rebuilt: object
) -> None:
    # float.hex() prints "nan" for every NaN: the modules behave differently (copysign, struct).
    d = analyse(pyc(code=_with_constant(published)), pyc(code=_with_constant(rebuilt)))
    assert not d.explained
    assert d.summary == "bytecode: code differs in 1 code object: <module>"
    if isinstance(published, float) and published != published:
        assert "constants only published: nan(0x000000000000f87f)" in d.detail


def test_the_same_nan_is_the_same_code() -> None:
    d = analyse(pyc(code=_with_constant(_NAN)), pyc(code=_with_constant(_NAN), filename=OURS))
    assert d.explained
