"""Differing members analysed in worker processes: the same answer as the serial path, in the
same order, and a worker that dies fails that member closed."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from compare.test_elf_release import needing
from compare.wheels import BASE, make_wheel
from rebuild.compare import compare_wheels, members
from rebuild.compare.analysers import DEFAULT_ANALYSERS, MemberKind, MemberPair
from rebuild.models import Divergence, DivergenceKind, Verdict

SOS = [f"demo/_m{i}.cpython-311-x86_64-linux-gnu.so" for i in range(3)]


def _pair(tmp_path: Path) -> tuple[Path, Path]:
    published = {name: needing(tmp_path, f"libp{i}.so.1") for i, name in enumerate(SOS)}
    rebuilt = {name: needing(tmp_path, f"libr{i}.so.1") for i, name in enumerate(SOS)}
    changed = {"demo/core.py": b"def answer():\n    return 43\n"}
    return (
        make_wheel(tmp_path / "p.whl", {**BASE, **published}),
        make_wheel(tmp_path / "r.whl", {**BASE, **rebuilt, **changed}),
    )


def test_members_analysed_apart_say_what_the_serial_path_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    published, rebuilt = _pair(tmp_path)
    monkeypatch.setattr(members, "APART_MIN_BYTES", 10**12)
    serial = compare_wheels(published, rebuilt)
    monkeypatch.setattr(members, "APART_MIN_BYTES", 0)
    apart = compare_wheels(published, rebuilt)
    assert serial.verdict is apart.verdict is Verdict.DIVERGENT
    assert apart.divergences == serial.divergences
    assert apart.unanalysed == serial.unanalysed
    assert [d.member for d in apart.unexplained if d.member in SOS] == SOS


class DyingAnalyser:
    """An ELF analyser whose worker process dies mid-analysis (a crash in native code)."""

    name = "elf"
    kinds = frozenset({MemberKind.ELF})

    def analyse(self, pair: MemberPair) -> list[Divergence]:
        if getattr(sys.modules["__main__"].__spec__, "name", None) != "rebuild.compare.worker":
            raise AssertionError("run in the parent: the test meant a worker process")
        os._exit(3)


def test_a_worker_that_dies_leaves_its_members_unexplained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    published, rebuilt = _pair(tmp_path)
    monkeypatch.setattr(members, "APART_MIN_BYTES", 0)
    comparison = compare_wheels(published, rebuilt, analysers=[DyingAnalyser(), *DEFAULT_ANALYSERS])
    assert comparison.verdict is Verdict.DIVERGENT
    failed = [
        d for d in comparison.divergences if d.member in SOS and d.kind is DivergenceKind.CONTENT
    ]
    assert sorted(d.member or "" for d in failed) == SOS
    for divergence in failed:
        assert not divergence.explained
        assert "worker process failed" in divergence.summary
    assert set(comparison.unanalysed) >= {f"{name} (elf)" for name in SOS}
