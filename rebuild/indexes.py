"""Several indexes at once, as pip reads ``--index-url`` with ``--extra-index-url``.

pip merges what every index serves and installs the best candidate from any of them: a release
that both a private index and a public one serve can be installed from either (the dependency
confusion attack). A check verifies one wheel, so :func:`resolve_across` picks the index the
release comes from — the first that has it, in the order given, or the one serving a wheel a
lock's hashes name — and asks every other index too, so that the report says when another one
serves the same release with other files, which pip might install instead.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from rebuild.errors import ResolveError, UnreachableError
from rebuild.index import IndexClient, checked_index_url
from rebuild.models import DistKind, Release, Target, WheelSelector


def choose_extra_index_urls(explicit: Sequence[str] = ()) -> tuple[str, ...]:
    """``--extra-index-url`` values, else ``$PIP_EXTRA_INDEX_URL`` (space separated, as pip)."""
    urls = list(explicit) or os.environ.get("PIP_EXTRA_INDEX_URL", "").split()
    return tuple(dict.fromkeys(checked_index_url(url) for url in urls))


@dataclass(frozen=True)
class Resolved:
    """The release as the chosen index serves it, and what the other indexes said."""

    index: IndexClient
    release: Release
    notes: tuple[str, ...] = ()


def resolve_across(
    index_urls: Sequence[str],
    target: Target,
    selector: WheelSelector,
    *,
    hashes: Collection[str] = (),
) -> Resolved:
    """``target`` resolved on the first of ``index_urls`` that has it (the primary index first).

    With ``hashes`` (a lock's), an index serving a wheel they name wins over the order. When no
    index has the release, the primary's answer is raised. An extra index that cannot be
    reached is a note: pip would go on without it, and the check can still verify the wheel.
    """
    primary, *extras = index_urls
    found: list[Resolved] = []
    errors: list[ResolveError] = []
    unreachable: list[str] = []
    for url in index_urls:
        client = IndexClient(url)
        try:
            found.append(Resolved(client, client.resolve(target, selector)))
        except UnreachableError:
            if url == primary:
                raise
            unreachable.append(url)
        except ResolveError as e:
            errors.append(e)
    if not found:
        # The primary raised if it was unreachable: it answered, so errors holds its answer.
        first_error = errors[0]
        if not extras:
            raise first_error
        raise ResolveError(
            f"{first_error.message} (nor on the {len(extras)} extra index(es): "
            f"{', '.join(extras)})",
            hint=first_error.hint,
        ) from first_error
    chosen = next((r for r in found if _serves_locked_wheel(r.release, hashes)), found[0])
    notes = [
        f"{target} is not on {primary}: verified from the extra index {chosen.index.index_url}"
        if chosen.index.index_url != primary
        else None,
        *(_other_files(chosen.release, other.release) for other in found if other is not chosen),
        *(
            f"the extra index {url} could not be reached: it was not compared"
            for url in unreachable
        ),
    ]
    return Resolved(chosen.index, chosen.release, tuple(n for n in notes if n))


def _serves_locked_wheel(release: Release, hashes: Collection[str]) -> bool:
    return any(f.kind is DistKind.WHEEL and f.sha256 in hashes for f in release.files)


def _other_files(chosen: Release, other: Release) -> str:
    mine = {f.filename: f.sha256 for f in chosen.files}
    theirs = {f.filename: f.sha256 for f in other.files}
    differ = sorted(n for n in mine.keys() & theirs.keys() if mine[n] != theirs[n])
    extra = sorted(theirs.keys() - mine.keys())
    if not differ and not extra:
        return f"{other.index_url} serves {chosen.target} too, with none but the same files"
    parts = (
        [f"{len(differ)} file(s) of the same name with other bytes ({', '.join(differ[:3])})"]
        if differ
        else []
    )
    if extra:
        parts.append(f"{len(extra)} file(s) {chosen.index_url} lacks ({', '.join(extra[:3])})")
    what = "; ".join(parts)
    return (
        f"WARNING: {other.index_url} also serves {chosen.target}, with {what}: pip, which merges "
        f"the indexes, may install those instead; this check verified {chosen.index_url}'s"
    )
