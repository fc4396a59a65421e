"""Upstream's wheel-building CI configuration, read as evidence: cibuildwheel's settings.

A release's wheels are built by its CI, and what that CI set changes what comes out: mypyc
builds (tomli, charset-normalizer) compile only with ``*_USE_MYPYC=1``; cffi needs ``ffi.h`` from
the system packages its ``before-all`` installs; a backend gets ``config-settings``. cibuildwheel
reads them from ``[tool.cibuildwheel]`` in ``pyproject.toml`` (or ``cibuildwheel.toml``), with
``[tool.cibuildwheel.linux]`` over the top level and ``overrides`` selected by build identifier
(``cp311-manylinux_x86_64``); this module reads them the same way from the source being rebuilt.

What is taken, and how:

- ``environment``: set for the build, each variable named with its origin;
- ``before-all``: the packages its ``yum``/``dnf``/``apk``/``apt-get install`` lines name, mapped to
  Debian's names by the table in ``package-names.toml`` (data, not code) and installed in an
  image derived from the plan's; any other command (a script, a download) is not replayed, and
  the report says so;
- ``config-settings``: passed to the backend, in order;
- ``before-build``: never run (it typically installs from the network), and said.

When the published wheel holds compiled modules (mypyc's ``*__mypyc*.so`` first) and the
source reads an environment variable that switches mypyc or Cython on (its name says MYPYC or
CYTHON, and USE, FORCE, ENABLE or WITH), that variable is set to 1, with both
facts as the origin. Likewise a hatchling build hook that is off by default
(``enable-by-default = false``: chardet's mypyc and Cython hooks) is turned on, as hatch's
``HATCH_BUILD_HOOK_ENABLE_<NAME>`` does, when the published wheel holds compiled members. A
recipe overrides all of this: with one, nothing here applies.
"""

from __future__ import annotations

import fnmatch
import re
import shlex
import tomllib
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rebuild.models import Plan

CONFIG_FILES = ("pyproject.toml", "cibuildwheel.toml")
MAX_CONFIG_BYTES = 1024 * 1024
# `yum install -y a b`, `dnf -y install a`, `apk add --no-cache a`, `apt-get install -y a`.
_INSTALLERS = {
    "yum": ("redhat", "install"),
    "dnf": ("redhat", "install"),
    "microdnf": ("redhat", "install"),
    "apk": ("alpine", "add"),
    "apt-get": ("debian", "install"),
    "apt": ("debian", "install"),
}
_PACKAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+_-]*$")
# A variable the build reads that switches a compiler on: its name says MYPYC or CYTHON, and USE,
# FORCE, ENABLE or WITH (CHARSET_NORMALIZER_USE_MYPYC, CHARSET_NORMALIZER_USE_CYTHON,
# PYYAML_FORCE_CYTHON), not a variant of such a build (CHARSET_NORMALIZER_CYTHON_ABI3).
_MYPYC_VARIABLE = re.compile(
    r"""(?:getenv|environ\.get|environ\[)\s*\(?\s*["']"""
    r"""([A-Z][A-Z0-9_]*(?:MYPYC|CYTHON)[A-Z0-9_]*)["']"""
)
_SWITCH_WORDS = ("USE", "FORCE", "ENABLE", "WITH")
_MYPYC_MODULE = re.compile(r"__mypyc\.[^/]*\.so$")
# Files of a source tree that decide whether mypyc runs, read for the variable's name.
_BUILD_SCRIPTS = ("setup.py", "pyproject.toml", "setup.cfg", "build.py")


@dataclass(frozen=True)
class CiConfig:
    """What the source's CI configuration asks of a Linux build of one identifier."""

    environment: tuple[tuple[str, str], ...] = ()
    system_packages: tuple[str, ...] = ()  # Debian's names
    config_settings: tuple[tuple[str, str], ...] = ()
    origins: tuple[tuple[str, str], ...] = ()
    notes: tuple[str, ...] = ()


