"""Members: hashing each wheel's members once, pairing them, and analysing the ones that differ.

Every member is hashed as a stream (1 MiB at a time, never read whole); the hashes serve both the
RECORD check and the comparison. Only members whose bytes differ are classified by kind and handed
to the analyser for that kind; a kind no analyser handles falls back to sizes and hashes and is
listed as unanalysed.
"""

from __future__ import annotations

import codecs
import collections
import contextlib
import functools
import hashlib
import os
import pickle
import re
import subprocess
import sys
import threading
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from rebuild.compare.analysers import (
    MemberAnalyser,
    MemberBlob,
    MemberKind,
    MemberPair,
    analyser_for,
)
from rebuild.compare.analysers.binary import FALLBACK
from rebuild.compare.elf_needed import NeededReader
from rebuild.compare.ziplayer import Entry, MemberKey, WheelArchive
from rebuild.errors import ArchiveError
from rebuild.models import Divergence, DivergenceKind, Side

if TYPE_CHECKING:
    from rebuild.compare import CompareLimits

CHUNK = 1024 * 1024
_SNIFF = 8192  # bytes read to tell text from binary when a member is too large to read whole
_ELF_MAGIC = b"\x7fELF"
_AR_MAGIC = b"!<arch>\n"
SHARED_OBJECT = re.compile(r"\.so(\.[0-9][0-9.]*)?$")
MAX_NEEDED_BYTES = 512 * 1024 * 1024  # a shared object larger than this is not read for DT_NEEDED


@dataclass(frozen=True)
class MemberDigest:
    sha256: bytes
    size: int


@dataclass(frozen=True)
class HashedWheel:
    """A wheel's archive with the hash of every member."""

    archive: WheelArchive
    digests: Mapping[MemberKey, MemberDigest]
    # The bytes of the member named by ``hash_members(capture=...)``, kept while hashing it;
    # None if absent or over its cap.
    captured: bytes | None
    # The DT_NEEDED of each shared object (by name, see SHARED_OBJECT), read from its dynamic
    # segment while it was hashed; None for an object that must be read again to know.
    needed: Mapping[MemberKey, tuple[str, ...] | None] = field(default_factory=dict)


@dataclass(frozen=True)
class _Hashed:
    digest: MemberDigest
    captured: bytes | None
    needed: tuple[str, ...] | None


def _hash_entry(
    archive: WheelArchive, entry: Entry, keep_limit: int | None, needed: NeededReader | None
) -> _Hashed:
    """One member's sha256 and size, streamed; its bytes too when ``keep_limit`` is set, and
    its DT_NEEDED when given a reader for them."""
    kept: list[bytes] = []
    kept_size = 0
    sha = hashlib.sha256()
    size = 0
    with archive.open_member(entry) as stream:
        while chunk := stream.read(CHUNK):
            sha.update(chunk)
            size += len(chunk)
            if needed is not None:
                needed.feed(chunk)
            if keep_limit is not None:
                kept_size += len(chunk)
                if kept_size <= keep_limit:
                    kept.append(chunk)
    captured = b"".join(kept) if keep_limit is not None and kept_size <= keep_limit else None
    return _Hashed(MemberDigest(sha.digest(), size), captured, needed.result() if needed else None)


def reads_needed(entry: Entry) -> bool:
    """Whether a published member is a shared object whose DT_NEEDED the graft check may ask."""
    return bool(SHARED_OBJECT.search(entry.name)) and entry.info.file_size <= MAX_NEEDED_BYTES


def _same_stored_bytes(pub: WheelArchive, reb: WheelArchive) -> dict[MemberKey, Entry]:
    """Rebuilt entries whose stored bytes are the published entry's: decompressed once."""
    published = {e.key: e for e in pub.entries}
    shared: dict[MemberKey, Entry] = {}
    for entry in reb.entries:
        twin = published.get(entry.key)
        if twin is None or any(
            getattr(twin.info, field) != getattr(entry.info, field)
            for field in ("compress_type", "compress_size", "file_size", "CRC")
        ):
            continue
        if pub.raw_sha256(twin) == reb.raw_sha256(entry):
            shared[entry.key] = twin
    return shared


