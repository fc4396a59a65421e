"""Plan a rebuild from the published wheel: the effective recipe, and where each value came from.

The publisher's habits are evidence. The wheel's tags say which interpreter and platform to build
for; the ``WHEEL`` file's ``Generator:`` line names the build backend and often its exact
version; uniform zip entry timestamps reveal ``SOURCE_DATE_EPOCH``; permission bits reveal the
builder's umask; the upload time bounds every build requirement (nothing newer can have been
used). What cannot be replayed is said in ``Plan.notes``.
"""

from __future__ import annotations

import calendar
import re
import stat
import zipfile
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from email.message import Message
from email.parser import HeaderParser
from pathlib import Path
from typing import assert_never

from packaging.requirements import Requirement
from packaging.tags import Tag
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

from rebuild import toolchain
from rebuild.archive import ZIP_READ_ERRORS
from rebuild.errors import ArchiveError, PlanError
from rebuild.models import Plan, Toolchain, ToolchainEvidence, ToolchainMatch
from rebuild.recipes import UNMATCHED_CLAUSE, Recipe, apply_recipe
from rebuild.requires_dist import PARENTHESISED, PARENTHESISING_WHEEL, requirement_names
from rebuild.toolchain import ImageCompiler, PublishedToolchain

# WHEEL files are a few hundred bytes; a bigger one is hostile or broken.
MAX_WHEEL_FILE = 64 * 1024
# METADATA's headers, before the description: read no further than this.
MAX_METADATA_HEADERS = 256 * 1024


@dataclass(frozen=True)
class BackendRule:
    """How one backend signs the WHEEL ``Generator:`` line, and which distribution to pin."""

    pattern: re.Pattern[str]
    backend: str
    pin: str | None  # the distribution whose version the line gives
    # Requirements the line implies beyond that pin, and why (for the plan's origins).
    implies: tuple[str, ...] = ()
    because: str | None = None


# Data, not code: one row per backend seen in real releases. The version group, when present,
# becomes an exact pin of ``pin``.
BACKEND_RULES: tuple[BackendRule, ...] = (
    # setuptools < 70.1 delegated to the `wheel` project: the version is wheel's, not setuptools'.
    # From 70.1 on, setuptools' own bdist_wheel runs even with `wheel` installed, and signs the
    # line itself: a line signed by wheel's means a setuptools before 70.1.
    BackendRule(
        re.compile(r"^bdist_wheel \((?P<version>[^)]+)\)$"),
        "setuptools",
        "wheel",
        implies=("setuptools<70.1",),
        because="wheel's bdist_wheel signed it, which setuptools 70.1 and later replace",
    ),
    BackendRule(re.compile(r"^setuptools \((?P<version>[^)]+)\)$"), "setuptools", "setuptools"),
    BackendRule(re.compile(r"^hatchling (?P<version>\S+)$"), "hatchling", "hatchling"),
    BackendRule(re.compile(r"^flit (?P<version>\S+)$"), "flit_core", "flit_core"),
    BackendRule(re.compile(r"^poetry-core (?P<version>\S+)$"), "poetry-core", "poetry-core"),
    BackendRule(re.compile(r"^poetry (?P<version>\S+)$"), "poetry-core", None),
    BackendRule(re.compile(r"^pdm-backend \((?P<version>[^)]+)\)$"), "pdm-backend", "pdm-backend"),
    BackendRule(re.compile(r"^uv (?P<version>\S+)$"), "uv_build", "uv_build"),
    BackendRule(re.compile(r"^maturin \((?P<version>[^)]+)\)$"), "maturin", "maturin"),
    BackendRule(
        re.compile(r"^scikit-build-core (?P<version>\S+)$"),
        "scikit-build-core",
        "scikit-build-core",
    ),
    BackendRule(re.compile(r"^meson$"), "meson-python", None),
)