@dataclass
class _Taken:
    environment: list[tuple[str, str]] = field(default_factory=list)
    packages: list[str] = field(default_factory=list)
    settings: list[tuple[str, str]] = field(default_factory=list)
    origins: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def read_ci_config(source: Path, identifier: str, published: Path | None = None) -> CiConfig:
    """The configuration ``source`` (an extracted sdist or checkout) gives the build
    ``identifier`` (e.g. ``cp311-manylinux_x86_64``); ``published``: the wheel, for mypyc."""
    taken = _Taken()
    for name in CONFIG_FILES:
        options = _options(source / name, name)
        if options:
            _take(_select(options, identifier, name), name, taken)
            break
    if published is not None:
        _take_mypyc(source, published, taken)
        _take_hatch_hooks(source, published, taken)
    return CiConfig(
        environment=tuple(taken.environment),
        system_packages=tuple(dict.fromkeys(taken.packages)),
        config_settings=tuple(taken.settings),
        origins=tuple(taken.origins),
        notes=tuple(taken.notes),
    )


def apply_ci_config(plan: Plan, source: Path, published: Path | None) -> Plan:
    """``plan`` with what the source's CI configuration asks for; a recipe's plan unchanged
    (a recipe states its build whole, and wins)."""
    if plan.recipe is not None:
        return plan
    platform = next(
        (t.rsplit("-", 1)[-1] for t in plan.wheel_tags if "linux" in t.rsplit("-", 1)[-1]),
        None,
    )
    if platform is None:
        return plan  # a pure wheel: no cibuildwheel, unless it is mypyc (handled below)
    config = read_ci_config(source, identifier_for(plan.python, platform), published)
    if config == CiConfig():
        return plan
    given = {key for key, _ in plan.environment}
    return replace(
        plan,
        environment=(*plan.environment, *(e for e in config.environment if e[0] not in given)),
        config_settings=plan.config_settings or config.config_settings,
        system_packages=(*plan.system_packages, *config.system_packages),
        origins=(*plan.origins, *config.origins),
        notes=(*plan.notes, *config.notes),
    )


def identifier_for(python: str, platform_tag: str) -> str:
    """cibuildwheel's build identifier: ``cp311-manylinux_x86_64`` for 3.11 on manylinux."""
    family = "musllinux" if platform_tag.startswith("musllinux") else "manylinux"
    arch = platform_tag.rsplit("_", 1)[-1] if "_" in platform_tag else platform_tag
    arch = "x86_64" if platform_tag.endswith("x86_64") else arch
    return f"cp{python.replace('.', '')}-{family}_{arch}"


def _options(path: Path, name: str) -> dict[str, Any]:
    if not path.is_file() or path.stat().st_size > MAX_CONFIG_BYTES:
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, RecursionError):
        return {}  # the build reads it too, and says what is wrong with it
    options = data.get("tool", {}).get("cibuildwheel") if name == "pyproject.toml" else data
    if name == "cibuildwheel.toml" and isinstance(options, dict):
        options = options.get("tool", {}).get("cibuildwheel", options)
    return options if isinstance(options, dict) else {}


def _select(options: dict[str, Any], identifier: str, name: str) -> dict[str, tuple[Any, str]]:
    """Each option's value for ``identifier`` and where it came from: the top level, then
    ``linux``, then every matching ``overrides`` entry, later ones winning, as cibuildwheel."""
    chosen: dict[str, tuple[Any, str]] = {}
    for key, value in options.items():
        if key not in ("linux", "macos", "windows", "overrides"):
            chosen[key] = (value, f"{name} [tool.cibuildwheel] {key}")
    linux = options.get("linux")
    if isinstance(linux, dict):
        for key, value in linux.items():
            chosen[key] = (value, f"{name} [tool.cibuildwheel.linux] {key}")
    overrides = options.get("overrides")
    for i, override in enumerate(overrides if isinstance(overrides, list) else []):
        if not isinstance(override, dict):
            continue
        select = override.get("select", "")
        patterns = select.split() if isinstance(select, str) else list(select)
        if not any(isinstance(p, str) and fnmatch.fnmatch(identifier, p) for p in patterns):
            continue
        for key, value in override.items():
            if key not in ("select", "inherit"):
                chosen[key] = (value, f"{name} overrides[{i}] ({select}) {key}")
    return chosen


