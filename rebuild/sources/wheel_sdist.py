"""Wheel vs sdist, no build: every file an installer puts on disk traced to the sdist.

An installer copies a wheel's files as they are (``.py``, ``.pyi``, ``.pth``, data files,
templates, ``*.data/scripts``), and a backend copies them from the source tree. So each one must
be byte-identical to a file of the sdist at a matching path (the flat layout, ``src/``, ``lib/``,
a ``package_dir`` elsewhere; the ``*.data/<scheme>/`` directories mapped to the top), else be
explained by a rule (a version file written at build time, a script's rewritten ``#!`` line). A
file of the wheel with no counterpart in the sdist is something the source does not account for:
a ``.pth`` runs at every interpreter start, a script when it is called.

Two kinds of member are not traced here: the ``.dist-info`` metadata (the metadata analyser
judges it) and compiled objects a build makes (``.so``, ``.pyd``, ``.pyc``...), which are in no
source by nature and are judged by the rebuild.
"""

from __future__ import annotations

import hashlib
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from rebuild.errors import ArchiveError
from rebuild.models import Divergence, DivergenceKind, Side
from rebuild.sources.rules import WHEEL_RULES, SourceFile, explain, outcome_of
from rebuild.sources.tree import SourceTree, capped_diff

PYTHON_SUFFIXES = (".py", ".pyi")
# Made by a build, never copied from a source: judged by the rebuild, not traced.
_COMPILED = re.compile(r"\.(so|pyd|dylib|dll|a|pyc|pyo)(\.[0-9]+)*$", re.IGNORECASE)
_DIST_INFO = re.compile(r"^[^/]+\.dist-info/")
# An installed file larger than this in a wheel is itself a finding, not something to read.
MAX_MEMBER_BYTES = 64 * 1024 * 1024
ANALYSER = "wheel-vs-sdist"

# "<name>-<version>.data/<scheme>/<path>": where a wheel puts files installed to other schemes.
_DATA = re.compile(r"^[^/]+\.data/(?P<scheme>[^/]+)/(?P<path>.+)$")


@dataclass(frozen=True)
class WheelTrace:
    files: int  # installed files traced (every member but metadata and compiled objects)
    traced: int  # ... byte-identical to a file of the sdist
    findings: tuple[Divergence, ...]
    compiled: int = 0  # compiled members left to the rebuild


def source_path(member: str) -> str:
    """Where in a source tree a wheel member comes from (the scheme directories dropped)."""
    match = _DATA.match(member)
    return match["path"] if match else member


def is_python_source(member: str) -> bool:
    return member.endswith(PYTHON_SUFFIXES)


def is_compiled(member: str) -> bool:
    """A build's output (extension module, shared or static library, bytecode)."""
    return _COMPILED.search(member) is not None


def is_traced(member: str, metadata: str | None) -> bool:
    """Whether ``member`` must come from the sdist: neither the metadata nor compiled.

    ``metadata`` is the wheel's one ``.dist-info`` directory ("demo-1.0.dist-info/"); a wheel
    with several has none that counts as metadata (pip refuses it; here each file is traced).
    """
    in_metadata = metadata is not None and member.startswith(metadata)
    return not in_metadata and not is_compiled(member)


def metadata_directory(names: list[str]) -> str | None:
    """The top-level ``.dist-info/`` directory of a wheel's members, when there is exactly one."""
    found = {m[0] for m in (_DIST_INFO.match(n) for n in names) if m is not None}
    return found.pop() if len(found) == 1 else None


def trace_wheel(wheel: Path, sdist: SourceTree, version: str) -> WheelTrace:
    """Match every installed file of ``wheel`` (see :func:`is_traced`) against ``sdist``."""
    try:
        with zipfile.ZipFile(wheel) as zf:
            files = [i for i in zf.infolist() if not i.is_dir()]
            metadata = metadata_directory([i.filename for i in files])
            members = [i for i in files if is_traced(i.filename, metadata)]
            compiled = sum(1 for i in files if is_compiled(i.filename))
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
    return WheelTrace(
        files=len(members), traced=traced, findings=tuple(findings), compiled=compiled
    )


def _what(member: str) -> str:
    """How a finding names the kind of file, by what installing it does."""
    match = _DATA.match(member)
    if match is not None and match["scheme"] == "scripts":
        return "script"
    path = source_path(member)
    if "/" not in path and path.endswith(".pth"):
        return ".pth file (run at every interpreter start)"
    if path in ("sitecustomize.py", "usercustomize.py"):
        return "Python file run at every interpreter start"
    if is_python_source(member):
        return "Python file"
    return "file"


def _too_large(info: zipfile.ZipInfo) -> Divergence:
    return Divergence(
        kind=DivergenceKind.DIFFERS_FROM_SDIST,
        summary=f"a {info.file_size:,}-byte {_what(info.filename)}: too large to trace, not read",
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
        summary = f"{_what(member)} with no counterpart in the sdist"
        detail = capped_diff(b"", data, "/dev/null", f"wheel/{member}")
    outcome, reasons = outcome_of(
        explain(
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
    )
    return Divergence(
        kind=kind,
        summary=summary,
        member=member,
        side=Side.PUBLISHED,
        detail=detail,
        outcome=outcome,
        reasons=reasons,
        analyser=ANALYSER,
    )
