"""Resolve stage: ask a package index what one release published, and pick the files to verify.

Speaks the JSON simple API (PEP 691) only: it is the form that carries what a verifier needs —
sha256 hashes, upload times (PEP 700), yanked reasons, served core metadata (PEP 658/714) and
provenance (PEP 740). Every answer is treated as untrusted input: shapes are checked, sizes are
bounded, and anything surprising becomes a :class:`ResolveError` that says what the index has.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

from packaging import tags
from packaging.metadata import parse_email
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from rebuild.credentials import redact, register
from rebuild.errors import (
    FetchError,
    NoSuchProject,
    RebuildError,
    ResolveError,
    UnreachableError,
    UsageError,
)
from rebuild.models import DistFile, DistKind, Release, Target, WheelSelector
from rebuild.simple_html import parse_project_page

if TYPE_CHECKING:
    import requests

DEFAULT_INDEX_URL = "https://pypi.org/simple/"
SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"
# JSON preferred (PEP 691), HTML (PEP 503) accepted, as pip asks.
SIMPLE_ACCEPT = f"{SIMPLE_JSON}, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01"
SUPPORTED_API_MAJOR = 1

# Bounds on what we read from the network into memory. The largest project pages on PyPI are a
# few MiB; core metadata is usually a few KiB. Past these, the server is broken or hostile.
MAX_INDEX_PAGE_BYTES = 100 * 1024 * 1024
MAX_METADATA_BYTES = 5 * 1024 * 1024

# How many versions / files an error message lists before summarising the rest.
LISTED_VERSIONS = 10
LISTED_WHEELS = 12

_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
_PYTHON = re.compile(r"^(?:cp|py)?(?P<major>\d)\.?(?P<minor>\d{1,2})$")
# Extensions an sdist has had over the years, longest first so ".tar.gz" wins over ".gz".
_SDIST_SUFFIXES = (".tar.gz", ".tar.bz2", ".tar.xz", ".tar.Z", ".tgz", ".tbz", ".tar", ".zip")
# Preference among several sdists of one release (old releases uploaded .zip and .tar.gz).
_SDIST_PREFERENCE = (".tar.gz", ".zip")


def choose_index_url(explicit: str | None) -> str:
    """The index to ask: ``explicit`` (``--index-url``), else ``$PIP_INDEX_URL``, else PyPI."""
    return checked_index_url(explicit or os.environ.get("PIP_INDEX_URL") or DEFAULT_INDEX_URL)


def checked_index_url(url: str) -> str:
    """``url`` as an index base URL (ending in /), its credentials registered and removed."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(
            f"{redact(url)!r} is not an http(s) index URL",
            hint="give the simple index's base URL, e.g. https://pypi.org/simple/",
        )
    # The user and password leave the URL here: requests to the index's host get them, and
    # nothing rebuild prints, stores or reports carries them.
    return register(url.strip()).rstrip("/") + "/"


def _describe_python() -> str:
    return f"this interpreter ({tags.interpreter_name()}{tags.interpreter_version()})"


def _parse_python(python: str) -> tuple[int, int]:
    match = _PYTHON.match(python.strip())
    if match is None:
        raise UsageError(
            f"{python!r} is not a Python version",
            hint="give MAJOR.MINOR, e.g. --python 3.11",
        )
    return int(match["major"]), int(match["minor"])


def _normalise_platform(platform: str) -> str:
    # The spelling sysconfig and wheel filenames use: "manylinux-2.17-x86_64" is no platform tag.
    return platform.strip().lower().replace("-", "_").replace(".", "_")


_MANYLINUX = re.compile(r"^manylinux_(?P<major>\d+)_(?P<minor>\d+)_(?P<arch>.+)$")
# PEP 600: the legacy manylinux names are aliases of these glibc versions.
_LEGACY_MANYLINUX = {(2, 17): "manylinux2014", (2, 12): "manylinux2010", (2, 5): "manylinux1"}


