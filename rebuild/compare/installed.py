"""The installed tree: what pip and installer put on disk for a wheel, and where two trees differ.

Members are paired by their stored names elsewhere; installers do not install stored names. Each
CPython's ``zipfile`` reports a name of its own (3.12 and later honour the Info-ZIP Unicode Path
extra field, every version cuts a name at its first NUL), and each installer normalises that
name its own way and decides which of two entries landing on one path wins. This module replays
both installers on each supported CPython from the entries and the member hashes already
computed, without writing anything, so that a difference in what gets installed is a member
divergence, and a wheel whose tree depends on the interpreter or the installer is a finding.

Modelled: pip 26.3 (``pip install``) and installer 1.1.0 (``python -m installer``, default
options), on CPython 3.11, 3.12 and 3.13 on a POSIX system, installing into an environment whose
purelib and platlib are one directory (a venv, ``--target``). Files the installers generate
(RECORD, INSTALLER, bytecode, entry-point launchers' own bytes) are the same for any two wheels
and are not modelled, except where a wheel's own entry collides with one.
"""

from __future__ import annotations

import configparser
import enum
import posixpath
import re
import struct
import unicodedata
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from rebuild.compare.members import HashedWheel
from rebuild.compare.ziplayer import Entry, installs_executable
from rebuild.models import Divergence, DivergenceKind, Layer, Side

PYTHONS = ("3.11", "3.12", "3.13")
_UTF8_NAMES = 0x0800
_UNICODE_PATH = 0x7075
_SCHEMES = ("purelib", "platlib", "headers", "scripts", "data")
# purelib and platlib are one directory in the environments modelled (module docstring).
_LIB = "site-packages"
_MAX_ENTRY_POINTS_BYTES = 1024 * 1024
_PATH_MAX = 4096
_NAME_MAX = 255


class Installer(enum.Enum):
    PIP = "pip 26.3"
    INSTALLER = "installer 1.1.0"


@dataclass(frozen=True)
class Setup:
    """One way of installing a wheel: an installer on a CPython."""

    installer: Installer
    python: str

    def __str__(self) -> str:
        return f"{self.installer.value} on CPython {self.python}"


SETUPS = tuple(Setup(i, p) for i in Installer for p in PYTHONS)


@dataclass(frozen=True)
class Placed:
    """One installed file: where its bytes came from and what it is on disk."""

    sha256: str  # of the bytes written last; "entry point <value>" for a generated launcher
    executable: bool
    # Every entry written to this path, in write order (labels); the last one's bytes stay.
    written: tuple[str, ...]
    index: int = -1  # the central-directory position of the entry whose bytes stay (-1: none)

    @property
    def state(self) -> tuple[str, bool]:
        return (self.sha256, self.executable)


@dataclass(frozen=True)
class Tree:
    """What one setup installs from one wheel: files by ``scheme/path``, or why it refuses."""

    files: Mapping[str, Placed] = field(default_factory=dict)
    refused: str | None = None  # the installer stops with an error (nothing usable installed)
    # (path, labels) of paths written more than once.
    collisions: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def key(self) -> object:
        if self.refused is not None:
            return ("refused", self.refused)
        return tuple(sorted((p, f.state) for p, f in self.files.items()))


class _Refused(Exception):
    """An installer stops on this wheel; the message says where, in the installer's words."""


# --- the names each CPython's zipfile reports ---------------------------------------------


def _raw_name(entry: Entry) -> bytes:
    # zipfile decodes names as UTF-8 or cp437 by flag bit 11; both encodings round-trip.
    info = entry.info
    return info.orig_filename.encode("utf-8" if info.flag_bits & _UTF8_NAMES else "cp437")


def _sanitize(name: str) -> str:
    """CPython's ``zipfile._sanitize_filename`` (3.12, 3.13; inline in 3.11's ZipInfo):
    the name ends at its first NUL; ``os.sep`` is ``/`` on the systems modelled."""
    return name.split("\x00", 1)[0]


