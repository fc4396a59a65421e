"""Batch inputs: the releases a lock file or requirements file pins, with the hashes it names.

Four formats are read: pinned requirements (``NAME==VERSION`` lines, ``--hash`` options honoured),
PEP 751 ``pylock.toml``, ``uv.lock``, and plain ``NAME==VERSION`` lists (a subset of the first).
A line or package that does not pin one exact release is a :class:`~rebuild.errors.UsageError`
naming where it is: a batch verifies releases, never whatever an index serves today. Packages a
lock takes from somewhere other than an index (the project itself, a git checkout, a directory)
are listed as skipped, with the reason, rather than silently dropped.
"""

from __future__ import annotations

import enum
import errno
import os
import re
import stat
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from packaging.markers import InvalidMarker, Marker, default_environment
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from rebuild.errors import UsageError
from rebuild.models import Target

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
# Bounds on what a batch input may make rebuild read. A real lock of a few thousand packages is
# a few MiB; -r chains in real projects are two or three deep.
MAX_INPUT_BYTES = 16 * 1024 * 1024
MAX_INCLUDE_DEPTH = 16
MAX_INCLUDED_FILES = 256
_HASH_OPTION = re.compile(r"--hash(?:=|\s+)(\S+)")
# Options a requirements file may carry that change nothing about which release is pinned.
_IGNORED_OPTIONS = frozenset(
    {
        "--find-links",
        "-f",
        "--trusted-host",
        "--no-binary",
        "--only-binary",
        "--prefer-binary",
        "--pre",
        "--no-index",
    }
)
# Of those, the ones that take a value (skipped with it).
_OPTIONS_WITH_VALUE = frozenset(
    {"--find-links", "-f", "--trusted-host", "--no-binary", "--only-binary"}
)


class InputFormat(enum.Enum):
    REQUIREMENTS = "requirements"
    PYLOCK = "pylock"
    UV_LOCK = "uv.lock"


@dataclass(frozen=True)
class PinnedRelease:
    """One release a batch verifies, and what its input said about it.

    ``hashes`` are the sha256 digests the input names for the release's files: when not empty,
    the wheel verified must be one of them. ``origin`` says where it was pinned (``file:line``).
    """

    target: Target
    origin: str
    hashes: frozenset[str] = frozenset()
    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()  # pip's --extra-index-url lines in force
    extras: tuple[str, ...] = ()  # `name[extra]`: what the install asks of the release


@dataclass(frozen=True)
class BatchInput:
    path: Path
    format: InputFormat
    releases: tuple[PinnedRelease, ...]
    skipped: tuple[str, ...] = ()  # "name (origin): why", for packages not from an index


def detect_format(path: Path, text: str) -> InputFormat:
    name = path.name.lower()
    if name == "uv.lock":
        return InputFormat.UV_LOCK
    if name == "pylock.toml" or (name.startswith("pylock.") and name.endswith(".toml")):
        return InputFormat.PYLOCK
    if name.endswith((".toml", ".lock")):
        # A renamed lock: tell the two TOML formats apart by their version keys.
        data = _toml(path, text)
        if "lock-version" in data:
            return InputFormat.PYLOCK
        if "package" in data:
            return InputFormat.UV_LOCK
    return InputFormat.REQUIREMENTS


@dataclass
class _Reading:
    """The -r includes being followed: the chain that led here and how many files were read,
    and what pip carries across them: the index in force, --require-hashes, the target
    environment markers are evaluated for, and what was skipped."""

    chain: tuple[Path, ...] = ()
    files: list[int] = field(default_factory=lambda: [0])
    environment: dict[str, str] = field(default_factory=dict)
    index_url: str | None = None
    extra_index_urls: list[str] = field(default_factory=list)
    require_hashes: bool = False
    skipped: list[str] = field(default_factory=list)