def compatible_platforms(platform: str) -> list[str]:
    """Platform tags a machine with ``platform`` installs, most preferred first.

    A glibc-based ``manylinux_2_X_arch`` system also runs every older manylinux wheel (PEP 600),
    the legacy aliases of those, and plain ``linux_arch`` wheels built on it; any other tag
    stands for itself.
    """
    platform = _normalise_platform(platform)
    match = _MANYLINUX.match(platform)
    if match is None or int(match["major"]) != 2:
        return [platform]
    arch, newest = match["arch"], int(match["minor"])
    ranked = []
    for minor in range(newest, 4, -1):
        ranked.append(f"manylinux_2_{minor}_{arch}")
        legacy = _LEGACY_MANYLINUX.get((2, minor))
        if legacy is not None:
            ranked.append(f"{legacy}_{arch}")
    ranked.append(f"linux_{arch}")
    return ranked


def selector_tags(selector: WheelSelector) -> list[tags.Tag]:
    """The tags a wheel may carry for ``selector``, most preferred first."""
    platforms = None if selector.platform is None else compatible_platforms(selector.platform)
    if selector.python is None and platforms is None:
        return list(tags.sys_tags())
    if selector.python is None:
        if tags.interpreter_name() == "cp":
            ranked = list(tags.cpython_tags(platforms=platforms))
        else:
            ranked = list(tags.generic_tags(platforms=platforms))
        return [*ranked, *tags.compatible_tags(platforms=platforms)]
    version = _parse_python(selector.python)
    interpreter = f"cp{version[0]}{version[1]}"
    return [
        *tags.cpython_tags(python_version=version, platforms=platforms),
        *tags.compatible_tags(python_version=version, interpreter=interpreter, platforms=platforms),
    ]


def _describe_selector(selector: WheelSelector) -> str:
    python = f"Python {selector.python}" if selector.python else _describe_python()
    platform = selector.platform or "this machine's platforms"
    return f"{python} on {platform}"


# --- the index's answer --------------------------------------------------------------------


@dataclass(frozen=True)
class _Candidate:
    """One file of the target release: what we tell the next stage, and what the index said."""

    dist: DistFile
    metadata_advertised: bool


def _bad_shape(url: str, what: str) -> ResolveError:
    return ResolveError(
        f"the index answered {url} with JSON of an unexpected shape: {what}",
        hint="check --index-url points at a PEP 691 simple index (e.g. https://pypi.org/simple/)",
    )


def _check_page(data: object, url: str) -> tuple[list[Mapping[str, object]], list[str] | None]:
    """The page's file entries and version list (API 1.1), after checking the shape we rely on."""
    if not isinstance(data, dict):
        raise _bad_shape(url, "not an object")
    meta = data.get("meta")
    api = meta.get("api-version") if isinstance(meta, dict) else None
    if not isinstance(api, str):
        raise _bad_shape(url, "no meta.api-version")
    major = api.split(".", 1)[0]
    if major != str(SUPPORTED_API_MAJOR):
        raise ResolveError(
            f"the index at {url} speaks simple API version {api}; rebuild understands "
            f"{SUPPORTED_API_MAJOR}.x",
            hint="use an index that serves the version 1 JSON simple API, or upgrade rebuild",
        )
    files = data.get("files")
    if not isinstance(files, list) or not all(isinstance(f, dict) for f in files):
        raise _bad_shape(url, "'files' is not a list of objects")
    versions = data.get("versions")
    if versions is not None and not (
        isinstance(versions, list) and all(isinstance(v, str) for v in versions)
    ):
        raise _bad_shape(url, "'versions' is not a list of strings")
    return files, versions


def _sdist_name_version(filename: str) -> tuple[NormalizedName, Version] | None:
    try:
        name, version = parse_sdist_filename(filename)
    except (InvalidSdistFilename, InvalidVersion):
        pass
    else:
        return name, version
    # Old uploads use other extensions (.tar.bz2, .tgz) or put a dash in the version; try each
    # dash as the name/version split and keep the first that makes sense.
    suffix = next((s for s in _SDIST_SUFFIXES if filename.endswith(s)), None)
    if suffix is None:
        return None
    stem = filename[: -len(suffix)]
    for i, char in enumerate(stem):
        if char != "-":
            continue
        try:
            return canonicalize_name(stem[:i]), Version(stem[i + 1 :])
        except InvalidVersion:
            continue
    return None


