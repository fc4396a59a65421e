"""Pick the toolchain a compiled wheel is rebuilt with, from what its objects say of themselves.

A compiled extension can be *verified* only when it is rebuilt by the compiler that built it,
with the same flags. The published objects name that compiler: DWARF ``DW_AT_producer`` (``GNU
C17 10.2.1 20210130 (Red Hat 10.2.1-11) -mtune=generic -march=x86-64 -g -O3 -fwrapv -fPIC``)
gives the release and the flags, ``.comment`` (``GCC: (GNU) 10.2.1 20210130 …``) the release;
when the objects are stripped of both, the platform tag and the upload date say which manylinux
image, hence which compiler, built them. Each image's own compiler is read from its
``packages.lock``. The image whose compiler matches (exactly, else major.minor) is chosen, the
producer's flags are replayed, and what the image's distribution adds by default is undone.

All of this is the publisher's word: it chooses the image and the flags and is recorded in
:class:`rebuild.models.Toolchain`, but it never explains a divergence. The flags are replayed
through an allow-list, since a hostile producer string must not reach a compiler's command line
with a plugin, a spec file or a path of its choosing.
"""

from __future__ import annotations

import mmap
import re
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from rebuild.archive import ZIP_READ_ERRORS
from rebuild.errors import ArchiveError, PlanError
from rebuild.models import Toolchain, ToolchainEvidence, ToolchainMatch

# Bounds on what the published wheel can make this stage read: objects are parsed in full.
MAX_OBJECTS = 64
MAX_OBJECT_BYTES = 128 * 1024 * 1024
MAX_TEXT = 1024  # characters of a producer or comment string kept (and shown)
MAX_FLAGS = 64  # flags of one producer string considered
_ELF_MAGIC = b"\x7fELF"

# What Debian's gcc and Debian's CPython (its sysconfig CFLAGS/CPPFLAGS) add to every extension
# build that a manylinux devtoolset/gcc-toolset compiler and manylinux's CPython do not:
# -fstack-protector-strong, -D_FORTIFY_SOURCE=2 and control-flow protection. Appended last, so
# they win over Python's own flags on the command line. Measured on MarkupSafe 2.1.5 (cp39,
# GCC 10.2.1): with them, its five functions are instruction-identical to the published ones;
# without them, three of five differ.
DEBIAN_UNDO = ("-fno-stack-protector", "-Wp,-U_FORTIFY_SOURCE", "-fcf-protection=none")

# The flags manylinux's CPython was configured with (its sysconfig OPT: -DNDEBUG -g -fwrapv -O3
# -Wall): what an extension built there got when its objects no longer record their own.
MANYLINUX_PYTHON_FLAGS = ("-g", "-fwrapv", "-O3")

# What an image whose CPython is built from source (manylinux's way) gives every extension by
# itself: that CPython's sysconfig flags, setuptools' -fPIC, and GCC's x86-64 defaults, which
# DW_AT_producer records though nobody passed them. Replaying them again would change nothing in
# the extension and everything in what else reads CFLAGS: autotools drops its default -O2 when
# CFLAGS is set, and meson records CFLAGS in numpy's __config__.py.
OWN_PYTHON_FLAGS = frozenset({*MANYLINUX_PYTHON_FLAGS, "-fPIC", "-mtune=generic", "-march=x86-64"})


@dataclass(frozen=True)
class Compiler:
    """A compiler release, e.g. ``gcc 10.2.1``."""

    family: str  # "gcc", "clang"
    version: str  # "10.2.1"
    # A branch snapshot's date ("20210130"): GCC x.y.1 releases are snapshots of a branch, and
    # two vendors' "10.2.1" may be weeks apart. Empty for releases and when unknown.
    snapshot: str = ""

    @property
    def numbers(self) -> tuple[int, ...]:
        return tuple(int(part) for part in self.version.split("."))

    @property
    def series(self) -> tuple[int, ...]:
        return self.numbers[:2]

    def __str__(self) -> str:
        return f"{self.family} {self.version} {self.snapshot}".strip()


@dataclass(frozen=True)
class ObjectFacts:
    """What one compiled member of the published wheel says about its compiler."""

    member: str
    comments: tuple[str, ...]  # .comment strings
    producers: tuple[str, ...]  # distinct DW_AT_producer strings of its compile units
    # libstdc++'s std::string ABI its symbols use: "old" (before C++11), "new", None (no sign).
    cxx_abi: str | None = None


