"""What an index said of a release, remembered for a while: a batch re-run asks it nothing.

A batch reuses a stored verdict when the release, its plan and the tool are the same. Knowing
that the release is the same means knowing which wheel the index serves for it, and asking that
for each of hundreds of releases costs a round trip each. The answer is kept here, under the
cache directory, and a batch takes it instead of asking while it is at most :data:`FRESH_FOR`
old; `rebuild batch --refresh` asks the index anyway.

What is remembered only ever *narrows* reuse: a verdict is reused only when the remembered wheel
is byte-for-byte (sha256) the one the verdict was reached on and the plan computed from the cached
files is the stored one. An entry that cannot be read, names another release, or comes from the
future is ignored, and the index is asked.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rebuild.models import DistFile, DistKind, Release, Target, WheelSelector
from rebuild.report import write_atomically

# A nightly batch asks the index again every night; a batch re-run the same working day (after a
# crash, a Ctrl-C, a change elsewhere in the input) does not.
FRESH_FOR = timedelta(hours=6)
FORMAT = 1


def cache_key(
    target: Target,
    selector: WheelSelector,
    index_urls: Sequence[str],
    hashes: Collection[str],
) -> str:
    """Everything that decides which wheel a check of ``target`` takes."""
    document = [
        FORMAT,
        str(target),
        [selector.python, selector.platform, selector.filename],
        list(index_urls),
        sorted(h.lower() for h in hashes),
    ]
    return hashlib.sha256(json.dumps(document).encode()).hexdigest()


def _path(root: Path, key: str) -> Path:
    return root / "releases" / f"{key}.json"


def remember(root: Path, key: str, release: Release, *, now: datetime | None = None) -> None:
    """Keep ``release`` under ``key``; best effort (a cache that cannot be written is no error)."""
    document = {
        "format": FORMAT,
        "seen": (now or datetime.now(UTC)).isoformat(),
        "release": _release_document(release),
    }
    try:
        write_atomically(_path(root, key), json.dumps(document))
    except OSError:
        return


def recall(
    root: Path,
    key: str,
    target: Target,
    *,
    fresh_for: timedelta = FRESH_FOR,
    now: datetime | None = None,
) -> tuple[Release, datetime] | None:
    """The release remembered under ``key`` and when the index said it, while fresh; else None."""
    now = now or datetime.now(UTC)
    try:
        document = json.loads(_path(root, key).read_text(encoding="utf-8"))
        if document["format"] != FORMAT:
            return None
        seen = datetime.fromisoformat(document["seen"])
        release = _release(document["release"])
    except (OSError, ValueError, KeyError, IndexError, TypeError, AttributeError):
        return None  # unreadable or of another shape: ask the index
    if seen.tzinfo is None or not (now - fresh_for <= seen <= now):
        return None
    if release.target != target:
        return None
    return release, seen


def _release_document(release: Release) -> dict[str, Any]:
    return {
        "target": [release.target.name, release.target.version],
        "index_url": release.index_url,
        "selector": [release.selector.python, release.selector.platform, release.selector.filename],
        "files": [_file_document(f) for f in release.files],
        "wheel": None if release.wheel is None else release.files.index(release.wheel),
        "sdist": None if release.sdist is None else release.files.index(release.sdist),
        "project_urls": [list(pair) for pair in release.project_urls],
    }


def _file_document(file: DistFile) -> dict[str, Any]:
    return {
        "filename": file.filename,
        "url": file.url,
        "sha256": file.sha256,
        "kind": file.kind.value,
        "size": file.size,
        "upload_time": None if file.upload_time is None else file.upload_time.isoformat(),
        "yanked": file.yanked,
        "yanked_reason": file.yanked_reason,
        "requires_python": file.requires_python,
        "metadata_sha256": file.metadata_sha256,
        "provenance_url": file.provenance_url,
    }


def _release(document: dict[str, Any]) -> Release:
    name, version = document["target"]
    python, platform, filename = document["selector"]
    files = tuple(_file(f) for f in document["files"])
    wheel, sdist = document["wheel"], document["sdist"]
    return Release(
        target=Target(_text(name), _text(version)),
        index_url=_text(document["index_url"]),
        selector=WheelSelector(python=python, platform=platform, filename=filename),
        files=files,
        wheel=None if wheel is None else _of_kind(files, wheel, DistKind.WHEEL),
        sdist=None if sdist is None else _of_kind(files, sdist, DistKind.SDIST),
        project_urls=tuple((_text(label), _text(url)) for label, url in document["project_urls"]),
    )


def _of_kind(files: tuple[DistFile, ...], index: object, kind: DistKind) -> DistFile:
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(files):
        raise ValueError("no such file")
    if files[index].kind is not kind:
        raise ValueError(f"not a {kind.value}")
    return files[index]


def _file(document: dict[str, Any]) -> DistFile:
    uploaded = document["upload_time"]
    size = document["size"]
    if size is not None and not isinstance(size, int):
        raise TypeError("size")
    return DistFile(
        filename=_text(document["filename"]),
        url=_text(document["url"]),
        sha256=_text(document["sha256"]),
        kind=DistKind(document["kind"]),
        size=size,
        upload_time=None if uploaded is None else datetime.fromisoformat(uploaded),
        yanked=bool(document["yanked"]),
        yanked_reason=document["yanked_reason"],
        requires_python=document["requires_python"],
        metadata_sha256=document["metadata_sha256"],
        provenance_url=document["provenance_url"],
    )


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError("expected a string")
    return value
