"""Explanations as data for source findings: which generated files are understood, and why.

A build backend writes some files that are in no repository (PKG-INFO, ``*.egg-info/``, the
``[egg_info]`` section setuptools adds to setup.cfg, the version file setuptools-scm or hatch-vcs
writes from git metadata). A rule matches one finding by its kind, its path and, where a name
alone would let injected code pass, by what the content is: a version file is explained only when
it holds nothing but literal assignments naming the release's version. The first rule that
matches gives the reason; a finding no rule matches stays unexplained.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, replace

from packaging.version import InvalidVersion, Version

from rebuild.models import Comparison, DivergenceKind, Outcome, ProvenanceCheck, Reason

MAX_VERSION_FILE_BYTES = 16 * 1024


@dataclass(frozen=True)
class SourceFile:
    """What a rule may know of one finding."""

    kind: DivergenceKind
    path: str  # the path in the source it should come from (wheel path mapped, sdist path)
    content: bytes  # the published file's bytes (the wheel member, the sdist file)
    counterpart: bytes | None  # the source's bytes at that path, if any
    version: str  # the release's version
    has_source: Callable[[str], bool]  # whether the source has a file at a path


@dataclass(frozen=True)
class SourceRule:
    id: str
    kinds: frozenset[DivergenceKind]
    path: re.Pattern[str]
    reason: str
    when: Callable[[SourceFile], bool] | None = None

    def matches(self, file: SourceFile) -> bool:
        return (
            file.kind in self.kinds
            and self.path.search(file.path) is not None
            and (self.when is None or self.when(file))
        )


# --- content predicates ----------------------------------------------------------------------

# What a generated version file may contain: literals, names, typing subscripts, TYPE_CHECKING
# branches. No call, attribute, function or loop: nothing that runs code on import. What is
# stored is only ever a plain name (see _only_name_stores): a subscript or attribute store
# (`__builtins__["len"] = ...`) changes another object, which a version file never does.
_LITERAL_NODES = (
    ast.Module,
    ast.Expr,
    ast.Constant,
    ast.Assign,
    ast.AnnAssign,
    ast.Name,
    ast.Load,
    ast.Store,
    ast.Tuple,
    ast.List,
    ast.Subscript,
    ast.If,
    ast.ImportFrom,
    ast.Import,
    ast.alias,
)
_HARMLESS_IMPORTS = frozenset({"typing", "__future__"})
# The dunder names a version file may bind; any other (`__builtins__`, `__getattr__`, `__path__`,
# `__class__`...) changes how the module or the interpreter behaves.
_VERSION_DUNDERS = frozenset(
    {"__version__", "__version_tuple__", "__version_info__", "__commit_id__", "__all__"}
)


def _same_version(text: str, version: str) -> bool:
    try:
        return Version(text) == Version(version)
    except InvalidVersion:
        return False


def _parse(content: bytes) -> ast.Module | None:
    if len(content) > MAX_VERSION_FILE_BYTES:
        return None
    try:
        return ast.parse(content)
    except (SyntaxError, ValueError):
        return None


def _plain_name(target: ast.expr) -> bool:
    return isinstance(target, ast.Name) and (
        not (target.id.startswith("__") and target.id.endswith("__"))
        or target.id in _VERSION_DUNDERS
    )


def _only_name_stores(tree: ast.Module) -> bool:
    """Every store is ``Name = ...`` or ``Name: annotation [= ...]``, to an allowed name."""
    targets: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            if not all(_plain_name(t) for t in node.targets):
                return False
            targets.update(id(t) for t in node.targets)
        elif isinstance(node, ast.AnnAssign):
            if not (node.simple and _plain_name(node.target)):
                return False
            targets.add(id(node.target))
        elif isinstance(node, ast.alias):
            bound = (node.asname or node.name).split(".", 1)[0]
            if bound.startswith("__") and bound != "__future__":
                return False
    # A Store anywhere else (a subscript, an attribute, a tuple unpacked, a loop variable...).
    return all(
        id(node) in targets
        for node in ast.walk(tree)
        if isinstance(getattr(node, "ctx", None), ast.Store)
    )


def _literal_version_file(content: bytes, version: str) -> bool:
    """Only literal assignments (setuptools-scm, hatch-vcs, pdm templates), naming ``version``."""
    tree = _parse(content)
    if tree is None or not _only_name_stores(tree):
        return False
    for node in ast.walk(tree):
        if not isinstance(node, _LITERAL_NODES):
            return False
        if isinstance(node, ast.ImportFrom) and node.module not in _HARMLESS_IMPORTS:
            return False
        if isinstance(node, ast.Import) and any(
            a.name not in _HARMLESS_IMPORTS for a in node.names
        ):
            return False
    return any(
        isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and _same_version(node.value, version)
        for node in ast.walk(tree)
    )


_VERSIONEER_FUNCTION = ast.dump(
    ast.parse("def get_versions():\n    return json.loads(version_json)\n").body[0]
)


def _versioneer_file(content: bytes, version: str) -> bool:
    """The short ``_version.py`` versioneer writes into a wheel: a JSON literal and its reader."""
    tree = _parse(content)
    if tree is None:
        return False
    body = [
        n for n in tree.body if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))
    ]
    if len(body) != 3:
        return False
    imports, assign, function = body
    if ast.dump(imports) != ast.dump(ast.parse("import json").body[0]):
        return False
    if ast.dump(function) != _VERSIONEER_FUNCTION:
        return False
    if not (
        isinstance(assign, ast.Assign)
        and len(assign.targets) == 1
        and isinstance(assign.targets[0], ast.Name)
        and assign.targets[0].id == "version_json"
        and isinstance(assign.value, ast.Constant)
        and isinstance(assign.value.value, str)
    ):
        return False
    try:
        data = json.loads(assign.value.value)
    except ValueError:
        return False
    return isinstance(data, dict) and _same_version(str(data.get("version")), version)


def _version_file(file: SourceFile) -> bool:
    return _literal_version_file(file.content, file.version) or _versioneer_file(
        file.content, file.version
    )


_EGG_INFO_SECTION = re.compile(r"^\[egg_info\]\s*$")
_EGG_INFO_KEYS = frozenset({"tag_build", "tag_date", "tag_svn_revision"})


def _without_egg_info(text: str) -> tuple[str, bool]:
    """``text`` without its ``[egg_info]`` section; False if that section sets anything else."""
    kept: list[str] = []
    inside = False
    for line in text.splitlines():
        if line.startswith("["):
            inside = _EGG_INFO_SECTION.match(line) is not None
            if inside:
                continue
        if inside:
            key = line.split("=", 1)[0].strip()
            if line.strip() and key not in _EGG_INFO_KEYS:
                return text, False
            continue
        kept.append(line)
    return "\n".join(kept).strip(), True


def _setup_cfg_egg_info(file: SourceFile) -> bool:
    try:
        published = file.content.decode("utf-8")
        original = (file.counterpart or b"").decode("utf-8")
    except UnicodeDecodeError:
        return False
    stripped, only_tags = _without_egg_info(published)
    return only_tags and stripped == original.strip()


def _metadata_file(file: SourceFile) -> bool:
    return file.content.startswith(b"Metadata-Version:")


_EGG_INFO_FILES = frozenset(
    {
        "PKG-INFO",
        "SOURCES.txt",
        "dependency_links.txt",
        "top_level.txt",
        "requires.txt",
        "entry_points.txt",
        "not-zip-safe",
        "zip-safe",
        "namespace_packages.txt",
        "eager_resources.txt",
    }
)


def _egg_info_file(file: SourceFile) -> bool:
    return file.path.rsplit("/", 1)[-1] in _EGG_INFO_FILES


_PYTHON_SHEBANG = re.compile(rb"^#!(python|\S*/python[0-9.]*)(\s|$)")


def _rewritten_shebang(file: SourceFile) -> bool:
    if file.counterpart is None or not file.counterpart.startswith(b"#!"):
        return False
    head, _, rest = file.content.partition(b"\n")
    _, _, original_rest = file.counterpart.partition(b"\n")
    return _PYTHON_SHEBANG.match(head) is not None and rest == original_rest


# --- the rules -------------------------------------------------------------------------------

_IN_SDIST_ONLY = frozenset({DivergenceKind.NOT_IN_GIT, DivergenceKind.DIFFERS_FROM_GIT})
_IN_WHEEL_ONLY = frozenset({DivergenceKind.NOT_IN_SDIST, DivergenceKind.DIFFERS_FROM_SDIST})
_VERSION_FILE_NAME = re.compile(r"(^|/)(_?_?version_?_?|_version_info)\.pyi?$")

SDIST_RULES: tuple[SourceRule, ...] = (
    SourceRule(
        id="pkg-info",
        kinds=frozenset({DivergenceKind.NOT_IN_GIT}),
        path=re.compile(r"^PKG-INFO$"),
        reason="core metadata the build backend writes into every sdist",
        when=_metadata_file,
    ),
    SourceRule(
        id="egg-info",
        kinds=_IN_SDIST_ONLY,
        path=re.compile(r"(^|/)[^/]+\.egg-info/[^/]+$"),
        reason="setuptools' egg-info metadata, written when the sdist was made",
        when=_egg_info_file,
    ),
    SourceRule(
        id="setup-cfg-egg-info",
        kinds=_IN_SDIST_ONLY,
        path=re.compile(r"^setup\.cfg$"),
        reason="setuptools adds an [egg_info] section (tag_build/tag_date) to setup.cfg in sdists",
        when=_setup_cfg_egg_info,
    ),
    SourceRule(
        id="scm-version-file",
        kinds=_IN_SDIST_ONLY,
        path=_VERSION_FILE_NAME,
        reason="version file written from git metadata at build time (setuptools-scm, hatch-vcs, "
        "versioneer): only literal assignments naming this release's version",
        when=_version_file,
    ),
)

WHEEL_RULES: tuple[SourceRule, ...] = (
    SourceRule(
        id="scm-version-file",
        kinds=_IN_WHEEL_ONLY,
        path=_VERSION_FILE_NAME,
        reason="version file written at build time (setuptools-scm, hatch-vcs, versioneer): only "
        "literal assignments naming this release's version",
        when=_version_file,
    ),
    SourceRule(
        id="script-shebang",
        kinds=frozenset({DivergenceKind.DIFFERS_FROM_SDIST}),
        path=re.compile(r"."),
        reason="the backend rewrites a script's #! line to the installing interpreter; the rest "
        "is the sdist's",
        when=_rewritten_shebang,
    ),
)


def explain(file: SourceFile, rules: tuple[SourceRule, ...]) -> Reason | None:
    """The reason of the first rule matching ``file``, or None: unexplained."""
    for rule in rules:
        if rule.matches(file):
            return Reason(rule.id, rule.reason)
    return None


def outcome_of(reason: Reason | None) -> tuple[Outcome, tuple[Reason, ...]]:
    """The outcome and reasons a finding gets from :func:`explain`'s answer."""
    if reason is None:
        return Outcome.UNEXPLAINED, ()
    return Outcome.EXPLAINED, (reason,)


