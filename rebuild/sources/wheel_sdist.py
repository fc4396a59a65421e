"""Wheel vs sdist, no build: every Python source file of the wheel traced to the sdist.

A pure-Python wheel installs its ``.py`` files as they are; a backend copies them from the source
tree. So each one must be byte-identical to a file of the sdist at a matching path (the flat
layout, ``src/``, ``lib/``, a ``package_dir`` elsewhere; ``*.data/purelib`` and ``platlib``
mapped to the top), else be explained by a rule (a version file written at build time). A Python
file of the wheel with no counterpart in the sdist is code the source does not account for.
"""

from __future__ import annotations

import hashlib
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from rebuild.errors import ArchiveError
from rebuild.models import Divergence, DivergenceKind, Side
from rebuild.sources.rules import WHEEL_RULES, SourceFile, explain
from rebuild.sources.tree import SourceTree, capped_diff

PYTHON_SUFFIXES = (".py", ".pyi")
# A Python source file larger than this in a wheel is itself a finding, not something to read.
MAX_MEMBER_BYTES = 64 * 1024 * 1024
ANALYSER = "wheel-vs-sdist"

# "<name>-<version>.data/<scheme>/<path>": where a wheel puts files installed to other schemes.
_DATA = re.compile(r"^[^/]+\.data/(?P<scheme>[^/]+)/(?P<path>.+)$")


@dataclass(frozen=True)
class WheelTrace:
    python_files: int
    traced: int
    findings: tuple[Divergence, ...]


def source_path(member: str) -> str:
    """Where in a source tree a wheel member comes from (the scheme directories dropped)."""
    match = _DATA.match(member)
    return match["path"] if match else member


def is_python_source(member: str) -> bool:
    return member.endswith(PYTHON_SUFFIXES)


def trace_wheel(wheel: Path, sdist: SourceTree, version: str) -> WheelTrace:
    """Match every Python source file of ``wheel`` against the sdist tree ``sdist``."""
    try:
        with zipfile.ZipFile(wheel) as zf:
            members = [i for i in zf.infolist() if not i.is_dir() and is_python_source(i.filename)]
            findings: list[Divergence] = []
            traced = 0
            for info in sorted(members, key=lambda i: i.filename):
                if info.file_size > MAX_MEMBER_BYTES:
                    findings.append(_too_large(info))
                    continue
                data = zf.read(info)
                finding = _trace_one(info.filename, data, sdist, version)
                if finding is None:
                    traced += 1
                else:
                    findings.append(finding)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as e:
        raise ArchiveError(
            f"cannot read {wheel.name} as a wheel: {e}",
            hint="the wheel is corrupt or not a zip; download it again",
        ) from e
    return WheelTrace(python_files=len(members), traced=traced, findings=tuple(findings))


def _too_large(info: zipfile.ZipInfo) -> Divergence:
    return Divergence(
        kind=DivergenceKind.DIFFERS_FROM_SDIST,
        summary=f"a {info.file_size:,}-byte Python file: too large to trace, not read",
        member=info.filename,
        side=Side.PUBLISHED,
        analyser=ANALYSER,
    )


def _trace_one(member: str, data: bytes, sdist: SourceTree, version: str) -> Divergence | None:
    """None when ``data`` is the sdist's; otherwise the finding, explained or not."""
    path = source_path(member)
    candidates = sdist.candidates(path)
    digest = hashlib.sha256(data).hexdigest()
    if any(sdist.digest(c) == digest for c in candidates):
        return None
    elsewhere = sdist.with_digest(digest)
    if elsewhere and not candidates:
        # A package_dir mapping puts it under another name: the bytes are still the sdist's.
        return None
    if candidates:
        counterpart_path = candidates[0]
        counterpart = sdist.read(counterpart_path)
        kind = DivergenceKind.DIFFERS_FROM_SDIST
        summary = f"differs from the sdist's {counterpart_path}"
        detail = capped_diff(counterpart, data, f"sdist/{counterpart_path}", f"wheel/{member}")
    else:
        counterpart = None
        kind = DivergenceKind.NOT_IN_SDIST
        summary = "Python file with no counterpart in the sdist"
        detail = capped_diff(b"", data, "/dev/null", f"wheel/{member}")
    explanation = explain(
        SourceFile(
            kind=kind,
            path=path,
            content=data,
            counterpart=counterpart,
            version=version,
            has_source=sdist.__contains__,
        ),
        WHEEL_RULES,
    )
    return Divergence(
        kind=kind,
        summary=summary,
        member=member,
        side=Side.PUBLISHED,
        detail=detail,
        explanation=explanation,
        analyser=ANALYSER,
    )