def hash_wheels(
    archives: Sequence[WheelArchive],
    *,
    capture: Sequence[str | None],
    capture_limit: int,
    pool: Executor,
) -> list[HashedWheel]:
    """Hash every member of each wheel once, on the pool, keeping each wheel's ``capture``.

    A rebuilt member whose stored bytes equal the published one's is not decompressed again:
    the same compressed stream under the same method yields the same bytes.
    """
    shared = _same_stored_bytes(archives[0], archives[1]) if len(archives) == 2 else {}
    jobs: list[tuple[int, Entry]] = []
    for side, archive in enumerate(archives):
        jobs.extend((side, e) for e in archive.entries if side == 0 or e.key not in shared)
    # Largest first, so that two workers finish close together.
    jobs.sort(key=lambda job: job[1].info.file_size, reverse=True)

    def run(job: tuple[int, Entry]) -> _Hashed:
        side, entry = job
        keep = entry.name == capture[side] and entry.occurrence == 0
        # The published side's shared objects: what they load is read as they stream past.
        needed = NeededReader() if side == 0 and reads_needed(entry) else None
        return _hash_entry(archives[side], entry, capture_limit if keep else None, needed)

    digests: list[dict[MemberKey, MemberDigest]] = [{} for _ in archives]
    captured: list[bytes | None] = [None for _ in archives]
    needed: dict[MemberKey, tuple[str, ...] | None] = {}
    for (side, entry), hashed in zip(jobs, pool.map(run, jobs), strict=True):
        digests[side][entry.key] = hashed.digest
        if hashed.captured is not None:
            captured[side] = hashed.captured
        if side == 0 and reads_needed(entry):
            needed[entry.key] = hashed.needed
    if len(archives) == 2:
        for key, twin in shared.items():
            digests[1][key] = digests[0][twin.key]
            if key[0] == capture[1] and key[1] == 0 and capture[1] == capture[0]:
                captured[1] = captured[0]
    return [
        HashedWheel(archive, digests[side], captured[side], needed if side == 0 else {})
        for side, archive in enumerate(archives)
    ]


def _is_text(blob: MemberBlob, limit: int) -> bool:
    data = blob.read_capped(limit)
    whole = data is not None
    if data is None:
        data = blob.head(_SNIFF)
    if b"\x00" in data:
        return False
    try:
        # A sniffed head may end inside a character: only a whole member must end cleanly.
        codecs.getincrementaldecoder("utf-8")().decode(data, final=whole)
    except UnicodeDecodeError:
        return False
    return True


def classify(name: str, published: MemberBlob, rebuilt: MemberBlob, text_limit: int) -> MemberKind:
    """The kind of a member that differs, from its name and both sides' bytes."""
    top, _, rest = name.partition("/")
    if top.endswith(".dist-info") and rest == "RECORD":
        return MemberKind.RECORD
    if name.endswith((".py", ".pyi")):
        return MemberKind.PYTHON
    if name.endswith(".pyc"):
        return MemberKind.BYTECODE
    if _AR_MAGIC in (published.head(len(_AR_MAGIC)), rebuilt.head(len(_AR_MAGIC))):
        return MemberKind.STATIC_LIBRARY
    if _ELF_MAGIC in (published.head(len(_ELF_MAGIC)), rebuilt.head(len(_ELF_MAGIC))):
        return MemberKind.ELF
    if _is_text(published, text_limit) and _is_text(rebuilt, text_limit):
        return MemberKind.DIST_INFO if top.endswith(".dist-info") and rest else MemberKind.TEXT
    return MemberKind.BINARY


def grafted_libraries(names: Iterable[str]) -> frozenset[str]:
    """The file names in top-level ``<pkg>.libs/`` folders, where auditwheel grafts libraries."""
    found = set()
    for name in names:
        top, _, rest = name.partition("/")
        if top.endswith(".libs") and rest and "/" not in rest:
            found.add(rest)
    return frozenset(found)


