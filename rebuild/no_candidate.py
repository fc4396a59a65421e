"""Which build requirement has no candidate as of an instant, and why, in the index's terms.

When uv finds no resolution, its reason is phrased in version ranges: a project the index does
not serve at all reads "only python-sbom[hatch]<0.1.2 is available", as if older releases
existed. Asked only after a resolution failed, the index itself says which of the requirements
named directly, and needed in the container, has nothing to offer: no such project, no release
in the range, or releases in the range all uploaded after the instant the build is resolved as
of.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from packaging.markers import InvalidMarker, Marker, UndefinedComparison, UndefinedEnvironmentName
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from rebuild.errors import NoSuchProject, RebuildError
from rebuild.inputs import marker_environment

if TYPE_CHECKING:
    from rebuild.index import IndexClient


# The sdist under check decides how many requirements there are: the index is asked about at
# most this many projects, each once, however long the list.
MAX_LOOKUPS = 32


@dataclass(frozen=True)
class NoCandidate:
    """One requirement nothing on the index satisfies as of the instant."""

    requirement: str
    name: str
    why: str

    def __str__(self) -> str:
        return f"{self.requirement} has no candidate: {self.why}"


def find_no_candidates(
    wanted: Sequence[str], instant: datetime | None, client: IndexClient, *, python: str
) -> list[NoCandidate]:
    """The requirements of ``wanted`` that have no candidate on the index as of ``instant``
    (None: today), for the container's CPython ``python`` ("3.11") on Linux x86_64. One whose
    marker does not hold there is not judged, nor one whose page cannot be read: this only adds
    to uv's reason, it never replaces it with a guess."""
    environment = _container_environment(python)
    pages = _Pages(client)
    found = []
    for text in wanted:
        try:
            requirement = Requirement(text)
        except InvalidRequirement:
            continue
        if requirement.url is not None:
            continue
        if requirement.marker is not None and not _holds(requirement.marker, environment):
            continue
        why = _why_none(requirement, instant, pages)
        if why is not None:
            found.append(NoCandidate(text, requirement.name, why))
    return found


def _container_environment(python: str) -> dict[str, str]:
    """PEP 508's environment in the build container: CPython ``python`` on Linux x86_64."""
    environment = marker_environment(python, "linux_x86_64")
    # The container's interpreter is CPython, whichever one runs rebuild.
    environment |= {"implementation_name": "cpython", "platform_python_implementation": "CPython"}
    return environment


def _holds(marker: Marker, environment: dict[str, str]) -> bool:
    try:
        return marker.evaluate(environment)
    except (InvalidMarker, UndefinedComparison, UndefinedEnvironmentName):
        return False


class _Pages:
    """Each project's releases, asked of the index once, for at most MAX_LOOKUPS projects."""

    def __init__(self, client: IndexClient) -> None:
        self._client = client
        self._seen: dict[str, dict[Version, datetime | None] | NoSuchProject | None] = {}

    def releases(self, name: str) -> dict[Version, datetime | None] | NoSuchProject | None:
        """The releases with their upload times; the 404 as a NoSuchProject; None when the
        page cannot be read or the lookups are spent."""
        key = canonicalize_name(name)
        if key not in self._seen:
            if len(self._seen) >= MAX_LOOKUPS:
                return None
            try:
                self._seen[key] = self._client.release_times(name)
            except NoSuchProject as e:
                self._seen[key] = e
            except RebuildError:
                self._seen[key] = None
        return self._seen[key]


def _why_none(requirement: Requirement, instant: datetime | None, pages: _Pages) -> str | None:
    times = pages.releases(requirement.name)
    if isinstance(times, NoSuchProject):
        return f"the index serves no project named {requirement.name}"
    if times is None:
        return None
    if not times:
        return f"the index lists no release of {requirement.name}"
    matching = list(requirement.specifier.filter(sorted(times)))
    if not matching:
        return (
            f"no release of {requirement.name} is in that range "
            f"(the index has {len(times)}, newest {max(times)})"
        )
    if instant is None:
        return None
    later = {}
    for version in matching:
        when = times[version]
        if when is None or when <= instant:
            return None  # a candidate (uv may still rule it out for another reason)
        later[version] = when
    first = min(later, key=lambda v: (later[v], v))
    uploaded, before = _utc(later[first], instant)
    return (
        f"the first release of {requirement.name} in that range, {first}, was uploaded "
        f"{uploaded}, after {before}"
    )


def _utc(*instants: datetime) -> tuple[str, ...]:
    """The instants in UTC to the second, or to the microsecond when seconds cannot tell them
    apart (a release uploaded in the same second as the wheel under check)."""
    for spec in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M:%S.%f"):
        texts = tuple(f"{when.astimezone(UTC):{spec}} UTC" for when in instants)
        if len(set(texts)) == len(texts):
            break
    return texts
