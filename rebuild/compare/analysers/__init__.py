"""The member-analyser interface: what a kind-specific analyser is given and must return.

The comparison hashes every member first; only the members whose bytes differ reach an analyser,
chosen by the member's kind. An analyser says *how* two members differ (a diff, the fields that
changed); it never decides a verdict. New kinds of analysis (ELF, wheel tags...) plug in here.
"""

from __future__ import annotations

import enum
import hashlib
import importlib
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import IO, Protocol

from rebuild.models import Divergence

MiB = 1024 * 1024


class MemberKind(enum.Enum):
    """What a member is, as far as choosing an analyser goes."""

    RECORD = "record"  # *.dist-info/RECORD
    DIST_INFO = "dist-info"  # METADATA, WHEEL, entry_points.txt and other dist-info text
    PYTHON = "python"  # .py / .pyi
    TEXT = "text"  # UTF-8 without NUL bytes
    ELF = "elf"
    BYTECODE = "bytecode"  # CPython .pyc
    STATIC_LIBRARY = "static-library"  # ar archives of relocatable objects (.a)
    BINARY = "binary"  # everything else


class MemberBlob:
    """One side of a differing member: its size and hash, and a way to read it again.

    The bytes are not held: an analyser opens the member as a stream, or asks for it whole only up
    to a cap. The last capped read is kept, because classification and analysis both ask for it.
    """

    __slots__ = ("_cached", "_opener", "sha256", "size")

    def __init__(self, size: int, sha256: str, opener: Callable[[], IO[bytes]]) -> None:
        self.size = size
        self.sha256 = sha256
        self._opener = opener
        self._cached: tuple[int, bytes | None] | None = None

    @classmethod
    def from_bytes(cls, data: bytes) -> MemberBlob:
        return cls(len(data), hashlib.sha256(data).hexdigest(), lambda: io.BytesIO(data))

    def open(self) -> IO[bytes]:
        return self._opener()

    def read_capped(self, limit: int) -> bytes | None:
        """The whole member, or ``None`` when it is larger than ``limit`` bytes."""
        if self._cached is not None and self._cached[0] == limit:
            return self._cached[1]
        data: bytes | None = None
        if self.size <= limit:
            with self.open() as stream:
                # read(n) reserves n bytes up front: ask for the declared size, not the cap.
                data = stream.read(self.size + 1)
            if len(data) > limit:
                data = None
        self._cached = (limit, data)
        return data

    def head(self, count: int) -> bytes:
        """The first ``count`` bytes at most (enough to sniff a magic number or an encoding)."""
        with self.open() as stream:
            return stream.read(count)

    def describe(self) -> str:
        """Size and hash, as shown beside a divergence."""
        return f"{self.size:,} bytes, sha256 {self.sha256}"


@dataclass(frozen=True)
class MemberPair:
    """A member present in both wheels whose bytes differ."""

    name: str
    kind: MemberKind
    published: MemberBlob
    rebuilt: MemberBlob
    max_text_bytes: int = 4 * MiB
    max_diff_lines: int = 200
    # File names in the published wheel's top-level ``<pkg>.libs/`` (auditwheel's grafts).
    published_libs: frozenset[str] = frozenset()


class MemberAnalyser(Protocol):
    """Explains how the two sides of a differing member differ.

    Must return at least one divergence: the bytes do differ, and an empty answer would hide it
    (the comparison guards against that anyway).
    """

    @property
    def name(self) -> str: ...

    @property
    def kinds(self) -> frozenset[MemberKind]: ...

    def analyse(self, pair: MemberPair) -> list[Divergence]: ...


def analyser_for(kind: MemberKind, analysers: Sequence[MemberAnalyser]) -> MemberAnalyser | None:
    """The first analyser that handles ``kind``: earlier entries take precedence."""
    for analyser in analysers:
        if kind in analyser.kinds:
            return analyser
    return None


class LazyAnalyser:
    """An analyser whose module is imported the first time a member of its kind differs.

    The ELF stack (pyelftools, capstone) costs about a tenth of a second to import: most
    comparisons (pure-Python wheels, identical extensions) never need it.
    """

    def __init__(self, module: str, cls: str, name: str, kinds: frozenset[MemberKind]) -> None:
        self._where = (module, cls)
        self._loaded: MemberAnalyser | None = None
        self.name = name
        self.kinds = kinds

    def load(self) -> MemberAnalyser:
        if self._loaded is None:
            module, cls = self._where
            analyser: MemberAnalyser = getattr(importlib.import_module(module), cls)()
            self._loaded = analyser
        return self._loaded

    def analyse(self, pair: MemberPair) -> list[Divergence]:
        return self.load().analyse(pair)


def _defaults() -> tuple[MemberAnalyser, ...]:
    # Imported here: the implementations import this module for the interface.
    from rebuild.compare.analysers.metadata import MetadataAnalyser
    from rebuild.compare.analysers.text import TextAnalyser

    here = "rebuild.compare.analysers"
    return (
        MetadataAnalyser(),
        TextAnalyser(),
        LazyAnalyser(f"{here}.elf", "ElfAnalyser", "elf", frozenset({MemberKind.ELF})),
        LazyAnalyser(
            f"{here}.bytecode", "BytecodeAnalyser", "bytecode", frozenset({MemberKind.BYTECODE})
        ),
        LazyAnalyser(
            f"{here}.archive",
            "StaticLibraryAnalyser",
            "static-library",
            frozenset({MemberKind.STATIC_LIBRARY}),
        ),
    )


# Other binary members have no analyser: they fall back to sizes and hashes and are listed as
# unanalysed (see rebuild.compare.analysers.binary).
DEFAULT_ANALYSERS: tuple[MemberAnalyser, ...] = _defaults()

__all__ = [
    "DEFAULT_ANALYSERS",
    "LazyAnalyser",
    "MemberAnalyser",
    "MemberBlob",
    "MemberKind",
    "MemberPair",
    "analyser_for",
]