@dataclass(frozen=True)
class MemberComparison:
    divergences: tuple[Divergence, ...]
    identical: int  # members whose bytes match
    unanalysed: tuple[str, ...]  # "lib/_x.so (elf)"


def _blob(wheel: HashedWheel, entry: Entry) -> MemberBlob:
    digest = wheel.digests[entry.key]
    return MemberBlob(
        digest.size, digest.sha256.hex(), functools.partial(wheel.archive.open_member, entry)
    )


def _one_side(wheel: HashedWheel, key: MemberKey, label: str, side: Side) -> Divergence:
    digest = wheel.digests[key]
    described = f"{digest.size:,} bytes, sha256 {digest.sha256.hex()}"
    if key[0].endswith("/") and digest.size == 0:
        # An empty directory entry installs nothing: installers make directories from paths.
        return Divergence(
            kind=DivergenceKind.DIRECTORY_ENTRY,
            summary=f"directory entry only in the {side.value} wheel",
            member=label,
            side=side,
        )
    return Divergence(
        kind=(
            DivergenceKind.ONLY_PUBLISHED if side is Side.PUBLISHED else DivergenceKind.ONLY_REBUILT
        ),
        summary=f"only in the {side.value} wheel ({digest.size:,} bytes)",
        member=label,
        side=side,
        published=described if side is Side.PUBLISHED else None,
        rebuilt=described if side is Side.REBUILT else None,
    )


def _analyse(analyser: MemberAnalyser, pair: MemberPair) -> tuple[list[Divergence], bool]:
    """The analyser's divergences and True; if it fails, the bytes' divergence and False.

    A bug in one analyser must not lose a check whose build took minutes: the member is reported
    unexplained, naming the failure, and everything else is still compared.
    """
    try:
        return analyser.analyse(pair), True
    except Exception as e:  # noqa: BLE001 - contained and reported, never silent
        return _unanalysed(
            pair, f"the {analyser.name} analyser failed ({_why(e)}), which is a bug in rebuild"
        )


def _unanalysed(pair: MemberPair, failure: str) -> tuple[list[Divergence], bool]:
    """The member's bytes' divergence, unexplained, saying why no analysis stands for it."""
    (fallback,) = FALLBACK.analyse(pair)
    return [replace(fallback, summary=f"{fallback.summary}; {failure}")], False


def _why(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:300]


def _too_large(label: str, published: MemberBlob, rebuilt: MemberBlob, limit: int) -> Divergence:
    """A differing member over the analysis limit: its streamed hashes and sizes, unexplained."""
    return Divergence(
        kind=DivergenceKind.CONTENT,
        summary=f"content differs; {max(published.size, rebuilt.size):,} bytes is over the "
        f"{limit:,}-byte analysis limit, so only the hashes were compared (not analysed)",
        member=label,
        published=published.describe(),
        rebuilt=rebuilt.describe(),
        analyser=FALLBACK.name,
    )


# Kinds whose analysis holds the GIL for seconds (decoding machine code, unmarshalling
# bytecode): worth a process of their own when the member is large enough to pay for one.
APART_KINDS = frozenset({MemberKind.ELF, MemberKind.BYTECODE, MemberKind.STATIC_LIBRARY})
APART_MIN_BYTES = 256 * 1024
MAX_APART_WORKERS = 2  # one per core here; each holds at most one pair of members whole


@dataclass(frozen=True)
class _Side:
    """One side of a member, as a worker process finds it again: picklable, unlike a blob."""

    path: Path
    key: MemberKey
    size: int
    sha256: str


@dataclass(frozen=True)
class _Task:
    """A differing member analysed in a worker process: everything in it pickles."""

    label: str
    kind: MemberKind
    published: _Side
    rebuilt: _Side
    limits: CompareLimits
    grafted: frozenset[str]
    analyser: MemberAnalyser


_OPENED: dict[Path, WheelArchive] = {}  # in a worker: each wheel opened once, for its lifetime