@dataclass(frozen=True)
class Producer:
    """One ``DW_AT_producer`` string, parsed."""

    language: str  # "C17", "C++14", "Fortran", "AS"
    compiler: Compiler
    flags: tuple[str, ...]  # the recorded options, verbatim, in order
    text: str

    @property
    def is_cxx(self) -> bool:
        return self.language.startswith("C++")

    @property
    def is_c(self) -> bool:
        return self.language.startswith("C") and not self.is_cxx


@dataclass(frozen=True)
class PublishedToolchain:
    """The published compiled members' compiler, which evidence named it, and their flags."""

    evidence: ToolchainEvidence
    compiler: Compiler | None
    source: str  # the string (or rule) the compiler was read from
    c_flags: tuple[str, ...] = ()  # allowed flags every C unit was compiled with
    cxx_flags: tuple[str, ...] = ()
    dropped: tuple[str, ...] = ()  # recorded flags not on the allow-list
    notes: tuple[str, ...] = ()
    # Defines the C++ units were built with that no producer records (the string ABI's).
    cxx_defines: tuple[str, ...] = ()


@dataclass(frozen=True)
class ImageCompiler:
    """The default C compiler of a build image, read from its pinned package manifest."""

    compiler: Compiler
    package: str  # the lock entry it was read from, "gcc-10=10.2.1-6"
    distribution: str = "debian"  # every image here is bootstrapped from Debian's packages
    # The image's CPython was built from source (manylinux's way), not Debian's: extensions get
    # CPython's own sysconfig flags and link flags, none of Debian's.
    own_python: str = ""  # its version, "3.11.2"; empty: the suite's CPython


# ------------------------------------------------------------------------------------ parsing

_VERSION = r"(?P<version>\d{1,3}\.\d{1,3}(?:\.\d{1,3})?)"
# "GCC: (GNU) 10.2.1 20210130 (Red Hat 10.2.1-11)", "GCC: (Debian 10.2.1-6) 10.2.1 20210110"
_GCC_COMMENT = re.compile(
    r"^GCC: \([^()]{0,200}\) " + _VERSION + r"(?: (?P<snapshot>\d{8}))?(?:[ -]|$)"
)
# "clang version 14.0.6", "Ubuntu clang version 14.0.0-1ubuntu1", "Apple clang version …"
_CLANG = re.compile(r"(?:^|[ (])clang version " + _VERSION + r"(?:[ -]|$)")
# "GNU C17 10.2.1 20210130 (Red Hat 10.2.1-11) -mtune=generic …", "GNU C++14 …", "GNU AS 2.35.1"
_GNU_PRODUCER = re.compile(
    r"^GNU (?P<language>[A-Za-z][A-Za-z0-9+]{0,15}) " + _VERSION + r"(?P<rest>.*)$"
)
# What may follow the version before the options: a snapshot date, a vendor, a revision.
_PRODUCER_PREAMBLE = re.compile(r"^(?: \d{8})?(?: \([^()]{0,200}\))?(?: \[[^\[\]]{0,200}\])?")

# Replayable options, by shape; the character set alone keeps shell and paths out.
_REPLAYABLE = re.compile(
    r"-O(?:[0-3sgz]|fast)?"
    r"|-g(?:[0-3]|dwarf(?:-[2-5])?|gdb[0-3]?)?"
    r"|-f(?:no-)?[a-zA-Z][a-zA-Z0-9-]{0,48}"
    r"|-fvisibility=(?:default|hidden|protected|internal)"
    r"|-fcf-protection(?:=(?:none|full|branch|return))?"
    r"|-m(?:arch|tune)=[a-z0-9][a-z0-9_.-]{0,31}"
    r"|-m(?:no-)?[a-z0-9][a-z0-9.-]{0,31}"
    r"|-std=(?:c|gnu|c\+\+|gnu\+\+|iso9899:)[0-9a-z]{1,6}"
)
# Allowed by shape but not to be replayed: they load code, write files, change what the
# compiler does altogether, or tie the build to the machine it runs on.
_REFUSED = re.compile(
    r"-f(?:no-)?(?:plugin|dump|profile|auto-profile|sanitize|instrument|syntax-only|"
    r"preprocessed|directives-only|self-test|compare-debug|checking|lto-partition|"
    r"debug-prefix-map|file-prefix-map|macro-prefix-map|stack-usage|callgraph-info|"
    r"opt-info|save-optimization-record|record-gcc-switches)"
    r"|-m(?:arch|tune)=native"
)