def file_kind_and_version(filename: str) -> tuple[DistKind, NormalizedName, Version] | None:
    """What a file of the index is, by its name; ``None`` for eggs, installers and the like."""
    if filename.endswith(".whl"):
        try:
            name, version, _build, _tags = parse_wheel_filename(filename)
        except (InvalidWheelFilename, InvalidVersion):
            return None
        return DistKind.WHEEL, name, version
    parsed = _sdist_name_version(filename)
    if parsed is None:
        return None
    return DistKind.SDIST, parsed[0], parsed[1]


def _optional_str(entry: Mapping[str, object], key: str, url: str) -> str | None:
    value = entry.get(key)
    if value is None or isinstance(value, str):
        return value
    raise _bad_shape(url, f"{entry.get('filename')!r}: {key!r} is not a string")


def _upload_time(entry: Mapping[str, object], url: str) -> datetime | None:
    value = _optional_str(entry, "upload-time", url)
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError as e:
        raise _bad_shape(url, f"{entry.get('filename')!r}: bad upload-time {value!r}") from e
    # PEP 700 says UTC; a naive time from a lax index is read the same way.
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _sha256_of(hashes: object) -> str | None:
    if not isinstance(hashes, dict):
        return None
    value = hashes.get("sha256")
    if isinstance(value, str) and _SHA256.match(value):
        return value.lower()
    return None


def _core_metadata(entry: Mapping[str, object]) -> tuple[bool, str | None]:
    """(served?, its sha256) from PEP 714's key, or the older PEP 658 spelling."""
    value = entry.get("core-metadata", entry.get("data-dist-info-metadata", False))
    if isinstance(value, dict):
        return True, _sha256_of(value)
    return value is True, None


def _dist_file(entry: Mapping[str, object], kind: DistKind, page_url: str) -> _Candidate:
    filename = str(entry["filename"])
    raw_url = entry.get("url")
    if not isinstance(raw_url, str):
        raise _bad_shape(page_url, f"{filename!r} has no url")
    # PEP 691 allows URLs relative to the page.
    url = urljoin(page_url, raw_url)
    if urlsplit(url).scheme not in ("http", "https"):
        raise _bad_shape(page_url, f"{filename!r} has a non-http(s) url {url!r}")
    sha256 = _sha256_of(entry.get("hashes"))
    if sha256 is None:
        raise ResolveError(
            f"the index lists {filename} without a sha256 hash",
            hint="rebuild checks every download against the index's sha256; use an index "
            "that publishes one (PyPI does)",
        )
    size = entry.get("size")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
        raise _bad_shape(page_url, f"{filename!r}: 'size' is not a non-negative integer")
    yanked = entry.get("yanked", False)
    if not isinstance(yanked, bool | str):
        raise _bad_shape(page_url, f"{filename!r}: 'yanked' is neither a boolean nor a string")
    served, metadata_sha256 = _core_metadata(entry)
    return _Candidate(
        dist=DistFile(
            filename=filename,
            url=url,
            sha256=sha256,
            kind=kind,
            size=size,
            upload_time=_upload_time(entry, page_url),
            yanked=yanked is not False,
            yanked_reason=yanked if isinstance(yanked, str) and yanked else None,
            requires_python=_optional_str(entry, "requires-python", page_url),
            metadata_sha256=metadata_sha256,
            provenance_url=_provenance_url(entry, page_url),
        ),
        metadata_advertised=served,
    )


def _provenance_url(entry: Mapping[str, object], page_url: str) -> str | None:
    value = _optional_str(entry, "provenance", page_url)
    return None if value is None else urljoin(page_url, value)


# --- choosing ------------------------------------------------------------------------------


def choose_wheel(wheels: Iterable[DistFile], ranked: Sequence[tags.Tag]) -> DistFile | None:
    """The wheel whose best tag comes first in ``ranked``; ``None`` if no wheel fits."""
    priority = {tag: i for i, tag in enumerate(ranked)}
    best: tuple[int, str, DistFile] | None = None
    for wheel in wheels:
        _name, _version, _build, wheel_tags = parse_wheel_filename(wheel.filename)
        ranks = [priority[t] for t in wheel_tags if t in priority]
        if not ranks:
            continue
        # The filename breaks ties so that the choice never depends on the index's order.
        key = (min(ranks), wheel.filename, wheel)
        if best is None or key[:2] < best[:2]:
            best = key
    return None if best is None else best[2]