def zipfile_name(entry: Entry, python: str) -> str:
    """The ``ZipInfo.filename`` CPython ``python`` reports for ``entry``; raises _Refused when
    that version's ``ZipFile`` cannot open the archive at all.

    CPython 3.12 and 3.13 ``Lib/zipfile/__init__.py::ZipInfo._decodeExtra(filename_crc)``:
    for each central-directory extra field 0x7075 whose version byte is 1 and whose CRC is
    ``crc32`` of the stored name's raw bytes, ``filename`` becomes the UTF-8 name it carries
    (sanitised; the last such field wins; an empty one is ignored with a warning). A field too
    short for its header or with invalid UTF-8 raises BadZipFile. CPython 3.11's
    ``_decodeExtra`` reads only Zip64 fields.
    """
    name = _sanitize(entry.info.orig_filename)
    if python == "3.11":
        return name
    crc = zlib.crc32(_raw_name(entry))
    extra = entry.info.extra
    while len(extra) >= 4:
        tag, length = struct.unpack_from("<HH", extra)
        data = extra[4 : 4 + length]
        if tag == _UNICODE_PATH:
            if len(data) < 5:
                raise _Refused(f"CPython {python}: corrupt unicode path extra field (0x7075)")
            version, name_crc = struct.unpack_from("<BL", data)
            if version == 1 and name_crc == crc:
                try:
                    unicode_name = data[5:].decode("utf-8")
                except UnicodeDecodeError as e:
                    raise _Refused(
                        f"CPython {python}: unicode path extra field (0x7075) is not UTF-8"
                    ) from e
                if unicode_name:
                    name = _sanitize(unicode_name)
        extra = extra[4 + length :]
    return name


# --- pip 26.3 ----------------------------------------------------------------------------


def _info_dir(names: Iterable[str]) -> str:
    """The one ``.dist-info`` directory; pip's ``utils/wheel.py::wheel_dist_info_dir`` and
    installer's ``sources.py::WheelFile.dist_info_dir`` both refuse none or several."""
    found = {n.split("/", 1)[0] for n in names if n.split("/", 1)[0].endswith(".dist-info")}
    if len(found) != 1:
        raise _Refused(f"{len(found)} .dist-info directories (exactly one is required)")
    return found.pop()


def _normpath(path: str) -> str:
    """``os.path.normpath`` on POSIX (``posixpath.normpath``)."""
    return posixpath.normpath(path)


def _inside(path: str) -> bool:
    """pip's ``utils/misc.py::is_within_directory`` after ``os.path.join(dest, normed)``:
    an absolute or ``..``-led normalised path escapes; ``.`` is the directory itself, which
    pip then opens for writing and fails on."""
    return not (path.startswith(("/", "../")) or path in ("..", "."))


def entry_points(text: str) -> tuple[tuple[str, str, str], ...]:
    """(group, name, value) of each console or GUI script, as installer 1.1.0's
    ``utils.py::parse_entrypoints`` reads ``entry_points.txt`` (ConfigParser with ``=`` as
    the only delimiter and case-preserving keys); pip reads the same sections through
    ``importlib.metadata``. Raises _Refused when the file does not parse."""
    parser = configparser.ConfigParser(delimiters="=", interpolation=None)
    parser.optionxform = str  # type: ignore[assignment, method-assign]
    try:
        parser.read_string(text)
    except configparser.Error as e:
        raise _Refused(f"entry_points.txt does not parse: {str(e)[:200]}") from e
    found: list[tuple[str, str, str]] = []
    for section in parser.sections():
        if section in ("console_scripts", "gui_scripts"):
            found.extend((section, name, value) for name, value in parser.items(section))
    return tuple(found)


