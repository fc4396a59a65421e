"""The compare stage: a published wheel against its rebuild, down to a verdict.

Cheap first, deep second: the whole files are hashed; then each wheel is checked on its own (zip
integrity, RECORD against the members); then the zip containers are compared, every member is
hashed once, and only the members whose bytes differ reach an analyser. Explanations are applied
last, from the rules in :mod:`rebuild.compare.rules`.

The verdict errs one way only: a wheel is called reproducible or equivalent only when that is
true. Any difference no compared field accounts for is still reported, unexplained.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from rebuild.compare.analysers import DEFAULT_ANALYSERS, MemberAnalyser
from rebuild.compare.compressed import CompressedCheck, check_compressed
from rebuild.compare.installed import compare_installed, installed_trees
from rebuild.compare.members import (
    CHUNK,
    HashedWheel,
    compare_members,
    grafted_libraries,
    hash_wheels,
)
from rebuild.compare.record import MemberFacts, check_record, find_record, parse_record
from rebuild.compare.rules import explain
from rebuild.compare.ziplayer import Entry, WheelArchive, compare_containers, integrity_findings
from rebuild.errors import ArchiveError
from rebuild.models import (
    Comparison,
    Divergence,
    DivergenceKind,
    Layer,
    Side,
    WheelInfo,
)
from rebuild.verdict import decide

MiB = 1024 * 1024
GiB = 1024 * MiB


@dataclass(frozen=True)
class CompareLimits:
    """Bounds on what a comparison reads, so that a hostile wheel cannot exhaust the machine."""

    max_members: int = 200_000
    max_total_uncompressed: int = 16 * GiB
    # A member above ``ratio_floor`` bytes that expands more than this is treated as a bomb.
    # Deflate cannot exceed about 1032:1, and real wheels get close (zero-filled test data):
    # the limit sits just above, so it stops only what honest deflate cannot produce.
    max_member_ratio: int = 1100
    ratio_floor: int = MiB
    max_text_bytes: int = 4 * MiB  # per side, for a diff
    max_diff_lines: int = 200
    max_name_length: int = 1024
    max_record_bytes: int = 64 * MiB
    # A differing member larger than this (on either side) is compared by its streamed hash and
    # size only, and listed as unanalysed: analysers hold a member whole, several copies of it.
    max_analysed_bytes: int = 256 * MiB


@dataclass(frozen=True)
class _Inspected:
    hashed: HashedWheel
    findings: list[Divergence]
    info: WheelInfo


def _file_digest(path: Path) -> tuple[str, int]:
    sha = hashlib.sha256()
    size = 0
    try:
        with path.open("rb") as stream:
            while chunk := stream.read(CHUNK):
                sha.update(chunk)
                size += len(chunk)
    except OSError as e:
        raise ArchiveError(
            f"{path.name}: cannot be read: {e.strerror or e}", hint="check the path"
        ) from e
    return sha.hexdigest(), size


def _record_of(archive: WheelArchive) -> tuple[str | None, list[str]]:
    return find_record((e.name for e in archive.entries), archive.path.name)


def _inspect(
    hashed: HashedWheel,
    side: Side,
    limits: CompareLimits,
    digest: tuple[str, int],
) -> _Inspected:
    """Collect the findings about one hashed wheel alone (names, RECORD)."""
    archive = hashed.archive
    sha256, size = digest
    findings = integrity_findings(archive, side, limits.max_name_length)
    record_name, problems = _record_of(archive)
    findings.extend(
        Divergence(kind=DivergenceKind.RECORD_MISMATCH, summary=problem, side=side)
        for problem in problems
    )
    if record_name is not None:
        if hashed.captured is None:
            findings.append(
                Divergence(
                    kind=DivergenceKind.RECORD_MISMATCH,
                    summary=f"RECORD is over {limits.max_record_bytes:,} bytes; not checked",
                    member=record_name,
                    side=side,
                )
            )
        else:
            parsed = parse_record(hashed.captured, max_rows=limits.max_members + 1)
            facts = [
                MemberFacts(e.name, hashed.digests[e.key].sha256, hashed.digests[e.key].size)
                for e in archive.entries
            ]
            findings.extend(check_record(record_name, parsed, facts, side))
    info = WheelInfo(archive.path.name, sha256, size, len(archive.entries))
    return _Inspected(hashed, findings, info)


def _finding_key(d: Divergence) -> tuple[object, ...]:
    # A finding over several entries (installed paths) is the same finding on both wheels when
    # it is about the same entries: its detail may name each wheel's own bytes.
    return (d.kind, d.member, d.summary, d.entries or d.detail)


def _merge_findings(published: list[Divergence], rebuilt: list[Divergence]) -> list[Divergence]:
    """One finding per side, or one for both when the two wheels have it identically."""
    unmatched = Counter(_finding_key(d) for d in rebuilt)
    merged: list[Divergence] = []
    for finding in published:
        key = _finding_key(finding)
        if unmatched[key] > 0:
            unmatched[key] -= 1
            merged.append(replace(finding, side=Side.BOTH))
        else:
            merged.append(finding)
    shared = Counter(_finding_key(d) for d in merged if d.side is Side.BOTH)
    for finding in rebuilt:
        key = _finding_key(finding)
        if shared[key] > 0:
            shared[key] -= 1
        else:
            merged.append(finding)
    return merged


_LAYER_RANK = {Layer.MEMBER: 0, Layer.INTEGRITY: 1, Layer.CONTAINER: 2}


def _review_order(d: Divergence) -> tuple[bool, bool, int, str]:
    # A file that runs by itself and differs is named before anything else.
    runs = d.kind is DivergenceKind.RUNS_ON_ITS_OWN
    return (d.explained, not runs, _LAYER_RANK[d.layer], d.member or "")


SPOOL_BYTES = 8 * 1024 * 1024  # kept in memory while reading one object's DT_NEEDED


def _loaded_libraries(hashed: HashedWheel, found: Sequence[Divergence]) -> frozenset[str]:
    """What the published wheel's shared objects load (DT_NEEDED), when a graft needs checking.

    Asked only if a library sits in a ``<pkg>.libs/`` folder of the published wheel alone: a
    library auditwheel grafted is one some shared object of the wheel needs. Each object's
    DT_NEEDED was read from its dynamic segment while it was hashed; an object that could not be
    read so (an unusual layout) is read again here, with the full ELF reader.
    """
    if not any(
        d.kind is DivergenceKind.ONLY_PUBLISHED and grafted_libraries([d.member or ""])
        for d in found
    ):
        return frozenset()
    loaded: set[str] = set()
    archive = hashed.archive
    for entry in archive.entries:
        if entry.key not in hashed.needed:
            continue
        names = hashed.needed[entry.key]
        if names is None:
            names = _needed_read_again(archive, entry)
        loaded.update(names)
    return frozenset(loaded)


def _needed_read_again(archive: WheelArchive, entry: Entry) -> tuple[str, ...]:
    from rebuild.compare.elf_read import needed_of  # the ELF reader loads only when needed

    # Spooled, not read whole: past a few MiB the object goes to an unlinked temporary file,
    # and only its headers and dynamic section are read back.
    with (
        archive.open_member(entry) as stream,
        tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool,
    ):
        shutil.copyfileobj(stream, spool, CHUNK)
        return needed_of(spool)


MAX_WHEEL_FILE_BYTES = 64 * 1024  # a WHEEL file larger than this is not read for its Generator


def _generator_of(archive: WheelArchive) -> str | None:
    """The ``Generator:`` of the wheel's one ``*.dist-info/WHEEL``, for a reason's wording."""
    found = [
        e
        for e in archive.entries
        if e.name.partition("/")[0].endswith(".dist-info") and e.name.partition("/")[2] == "WHEEL"
    ]
    if len(found) != 1 or found[0].info.file_size > MAX_WHEEL_FILE_BYTES:
        return None
    with archive.open_member(found[0]) as stream:
        text = stream.read(MAX_WHEEL_FILE_BYTES + 1).decode("utf-8", "replace")
    for line in text.splitlines():
        name, colon, value = line.partition(":")
        if colon and name.strip().lower() == "generator":
            return value.strip()[:200] or None
    return None


def _say_why_not_paired(
    divergences: Sequence[Divergence], compressed: CompressedCheck
) -> list[Divergence]:
    """A published ``.gz`` whose pairing failed says why, for the reviewer (it stays
    unexplained)."""
    said: list[Divergence] = []
    for d in divergences:
        why = compressed.refused.get(d.member or "")
        if d.kind is DivergenceKind.ONLY_PUBLISHED and why is not None:
            d = replace(d, detail="\n".join(filter(None, (d.detail, why))))
        said.append(d)
    return said


def compare_wheels(
    published: Path,
    rebuilt: Path,
    *,
    limits: CompareLimits = CompareLimits(),
    analysers: Sequence[MemberAnalyser] | None = None,
) -> Comparison:
    """Compare a published wheel with its rebuild; raises ArchiveError for a malformed wheel."""
    chosen = DEFAULT_ANALYSERS if analysers is None else tuple(analysers)
    # Two threads: decompression and hashing release the GIL, so members are read on two
    # cores at once.
    with ThreadPoolExecutor(max_workers=2) as pool:
        pub_digest, reb_digest = pool.map(_file_digest, (published, rebuilt))
        with WheelArchive(published, limits) as pub_archive:
            if reb_digest[0] == pub_digest[0]:
                (hashed,) = hash_wheels(
                    [pub_archive],
                    capture=[_record_of(pub_archive)[0]],
                    capture_limit=limits.max_record_bytes,
                    pool=pool,
                )
                pub = _inspect(hashed, Side.PUBLISHED, limits, pub_digest)
                installed = compare_installed(hashed, None, ())
                pub.findings.extend(installed.published_findings)
                # The same bytes: the findings about one are the findings about both.
                return Comparison(
                    published=pub.info,
                    rebuilt=WheelInfo(rebuilt.name, *reb_digest, pub.info.members),
                    verdict=decide(pub.findings, identical_bytes=True),
                    divergences=tuple(
                        sorted(
                            (replace(f, side=Side.BOTH) for f in pub.findings), key=_review_order
                        )
                    ),
                    identical_members=pub.info.members,
                    autorun=installed.autorun,
                )
            with WheelArchive(rebuilt, limits) as reb_archive:
                pub_hashed, reb_hashed = hash_wheels(
                    [pub_archive, reb_archive],
                    capture=[_record_of(pub_archive)[0], _record_of(reb_archive)[0]],
                    capture_limit=limits.max_record_bytes,
                    pool=pool,
                )
                pub = _inspect(pub_hashed, Side.PUBLISHED, limits, pub_digest)
                reb = _inspect(reb_hashed, Side.REBUILT, limits, reb_digest)
                pub_digests, reb_digests = pub.hashed.digests, reb.hashed.digests
                container = compare_containers(
                    pub_archive,
                    reb_archive,
                    lambda key: pub_digests.get(key) == reb_digests.get(key),
                )
                members = compare_members(pub.hashed, reb.hashed, chosen, limits)
                loaded = _loaded_libraries(pub.hashed, members.divergences)
                # Modelled once: the installed comparison and the gzip pairs both read them.
                trees = (installed_trees(pub.hashed), installed_trees(reb.hashed))
                compressed = check_compressed(pub.hashed, reb.hashed, members.divergences, trees)
                # Read only when a reason may name it: every member is otherwise read once.
                generator = (
                    _generator_of(pub_archive)
                    if any(d.field is not None for d in members.divergences)
                    else None
                )
                # What pip and installer put on disk, compared path by path (installed.py).
                installed = compare_installed(
                    pub.hashed, reb.hashed, [*container, *members.divergences], trees
                )
    divergences = [
        *_merge_findings(pub.findings, reb.findings),
        *container,
        *_say_why_not_paired(members.divergences, compressed),
        *_merge_findings(list(installed.published_findings), list(installed.rebuilt_findings)),
        *installed.divergences,
    ]
    if not any(d.layer is not Layer.INTEGRITY or d.side is not Side.BOTH for d in divergences):
        # The files differ, yet no compared field does: say so rather than imply identity.
        divergences.append(
            Divergence(
                kind=DivergenceKind.ATTRIBUTES,
                summary="the files differ in bytes no compared field accounts for (data outside "
                "the entries, central directory layout)",
                published=f"{pub.info.size:,} bytes, sha256 {pub.info.sha256}",
                rebuilt=f"{reb.info.size:,} bytes, sha256 {reb.info.sha256}",
            )
        )
    divergences = explain(divergences, loaded=loaded, gzipped=compressed.pairs, generator=generator)
    return Comparison(
        published=pub.info,
        rebuilt=reb.info,
        verdict=decide(divergences),
        divergences=tuple(sorted(divergences, key=_review_order)),
        identical_members=members.identical,
        unanalysed=members.unanalysed,
        autorun=installed.autorun,
    )


__all__ = ["CompareLimits", "compare_wheels"]