def _bounded(text: str) -> str:
    """A string from the object, as it may be kept and shown: bounded, control characters out."""
    cleaned = "".join(c if c.isprintable() else "?" for c in text[:MAX_TEXT])
    return cleaned if len(text) <= MAX_TEXT else cleaned + "…"


def parse_comment(text: str) -> Compiler | None:
    """The compiler a ``.comment`` string names; None for linkers and anything else."""
    text = text[:MAX_TEXT]
    clang = _CLANG.search(text)
    if clang is not None:
        return Compiler("clang", clang["version"])
    gcc = _GCC_COMMENT.match(text)
    if gcc is not None:
        return Compiler("gcc", gcc["version"], gcc["snapshot"] or "")
    return None


def parse_producer(text: str) -> Producer | None:
    """A ``DW_AT_producer`` string: language, compiler and the options it records."""
    text = text[:MAX_TEXT]
    gnu = _GNU_PRODUCER.match(text)
    if gnu is not None:
        rest = gnu["rest"]
        snapshot = re.match(r" (\d{8})(?: |$)", rest)
        preamble = _PRODUCER_PREAMBLE.match(rest)
        options = rest[preamble.end() if preamble else 0 :].split()
        flags = tuple(o for o in options[:MAX_FLAGS] if o.startswith("-"))
        compiler = Compiler("gcc", gnu["version"], snapshot[1] if snapshot else "")
        return Producer(gnu["language"], compiler, flags, text)
    clang = _CLANG.search(text)
    if clang is not None:
        # clang records its options only with -grecord-command-line, and not in this form.
        return Producer("C", Compiler("clang", clang["version"]), (), text)
    return None


def replayable(flag: str) -> bool:
    """Whether a recorded option may go onto the rebuild's command line."""
    return _REPLAYABLE.fullmatch(flag) is not None and _REFUSED.match(flag) is None