@dataclass(frozen=True)
class SpellingRule:
    """A spelling in the published METADATA that only some versions of a build tool write."""

    backend: str  # the backend whose builds it applies to
    pattern: re.Pattern[str]  # matched against each Requires-Dist value
    implies: str  # the requirement it implies
    because: str


# Data, not code: the build runs with the implied tool, so a match is verified by the bytes it
# produces, never taken on the METADATA's word.
SPELLING_RULES: tuple[SpellingRule, ...] = (
    SpellingRule(
        "setuptools",
        PARENTHESISED,
        PARENTHESISING_WHEEL,
        "the published METADATA spells Requires-Dist 'name (spec)', which only wheel 0.41.0 and "
        "older write (setuptools' bdist_wheel uses an installed wheel's writer)",
    ),
)
# Why a build with a SPELLING_RULES requirement runs without isolation: an isolated build
# environment gets only what the backend asks for, and setuptools 70.1 and later do not ask
# for wheel, so a pin alone would constrain a wheel nobody installs.
SPELLING_INSTALLED = (
    "none: the pinned set, with the tool the METADATA's spelling implies, is installed and the "
    "build runs in it (a build backend asks for no such tool, so an isolated build would lack it)"
)


@dataclass(frozen=True)
class WheelEvidence:
    """What the published wheel says about how it was built."""

    tags: frozenset[Tag]
    generator: str | None
    root_is_purelib: bool | None
    timestamps: Counter[tuple[int, int, int, int, int, int]]
    file_modes: Counter[int]
    wheel_tags: tuple[str, ...] = ()  # the WHEEL file's Tag: lines
    requires_dist: tuple[str, ...] = ()  # METADATA's Requires-Dist values, as spelled
    libs_dirs: tuple[str, ...] = ()  # top-level `<pkg>.libs/` directories (auditwheel's grafts)


def read_evidence(wheel: Path) -> WheelEvidence:
    """Read the tags, the WHEEL file and the zip entries' timestamps and modes."""
    try:
        _, _, _, tags = parse_wheel_filename(wheel.name)
    except InvalidWheelFilename as e:
        raise ArchiveError(f"{wheel.name} is not a valid wheel filename: {e}") from e
    try:
        with zipfile.ZipFile(wheel) as zf:
            infos = zf.infolist()
            wheel_info = [
                i
                for i in infos
                if i.filename.count("/") == 1 and i.filename.endswith(".dist-info/WHEEL")
            ]
            if len(wheel_info) != 1:
                raise ArchiveError(
                    f"{wheel.name} has {len(wheel_info)} .dist-info/WHEEL files, not 1"
                )
            if wheel_info[0].file_size > MAX_WHEEL_FILE:
                raise ArchiveError(f"{wheel.name}: its WHEEL file is implausibly large")
            text = zf.read(wheel_info[0]).decode("utf-8", errors="replace")
            metadata = _metadata_headers(zf, wheel_info[0].filename.replace("/WHEEL", "/METADATA"))
    # A damaged member surfaces from its codec, or as an unknown method or a bad header value.
    except ZIP_READ_ERRORS as e:
        raise ArchiveError(f"{wheel.name} cannot be read as a zip: {e}") from e
    headers = HeaderParser().parsestr(text)
    purelib = headers.get("Root-Is-Purelib")
    files = [i for i in infos if not i.filename.endswith("/")]  # is_dir() fails on ""
    return WheelEvidence(
        tags=tags,
        generator=(headers.get("Generator") or "").strip() or None,
        root_is_purelib=None if purelib is None else purelib.strip().lower() == "true",
        timestamps=Counter(i.date_time for i in files),
        file_modes=Counter(stat.S_IMODE(i.external_attr >> 16) for i in files),
        wheel_tags=tuple(t.strip() for t in headers.get_all("Tag") or ()),
        requires_dist=tuple(v.strip() for v in metadata.get_all("Requires-Dist") or ()),
        libs_dirs=tuple(
            sorted(
                {
                    top
                    for top, sep, _ in (i.filename.partition("/") for i in infos)
                    if sep and top.endswith(".libs")
                }
            )
        ),
    )