def _reread(side: _Side, limits: CompareLimits) -> MemberBlob:
    """The member's bytes, read whole in the worker and checked against the parent's hash: the
    worker must analyse the bytes that were hashed, not what the path holds now."""
    archive = _OPENED.get(side.path)
    if archive is None:
        archive = _OPENED[side.path] = WheelArchive(side.path, limits)
    entry = next(e for e in archive.entries if e.key == side.key)
    with archive.open_member(entry) as stream:
        data = stream.read(side.size + 1)
    blob = MemberBlob.from_bytes(data)
    if blob.size != side.size or blob.sha256 != side.sha256:
        raise ArchiveError(f"{side.path.name}: {entry.label!r} changed while it was compared")
    return blob


def analyse_apart(task: _Task) -> tuple[list[Divergence], bool]:
    """:func:`_analyse` in a worker process (:mod:`rebuild.compare.worker`)."""
    limits = task.limits
    pair = MemberPair(
        task.label,
        task.kind,
        _reread(task.published, limits),
        _reread(task.rebuilt, limits),
        limits.max_text_bytes,
        limits.max_diff_lines,
        task.grafted,
    )
    return _analyse(task.analyser, pair)


class _WorkerFailed(Exception):
    """The worker process died, or answered with an error."""


class _Worker:
    """One worker process, fed one task at a time."""

    def __init__(self) -> None:
        # The same interpreter and import path as ours: the analysers must unpickle there.
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "rebuild.compare.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )

    def run(self, task: _Task) -> tuple[list[Divergence], bool]:
        from rebuild.compare.worker import read_message, write_message

        assert self.process.stdin is not None and self.process.stdout is not None  # noqa: S101
        try:
            write_message(self.process.stdin, pickle.dumps(task))
        except OSError as e:
            raise _WorkerFailed(f"the worker process cannot be reached: {e}") from e
        message = read_message(self.process.stdout)
        if message is None:
            code = self.process.wait()
            raise _WorkerFailed(f"the worker process ended (exit {code})")
        status, value = pickle.loads(message)  # noqa: S301 - our own worker's answer
        if status != "ok":
            raise _WorkerFailed(str(value))
        return value  # type: ignore[no-any-return]

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def close(self) -> None:
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


def _apart_failed(
    analyser: MemberAnalyser, pair: MemberPair, error: BaseException
) -> tuple[list[Divergence], bool]:
    """A worker that crashed or could not be reached: the member is unexplained, never passed."""
    return _unanalysed(
        pair, f"the {analyser.name} analysis in a worker process failed ({_why(error)})"
    )


def _picklable(analyser: MemberAnalyser) -> bool:
    try:
        pickle.dumps(analyser)
    except (pickle.PicklingError, TypeError, AttributeError):
        return False
    return True


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@dataclass
class _Pending:
    """A differing member waiting for its analyser; ``task`` set when it runs apart."""

    analyser: MemberAnalyser
    pair: MemberPair
    task: _Task | None = None
    result: tuple[list[Divergence], bool] | None = None


def _run_pending(pending: list[_Pending]) -> None:
    """Analyse every pending member: the large ones of the GIL-holding kinds in up to two worker
    processes (largest first), the rest here meanwhile. Results keep their slots, so the order
    is the serial path's whatever finishes first."""
    apart = [p for p in pending if p.task is not None] if _cores() >= 2 else []
    apart.sort(key=lambda p: -max(p.pair.published.size, p.pair.rebuilt.size))
    queue = collections.deque(apart)
    lock = threading.Lock()

    def drain() -> None:
        worker: _Worker | None = None
        try:
            while True:
                with lock:
                    if not queue:
                        return
                    item = queue.popleft()
                assert item.task is not None  # noqa: S101 - only tasks are queued
                try:
                    if worker is None or not worker.alive:
                        worker = _Worker()
                    item.result = worker.run(item.task)
                except (_WorkerFailed, OSError, pickle.UnpicklingError, EOFError) as e:
                    # Fail closed: this member is unexplained; the next one gets a new worker.
                    item.result = _apart_failed(item.analyser, item.pair, e)
                    if worker is not None:
                        worker.close()
                        worker = None
        finally:
            if worker is not None:
                worker.close()

    threads = [
        threading.Thread(target=drain, name="rebuild-compare-apart", daemon=True)
        for _ in range(min(MAX_APART_WORKERS, len(apart)))
    ]
    for thread in threads:
        thread.start()
    try:
        chosen = {id(item) for item in apart}
        for item in pending:
            if id(item) not in chosen:
                item.result = _analyse(item.analyser, item.pair)
    finally:
        for thread in threads:
            thread.join()
    for item in apart:
        if item.result is None:
            item.result = _apart_failed(item.analyser, item.pair, _WorkerFailed("no answer"))