@dataclass
class _Writer:
    """Files written so far by one setup, with the rule for writing over one."""

    overwrite: bool  # pip unlinks and rewrites; installer refuses an existing path
    files: dict[str, Placed] = field(default_factory=dict)
    dirs: set[str] = field(default_factory=set)

    def write(self, path: str, sha256: str, executable: bool, label: str, index: int = -1) -> None:
        encoded = path.encode("utf-8", "surrogateescape")
        if len(encoded) > _PATH_MAX or any(len(p) > _NAME_MAX for p in encoded.split(b"/")):
            # open() fails with ENAMETOOLONG (Linux: PATH_MAX 4096, NAME_MAX 255), so both
            # installers stop; checked first, which also bounds the work per path.
            raise _Refused(f"{label[:100]!r}...: File name too long")
        if path in self.dirs:
            raise _Refused(f"{label} would be written over the directory {path}")
        parent = path.rpartition("/")[0]
        while parent:
            if parent in self.files:
                raise _Refused(f"{label} needs {parent} to be a directory; it is a file")
            self.dirs.add(parent)
            parent = parent.rpartition("/")[0]
        previous = self.files.get(path)
        if previous is not None and not self.overwrite:
            # installer 1.1.0 destinations.py::SchemeDictionaryDestination.write_to_fs
            # raises FileExistsError unless --overwrite-existing (not the default).
            raise _Refused(f"{label} lands on {path}, already written: File already exists")
        written = (*previous.written, label) if previous is not None else (label,)
        self.files[path] = Placed(sha256, executable, written, index)


_Points = tuple[tuple[str, str, str], ...]


def _entry_points_of(
    wheel: HashedWheel,
    entries: Sequence[tuple[Entry, str]],
    info_dir: str,
    cache: dict[int, _Points | str],
) -> _Points:
    wanted = f"{info_dir}/entry_points.txt"
    chosen = [e for e, name in entries if name == wanted]
    if not chosen:
        return ()
    entry = chosen[-1]  # ZipFile.getinfo / read by name: NameToInfo keeps the last entry
    # Read once for all setups; a refusal is kept as its message.
    if entry.index not in cache:
        try:
            cache[entry.index] = _read_entry_points(wheel, entry, wanted)
        except _Refused as e:
            cache[entry.index] = str(e)
    found = cache[entry.index]
    if isinstance(found, str):
        raise _Refused(found)
    return found