def marker_environment(python: str | None = None, platform: str | None = None) -> dict[str, str]:
    """PEP 508 marker values for the interpreter and platform a batch verifies wheels for.

    ``python`` ("3.11") sets python_version and python_full_version (as x.y.0: the micro release
    of a wheel's interpreter is unknown); ``platform`` (a wheel platform tag) sets sys_platform,
    platform_system, platform_machine and os_name. Unset values are this machine's.
    """
    environment = {k: str(v) for k, v in default_environment().items()}
    if python:
        environment["python_version"] = python
        environment["python_full_version"] = f"{python}.0"
        environment["implementation_version"] = f"{python}.0"
    if platform:
        for prefix, values in _PLATFORMS:
            if platform.startswith(prefix):
                environment.update(
                    zip(("sys_platform", "platform_system", "os_name"), values, strict=True)
                )
                break
        # The tag's architecture, as platform.machine() names it there (Windows says AMD64).
        arch = platform.rsplit("_", 1)[-1].lower()
        if platform.endswith("x86_64"):
            arch = "x86_64"
        environment["platform_machine"] = {"amd64": "AMD64", "win32": "x86"}.get(arch, arch)
    return environment


_PLATFORMS = (
    ("manylinux", ("linux", "Linux", "posix")),
    ("musllinux", ("linux", "Linux", "posix")),
    ("linux", ("linux", "Linux", "posix")),
    ("win", ("win32", "Windows", "nt")),
    ("macosx", ("darwin", "Darwin", "posix")),
)


def read_input(path: Path, environment: dict[str, str] | None = None) -> BatchInput:
    """Every release ``path`` pins, in the file's order, duplicates removed.

    A requirement or lock entry whose marker is false for ``environment`` (default: this
    interpreter and machine; see :func:`marker_environment`) is skipped and listed, as pip
    would not install it.
    """
    return _read_input(path, _Reading(environment=environment or marker_environment()))


def read_bounded(path: Path, limit: int = MAX_INPUT_BYTES) -> bytes:
    """The bytes of the regular file ``path``, refused when it is not one or holds more than
    ``limit`` bytes: a FIFO would block, a device (/dev/zero) would never end."""
    try:
        # O_NONBLOCK: opening a FIFO with no writer must not wait; the type is checked on the
        # descriptor itself (fstat), so nothing can be swapped in between check and read.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        reason = "no such file" if e.errno == errno.ENOENT else e.strerror or str(e)
        raise UsageError(
            f"cannot read {path}: {reason}",
            hint="give a requirements file, a pylock.toml or a uv.lock",
        ) from e
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise UsageError(
            f"cannot read {path}: it is {_file_type(mode)}, not a regular file",
            hint="give a requirements file, a pylock.toml or a uv.lock",
        )
    with os.fdopen(fd, "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise UsageError(
            f"cannot read {path}: it is larger than {limit // (1024 * 1024)} MiB",
            hint="a batch input lists releases; split it, or check what the file is",
        )
    return data