def _common_flags(producers: Sequence[Producer]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The allowed flags every unit was built with (in the first's order), and those dropped.

    Units that differ (numpy's per-CPU dispatch sources add -mavx2, …) differ by what their own
    build rules add; only what all share goes into the build's environment.
    """
    if not producers:
        return (), ()
    shared = [f for f in dict.fromkeys(producers[0].flags) if all(f in p.flags for p in producers)]
    allowed = tuple(f for f in shared if replayable(f))
    dropped = tuple(dict.fromkeys(f for p in producers for f in p.flags if not replayable(f)))
    return allowed, dropped


# ------------------------------------------------------------------------------------ evidence


def read_objects(wheel: Path) -> tuple[ObjectFacts, ...]:
    """The compiler strings of the wheel's ELF members (at most MAX_OBJECTS, sorted by name)."""
    facts: list[ObjectFacts] = []
    try:
        with zipfile.ZipFile(wheel) as zf:
            infos = sorted(
                (
                    i
                    for i in zf.infolist()
                    if not i.filename.endswith("/") and _may_be_object(i.filename)
                ),
                key=lambda i: i.filename,
            )
            for info in infos:
                if len(facts) >= MAX_OBJECTS or info.file_size > MAX_OBJECT_BYTES:
                    continue
                with zf.open(info) as member, mapped(member, info.file_size) as data:
                    if data is None or data[: len(_ELF_MAGIC)] != _ELF_MAGIC:
                        continue
                    fact = _object_facts(info.filename, data)
                if fact is not None:
                    facts.append(fact)
    except ZIP_READ_ERRORS as e:
        raise ArchiveError(f"{wheel.name} cannot be read as a zip: {e}") from e
    return tuple(facts)


_CHUNK = 1 << 20


@contextmanager
def mapped(member: IO[bytes], size: int) -> Iterator[mmap.mmap | None]:
    """``member``'s ``size`` bytes in anonymous memory, read a chunk at a time; None when it
    holds another number of bytes (a zip entry whose header lies about its size).

    Read whole with ``read()``, a member is held twice at the end (zipfile joins its chunks),
    and numpy's grafted OpenBLAS is 35 MB: planning peaked at 149 MiB on it.
    """
    if size <= 0:
        yield None
        return
    with mmap.mmap(-1, size) as memory:
        got = 0
        while got < size and (chunk := member.read(min(_CHUNK, size - got))):
            memory[got : got + len(chunk)] = chunk
            got += len(chunk)
        yield memory if got == size and not member.read(1) else None


def _may_be_object(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    # Static libraries (.a) are not read: an archive's members would each need opening.
    return base.endswith(".so") or ".so." in base


def _object_facts(member: str, data: bytes | mmap.mmap) -> ObjectFacts | None:
    # The ELF reader is imported only for a wheel that has objects: planning a pure wheel (and
    # every command that merely imports the pipeline) does without it.
    from rebuild.compare.elf_read import PARSE_ERRORS, compiler_facts

    unreadable: tuple[type[BaseException], ...] = (ArchiveError, *PARSE_ERRORS)
    try:
        facts = compiler_facts(data)
    except unreadable:
        return None  # a broken or hostile object: it names no compiler we can trust
    return ObjectFacts(
        member=member,
        comments=facts.comment,
        producers=facts.producers,
        cxx_abi=string_abi(facts.symbol_names),
    )


# std::string's members mangle as `_ZNSs...` / `_ZNKSs...` under libstdc++'s pre-C++11 ABI;
# under the C++11 one every such name carries `__cxx11`.
_OLD_STRING = ("_ZNSs", "_ZNKSs")
_NEW_STRING = "__cxx11"
OLD_ABI_DEFINE = "-D_GLIBCXX_USE_CXX11_ABI=0"


def string_abi(names: Iterable[str]) -> str | None:
    """Which std::string ABI an object's symbol names show: "new" if any names the C++11 one,
    else "old" if any names the pre-C++11 one, else None."""
    old = False
    for name in names:
        if _NEW_STRING in name:
            return "new"
        old = old or name.startswith(_OLD_STRING)
    return "old" if old else None


def _with_string_abi(
    found: PublishedToolchain, objects: Sequence[ObjectFacts]
) -> PublishedToolchain:
    """devtoolset's g++ (manylinux2014) can only build the pre-C++11 string ABI, where
    Debian's g++ defaults to the new one: objects that show only the old are replayed with
    -D_GLIBCXX_USE_CXX11_ABI=0. Inline string code changes with it, and no producer records
    a define."""
    abis = {o.cxx_abi for o in objects} - {None}
    if abis != {"old"}:
        return found
    old = sorted(o.member for o in objects if o.cxx_abi == "old")
    note = (
        f"{', '.join(old[:3])}{' …' if len(old) > 3 else ''}: libstdc++'s pre-C++11 string ABI "
        f"(std::string symbols _ZNSs…, none with __cxx11): replayed {OLD_ABI_DEFINE}"
    )
    return replace(found, cxx_defines=(OLD_ABI_DEFINE,), notes=(*found.notes, note))


# manylinux images and the compilers they carried (the image history), newest first per
# policy: (family, glibc major, glibc minor) -> ((from, compiler), ...). Where only the toolset's
# major version is known (gcc-toolset-11, -13), only the major is given: it matches no image's
# major.minor, so such a wheel is rebuilt unmatched rather than on a guess.
_IMAGE_HISTORY: Mapping[tuple[str, int, int], tuple[tuple[datetime, Compiler], ...]] = {
    ("manylinux", 2, 17): (
        (datetime(2021, 8, 1, tzinfo=UTC), Compiler("gcc", "10.2.1")),
        (datetime(1970, 1, 1, tzinfo=UTC), Compiler("gcc", "9.3.1")),
    ),
    ("manylinux", 2, 28): (
        (datetime(2024, 12, 17, tzinfo=UTC), Compiler("gcc", "14.2.1")),
        (datetime(2024, 11, 3, tzinfo=UTC), Compiler("gcc", "13")),
        (datetime(2022, 11, 27, tzinfo=UTC), Compiler("gcc", "12.2.1")),
        (datetime(2022, 5, 30, tzinfo=UTC), Compiler("gcc", "11")),
    ),
    ("manylinux", 2, 34): ((datetime(1970, 1, 1, tzinfo=UTC), Compiler("gcc", "14.2.1")),),
}
_LEGACY = {"manylinux2014": (2, 17), "manylinux2010": (2, 12), "manylinux1": (2, 5)}
_PLATFORM = re.compile(r"^(?P<family>manylinux|musllinux)_(?P<major>\d+)_(?P<minor>\d+)_x86_64$")
_LEGACY_PLATFORM = re.compile(r"^(?P<legacy>manylinux(?:1|2010|2014))_x86_64$")


def _policies(platforms: Iterable[str]) -> list[tuple[str, int, int]]:
    found = set()
    for platform in platforms:
        legacy = _LEGACY_PLATFORM.match(platform)
        if legacy is not None:
            found.add(("manylinux", *_LEGACY[legacy["legacy"]]))
            continue
        match = _PLATFORM.match(platform)
        if match is not None:
            found.add((match["family"], int(match["major"]), int(match["minor"])))
    return sorted(found)


def history_compiler(
    platforms: Iterable[str], upload_time: datetime | None
) -> tuple[Compiler, str] | None:
    """The compiler of the manylinux image a wheel with these tags was built in, at that date.

    auditwheel adds the tags of older policies a wheel also satisfies, so the image it was
    built in is the newest policy among its tags.
    """
    policies = _policies(platforms)
    if not policies or upload_time is None:
        return None
    policy = policies[-1]
    when = upload_time if upload_time.tzinfo else upload_time.replace(tzinfo=UTC)
    for since, compiler in _IMAGE_HISTORY.get(policy, ()):
        if when >= since:
            name = f"{policy[0]}_{policy[1]}_{policy[2]}"
            return compiler, (
                f"image history: {name} wheels uploaded since {since:%Y-%m-%d} were built "
                f"with {compiler}; this one was uploaded {when:%Y-%m-%d}"
            )
    return None


def published_toolchain(
    objects: Sequence[ObjectFacts],
    *,
    platforms: Iterable[str] = (),
    upload_time: datetime | None = None,
) -> PublishedToolchain:
    """Which compiler built the published objects, and with which flags, from the best evidence.

    ``DW_AT_producer`` first (the release and the flags of the wheel's own compile units), then
    ``.comment`` (the release), then the image history (platform tag and upload date); and the
    C++ string ABI their symbols show.
    """
    found = _compiler_evidence(objects, platforms=tuple(platforms), upload_time=upload_time)
    return _with_string_abi(found, objects) if found.compiler is not None else found


def _compiler_evidence(
    objects: Sequence[ObjectFacts], *, platforms: tuple[str, ...], upload_time: datetime | None
) -> PublishedToolchain:
    producers = [p for o in objects for p in map(parse_producer, o.producers) if p is not None]
    # The assembler's units (GNU AS) name binutils, not the compiler.
    compiled = [p for p in producers if p.language != "AS"]
    manylinux = bool(_policies(platforms))
    if compiled:
        compiler = _most_common(p.compiler for p in compiled)
        units = [p for p in compiled if p.compiler == compiler]
        c_units = [p for p in units if p.is_c]
        cxx_units = [p for p in units if p.is_cxx]
        c_flags, c_dropped = _common_flags(c_units)
        cxx_flags, cxx_dropped = _common_flags(cxx_units)
        notes = []
        others = sorted({str(p.compiler) for p in compiled} - {str(compiler)})
        if others:
            notes.append(f"units of other compilers too ({', '.join(others)}): not matched")
        extra = sorted({f for p in units for f in p.flags} - set(c_flags) - set(cxx_flags))
        extra = [f for f in extra if replayable(f)]
        if extra:
            notes.append(
                "flags some units only were built with, left to the project's build: "
                + " ".join(extra[:16])
                + (" …" if len(extra) > 16 else "")
            )
        first = (c_units or cxx_units or units)[0]
        return PublishedToolchain(
            evidence=ToolchainEvidence.PRODUCER,
            compiler=compiler,
            source=_bounded(first.text),
            c_flags=c_flags,
            cxx_flags=cxx_flags,
            dropped=tuple(dict.fromkeys((*c_dropped, *cxx_dropped))),
            notes=tuple(notes),
        )
    named = [
        (c, text) for o in objects for text in o.comments if (c := parse_comment(text)) is not None
    ]
    if named:
        # A clang-built object linked with gcc's C runtime carries both: the clang is its own.
        # Of several gcc releases the newest is the project's: the older ones come from the C
        # runtime files of the system (manylinux2014's crti.o says GCC 4.8.5).
        clang = [(c, t) for c, t in named if c.family == "clang"]
        compiler, text = max(clang or named, key=lambda pair: pair[0].numbers)
        flags = MANYLINUX_PYTHON_FLAGS if manylinux and compiler.family == "gcc" else ()
        notes = []
        if flags:
            notes.append(
                "no DW_AT_producer in the objects: replaying the flags manylinux's CPython "
                f"builds extensions with ({' '.join(flags)})"
            )
        return PublishedToolchain(
            ToolchainEvidence.COMMENT, compiler, _bounded(text), flags, flags, notes=tuple(notes)
        )
    history = history_compiler(platforms, upload_time)
    if history is not None and objects:
        compiler, why = history
        flags = MANYLINUX_PYTHON_FLAGS
        return PublishedToolchain(
            ToolchainEvidence.IMAGE_HISTORY,
            compiler,
            why,
            flags,
            flags,
            notes=(
                "the objects carry neither DW_AT_producer nor .comment: the compiler is the "
                "manylinux image's of the time, the flags manylinux's CPython's "
                f"({' '.join(flags)})",
            ),
        )
    why = "no compiled members" if not objects else "no producer, .comment or known image"
    return PublishedToolchain(ToolchainEvidence.NONE, None, why)


def _most_common(compilers: Iterable[Compiler]) -> Compiler:
    counts: dict[Compiler, int] = {}
    for compiler in compilers:
        counts[compiler] = counts.get(compiler, 0) + 1
    # Ties go to the newer release, then the name, so the choice never depends on member order.
    return max(counts, key=lambda c: (counts[c], c.numbers, c.family))


# ---------------------------------------------------------------------------------- the images

_DEBIAN_VERSION = re.compile(r"^(?:\d+:)?(?P<upstream>\d+(?:\.\d+)*)")
# The branch snapshot Debian's x.y.1 packages were cut from, as `gcc --version` prints it in the
# image (measured: bullseye's "gcc (Debian 10.2.1-6) 10.2.1 20210110"). Keyed by lock entry.
_DEBIAN_SNAPSHOTS = {"gcc-10=10.2.1-6": "20210110"}


def compiler_from_lock(manifest: Iterable[str]) -> ImageCompiler | None:
    """The default gcc of a Debian package manifest (``gcc=4:10.2.1-1`` then ``gcc-10=…``)."""
    versions: dict[str, str] = {}
    for entry in manifest:
        package, _, version = entry.partition("=")
        versions[package] = version
    default = versions.get("gcc")
    if default is None:
        return None
    match = _DEBIAN_VERSION.match(default)
    if match is None:
        return None
    major = match["upstream"].split(".")[0]
    exact = versions.get(f"gcc-{major}")
    exact_match = _DEBIAN_VERSION.match(exact) if exact else None
    if exact is None or exact_match is None:
        return ImageCompiler(Compiler("gcc", match["upstream"]), f"gcc={default}")
    package = f"gcc-{major}={exact}"
    snapshot = _DEBIAN_SNAPSHOTS.get(package, "")
    return ImageCompiler(Compiler("gcc", exact_match["upstream"], snapshot), package)


def image_compilers(names: Iterable[str]) -> dict[str, ImageCompiler | None]:
    """Each image's default compiler, from its ``packages.lock`` (None: not pinned, or none)."""
    from rebuild.images import built_python, load_spec, read_lock

    found: dict[str, ImageCompiler | None] = {}
    for name in names:
        try:
            spec = load_spec(name)
            locked = read_lock(spec)
        except PlanError:
            found[name] = None  # not an image under containers/ (a test's, or a stale name)
            continue
        compiler = compiler_from_lock(locked) if locked is not None else None
        source = built_python(spec)
        if compiler is not None and source is not None:
            compiler = replace(compiler, own_python=source.version)
        found[name] = compiler
    return found


def match(published: Compiler | None, image: Compiler | None) -> ToolchainMatch:
    if published is None or image is None or published.family != image.family:
        return ToolchainMatch.NONE
    if published.numbers == image.numbers:
        return ToolchainMatch.EXACT
    if published.series == image.series:
        return ToolchainMatch.MAJOR_MINOR
    return ToolchainMatch.NONE


_RANK = {ToolchainMatch.EXACT: 0, ToolchainMatch.MAJOR_MINOR: 1, ToolchainMatch.NONE: 2}


def best_image(
    published: PublishedToolchain,
    candidates: Sequence[str],
    compilers: Mapping[str, ImageCompiler | None],
) -> str:
    """Of images able to build the wheel (sorted by name), the one whose compiler matches best."""

    def rank(name: str) -> int:
        image = compilers.get(name)
        return _RANK[match(published.compiler, image.compiler if image else None)]

    return min(candidates, key=lambda name: (rank(name), name))


def choose(
    published: PublishedToolchain, image: str, image_compiler: ImageCompiler | None
) -> Toolchain:
    """The toolchain record for building in ``image``: matched, and the flags to replay.

    The flags go into the build only when the compilers match: replayed into another
    compiler they would change nothing a reviewer can rely on, and would make the rebuild
    differ from what the image's distribution builds without saying why.
    """
    ours = image_compiler.compiler if image_compiler else None
    level = match(published.compiler, ours)
    notes = list(published.notes)
    replayed: tuple[str, ...] = ()
    undone: tuple[str, ...] = ()
    environment: list[tuple[str, str]] = []
    if level is not ToolchainMatch.NONE and image_compiler is not None:
        replayed = published.c_flags
        cxx = published.cxx_flags or tuple(f for f in replayed if not f.startswith("-std="))
        cxx = (*cxx, *published.cxx_defines)
        if image_compiler.own_python:
            # Debian's gcc adds none of DEBIAN_UNDO by default (measured in bullseye: no
            # stack protector, no _FORTIFY_SOURCE, no endbr64); Debian's CPython, which adds
            # them, is not the one building.
            replayed = tuple(f for f in replayed if f not in OWN_PYTHON_FLAGS)
            cxx = tuple(f for f in cxx if f not in OWN_PYTHON_FLAGS)
            notes.append(
                f"the image's CPython {image_compiler.own_python} is built from source as "
                "manylinux builds its own: extensions get its sysconfig flags and link flags, "
                "none of Debian's, so only flags beyond those are replayed"
            )
        elif image_compiler.distribution == "debian" and image_compiler.compiler.family == "gcc":
            undone = DEBIAN_UNDO
            notes.append(
                "Debian's link flags (-Wl,-O1 -Wl,-Bsymbolic-functions -Wl,-z,relro) are "
                "not undone, and its default PIE does not apply to -fPIC shared objects"
            )
        environment.append(("CFLAGS", " ".join((*replayed, *undone))))
        environment.append(("CXXFLAGS", " ".join((*cxx, *undone))))
        theirs = published.compiler
        if (
            level is ToolchainMatch.EXACT
            and theirs is not None
            and theirs.snapshot
            and ours is not None
            and ours.snapshot != theirs.snapshot
        ):
            notes.append(
                f"the same release {ours.version}, but other snapshots of its branch: "
                f"published {theirs.snapshot}, rebuilt with {ours.snapshot or 'an unknown one'}"
            )
        if level is ToolchainMatch.MAJOR_MINOR:
            notes.append(
                f"compiler matched on major.minor only: published {published.compiler}, "
                f"rebuilt with {ours}; code may still differ where the releases do"
            )
    elif published.compiler is not None:
        notes.append(
            f"no image has the published compiler ({published.compiler}); rebuilt with "
            f"{ours or 'an unknown compiler'}, so compiled code can at best be attributed"
        )
    return Toolchain(
        evidence=published.evidence,
        published_family=published.compiler.family if published.compiler else "",
        published_version=published.compiler.version if published.compiler else "",
        published_from=published.source,
        image=image,
        image_family=ours.family if ours else "",
        image_version=ours.version if ours else "",
        match=level,
        replayed=replayed,
        undone=undone,
        dropped=published.dropped,
        environment=tuple(e for e in environment if e[1]),
        notes=tuple(notes),
    )