def _choose_sdist(sdists: Sequence[DistFile]) -> DistFile | None:
    def preference(sdist: DistFile) -> tuple[int, str]:
        for i, suffix in enumerate(_SDIST_PREFERENCE):
            if sdist.filename.endswith(suffix):
                return i, sdist.filename
        return len(_SDIST_PREFERENCE), sdist.filename

    return min(sdists, key=preference, default=None)


def _image_pythons() -> frozenset[str]:
    # Read lazily: resolving needs only the image specs' TOML, not the container engine.
    from rebuild.images import load_spec, spec_names

    return frozenset(load_spec(name).python for name in spec_names())


def _wheel_python(wheel: DistFile) -> str | None:
    """The CPython ``3.N`` a wheel's ABI ties it to; None when any CPython 3 will do."""
    for tag in parse_wheel_filename(wheel.filename)[3]:
        match = re.fullmatch(r"cp(\d)(\d+)", tag.interpreter)
        if match and tag.abi not in ("abi3", "none"):
            return f"{match[1]}.{match[2]}"
    return None


def wheel_choice_note(release: Release) -> str | None:
    """What to tell the user when, with no --python, another interpreter's wheel was chosen."""
    if release.wheel is None or release.selector.python or release.selector.filename:
        return None
    python = _wheel_python(release.wheel)
    here = f"{tags.interpreter_version()[0]}.{tags.interpreter_version()[1:]}"
    if python is None or tags.interpreter_name() != "cp" or python == here:
        return None
    return (
        f"no build image has {_describe_python()}'s CPython {here}: checked the wheel for "
        f"CPython {python} instead ({release.wheel.filename}), the newest an image can rebuild"
    )


# --- error messages ------------------------------------------------------------------------


def _known_versions(
    entries: Iterable[Mapping[str, object]], listed: list[str] | None, project: str
) -> list[Version]:
    found: set[Version] = set()
    for text in listed or ():
        try:
            found.add(Version(text))
        except InvalidVersion:
            continue
    if listed is None:
        # API 1.0 has no version list: read the versions off the filenames.
        for entry in entries:
            parsed = file_kind_and_version(str(entry.get("filename", "")))
            if parsed is not None and parsed[1] == project:
                found.add(parsed[2])
    return sorted(found)