def _metadata_headers(zf: zipfile.ZipFile, name: str) -> Message:
    """The header fields of the wheel's METADATA (empty when it has none), read up to the
    blank line that starts the description and never past :data:`MAX_METADATA_HEADERS`."""
    try:
        with zf.open(name) as member:
            head = member.read(MAX_METADATA_HEADERS)
    except KeyError:
        return Message()
    text = head.decode("utf-8", errors="replace").replace("\r\n", "\n")
    return HeaderParser().parsestr(text.partition("\n\n")[0])


def backend_from_generator(generator: str | None) -> tuple[str | None, tuple[str, ...]]:
    """The backend a Generator line names and the exact pins it implies."""
    if generator is None:
        return None, ()
    for rule in BACKEND_RULES:
        match = rule.pattern.match(generator)
        if match is None:
            continue
        version = match.groupdict().get("version")
        pins = (f"{rule.pin}=={version}",) if rule.pin and version else ()
        return rule.backend, pins + rule.implies
    return None, ()


def _pins_origin(generator: str | None) -> str:
    """Where the backend pins come from: the Generator's version, and what the line implies."""
    origin = f"version in WHEEL Generator: {generator}"
    for rule in BACKEND_RULES:
        if generator is not None and rule.implies and rule.pattern.match(generator):
            origin += f"; {', '.join(rule.implies)}: {rule.because}"
    return origin


# One pure wheel for both Pythons is what setuptools' bdist_wheel makes with `universal` set.
# Given as a config file in DIST_EXTRA_CONFIG, which distutils reads after setup.cfg: measured
# with pytz 2026.6's sdist, setuptools 65.7.0 to 84.2.1 honour it (64.0.0 and older ignore it,
# and the rebuild is then py3 only, as without the rule); `--build-option=--universal` is
# refused by setuptools before 69 (passed on to egg_info), which failed shellingham 1.5.4.
UNIVERSAL_TAGS = frozenset({Tag("py2", "none", "any"), Tag("py3", "none", "any")})
UNIVERSAL_CONFIG = "/tmp/rebuild-bdist-wheel-universal.cfg"  # noqa: S108 (the container's)
UNIVERSAL_ORIGIN = (
    "wheel tags py2-none-any and py3-none-any: the publisher's bdist_wheel ran with universal "
    "set (given in DIST_EXTRA_CONFIG, which setuptools 65 and later read)"
)


def universal_build(
    backend: str | None, tags: frozenset[Tag]
) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
    """The environment and the pre-build step that set bdist_wheel's ``universal`` for a
    setuptools wheel tagged for Python 2 and 3 alike; nothing for any other."""
    if backend != "setuptools" or tags != UNIVERSAL_TAGS:
        return (), ()
    step = f"printf '[bdist_wheel]\\nuniversal = 1\\n' > {UNIVERSAL_CONFIG}"
    return (("DIST_EXTRA_CONFIG", UNIVERSAL_CONFIG),), (step,)