def _take(chosen: Mapping[str, tuple[Any, str]], name: str, taken: _Taken) -> None:
    if "environment" in chosen:
        value, origin = chosen["environment"]
        for key, text in _environment(value):
            if key in _RESERVED or key.startswith(_RESERVED_PREFIXES):
                # The sandbox's own settings (offline uv, scratch dirs, the replayed timestamp)
                # are not the source's to change: the source is what is under check.
                taken.notes.append(f"not taken from {origin}: {key} (the sandbox sets it)")
                continue
            taken.environment.append((key, text))
            taken.origins.append((f"environment {key}", origin))
    if "before-all" in chosen:
        value, origin = chosen["before-all"]
        packages, other = _installs(_commands(value))
        for package in packages:
            taken.packages.append(package)
        if packages:
            taken.origins.append(("system packages", f"{origin}: {', '.join(packages)}"))
        for command in other:
            taken.notes.append(f"not replayed from {origin}: `{command}`")
    if "config-settings" in chosen:
        value, origin = chosen["config-settings"]
        for key, text in _settings(value):
            taken.settings.append((key, text))
        if taken.settings:
            taken.origins.append(("config_settings", origin))
    if "before-build" in chosen:
        value, origin = chosen["before-build"]
        for command in _commands(value):
            taken.notes.append(
                f"not replayed from {origin}: `{command}` (it runs before each build)"
            )


def _environment(value: object) -> Iterable[tuple[str, str]]:
    if isinstance(value, dict):
        return [(str(k), str(v)) for k, v in value.items() if _VARIABLE.fullmatch(str(k))]
    if isinstance(value, str):
        try:
            words = shlex.split(value)
        except ValueError:
            return []
        pairs = [w.partition("=") for w in words]
        return [(k, v) for k, sep, v in pairs if sep and _VARIABLE.fullmatch(k)]
    return []


_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Variables the sandbox sets for every build (rebuild.build.container_environment) or that would
# change what runs rather than how the source builds.
_RESERVED = frozenset(
    {"HOME", "TMPDIR", "PATH", "LC_ALL", "TZ", "SOURCE_DATE_EPOCH", "LD_PRELOAD", "PYTHONPATH"}
)
_RESERVED_PREFIXES = ("UV_", "PIP_")


def _settings(value: object) -> list[tuple[str, str]]:
    if isinstance(value, dict):
        pairs: list[tuple[str, str]] = []
        for key, item in value.items():
            for one in item if isinstance(item, list) else [item]:
                pairs.append((str(key), str(one)))
        return pairs
    if isinstance(value, str):
        try:
            words = shlex.split(value)
        except ValueError:
            return []
        return [(k, v) for k, sep, v in (w.partition("=") for w in words) if sep]
    return []


def _commands(value: object) -> list[str]:
    lines = value if isinstance(value, list) else [value] if isinstance(value, str) else []
    commands: list[str] = []
    for line in lines:
        if isinstance(line, str):
            commands += [c.strip() for c in re.split(r"&&|;|\|\|", line) if c.strip()]
    return commands


def _installs(commands: Iterable[str]) -> tuple[list[str], list[str]]:
    """Debian packages for the install commands; the commands that are something else."""
    table = _package_names()
    packages: list[str] = []
    other: list[str] = []
    for command in commands:
        try:
            words = shlex.split(command)
        except ValueError:
            other.append(command)
            continue
        while words and words[0] in ("sudo", "command"):
            words = words[1:]
        installer = _INSTALLERS.get(words[0]) if words else None
        if installer is None or installer[1] not in words:
            other.append(command)
            continue
        family = installer[0]
        names = [w for w in words[words.index(installer[1]) + 1 :] if not w.startswith("-")]
        for name in names:
            debian = name if family == "debian" else table.get(family, {}).get(name)
            if debian is None or not _PACKAGE.fullmatch(debian):
                other.append(f"{words[0]} … {name} (no Debian name known for it)")
            else:
                packages.append(debian)
    return packages, other