def _read_entry_points(
    wheel: HashedWheel, entry: Entry, wanted: str
) -> tuple[tuple[str, str, str], ...]:
    with wheel.archive.open_member(entry) as stream:
        data = stream.read(_MAX_ENTRY_POINTS_BYTES + 1)
    if len(data) > _MAX_ENTRY_POINTS_BYTES:
        raise _Refused(f"{wanted} is over {_MAX_ENTRY_POINTS_BYTES:,} bytes; not read")
    try:
        return entry_points(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise _Refused(f"{wanted} is not UTF-8") from e


def _digest(wheel: HashedWheel, entry: Entry) -> str:
    return wheel.digests[entry.key].sha256.hex()


def _pip_tree(wheel: HashedWheel, python: str, cache: dict[int, _Points | str]) -> Tree:
    """pip 26.3 ``_internal/operations/install/wheel.py::_install_wheel``.

    Paths come from ``ZipFile.namelist()`` (every entry, duplicates included); each is read back
    with ``ZipFile.getinfo(name)`` (``ZipBackedFile._getinfo``), which returns the LAST entry of
    that name, for its bytes and mode alike. Names ending in ``/`` are directories and skipped.
    Root files come first, in namelist order, then ``*.data/<scheme>/`` files, then
    ``*.data/scripts/`` files (minus those named like an entry point, ``is_entrypoint_wrapper``),
    then the entry-point launchers; each path is ``os.path.normpath``-ed and a later write
    unlinks and replaces an earlier one (``ZipBackedFile.save``): the last one wins.
    """
    entries = [(e, zipfile_name(e, python)) for e in wheel.archive.entries]
    last = {name: e for e, name in entries}  # ZipFile.NameToInfo: the last entry of a name
    info_dir = _info_dir(name for _, name in entries)
    points = _entry_points_of(wheel, entries, info_dir, cache)
    launchers = {name for _, name, _ in points}
    writer = _Writer(overwrite=True)
    root: list[tuple[str, Entry]] = []
    data: list[tuple[str, Entry]] = []
    scripts: list[tuple[str, Entry]] = []
    for _, name in entries:
        if name.endswith("/"):
            continue
        winner = last[name]
        if name.split("/", 1)[0].endswith(".data"):
            parts = name.split("/", 2)
            is_script = len(parts) > 2 and parts[0].endswith(".data") and parts[1] == "scripts"
            (scripts if is_script else data).append((name, winner))
        else:
            root.append((name, winner))
    for name, winner in root:
        normed = _normpath(name)
        if not _inside(normed):
            raise _Refused(f"{winner.label!r} would be installed outside the target directory")
        # pip writes the wheel's RECORD, then its own over it: the wheel's never stays.
        writer.write(f"{_LIB}/{normed}", _digest(wheel, winner),
                     installs_executable(winner.mode), winner.label, winner.index)  # fmt: skip
    for group in (data, scripts):
        for name, winner in group:
            # make_data_scheme_file: normpath, then '<x>.data/<scheme key>/<path>'.
            parts = _normpath(name).split("/", 2)
            if len(parts) != 3:
                raise _Refused(f"{winner.label!r}: .data contents must be <scheme key>/<path>")
            _, scheme, rest = parts
            if scheme not in _SCHEMES:
                raise _Refused(f"{winner.label!r}: unknown scheme key {scheme!r}")
            normed = _normpath(rest)
            if not _inside(normed):
                raise _Refused(f"{winner.label!r} would be installed outside its scheme")
            if group is scripts and _is_entrypoint_wrapper(normed.rpartition("/")[2], launchers):
                continue
            target = _LIB if scheme in ("purelib", "platlib") else scheme
            writer.write(f"{target}/{normed}", _digest(wheel, winner),
                         installs_executable(winner.mode), winner.label, winner.index)  # fmt: skip
    for section, command, value in points:
        writer.write(f"scripts/{command}", f"{section} {command} = {value}", True,
                     f"{section}:{command}")  # fmt: skip
    return _finish(writer, info_dir)


def _is_entrypoint_wrapper(name: str, launchers: set[str]) -> bool:
    """pip's ``is_entrypoint_wrapper``: EP, EP.exe, EP-script.py, EP.pya are EP's launcher."""
    lowered = name.lower()
    if lowered.endswith((".exe", ".pya")):
        name = name[:-4]
    elif lowered.endswith("-script.py"):
        name = name[:-10]
    return name in launchers


def _finish(writer: _Writer, info_dir: str) -> Tree:
    files = dict(writer.files)
    files.pop(f"{_LIB}/{info_dir}/RECORD", None)  # replaced by the installer's own RECORD
    collisions = tuple(
        (path, placed.written) for path, placed in sorted(files.items()) if len(placed.written) > 1
    )
    return Tree(files=files, collisions=collisions)


# --- installer 1.1.0 ------------------------------------------------------------------------

_INSTALLER_FILENAME = re.compile(
    r"^(?P<distribution>.+?)-(?P<version>.*?)(?:-(?P<build_tag>\d[^-]*?))?-(?P<tag>.+?-.+?-.+?)\.whl$"
)


def _installer_scheme(path: str, data_dir: str, label: str) -> tuple[str, str]:
    """installer 1.1.0 ``_core.py::_determine_scheme``, replayed step for step."""
    try:
        if posixpath.commonpath([data_dir, path]) != data_dir:
            return "root", path
    except ValueError as e:  # absolute and relative paths mixed
        raise _Refused(f"{label!r}: {e}") from e
    parts = []
    left = path
    while True:
        left, right = posixpath.split(left)
        parts.append(right)
        if left == data_dir:
            scheme = right
            break
        if not left and not right:
            # posixpath.split("") is ("", ""): installer's loop never ends.
            raise _Refused(f"{label!r}: installer's scheme lookup never terminates")
    if scheme not in _SCHEMES:
        raise _Refused(f"{label!r} is not contained in a valid .data subdirectory")
    return scheme, posixpath.join(*reversed(parts[:-1]))


def _installer_path(path: str, label: str) -> str:
    """``destinations.py::_path_with_destdir``: ``os.path.abspath(target / path)`` must stay
    under the target (``is_relative_to``); the target itself cannot be opened as a file."""
    if path.startswith("/"):
        raise _Refused(f"Attempting to write {label} outside of the target directory")
    normed = _normpath(path)
    if normed == ".." or normed.startswith("../"):
        raise _Refused(f"Attempting to write {label} outside of the target directory")
    if normed == ".":
        raise _Refused(f"{label!r} names the target directory itself")
    return normed


def _installer_tree(wheel: HashedWheel, python: str, cache: dict[int, _Points | str]) -> Tree:
    """installer 1.1.0 ``_core.py::install`` with ``sources.py::WheelFile``.

    Entry-point launchers are written first. Then every entry of ``ZipFile.infolist()`` in order
    (``get_contents``), each read through its own ZipInfo (its own bytes and mode), skipping
    names ending in ``/``, the wheel's RECORD and anything under a ``__pycache__`` directory;
    ``<distribution>-<version>.data`` comes from the wheel's FILENAME. A path written twice
    raises FileExistsError: the install stops.
    """
    entries = [(e, zipfile_name(e, python)) for e in wheel.archive.entries]
    info_dir = _info_dir(name for _, name in entries)
    match = _INSTALLER_FILENAME.match(wheel.archive.path.name)
    if match is not None:
        data_dir = f"{match['distribution']}-{match['version']}.data"
    else:
        # A file renamed on disk (a rebuild saved as `rebuilt.whl`) would be installed under
        # its release's name: take it from the .dist-info directory instead.
        data_dir = info_dir.removesuffix(".dist-info") + ".data"
    writer = _Writer(overwrite=False)
    for section, command, value in _entry_points_of(wheel, entries, info_dir, cache):
        writer.write(f"scripts/{command}", f"{section} {command} = {value}", True,
                     f"{section}:{command}")  # fmt: skip
    record = f"{info_dir}/RECORD"
    for entry, name in entries:
        if name.endswith("/") or name == record:
            continue
        if "__pycache__" in name.split("/")[:-1]:
            continue  # skipped with a RuntimeWarning
        scheme, path = _installer_scheme(name, data_dir, entry.label)
        normed = _installer_path(path, entry.label)
        target = _LIB if scheme in ("root", "purelib", "platlib") else scheme
        writer.write(f"{target}/{normed}", _digest(wheel, entry),
                     installs_executable(entry.mode), entry.label, entry.index)  # fmt: skip
    if f"{_LIB}/{record}" in writer.files:
        # finalize_installation writes RECORD through write_to_fs: it exists already.
        raise _Refused(f"{record} already written by another entry: File already exists")
    return _finish(writer, info_dir)


def installed_trees(wheel: HashedWheel) -> dict[Setup, Tree]:
    """The tree each setup installs from ``wheel``."""
    trees: dict[Setup, Tree] = {}
    cache: dict[int, _Points | str] = {}
    for setup in SETUPS:
        build = _pip_tree if setup.installer is Installer.PIP else _installer_tree
        try:
            trees[setup] = build(wheel, setup.python, cache)
        except _Refused as e:
            trees[setup] = Tree(refused=str(e))
    return trees


# --- findings about one wheel's trees --------------------------------------------------------


def _setups(setups: Iterable[Setup]) -> str:
    chosen = set(setups)
    parts = []
    for installer in Installer:
        pythons = [s.python for s in SETUPS if s.installer is installer and s in chosen]
        if pythons:
            parts.append(f"{installer.value} on CPython {', '.join(pythons)}")
    return "; ".join(parts)


def _describe(tree: Tree) -> str:
    if tree.refused is not None:
        return f"refuses the wheel: {tree.refused}"
    return f"installs {len(tree.files):,} files"


def _tree_differences(a: Tree, b: Tree) -> list[str]:
    if a.refused is not None or b.refused is not None:
        return [f"{_describe(a)} / {_describe(b)}"]
    lines = []
    for path in sorted(set(a.files) | set(b.files)):
        x, y = a.files.get(path), b.files.get(path)
        if x is None or y is None or x.state != y.state:
            lines.append(f"{path}: {_placed(x)} / {_placed(y)}")
    return lines


def _differing_paths(a: Tree, b: Tree) -> set[str]:
    """The installed paths two trees disagree on (where, not what): a finding's identity."""
    if a.refused is not None or b.refused is not None:
        return {f"(refused: {a.refused or ''} / {b.refused or ''})"}
    return {
        path
        for path in set(a.files) | set(b.files)
        if (x := a.files.get(path)) is None
        or (y := b.files.get(path)) is None
        or x.state != y.state
    }


def _placed(placed: Placed | None) -> str:
    if placed is None:
        return "absent"
    mode = "executable" if placed.executable else "not executable"
    return f"{placed.written[-1]} ({placed.sha256[:16]}, {mode})"


def tree_findings(trees: Mapping[Setup, Tree], side: Side) -> list[Divergence]:
    """Integrity findings about one wheel's installed trees (``side`` is that wheel).

    A tree that depends on the interpreter or the installer; two entries on one path; two paths
    that are one file on a case-insensitive or a normalising (NFC/NFD) file system.
    """
    findings: list[Divergence] = []
    groups: dict[object, list[Setup]] = {}
    for setup, tree in trees.items():
        groups.setdefault(tree.key(), []).append(setup)
    if len(groups) > 1:
        variants = list(groups.values())
        reference = trees[variants[0][0]]
        detail = []
        differing: set[str] = set()
        for others in variants[1:]:
            detail.append(f"{_setups(variants[0])} vs {_setups(others)}:")
            detail.extend(f"  {line}" for line in _tree_differences(reference, trees[others[0]]))
            differing |= _differing_paths(reference, trees[others[0]])
        depends_on = sorted(
            {"the interpreter" for v in variants for s in v if s.python != variants[0][0].python}
            | {
                "the installer"
                for v in variants
                for s in v
                if s.installer is not variants[0][0].installer
            }
        )
        findings.append(
            Divergence(
                kind=DivergenceKind.INSTALL_DEPENDS,
                summary=f"what this wheel installs depends on {' and '.join(depends_on)}: "
                f"{len(variants)} different installed trees",
                side=side,
                detail="\n".join(detail[:200]),
                entries=tuple(sorted(differing)),
            )
        )
    seen: set[tuple[str, str]] = set()
    for setup, tree in trees.items():
        for path, labels in tree.collisions:
            if (path, "same") in seen:
                continue
            seen.add((path, "same"))
            findings.append(
                Divergence(
                    kind=DivergenceKind.PATH_COLLISION,
                    summary=f"{len(labels)} entries install to {path} ({setup}); the last one "
                    "written wins",
                    member=labels[-1],
                    side=side,
                    detail="\n".join(labels),
                    entries=labels,
                )
            )
        for why, fold in (
            ("differ only in case", str.casefold),
            ("are one name under Unicode normalisation (NFC/NFD)", _nfc),
        ):
            folded: dict[str, list[str]] = {}
            for path in tree.files:
                folded.setdefault(fold(path), []).append(path)
            for paths in folded.values():
                if len(paths) < 2 or (paths[0], why) in seen:
                    continue
                seen.add((paths[0], why))
                # In the order written: on a folding file system the last one stays.
                placed = sorted((tree.files[p] for p in paths), key=lambda f: f.index)
                labels = tuple(f.written[-1] for f in placed)
                findings.append(
                    Divergence(
                        kind=DivergenceKind.PATH_COLLISION,
                        summary=f"installed paths {why}: {', '.join(sorted(paths)[:5])}; one file "
                        "on file systems that fold them (macOS, Windows), which copy stays "
                        "depends on the order written",
                        member=labels[0],
                        side=side,
                        detail="written in this order: " + ", ".join(labels),
                        entries=labels,
                    )
                )
    return findings


def _nfc(path: str) -> str:
    return unicodedata.normalize("NFC", path)


# --- the two wheels' trees compared ----------------------------------------------------------

_CONTENT_KINDS = frozenset(
    {DivergenceKind.CONTENT, DivergenceKind.METADATA_FIELD, DivergenceKind.RECORD_ENTRY}
)


def _covered(
    path: str,
    pub: Placed | None,
    reb: Placed | None,
    reported: Mapping[str, set[DivergenceKind]],
) -> bool:
    """Whether a member divergence by stored name already says exactly this difference: one
    entry on each side, the same stored name, and a divergence of that name for each aspect."""
    if pub is None or reb is None:
        one = pub if pub is not None else reb
        if one is None:
            return True
        kind = DivergenceKind.ONLY_PUBLISHED if pub is not None else DivergenceKind.ONLY_REBUILT
        return len(one.written) == 1 and kind in reported.get(one.written[0], set())
    if len(pub.written) != 1 or pub.written != reb.written:
        return False
    kinds = reported.get(pub.written[0], set())
    if pub.sha256 != reb.sha256 and not kinds & _CONTENT_KINDS:
        return False
    return pub.executable == reb.executable or DivergenceKind.INSTALLED_MODE in kinds


def compare_trees(
    published: Mapping[Setup, Tree],
    rebuilt: Mapping[Setup, Tree],
    reported: Sequence[Divergence],
) -> list[Divergence]:
    """Member divergences for every installed path whose bytes or executable bit differ, or
    that one wheel alone installs, in any setup, unless ``reported`` (the member divergences by
    stored name) already says exactly that difference."""
    by_member: dict[str, set[DivergenceKind]] = {}
    for d in reported:
        if d.layer is Layer.MEMBER:
            for member in d.members:
                by_member.setdefault(member, set()).add(d.kind)
    rows: dict[tuple[str, str, str], list[Setup]] = {}
    for setup in SETUPS:
        pub, reb = published[setup], rebuilt[setup]
        if pub.refused is not None or reb.refused is not None:
            if pub.refused != reb.refused:
                rows.setdefault(("", _describe(pub), _describe(reb)), []).append(setup)
            continue
        for path in sorted(set(pub.files) | set(reb.files)):
            old, new = pub.files.get(path), reb.files.get(path)
            if old is not None and new is not None and old.state == new.state:
                continue
            if _covered(path, old, new, by_member):
                continue
            rows.setdefault((path, _placed(old), _placed(new)), []).append(setup)
    found: list[Divergence] = []
    for (path, old_text, new_text), setups in rows.items():
        where = _setups(setups)
        if not path:
            summary = f"one wheel alone is refused by the installer ({where})"
        else:
            summary = f"installs differently at {path} ({where})"
        found.append(
            Divergence(
                kind=DivergenceKind.INSTALLED_FILE,
                summary=summary,
                member=path or None,
                published=old_text,
                rebuilt=new_text,
                detail=f"published: {old_text}\nrebuilt: {new_text}\nsetups: {where}",
            )
        )
    return found


@dataclass(frozen=True)
class InstalledComparison:
    """The installed trees of two wheels compared: what compare_wheels adds to its list."""

    published_findings: tuple[Divergence, ...]  # integrity findings about each wheel alone
    rebuilt_findings: tuple[Divergence, ...]
    divergences: tuple[Divergence, ...]  # member divergences (installed files, autorun)
    autorun: tuple[str, ...]  # the published wheel's files that run by themselves


Trees = Mapping[Setup, Tree]


def compare_installed(
    published: HashedWheel,
    rebuilt: HashedWheel | None,
    reported: Sequence[Divergence],
    trees: tuple[Trees, Trees] | None = None,
) -> InstalledComparison:
    """Both wheels' installed trees, their findings and their differences.

    ``rebuilt`` None: the two files are the same bytes; only the published wheel's findings and
    files that run by themselves are computed. ``reported``: the divergences by stored name.
    ``trees``: both wheels' ``installed_trees``, when the caller has them already.
    """
    from rebuild.compare.autorun import autorun_divergences, autorun_listing

    pub_trees = installed_trees(published) if trees is None else trees[0]
    pub_findings = tuple(tree_findings(pub_trees, Side.PUBLISHED))
    listing = autorun_listing(pub_trees)
    if rebuilt is None:
        return InstalledComparison(pub_findings, (), (), listing)
    reb_trees = installed_trees(rebuilt) if trees is None else trees[1]
    return InstalledComparison(
        pub_findings,
        tuple(tree_findings(reb_trees, Side.REBUILT)),
        (
            *autorun_divergences(pub_trees, reb_trees),
            *compare_trees(pub_trees, reb_trees, reported),
        ),
        listing,
    )


__all__ = [
    "PYTHONS",
    "SETUPS",
    "InstalledComparison",
    "Installer",
    "Placed",
    "Setup",
    "Tree",
    "Trees",
    "compare_installed",
    "compare_trees",
    "entry_points",
    "installed_trees",
    "tree_findings",
    "zipfile_name",
]