def spelling_pins(
    backend: str | None, requires_dist: tuple[str, ...], pins: tuple[str, ...]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The requirements the METADATA's spelling implies for ``backend``, and why each, leaving
    out a project ``pins`` already names (the Generator's exact version is the better word)."""
    named = requirement_names(pins)
    implied, why = [], []
    for rule in SPELLING_RULES:
        if rule.backend != backend or not any(rule.pattern.match(v) for v in requires_dist):
            continue
        if canonicalize_name(Requirement(rule.implies).name) in named:
            continue
        implied.append(rule.implies)
        why.append(f"{rule.implies}: {rule.because}")
    return tuple(implied), tuple(why)


def _without_itself(pins: tuple[str, ...], wheel: Path) -> tuple[tuple[str, ...], str | None]:
    """The backend pins without those naming the wheel's own project, and the first of those."""
    try:
        project = parse_wheel_filename(wheel.name)[0]
    except InvalidWheelFilename:
        return pins, None
    own = [p for p in pins if canonicalize_name(Requirement(p).name) == project]
    return tuple(p for p in pins if p not in own), own[0] if own else None


def source_date_epoch(timestamps: Counter[tuple[int, int, int, int, int, int]]) -> int | None:
    """SOURCE_DATE_EPOCH when every entry carries the same timestamp, else None (file mtimes).

    Backends that honour SOURCE_DATE_EPOCH write it through ``time.gmtime``, so the zip's
    local-time fields are read back as UTC.
    """
    if len(timestamps) != 1:
        return None
    (only,) = timestamps
    return calendar.timegm((*only, 0, 0, 0))


def umask_from_modes(modes: Counter[int]) -> str | None:
    """The builder's umask, from the permission bits of the published members (0664 -> 002)."""
    if not modes or set(modes) == {0}:
        return None  # no permission bits recorded (e.g. a zip written without them)
    common = max(modes, key=lambda m: (modes[m], m))
    # Regular files are created 0666 minus the umask (executables 0777 minus it).
    base = 0o777 if common & 0o111 else 0o666
    return f"{(base & ~common) & 0o777:03o}"


# PEP 600 names of the legacy manylinux tags (PEPs 513, 571, 599): auditwheel accepts both.
_LEGACY_POLICIES = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}
_POLICY = re.compile(
    r"^(?P<family>manylinux|musllinux)_(?P<major>\d+)_(?P<minor>\d+)_(?P<arch>\w+)$"
)
_LEGACY_POLICY = re.compile(r"^(?P<legacy>manylinux(?:1|2010|2014))_(?P<arch>\w+)$")
# Backends that audit and tag the wheel themselves: nothing ran auditwheel after them.
_SELF_REPAIRING = frozenset({"maturin"})


def _policy(platform: str) -> tuple[str, int, int, str] | None:
    """``manylinux2014_x86_64`` -> ``("manylinux", 2, 17, "x86_64")``; None for other platforms."""
    legacy = _LEGACY_POLICY.match(platform)
    if legacy is not None:
        major, minor = _LEGACY_POLICIES[legacy["legacy"]]
        return "manylinux", major, minor, legacy["arch"]
    policy = _POLICY.match(platform)
    if policy is None:
        return None
    return policy["family"], int(policy["major"]), int(policy["minor"]), policy["arch"]


def repair_platform(evidence: WheelEvidence, backend: str | None) -> tuple[str | None, str]:
    """The ``--plat`` auditwheel repaired the published wheel for, and the evidence for it.

    A manylinux/musllinux tag (in the filename or the WHEEL ``Tag:`` lines) is what auditwheel
    writes; ``<pkg>.libs/`` is where it grafts libraries. Of several policies the wheel claims,
    the least compatible one (the newest glibc or musl) is what auditwheel was asked for: it adds
    the aliases and every older policy the wheel also satisfies (unless told ``--only-plat``), so
    a wheel repaired in a manylinux_2_28 image for 2_28 is tagged 2014, 2_17 and 2_28. Returns
    ``(None, why not)`` when there is nothing to replay.
    """
    platforms = {t.platform for t in evidence.tags}
    for line in evidence.wheel_tags:
        platforms.add(line.rsplit("-", 1)[-1])
    policies = sorted(p for p in map(_policy, platforms) if p is not None)
    libs = ", ".join(f"{d}/" for d in evidence.libs_dirs)
    if not policies:
        if libs:
            return None, f"{libs} in the wheel, but no manylinux/musllinux tag says for what"
        return None, "no manylinux/musllinux tag"
    if backend in _SELF_REPAIRING:
        return None, f"{backend} audits and tags the wheel itself"
    family, major, minor, arch = max(policies, key=lambda p: (p[1], p[2]))
    tags = ", ".join(sorted(p for p in platforms if _policy(p) is not None))
    where = f"platform tags {tags}"
    if evidence.wheel_tags:
        where += " (filename and WHEEL Tag: lines)"
    if libs:
        where += f"; {libs} in the wheel"
    return f"{family}_{major}_{minor}_{arch}", where


# CPython releases Debian ships in no suite: images are made from Debian's packages only.
# CPythons no image can have: in no Debian suite, and no longer in Debian's pool as a source
# either (an image builds the CPython a suite lacks from the archive's orig tarball; for these
# the pool answers 404, and no other archive is reachable from here).
_NOT_IN_DEBIAN = {
    "3.10": "bullseye has 3.9, bookworm 3.11, and the archive no longer serves its source",
    "3.12": "bookworm has 3.11, trixie 3.13, and the archive no longer serves its source",
}


def python_for(
    tags: frozenset[Tag],
    images: Mapping[str, str],
    *,
    published: PublishedToolchain | None = None,
    compilers: Mapping[str, ImageCompiler | None] | None = None,
) -> tuple[str, str]:
    """Pick (image, python) able to build a wheel with these tags; PlanError if none can.

    Of several images with the interpreter, the one whose compiler matches ``published`` best
    (exact, then major.minor), else the first by name.
    """
    platforms = {t.platform for t in tags}
    if not platforms & {"any"} and not any(
        p.startswith(("manylinux", "linux")) and p.endswith("x86_64") for p in platforms
    ):
        raise PlanError(
            f"no build image can produce a wheel for {', '.join(sorted(platforms))}",
            hint=f"images available: {', '.join(f'{n} (Python {v})' for n, v in images.items())}; "
            "these build Linux x86_64 and pure-Python wheels",
        )
    wanted: set[str] = set()
    for tag in tags:
        if tag.interpreter.startswith("cp") and tag.abi != "abi3":
            wanted.add(f"{tag.interpreter[2]}.{tag.interpreter[3:]}")
    by_python = sorted(images.items(), key=lambda item: item[0])
    if wanted:
        candidates = [name for name, python in by_python if python in wanted]
    else:
        # Pure or abi3 wheels build under any CPython 3 image.
        candidates = [name for name, python in by_python if python.startswith("3.")]
    if candidates:
        name = candidates[0]
        if published is not None and published.compiler is not None and compilers is not None:
            name = toolchain.best_image(published, candidates, compilers)
        return name, images[name]
    missing = ", ".join(sorted(wanted))
    absent = [
        f"CPython {v} is in no Debian suite ({_NOT_IN_DEBIAN[v]})"
        for v in sorted(wanted)
        if v in _NOT_IN_DEBIAN
    ]
    why = (
        f": {'; '.join(absent)}, and build images are made from Debian's packages only"
        if absent
        else ""
    )
    raise PlanError(
        f"no build image provides Python {missing}{why}",
        hint=f"images available: {', '.join(f'{n} (Python {v})' for n, v in by_python)}; "
        "check the wheel of one of these with --python",
    )


def plan_build(
    wheel: Path,
    *,
    upload_time: datetime | None,
    images: Mapping[str, str],
    recipe: Recipe | None = None,
    version: str | None = None,
    compilers: Mapping[str, ImageCompiler | None] | None = None,
) -> Plan:
    """The effective recipe for rebuilding ``wheel``; ``images`` maps image name -> Python.

    With a ``recipe`` (and the release's ``version``), its first section matching the version
    and the wheel's tags overrides what the wheel alone says; ``Plan.origins`` says which.
    ``compilers`` maps image name -> its compiler (default: read from each image's
    packages.lock); the image whose compiler matches the published objects' is preferred, and
    the plan's ``toolchain`` says which was matched, how, and which flags are replayed.
    """
    if compilers is None:
        compilers = toolchain.image_compilers(images)
    evidence = read_evidence(wheel)
    published = toolchain.published_toolchain(
        toolchain.read_objects(wheel) if not _pure(evidence) else (),
        platforms={t.platform for t in evidence.tags}
        | {line.rsplit("-", 1)[-1] for line in evidence.wheel_tags},
        upload_time=upload_time,
    )
    inferred = _infer(
        wheel, upload_time=upload_time, images=images, published=published, compilers=compilers
    )
    if recipe is None or version is None:
        return _with_toolchain(inferred, published, compilers, images)
    section = recipe.select(version, inferred.wheel_tags)
    if section is None:
        planned = replace(
            inferred,
            notes=(
                *inferred.notes,
                f"{recipe.path.name} has no [[release]] for {version} with tags "
                f"{', '.join(inferred.wheel_tags)}: planned from the wheel alone",
            ),
        )
        return _with_toolchain(planned, published, compilers, images)
    return _with_toolchain(
        apply_recipe(inferred, recipe, section, dict(images)), published, compilers, images
    )


def _flags_origin(chosen: Toolchain) -> str:
    match chosen.evidence:
        case ToolchainEvidence.PRODUCER:
            return f"the published objects' DW_AT_producer: {chosen.published_from}"
        case ToolchainEvidence.COMMENT | ToolchainEvidence.IMAGE_HISTORY:
            return "manylinux's CPython build flags (the published objects record none)"
        case ToolchainEvidence.NONE:
            return "none"
        case _:
            assert_never(chosen.evidence)


def _pure(evidence: WheelEvidence) -> bool:
    return all(t.platform == "any" for t in evidence.tags)


def _with_toolchain(
    plan: Plan,
    published: PublishedToolchain,
    compilers: Mapping[str, ImageCompiler | None],
    images: Mapping[str, str],
) -> Plan:
    """``plan`` with the toolchain of its (final) image: the match, its evidence, the flags."""
    if plan.pure:
        return plan
    chosen = toolchain.choose(published, plan.image, compilers.get(plan.image))
    origins = list(plan.origins)
    notes = list(plan.notes)
    if chosen.published_family:
        origins.append(("toolchain", f"{chosen.evidence.value}: {chosen.published_from}"))
    if chosen.match is ToolchainMatch.NONE:
        notes.append(
            f"compiler not matched: published {chosen.published}, rebuilt with "
            f"{chosen.rebuilt} in {plan.image} ({chosen.evidence.value})"
        )
        better = [
            name
            for name, compiler in sorted(compilers.items())
            if name != plan.image
            and images.get(name) == plan.python
            and toolchain.match(published.compiler, compiler.compiler if compiler else None)
            is not ToolchainMatch.NONE
        ]
        if better and plan.recipe:
            notes.append(
                f"{', '.join(better)} has the published compiler, but the recipe names "
                f"{plan.image}: point its fallback there to have the code verified"
            )
    else:
        # The image is still not upstream's (no manylinux image can be pulled here), but the
        # compiler is: the "divergence expected" sentence no longer holds.
        notes = [n.replace(UNMATCHED_CLAUSE, "") for n in notes]
        origins.append(("toolchain_flags", _flags_origin(chosen)))
        replayed = " ".join(chosen.replayed) or "no flags"
        notes.append(
            f"compiler matched ({chosen.match.value}, by {chosen.evidence.value}): published "
            f"{chosen.published}, rebuilt with {chosen.rebuilt} in {plan.image} (not upstream's "
            f"image, which cannot be had here); replayed {replayed}, then "
            f"{' '.join(chosen.undone) or 'nothing'} to undo the image's distribution defaults"
        )
    notes.extend(chosen.notes)
    if chosen.dropped:
        notes.append(
            f"recorded flags not replayed (not on the allow-list): {' '.join(chosen.dropped)}"
        )
    return replace(plan, toolchain=chosen, origins=tuple(origins), notes=tuple(notes))


def _infer(
    wheel: Path,
    *,
    upload_time: datetime | None,
    images: Mapping[str, str],
    published: PublishedToolchain | None = None,
    compilers: Mapping[str, ImageCompiler | None] | None = None,
) -> Plan:
    """The plan the published wheel alone supports."""
    evidence = read_evidence(wheel)
    image, python = python_for(evidence.tags, images, published=published, compilers=compilers)
    backend, named_pins = backend_from_generator(evidence.generator)
    implied, implied_why = spelling_pins(backend, evidence.requires_dist, named_pins)
    pins = named_pins + implied
    sde = source_date_epoch(evidence.timestamps)
    umask = umask_from_modes(evidence.file_modes)
    pure = all(t.platform == "any" for t in evidence.tags)
    origins = [
        ("image", f"wheel tags {', '.join(sorted(str(t) for t in evidence.tags))}"),
        ("backend", f"WHEEL Generator: {evidence.generator}" if evidence.generator else "unknown"),
    ]
    notes: list[str] = []
    manylinux = sorted({t.platform for t in evidence.tags if t.platform.startswith("manylinux")})
    if manylinux:
        notes.append(
            f"the published wheel ({', '.join(manylinux)}) was built in a manylinux image, "
            f"which this machine cannot use: rebuilt in {image} instead{UNMATCHED_CLAUSE}"
        )
    repair, repair_evidence = repair_platform(evidence, backend)
    if repair is not None:
        origins.append(("repair", repair_evidence))
        notes.append(
            f"the published wheel was repaired by auditwheel: `auditwheel repair --plat {repair}`"
            " is replayed after the build (auditwheel as of the upload time); if it refuses, "
            "the unrepaired wheel is compared and the build says why"
        )
    elif evidence.libs_dirs:
        notes.append(f"auditwheel repair not replayed: {repair_evidence}")
    if evidence.generator is None:
        notes.append("the WHEEL file names no Generator: the backend version is time-warped only")
    elif backend is None:
        notes.append(f"unknown Generator {evidence.generator!r}: backend version not pinned")
    pins, own = _without_itself(pins, wheel)
    if own:
        # A backend that builds itself (hatchling, flit-core, setuptools, wheel): the release is
        # not on the index before its own upload, and needs not be: its sdist holds the backend.
        notes.append(
            f"the WHEEL Generator {'names' if '==' in own else 'implies'} {own}, the release "
            "itself: it is built by the backend "
            "in its own sdist (backend-path), as upstream's build was"
        )
        origins[1] = ("backend", f"{origins[1][1]}: the release itself, its in-tree backend")
    if pins:
        origin = _pins_origin(evidence.generator) if named_pins else None
        origins.append(("backend_pins", "; ".join(o for o in (origin, *implied_why) if o)))
    if implied:
        origins.append(("build_isolation", SPELLING_INSTALLED))
    universal_environment, pre_build = universal_build(backend, evidence.tags)
    if pre_build:
        origins += [("environment", UNIVERSAL_ORIGIN), ("pre_build", UNIVERSAL_ORIGIN)]
    if upload_time is not None:
        origins.append(("exclude_newer", "the published wheel's upload time on the index"))
    else:
        notes.append("no upload time known: build requirements resolved as of today")
    if sde is not None:
        origins.append(("source_date_epoch", "every zip entry carries the same timestamp"))
    else:
        notes.append(
            f"zip entries carry {len(evidence.timestamps)} distinct timestamps: the publisher "
            "used file mtimes, replayed from the sdist's"
        )
    if umask is not None:
        origins.append(("umask", "the most common permission bits of the published members"))
    environment = [("SOURCE_DATE_EPOCH", str(sde))] if sde is not None else []
    environment += universal_environment
    return Plan(
        image=image,
        python=python,
        wheel_tags=tuple(sorted(str(t) for t in evidence.tags)),
        pure=pure,
        generator=evidence.generator,
        backend=backend,
        backend_pins=pins,
        exclude_newer=upload_time,
        source_date_epoch=sde,
        umask=umask,
        environment=tuple(environment),
        origins=tuple(origins),
        notes=tuple(notes),
        repair=repair,
        build_isolation=not implied,
        pre_build=pre_build,
    )