def _nearest(versions: list[Version], wanted: Version, count: int) -> list[Version]:
    at = bisect.bisect_left(versions, wanted)
    start = max(0, min(at - count // 2, len(versions) - count))
    return versions[start : start + count]


def _missing_version(target: Target, index_url: str, versions: list[Version]) -> ResolveError:
    if not versions:
        return ResolveError(
            f"{target.name} is on {index_url} but lists no release",
            hint="the project may have had every file deleted; check the name",
        )
    near = ", ".join(str(v) for v in _nearest(versions, Version(target.version), LISTED_VERSIONS))
    return ResolveError(
        f"{target.name} has no release {target.version} on {index_url}; nearest: {near} "
        f"({len(versions)} releases, newest {versions[-1]})",
        hint=f"pick an existing version, e.g. `{target.name}=={versions[-1]}`",
    )


def _python_hint(wheels: Sequence[DistFile]) -> str:
    # Suggest a selector that would work, read off a wheel the release does have.
    for wheel in wheels:
        for tag in sorted(parse_wheel_filename(wheel.filename)[3], key=str):
            match = re.fullmatch(r"cp(\d)(\d+)", tag.interpreter)
            if match and tag.platform != "any":
                return (
                    f"choose one with --python and --platform, e.g. --python "
                    f"{match[1]}.{match[2]} --platform {tag.platform}"
                )
    return "choose one with --python MAJOR.MINOR and --platform TAG"


def _no_wheel(
    target: Target, selector: WheelSelector, wheels: Sequence[DistFile], files: Sequence[DistFile]
) -> ResolveError:
    if not wheels:
        others = ", ".join(f.filename for f in files) or "no file"
        return ResolveError(
            f"{target} publishes no wheel (only: {others})",
            hint="rebuild verifies a published wheel against its source; this release has none",
        )
    names = sorted(w.filename for w in wheels)
    shown = ", ".join(names[:LISTED_WHEELS])
    if len(names) > LISTED_WHEELS:
        shown += f", and {len(names) - LISTED_WHEELS} more"
    return ResolveError(
        f"{target} has no wheel for {_describe_selector(selector)}; "
        f"its {len(names)} wheel(s): {shown}",
        hint=_python_hint(wheels),
    )


# --- the client ----------------------------------------------------------------------------


class IndexClient:
    """A client of one PEP 691 index.

    Without a ``session``, each call opens its own and closes it afterwards, so a client may be
    used once and dropped. ``probe_metadata``: when the index does not advertise a wheel's core
    metadata, still try ``<wheel url>.metadata`` (files hosts often serve it anyway) and use it
    for project URLs only if its name and version match the release.
    """

    def __init__(
        self,
        index_url: str,
        *,
        session: requests.Session | None = None,
        timeout: float = 30,
        probe_metadata: bool = True,
        buildable: frozenset[str] | None = None,
    ) -> None:
        self.index_url = index_url.rstrip("/") + "/"
        # The CPython versions ("3.9") some build image provides; None: those of containers/.
        self._buildable = buildable
        self._session = session
        self._timeout = timeout
        self._probe_metadata = probe_metadata

    def project_url(self, project: str) -> str:
        return f"{self.index_url}{canonicalize_name(project)}/"

    def resolve(self, target: Target, selector: WheelSelector) -> Release:
        """The release's files, with the wheel matching ``selector`` and the sdist chosen."""
        ranked = selector_tags(selector)
        from rebuild.http import borrowed_session

        with borrowed_session(self._session) as session:
            page_url, data = self._project_page(session, target)
            entries, listed = _check_page(data, page_url)
            candidates = self._release_files(entries, target, page_url)
            if not candidates:
                versions = _known_versions(entries, listed, target.project)
                if Version(target.version) in versions:
                    raise ResolveError(
                        f"{target} is listed on {self.index_url} but has no wheel or sdist file",
                        hint="its files may have been deleted, or are of kinds rebuild does not "
                        "handle (.egg, .exe)",
                    )
                raise _missing_version(target, self.index_url, versions)
            files = [c.dist for c in candidates]
            wheels = [f for f in files if f.kind is DistKind.WHEEL]
            if selector.filename is not None:
                # A wheel the user holds: the index's file of that name, if it has one.
                wheel = next((w for w in wheels if w.filename == selector.filename), None)
            else:
                wheel = choose_wheel(wheels, ranked)
                if selector.python is None:
                    wheel = self._rebuildable(wheels, wheel, selector)
                if wheel is None:
                    raise _no_wheel(target, selector, wheels, files)
            chosen = next((c for c in candidates if c.dist is wheel), None)
            project_urls = () if chosen is None else self._project_urls(session, target, chosen)
        return Release(
            target=target,
            index_url=self.index_url,
            selector=selector,
            files=tuple(files),
            wheel=wheel,
            sdist=_choose_sdist([f for f in files if f.kind is DistKind.SDIST]),
            project_urls=project_urls,
        )

    def latest(self, name: str) -> Target:
        """The project's newest final release (a pre-release only when it has nothing else),
        skipping versions whose every file is yanked."""
        from rebuild.http import borrowed_session

        with borrowed_session(self._session) as session:
            page_url, data = self._project_page(session, Target(name, "0"))
        entries, listed = _check_page(data, page_url)
        project = canonicalize_name(name)
        yanked: dict[Version, bool] = {}
        for entry in entries:
            parsed = file_kind_and_version(str(entry.get("filename", "")))
            if parsed is not None and parsed[1] == project:
                alive = entry.get("yanked", False) is False
                yanked[parsed[2]] = yanked.get(parsed[2], True) and not alive
        versions = [v for v in _known_versions(entries, listed, project) if not yanked.get(v)]
        final = [v for v in versions if not v.is_prerelease]
        if not (final or versions):
            raise ResolveError(f"{name} has no release on {self.index_url}")
        return Target(name, str(max(final or versions)))

    def release_times(self, name: str) -> dict[Version, datetime | None]:
        """Each release of the project with the upload time of its first file that is not
        yanked (None where the index gives no time); releases whose every file is yanked are
        left out. Raises :class:`NoSuchProject` when the index has no such project."""
        from rebuild.http import borrowed_session

        with borrowed_session(self._session) as session:
            page_url, data = self._project_page(session, Target(name, "0"))
        entries, _ = _check_page(data, page_url)
        project = canonicalize_name(name)
        first: dict[Version, datetime | None] = {}
        for entry in entries:
            parsed = file_kind_and_version(str(entry.get("filename", "")))
            if parsed is None or parsed[1] != project or entry.get("yanked", False) is not False:
                continue
            when = _upload_time(entry, page_url)
            version = parsed[2]
            if version not in first:
                first[version] = when
            elif when is not None:
                known = first[version]
                first[version] = when if known is None else min(known, when)
        return first

    def _rebuildable(
        self, wheels: Sequence[DistFile], wheel: DistFile | None, selector: WheelSelector
    ) -> DistFile | None:
        """With no --python: this interpreter's wheel if an image can rebuild it, else the one
        of the newest CPython an image has (:func:`wheel_choice_note` says so)."""
        pythons = self._buildable if self._buildable is not None else _image_pythons()
        if wheel is not None and _wheel_python(wheel) in (*pythons, None):
            return wheel
        for python in sorted(pythons, key=_parse_python, reverse=True):
            other = choose_wheel(wheels, selector_tags(replace(selector, python=python)))
            if other is not None:
                return other
        return wheel

    def _release_files(
        self, entries: Iterable[Mapping[str, object]], target: Target, page_url: str
    ) -> list[_Candidate]:
        wanted = Version(target.version)
        found = []
        for entry in entries:
            filename = entry.get("filename")
            if not isinstance(filename, str) or "/" in filename or "\\" in filename:
                continue
            parsed = file_kind_and_version(filename)
            if parsed is None:
                continue
            kind, name, version = parsed
            if name == target.project and version == wanted:
                found.append(_dist_file(entry, kind, page_url))
        return found

    def _project_page(self, session: requests.Session, target: Target) -> tuple[str, object]:
        """The project's page as PEP 691 JSON; a PEP 503 HTML page is read into that shape."""
        url = self.project_url(target.name)
        response = _get(
            session, url, accept=SIMPLE_ACCEPT, timeout=self._timeout, error=ResolveError
        )
        with response:
            if response.status_code == 404:
                raise NoSuchProject(
                    f"no project named {target.name!r} on {self.index_url}",
                    hint="check the project's name, or point --index-url at the index that has it",
                )
            _check_status(response, url, ResolveError)
            content_type = response.headers.get("Content-Type", "")
            body = _read_bounded(response, MAX_INDEX_PAGE_BYTES, url, ResolveError)
            page_url = response.url or url
        if content_type.startswith(("text/html", "application/vnd.pypi.simple.v1+html")):
            try:
                return page_url, parse_project_page(
                    body.decode(response.encoding or "utf-8", errors="replace"), page_url
                )
            except ValueError as e:
                raise ResolveError(f"{url} is not a readable PEP 503 page: {e}") from e
        try:
            return page_url, json.loads(body)
        except (ValueError, RecursionError) as e:
            raise ResolveError(
                f"{url} did not answer with valid JSON ({content_type or 'no content type'})",
                hint="check --index-url points at a PEP 691 or PEP 503 simple index",
            ) from e

    def _project_urls(
        self, session: requests.Session, target: Target, chosen: _Candidate
    ) -> tuple[tuple[str, str], ...]:
        wheel = chosen.dist
        if wheel.metadata_sha256 is not None:
            data = self._metadata(session, wheel, wheel.metadata_sha256)
            return _urls_from_metadata(data, target, check_identity=False)
        if not (chosen.metadata_advertised or self._probe_metadata):
            return ()
        # Served without a hash, or not advertised at all: best effort, since nothing vouches
        # for these bytes; the name/version check keeps a wrong file's URLs out of the report.
        try:
            data = self._metadata(session, wheel, None)
        except FetchError:
            return ()
        return _urls_from_metadata(data, target, check_identity=True)

    def _metadata(self, session: requests.Session, wheel: DistFile, sha256: str | None) -> bytes:
        url = wheel.url + ".metadata"
        response = _get(session, url, accept="*/*", timeout=self._timeout, error=FetchError)
        with response:
            _check_status(response, url, FetchError)
            data = _read_bounded(response, MAX_METADATA_BYTES, url, FetchError)
        if sha256 is not None:
            actual = hashlib.sha256(data).hexdigest()
            if actual != sha256:
                raise FetchError(
                    f"the core metadata of {wheel.filename} does not match the index: "
                    f"sha256 {actual}, expected {sha256}",
                    hint="the index or a proxy on the way serves altered files; do not trust "
                    "this release until that is explained",
                )
        return data


def _urls_from_metadata(
    data: bytes, target: Target, *, check_identity: bool
) -> tuple[tuple[str, str], ...]:
    raw, _unparsed = parse_email(data)
    if check_identity and not _same_release(raw.get("name"), raw.get("version"), target):
        return ()
    pairs: list[tuple[str, str]] = list((raw.get("project_urls") or {}).items())
    if raw.get("home_page"):
        pairs.append(("Home-page", raw["home_page"]))
    if raw.get("download_url"):
        pairs.append(("Download-URL", raw["download_url"]))
    seen: set[str] = set()
    urls = []
    for label, url in pairs:
        url = url.strip()
        if url and url.upper() != "UNKNOWN" and url not in seen:
            seen.add(url)
            urls.append((label.strip(), url))
    return tuple(urls)


def _same_release(name: str | None, version: str | None, target: Target) -> bool:
    if name is None or version is None:
        return False
    try:
        return canonicalize_name(name) == target.project and Version(version) == Version(
            target.version
        )
    except InvalidVersion:
        return False


# --- HTTP ----------------------------------------------------------------------------------


def _get(
    session: requests.Session,
    url: str,
    *,
    accept: str,
    timeout: float,
    error: type[RebuildError],
) -> requests.Response:
    import requests

    try:
        return session.get(url, headers={"Accept": accept}, timeout=timeout, stream=True)
    except (requests.ConnectionError, requests.Timeout) as e:
        if error is not ResolveError:  # a best-effort read beside the index page
            raise error(f"could not reach {url}: {redact(str(e))}") from e
        raise UnreachableError(
            f"could not reach {url}: {redact(str(e))}",
            hint="the index is down or unreachable from here (retried with backoff): check the "
            "network, a proxy (HTTPS_PROXY) or --index-url; exit 12 tells an outage from a "
            "missing release",
        ) from e
    except requests.RequestException as e:
        raise error(
            f"could not reach {url}: {redact(str(e))}",
            hint="check the network, a proxy (HTTPS_PROXY) or --index-url; transient errors "
            "were already retried",
        ) from e


def _check_status(response: requests.Response, url: str, error: type[RebuildError]) -> None:
    status = response.status_code
    if status < 400:
        return
    if status in (401, 403):
        hint = "the index wants credentials or refuses this client; check --index-url"
    elif status == 429 or status >= 500:
        hint = "the server is failing or rate-limiting (retried with backoff); try again later"
    else:
        hint = "check the URL and --index-url"
    raise error(f"{url} answered HTTP {status} {response.reason or ''}".rstrip(), hint=hint)


def _read_bounded(
    response: requests.Response, limit: int, url: str, error: type[RebuildError]
) -> bytes:
    """The body, refusing more than ``limit`` bytes whatever Content-Length claims."""
    import requests

    too_big = error(
        f"{url} sent more than {limit // (1024 * 1024)} MiB; refusing to read further",
        hint="the server is misconfigured or hostile; check --index-url",
    )
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_big
    chunks = []
    received = 0
    try:
        for chunk in response.iter_content(chunk_size=64 * 1024):
            received += len(chunk)
            if received > limit:
                raise too_big
            chunks.append(chunk)
    except requests.RequestException as e:
        raise error(
            f"the connection to {url} failed mid-answer: {e}",
            hint="check the network and try again",
        ) from e
    return b"".join(chunks)