_OWN_MEMBER_KINDS = frozenset(
    {
        DivergenceKind.CONTENT,
        DivergenceKind.METADATA_FIELD,
        DivergenceKind.ONLY_PUBLISHED,
        DivergenceKind.PERMISSIONS,
    }
)
BUILT_TOO = Reason(
    "built-too",
    "generated by the build: the rebuild from this sdist made the same member, and the "
    "comparison accounts for every difference",
)

COMPRESSED_AFTER_BUILD = Reason(
    "built-then-compressed",
    "a gzip of a file the rebuild from this sdist made: the comparison checked that it inflates "
    "to the rebuilt file's bytes (published-gzip)",
)


def explain_built(check: ProvenanceCheck, comparison: Comparison) -> ProvenanceCheck:
    """Findings about files the build itself writes, explained by the rebuild that wrote them.

    A wheel's Python file missing from the sdist (or other than the sdist's) is explained when
    the rebuilt wheel has the member too and the comparison left nothing about it unexplained:
    the source, built, accounts for it.
    """
    unexplained = {
        d.member
        for d in comparison.divergences
        if d.member
        and d.kind in _OWN_MEMBER_KINDS
        and (not d.explained or d.kind is DivergenceKind.ONLY_PUBLISHED)
    }
    # A published gzip of a file the rebuild made, checked to inflate to the rebuilt bytes
    # (rebuild.compare.compressed): the source, built and then compressed, accounts for it.
    compressed = {
        d.member
        for d in comparison.divergences
        if d.member
        and d.kind is DivergenceKind.ONLY_PUBLISHED
        and any(r.rule == "published-gzip" for r in d.reasons)
    }
    findings = tuple(
        d.explained_by(COMPRESSED_AFTER_BUILD)
        if d.kind is DivergenceKind.NOT_IN_SDIST and not d.explained and d.member in compressed
        else d.explained_by(BUILT_TOO)
        if d.kind in _IN_WHEEL_ONLY and not d.explained and d.member not in unexplained
        else d
        for d in check.findings
    )
    return replace(check, findings=findings)