def _package_names() -> dict[str, dict[str, str]]:
    path = Path(__file__).resolve().parent / "package-names.toml"
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return {
        family: {str(k): str(v) for k, v in names.items()}
        for family, names in data.items()
        if isinstance(names, dict)
    }


def _compiled_members(published: Path) -> list[str]:
    try:
        with zipfile.ZipFile(published) as wheel:
            return sorted(n for n in wheel.namelist() if n.endswith((".so", ".pyd")))
    except (OSError, zipfile.BadZipFile):
        return []


def _take_hatch_hooks(source: Path, published: Path, taken: _Taken) -> None:
    """hatchling's build hooks that are off by default (``enable-by-default = false``) and that
    hatch turns on with ``HATCH_BUILD_HOOK_ENABLE_<NAME>=true`` (chardet's mypyc and Cython
    hooks), when the published wheel holds compiled members a pure build would not make."""
    compiled = _compiled_members(published)
    pyproject = source / "pyproject.toml"
    if not compiled or not pyproject.is_file() or pyproject.stat().st_size > MAX_CONFIG_BYTES:
        return
    try:
        hatch = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("tool", {}).get("hatch")
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, RecursionError):
        return
    build = hatch.get("build", {}) if isinstance(hatch, dict) else {}
    tables = [("[tool.hatch.build.hooks]", build.get("hooks"))]
    wheel = build.get("targets", {}).get("wheel", {}) if isinstance(build, dict) else {}
    if isinstance(wheel, dict):
        tables.append(("[tool.hatch.build.targets.wheel.hooks]", wheel.get("hooks")))
    for where, hooks in tables:
        for name, hook in hooks.items() if isinstance(hooks, dict) else ():
            if not isinstance(hook, dict) or hook.get("enable-by-default", True) is not False:
                continue
            variable = f"HATCH_BUILD_HOOK_ENABLE_{str(name).upper().replace('-', '_')}"
            if _VARIABLE.fullmatch(variable):
                _infer(
                    taken,
                    variable,
                    "true",
                    f"the published wheel holds compiled members ({compiled[0]}), and the "
                    f"hatch build hook {name!r} ({where}) is off unless {variable} is set",
                )


def _infer(taken: _Taken, variable: str, value: str, origin: str) -> None:
    """Set ``variable`` from inference, unless the CI configuration already set it."""
    if variable not in {key for key, _ in taken.environment}:
        taken.environment.append((variable, value))
        taken.origins.append((f"environment {variable}", origin))


def _is_switch(variable: str) -> bool:
    return any(word in variable.split("_") for word in _SWITCH_WORDS)


def _take_mypyc(source: Path, published: Path, taken: _Taken) -> None:
    # Compiled members, mypyc's own group module first: mypyc names it `<hash>__mypyc`, but a
    # build of one module per extension (charset-normalizer 3.5) has none.
    compiled = sorted(_compiled_members(published), key=lambda n: not _MYPYC_MODULE.search(n))
    if not compiled:
        return
    found: dict[str, str] = {}
    for name in _BUILD_SCRIPTS:
        path = source / name
        if path.is_file() and path.stat().st_size <= MAX_CONFIG_BYTES:
            for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                for match in _MYPYC_VARIABLE.finditer(line):
                    if _is_switch(match[1]):
                        found.setdefault(match[1], f"{name}:{number}")
    for backend in sorted(source.glob("*/backend.py"))[:5]:  # an in-tree backend wrapper
        for number, line in enumerate(backend.read_text(errors="replace").splitlines(), 1):
            for match in _MYPYC_VARIABLE.finditer(line):
                if _is_switch(match[1]):
                    found.setdefault(match[1], f"{backend.relative_to(source)}:{number}")
    for variable, where in sorted(found.items()):
        _infer(
            taken,
            variable,
            "1",
            f"the published wheel holds compiled modules ({compiled[0]}), and the "
            f"source reads ${variable} ({where})",
        )