def compare_members(
    pub: HashedWheel,
    reb: HashedWheel,
    analysers: Sequence[MemberAnalyser],
    limits: CompareLimits,
) -> MemberComparison:
    """Member-layer divergences, in published order then the rebuilt wheel's extra members."""
    # Each slot: the divergences found, or a member still to analyse; and what it leaves
    # unanalysed, so that both lists keep the published order whatever runs where.
    slots: list[tuple[list[Divergence] | _Pending, list[str]]] = []
    identical = 0
    rebuilt_entries = {e.key: e for e in reb.archive.entries}
    published_keys = {e.key for e in pub.archive.entries}
    grafted = grafted_libraries(e.name for e in pub.archive.entries)
    picklable: dict[int, bool] = {}
    for entry in pub.archive.entries:
        other = rebuilt_entries.get(entry.key)
        if other is None:
            slots.append(([_one_side(pub, entry.key, entry.label, Side.PUBLISHED)], []))
            continue
        if pub.digests[entry.key] == reb.digests[entry.key]:
            identical += 1
            continue
        published, rebuilt = _blob(pub, entry), _blob(reb, other)
        largest = max(published.size, rebuilt.size)
        if largest > limits.max_analysed_bytes:
            too_large = _too_large(entry.label, published, rebuilt, limits.max_analysed_bytes)
            slots.append(([too_large], [f"{entry.label} (too large)"]))
            continue
        kind = classify(entry.name, published, rebuilt, limits.max_text_bytes)
        pair = MemberPair(
            entry.label,
            kind,
            published,
            rebuilt,
            limits.max_text_bytes,
            limits.max_diff_lines,
            grafted,
        )
        analyser = analyser_for(kind, analysers)
        notes = []
        if analyser is None:
            analyser = FALLBACK
            notes.append(f"{entry.label} ({kind.value})")
        item = _Pending(analyser, pair)
        if kind in APART_KINDS and largest >= APART_MIN_BYTES and analyser is not FALLBACK:
            if id(analyser) not in picklable:
                picklable[id(analyser)] = _picklable(analyser)
            if picklable[id(analyser)]:
                item.task = _Task(
                    entry.label,
                    kind,
                    _Side(pub.archive.path, entry.key, published.size, published.sha256),
                    _Side(reb.archive.path, other.key, rebuilt.size, rebuilt.sha256),
                    limits,
                    grafted,
                    analyser,
                )
        slots.append((item, notes))
    _run_pending([slot for slot, _ in slots if isinstance(slot, _Pending)])
    found: list[Divergence] = []
    unanalysed: list[str] = []
    for slot, notes in slots:
        unanalysed.extend(notes)
        if not isinstance(slot, _Pending):
            found.extend(slot)
            continue
        assert slot.result is not None  # noqa: S101 - every pending member was run
        divergences, analysed = slot.result
        kind = slot.pair.kind
        if not analysed:
            unanalysed.append(f"{slot.pair.name} ({kind.value})")
        elif not divergences:
            # The bytes differ: an analyser that finds nothing must not make that disappear.
            divergences = FALLBACK.analyse(slot.pair)
            unanalysed.append(f"{slot.pair.name} ({kind.value})")
        found.extend(divergences)
    for entry in reb.archive.entries:
        if entry.key not in published_keys:
            found.append(_one_side(reb, entry.key, entry.label, Side.REBUILT))
    return MemberComparison(tuple(found), identical, tuple(unanalysed))