def _file_type(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _read_input(path: Path, reading: _Reading) -> BatchInput:
    try:
        text = read_bounded(path).decode("utf-8")
    except UnicodeDecodeError as e:
        raise UsageError(
            f"cannot read {path}: not UTF-8 text (byte {e.start})",
            hint="give a requirements file, a pylock.toml or a uv.lock",
        ) from e
    if reading.chain:
        # An include is a requirements file (pip's -r); its lines are never echoed in errors.
        before = len(reading.skipped)
        releases = _read_requirements(path, text, reading)
        if not releases and len(reading.skipped) == before:
            raise UsageError(
                f"{path} pins no release", hint="one NAME==VERSION per line in an -r include"
            )
        return BatchInput(path, InputFormat.REQUIREMENTS, tuple(_unique(releases).values()))
    kind = detect_format(path, text)
    if kind is InputFormat.PYLOCK:
        releases, skipped = _read_pylock(path, _toml(path, text), reading.environment)
    elif kind is InputFormat.UV_LOCK:
        releases, skipped = _read_uv_lock(path, _toml(path, text), reading.environment)
    else:
        releases = _read_requirements(path, text, reading)
        # pip applies a file's index options to every requirement, wherever they are written
        # (the last --index-url wins), its includes' too.
        releases = [
            replace(
                r,
                index_url=reading.index_url or r.index_url,
                extra_index_urls=tuple(reading.extra_index_urls),
            )
            for r in releases
        ]
        skipped = reading.skipped
        if reading.require_hashes:
            unhashed = [r.origin for r in releases if not r.hashes]
            if unhashed:
                raise UsageError(
                    f"--require-hashes is set, but {', '.join(unhashed[:5])} "
                    f"{'has' if len(unhashed) == 1 else 'have'} no --hash",
                    hint="as pip would refuse to install them: hash every pin, or drop the option",
                )
    unique = _unique(releases)
    if not unique and not skipped:
        raise UsageError(f"{path} pins no release", hint="one NAME==VERSION per line")
    return BatchInput(path, kind, tuple(unique.values()), tuple(skipped))


def _unique(releases: list[PinnedRelease]) -> dict[tuple[str, Version], PinnedRelease]:
    unique: dict[tuple[str, Version], PinnedRelease] = {}
    for release in releases:
        key = (release.target.project, Version(release.target.version))
        seen = unique.get(key)
        if seen is not None and seen.hashes != release.hashes:
            raise UsageError(
                f"{release.origin}: {release.target} is pinned again with other hashes "
                f"(first at {seen.origin})",
                hint="a release can be checked against one set of hashes",
            )
        unique.setdefault(key, release)
    return unique


# --- requirements files ------------------------------------------------------------------


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, text) with comments removed and backslash continuations joined."""
    lines: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        # pip's rule: a comment starts at a '#' at the line's start or after whitespace.
        line = re.sub(r"(^|\s)#.*$", "", raw)
        if not pending:
            start = number
        if line.endswith("\\"):
            pending.append(line[:-1])
            continue
        pending.append(line)
        joined = " ".join(pending).strip()
        pending = []
        if joined:
            lines.append((start, joined))
    if pending and " ".join(pending).strip():
        lines.append((start, " ".join(pending).strip()))
    return lines


def _read_requirements(path: Path, text: str, reading: _Reading) -> list[PinnedRelease]:
    releases: list[PinnedRelease] = []
    for number, line in _logical_lines(text):
        origin = f"{path.name}:{number}"
        if line.split()[0].partition("=")[0] in ("-r", "--requirement"):
            _include(line.split(), origin, path, releases, reading)
            continue
        if not reading.chain:
            _requirement_line(line, origin, reading, releases)
            continue
        try:
            _requirement_line(line, origin, reading, releases)
        except UsageError as e:
            # The file was named by an -r line, possibly any file on the machine (-r
            # /etc/shadow): say where the problem is, never what the line holds.
            raise UsageError(
                f"{origin}: not a pinned requirement or a known option (the line is not shown: "
                f"{path} was included with -r from {reading.chain[-1]})",
                hint="an -r include is a requirements file: NAME==VERSION lines",
            ) from e
    return releases


def _requirement_line(
    line: str, origin: str, reading: _Reading, releases: list[PinnedRelease]
) -> None:
    """One logical line that is not an include: a pin, or an option pip carries on."""
    if line.startswith("-"):
        _option_line(line.split(), origin, reading)
        return
    # Quotes belong to markers (`; python_version >= "3.8"`): the line is not shell words.
    hash_values = _HASH_OPTION.findall(line)
    spec = _HASH_OPTION.sub("", line).strip()
    if "--hash" in spec:
        raise UsageError(f"{origin}: --hash needs a value")
    hashes = _hashes(hash_values, origin)
    requirement = _requirement(spec, origin)
    if requirement.marker is not None and not requirement.marker.evaluate(reading.environment):
        reading.skipped.append(
            f"{canonicalize_name(requirement.name)} ({origin}): its marker "
            f"`{requirement.marker}` is false for {_described(reading.environment)}"
        )
        return
    releases.append(
        PinnedRelease(
            target=_pinned_target(requirement, spec, origin),
            origin=origin,
            hashes=hashes,
            index_url=reading.index_url,
            extra_index_urls=tuple(reading.extra_index_urls),
            extras=tuple(sorted(requirement.extras)),
        )
    )


def _described(environment: dict[str, str]) -> str:
    return (
        f"Python {environment.get('python_version', '?')} on "
        f"{environment.get('sys_platform', '?')} {environment.get('platform_machine', '')}".strip()
    )


def _include(
    words: list[str], origin: str, path: Path, releases: list[PinnedRelease], reading: _Reading
) -> None:
    """Follow ``-r FILE``: cycles, chains deeper than MAX_INCLUDE_DEPTH and more than
    MAX_INCLUDED_FILES reads in all (a diamond of includes doubles at each level) are refused."""
    option, _, inline = words[0].partition("=")
    value = inline or (words[1] if len(words) > 1 else "")
    if not value:
        raise UsageError(f"{origin}: {option} needs a file")
    included = (path.parent / value).resolve()
    chain = (*reading.chain, path.resolve())
    if included in chain:
        if included == path.resolve():
            raise UsageError(f"{origin}: {path.name} includes itself")
        cycle = " -> ".join(p.name for p in chain[chain.index(included) :])
        raise UsageError(
            f"{origin}: {included.name} is included again: the -r includes form a cycle "
            f"({cycle} -> {included.name})",
            hint="remove one of the -r lines",
        )
    if len(chain) > MAX_INCLUDE_DEPTH:
        raise UsageError(
            f"{origin}: -r includes nest deeper than {MAX_INCLUDE_DEPTH} files",
            hint="flatten the requirements files",
        )
    reading.files[0] += 1
    if reading.files[0] > MAX_INCLUDED_FILES:
        raise UsageError(
            f"{origin}: the -r includes read more than {MAX_INCLUDED_FILES} files in all",
            hint="include each requirements file once",
        )
    # pip's options hold across -r files: the index in force, --require-hashes, the markers'
    # environment; what an include skips is listed with the rest.
    nested = _Reading(
        chain,
        reading.files,
        reading.environment,
        reading.index_url,
        reading.extra_index_urls,
        reading.require_hashes,
        reading.skipped,
    )
    releases.extend(_read_input(included, nested).releases)
    reading.index_url, reading.require_hashes = nested.index_url, nested.require_hashes


def _option_line(words: list[str], origin: str, reading: _Reading) -> None:
    option, _, inline = words[0].partition("=")
    value = inline or (words[1] if len(words) > 1 else "")
    if option in ("-i", "--index-url"):
        if not value:
            raise UsageError(f"{origin}: {option} needs a URL")
        reading.index_url = value
        return
    if option == "--extra-index-url":
        if not value:
            raise UsageError(f"{origin}: {option} needs a URL")
        if value not in reading.extra_index_urls:
            reading.extra_index_urls.append(value)
        return
    if option in ("-e", "--editable"):
        # `uv export` writes `-e .` for the project itself: not a published release, listed as
        # skipped as the TOML locks' local entries are.
        reading.skipped.append(f"{value or '?'} ({origin}): an editable install, not an index")
        return
    if option == "--require-hashes":
        reading.require_hashes = True
        return
    if option in ("-c", "--constraint"):
        return  # constraints narrow an install; they pin nothing to verify
    if option in _IGNORED_OPTIONS:
        return
    raise UsageError(
        f"{origin}: unknown option {option!r}",
        hint="a batch reads NAME==VERSION lines, with --hash, --index-url and -r",
    )


def _hashes(values: list[str], origin: str) -> frozenset[str]:
    digests = set()
    for value in values:
        algorithm, _, digest = value.partition(":")
        if algorithm == "sha256" and _SHA256.match(digest.lower()):
            digests.add(digest.lower())
        elif algorithm != "sha256":
            # Other algorithms are legal for pip; the index publishes sha256 only.
            continue
        else:
            raise UsageError(f"{origin}: {value!r} is not a sha256 digest")
    if values and not digests:
        raise UsageError(
            f"{origin}: no sha256 among the hashes",
            hint="the index publishes sha256 digests: lock with --hash=sha256:...",
        )
    return frozenset(digests)


def _requirement(spec: str, origin: str) -> Requirement:
    try:
        return Requirement(spec)
    except InvalidRequirement as e:
        raise UsageError(f"{origin}: {spec!r} is not a requirement: {e}") from e


def _pinned_target(requirement: Requirement, spec: str, origin: str) -> Target:
    if requirement.url:
        raise UsageError(
            f"{origin}: {spec!r} names a URL, not a release on an index",
            hint="pin the release: NAME==VERSION",
        )
    specifiers = list(requirement.specifier)
    if (
        len(specifiers) != 1
        or specifiers[0].operator not in ("==", "===")
        or (specifiers[0].version.endswith(".*"))
    ):
        raise UsageError(
            f"{origin}: {spec!r} is not pinned to one release",
            hint=f"pin it: {requirement.name}==VERSION (e.g. from `pip freeze` or a lock file)",
        )
    return _target(requirement.name, specifiers[0].version, origin)


def _target(name: str, version: str, origin: str) -> Target:
    try:
        Version(version)
    except InvalidVersion as e:
        raise UsageError(f"{origin}: {version!r} is not a valid version (PEP 440)") from e
    return Target.parse(f"{name}=={version}")


# --- TOML locks ----------------------------------------------------------------------------


def _toml(path: Path, text: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"{path} is not valid TOML: {e}") from e
    except RecursionError as e:
        # tomllib parses nested arrays and inline tables recursively; no lock nests deeply.
        raise UsageError(
            f"{path}: its TOML nests arrays or tables too deeply to read",
            hint="give a pylock.toml or uv.lock as its tool wrote it",
        ) from e


def _table_list(data: dict[str, Any], key: str, path: Path) -> list[dict[str, Any]]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise UsageError(f"{path}: `{key}` is not an array of tables")
    return value


def _digest(value: object) -> str | None:
    """A sha256 from ``{sha256 = "..."}`` (PEP 751) or ``"sha256:..."`` (uv.lock)."""
    if isinstance(value, dict):
        value = value.get("sha256")
        return value.lower() if isinstance(value, str) and _SHA256.match(value.lower()) else None
    if isinstance(value, str) and value.startswith("sha256:"):
        digest = value.removeprefix("sha256:").lower()
        return digest if _SHA256.match(digest) else None
    return None


def _file_hashes(package: dict[str, Any], hash_key: str) -> frozenset[str]:
    wheels = package.get("wheels", [])
    files = [w for w in wheels if isinstance(w, dict)] if isinstance(wheels, list) else []
    sdist = package.get("sdist")
    if isinstance(sdist, dict):
        files.append(sdist)
    return frozenset(d for f in files if (d := _digest(f.get(hash_key))) is not None)


def _read_pylock(
    path: Path, data: dict[str, Any], environment: dict[str, str]
) -> tuple[list[PinnedRelease], list[str]]:
    if "lock-version" not in data:
        raise UsageError(f"{path} has no `lock-version`: not a PEP 751 lock file")
    releases: list[PinnedRelease] = []
    skipped: list[str] = []
    for i, package in enumerate(_table_list(data, "packages", path), start=1):
        name = package.get("name")
        origin = f"{path.name}: packages[{i}]" + (f" ({name})" if isinstance(name, str) else "")
        if not isinstance(name, str):
            raise UsageError(f"{origin} has no name")
        source = next((k for k in ("vcs", "directory", "archive") if k in package), None)
        if source is not None:
            skipped.append(f"{canonicalize_name(name)} ({origin}): from a {source}, not an index")
            continue
        marker = package.get("marker")
        if isinstance(marker, str):
            try:
                applies = Marker(marker).evaluate(environment)
            except InvalidMarker as e:
                raise UsageError(f"{origin}: its marker {marker!r} is not valid: {e}") from e
            if not applies:
                skipped.append(
                    f"{canonicalize_name(name)} ({origin}): its marker `{marker}` is false for "
                    f"{_described(environment)}"
                )
                continue
        version = package.get("version")
        if not isinstance(version, str):
            raise UsageError(
                f"{origin} has no version: not pinned to one release",
                hint="lock it with a version (`pip lock` / `uv export --format pylock.toml`)",
            )
        index = package.get("index")
        releases.append(
            PinnedRelease(
                target=_target(name, version, origin),
                origin=origin,
                hashes=_file_hashes(package, "hashes"),
                index_url=index if isinstance(index, str) else None,
            )
        )
    return releases, skipped


def _read_uv_lock(
    path: Path, data: dict[str, Any], environment: dict[str, str]
) -> tuple[list[PinnedRelease], list[str]]:
    packages = _table_list(data, "package", path)
    wanted = _uv_installed(packages, environment, path)
    releases: list[PinnedRelease] = []
    skipped: list[str] = []
    for i, package in enumerate(packages, start=1):
        name = package.get("name")
        origin = f"{path.name}: package[{i}]" + (f" ({name})" if isinstance(name, str) else "")
        if not isinstance(name, str):
            raise UsageError(f"{origin} has no name")
        source = package.get("source", {})
        registry = source.get("registry") if isinstance(source, dict) else None
        if not isinstance(registry, str):
            kinds = ", ".join(sorted(source)) if isinstance(source, dict) else "unknown"
            skipped.append(f"{canonicalize_name(name)} ({origin}): source {kinds}, not an index")
            continue
        if wanted is not None and i - 1 not in wanted:
            skipped.append(
                f"{canonicalize_name(name)} ({origin}): no dependency of the project reaches it "
                f"on {_described(environment)} (the lock's markers), so uv would not install it"
            )
            continue
        version = package.get("version")
        if not isinstance(version, str):
            raise UsageError(f"{origin} has no version: not pinned to one release")
        # uv names the index by URL; a local path "registry" (a flat directory) is not PEP 691.
        index_url = registry if registry.startswith(("http://", "https://")) else None
        releases.append(
            PinnedRelease(
                target=_target(name, version, origin),
                origin=origin,
                hashes=_file_hashes(package, "hash"),
                index_url=index_url,
            )
        )
    return releases, skipped


def _uv_installed(
    packages: list[dict[str, Any]], environment: dict[str, str], path: Path
) -> set[int] | None:
    """The packages ``uv sync`` installs on ``environment``: those a dependency edge whose
    marker holds reaches from the workspace's own packages (their default ``dev`` group too,
    and the optional dependencies an edge's extras ask for). None when the lock names no
    workspace package (nothing to walk from): every package is then taken."""
    by_name: dict[str, list[int]] = {}
    for i, package in enumerate(packages):
        if isinstance(package.get("name"), str):
            by_name.setdefault(canonicalize_name(package["name"]), []).append(i)
    roots = [
        i
        for i, p in enumerate(packages)
        if isinstance(p.get("source"), dict) and {"editable", "virtual"} & p["source"].keys()
    ]
    if not roots:
        return None
    seen: set[tuple[int, str]] = set()
    todo: list[tuple[int, str]] = [(i, "") for i in roots]
    while todo:
        node = todo.pop()
        if node in seen:
            continue
        seen.add(node)
        index, extra = node
        package = packages[index]
        if extra:
            edges = _edges(package.get("optional-dependencies", {}).get(extra, []), path)
        else:
            edges = _edges(package.get("dependencies", []), path)
            if index in roots:
                edges += _edges(package.get("dev-dependencies", {}).get("dev", []), path)
        for edge in edges:
            marker = edge.get("marker")
            if isinstance(marker, str) and not _holds(marker, environment, path):
                continue
            target = _edge_target(edge, by_name, packages, environment, path)
            if target is None:
                continue
            todo.append((target, ""))
            extras = edge.get("extra", [])
            todo.extend((target, e) for e in extras if isinstance(e, str))
    return {index for index, _ in seen}


def _edges(value: object, path: Path) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise UsageError(f"{path}: a dependency list is not an array of tables")
    return list(value)


def _holds(marker: str, environment: dict[str, str], path: Path) -> bool:
    try:
        return Marker(marker).evaluate(environment)
    except InvalidMarker as e:
        raise UsageError(f"{path}: the marker {marker!r} is not valid: {e}") from e


def _edge_target(
    edge: dict[str, Any],
    by_name: dict[str, list[int]],
    packages: list[dict[str, Any]],
    environment: dict[str, str],
    path: Path,
) -> int | None:
    """The package an edge names: by version where the lock holds several of one name (a
    forked resolution), else the one whose ``resolution-markers`` hold."""
    name = edge.get("name")
    candidates = by_name.get(canonicalize_name(name), []) if isinstance(name, str) else []
    if len(candidates) > 1 and isinstance(edge.get("version"), str):
        candidates = [i for i in candidates if packages[i].get("version") == edge["version"]]
    if len(candidates) > 1:
        candidates = [
            i
            for i in candidates
            if any(
                _holds(m, environment, path)
                for m in packages[i].get("resolution-markers", [])
                if isinstance(m, str)
            )
        ] or candidates[:1]
    return candidates[0] if candidates else None
