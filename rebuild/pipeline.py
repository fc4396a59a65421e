"""The stages in order, and nothing else: each public function here is one thing a user asks.

No user I/O happens here: progress goes out through the callback the caller supplies, and every
function returns a value (a Release, a Report) for the caller to render.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.utils import canonicalize_name

from rebuild import __version__
from rebuild.archive import ZIP_READ_ERRORS
from rebuild.cleanup import remove_tree
from rebuild.compare import compare_wheels
from rebuild.compare.rules import explain_expected
from rebuild.errors import BuildError, PlanError, RebuildError, ResolveError, UsageError
from rebuild.fetch import Cache, default_cache_dir, local_artifact
from rebuild.local_compare import compare as compare  # the API's compare of two files
from rebuild.models import (
    Artifact,
    BuildLimits,
    Failure,
    Plan,
    ProvenanceCheck,
    Release,
    Report,
    SourceKind,
    Target,
    Verdict,
    WheelSelector,
)
from rebuild.plan import plan_build
from rebuild.recipes import Recipe, find_recipe, load_recipe
from rebuild.sources.rules import explain_built
from rebuild.verdict import decide, decide_source_only

if TYPE_CHECKING:
    from rebuild.indexes import Resolved

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


def resolve(
    target: Target,
    selector: WheelSelector,
    *,
    index_url: str | None = None,
    extra_index_urls: Sequence[str] = (),
    hashes: Collection[str] = (),
    progress: Progress = _quiet,
) -> Resolved:
    """What the indexes say of ``target``, and the wheel and sdist a rebuild would use.

    ``hashes``: a lock's sha256 digests; an index serving a wheel they name is the one used.
    """
    # The index client loads here, not with the module: `compare` never talks to an index.
    from rebuild.index import choose_index_url
    from rebuild.indexes import choose_extra_index_urls, resolve_across

    url = choose_index_url(index_url)
    progress(f"resolving {target} on {url}")
    return resolve_across(
        (url, *choose_extra_index_urls(extra_index_urls)), target, selector, hashes=hashes
    )


def latest(name: str, *, index_url: str | None = None) -> Target:
    """``name``'s newest final release on the index, as a target to check."""
    from rebuild.index import IndexClient, choose_index_url

    return IndexClient(choose_index_url(index_url)).latest(name)


@dataclass(frozen=True)
class CheckOptions:
    """How to run one check; the defaults are what `rebuild check` uses."""

    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()  # pip's --extra-index-url (see rebuild.indexes)
    wheel: Path | None = None  # a wheel file the user holds, checked instead of the index's
    cache_dir: Path | None = None
    keep_workdir: bool = False
    keep_container: bool = False
    limits: BuildLimits = field(default_factory=BuildLimits)
    # What to rebuild from (see rebuild.sources.provenance.prepare_source), and the repository
    # and ref when they cannot be located from the release.
    source: SourceKind = SourceKind.SDIST
    repo: str | None = None
    ref: str | None = None
    # A recipe file to use instead of recipes/<project>.toml (None: that one, if it exists).
    recipe: Path | None = None


def _failed(
    error: RebuildError,
    *,
    target: Target,
    release: Release | None,
    plan: Plan | None,
    log_path: Path | None = None,
    notes: tuple[str, ...] = (),
) -> Report:
    tail = ""
    if isinstance(error, BuildError) and error.log:
        tail = "\n".join(error.log.rstrip().splitlines()[-30:])
    return Report(
        tool_version=__version__,
        created=datetime.now(UTC),
        verdict=Verdict.FAILED,
        target=target,
        release=release,
        plan=plan,
        notes=notes,
        failure=Failure(
            stage=error.stage,
            message=error.message,
            hint=error.hint,
            exit_code=error.exit_code,
            log_path=log_path,
            log_tail=tail,
        ),
    )


def _published_wheel(
    release: Release, wheel: Path | None, cache: Cache, notes: list[str]
) -> tuple[Artifact, datetime | None]:
    """The wheel to verify and the instant its build requirements are resolved as of: the
    index's upload time, else (an HTML index lists none) the wheel's own newest zip timestamp,
    and the notes say which."""
    artifact, uploaded = _wheel_and_upload_time(release, wheel, cache, notes)
    if uploaded is not None:
        return artifact, uploaded
    stamped = newest_zip_time(artifact.path)
    if stamped is None:
        notes.append(
            "no upload time is known (the index lists none, and the wheel's zip timestamps are "
            "the 1980 placeholder): build requirements are resolved as of today"
        )
        return artifact, None
    notes.append(
        "no upload time is known (the index lists none): build requirements are resolved as of "
        f"the wheel's newest zip timestamp, {stamped.isoformat()} (read as UTC)"
    )
    return artifact, stamped


def newest_zip_time(wheel: Path) -> datetime | None:
    """The newest entry timestamp of a zip, as UTC; None when there is none past 1980."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            stamps = [info.date_time for info in archive.infolist()]
    except ZIP_READ_ERRORS:
        return None
    newest = max(stamps, default=None)
    if newest is None or newest[0] <= 1980:
        return None
    try:
        return datetime(*newest, tzinfo=UTC)
    except ValueError:  # a hostile zip's impossible date
        return None


def _wheel_and_upload_time(
    release: Release, wheel: Path | None, cache: Cache, notes: list[str]
) -> tuple[Artifact, datetime | None]:
    """The wheel to verify and its upload time: the index's, or the user's own file."""
    if wheel is None:
        if release.wheel is None:  # resolve raises first; kept for the type checker
            raise ResolveError(f"{release.target} has no wheel to check")
        return cache.fetch(release.wheel), release.wheel.upload_time
    artifact = local_artifact(wheel)
    same_name = next((f for f in release.files if f.filename == wheel.name), None)
    if same_name is None:
        notes.append(
            f"the wheel given ({wheel.name}) is not a file of this release on the "
            "index: its upload time is unknown, the sdist's is used"
        )
        return artifact, release.sdist.upload_time if release.sdist else None
    if same_name.sha256 != artifact.sha256:
        notes.append(
            f"the wheel given is NOT the index's {same_name.filename}: sha256 {artifact.sha256} "
            f"here, {same_name.sha256} on the index"
        )
    return artifact, same_name.upload_time


def _resolve_release(
    target: Target,
    selector: WheelSelector,
    options: CheckOptions | ProvenanceOptions,
    progress: Progress,
) -> Resolved:
    """The release on the indexes; with a wheel the user holds, the index's file of that name."""
    progress("resolving")
    if options.wheel is not None:
        selector = WheelSelector(filename=options.wheel.name)
    return resolve(
        target,
        selector,
        index_url=options.index_url,
        extra_index_urls=options.extra_index_urls,
    )


def check(
    target: Target,
    selector: WheelSelector,
    options: CheckOptions = CheckOptions(),
    *,
    progress: Progress = _quiet,
    on_log: Progress | None = None,
) -> Report:
    """Rebuild ``target``'s wheel from its sdist in a hermetic container and compare.

    Never raises a RebuildError: a failure at any stage becomes a report with the verdict
    ``failed``, the stage and the reason, so that it can be written and reviewed like any other.
    """
    # The container stack (the docker SDK) loads only when a build is asked for: `resolve` and
    # `compare` start without it.
    from rebuild.backend_requires import ask_backend
    from rebuild.build import check_image_python, prepare_inputs, run_build
    from rebuild.ci_config import apply_ci_config
    from rebuild.images import ensure_image
    from rebuild.index import wheel_choice_note
    from rebuild.sources.generated import regenerate_cython
    from rebuild.sources.provenance import prepare_source

    cache_root = options.cache_dir or default_cache_dir()
    cache = Cache(cache_root)
    release: Release | None = None
    plan: Plan | None = None
    notes: list[str] = []
    results = results_dir(cache_root, target)
    log_path = results / "build.log"
    provenance_check: ProvenanceCheck | None = None
    try:
        resolved = _resolve_release(target, selector, options, progress)
        index, release = resolved.index, resolved.release
        notes.extend(resolved.notes)
        if (chosen := wheel_choice_note(release)) is not None:
            notes.append(chosen)
            progress(chosen)
        progress("downloading")
        published, upload_time = _published_wheel(release, options.wheel, cache, notes)
        # The source to build (the sdist, or the tagged tree packed like one) and the source
        # checks that need no build: the wheel traced to the sdist, the sdist to the tag.
        prepared = prepare_source(
            release,
            published,
            options.source,
            cache=cache,
            results=results,
            repo=options.repo,
            ref=options.ref,
            progress=progress,
        )
        provenance_check, sdist = prepared.provenance, prepared.archive
        progress("planning")
        plan = plan_for(target, published.path, upload_time, options.recipe)
        plan = replace(plan, environment=(*plan.environment, *prepared.environment))
        with _workdir(cache_root, target, keep=options.keep_workdir) as workdir:
            progress("preparing the build environment")
            inputs = prepare_inputs(
                plan, sdist, workdir=workdir, index_url=index.index_url, cache=cache, log=progress
            )
            # Upstream's CI configuration, now that the source is on disk (rebuild.ci_config).
            plan = apply_ci_config(plan, inputs.source, published.path)
            image = ensure_image(
                plan.image, packages=plan.system_packages, progress=progress
            ).info()
            check_image_python(plan, image)
            inputs = ask_backend(
                plan,
                inputs,
                image,
                workdir=workdir,
                index_url=index.index_url,
                cache=cache,
                limits=options.limits,
                log=progress,
            )
            notes.extend(inputs.notes)
            if provenance_check is not None:
                # C that only the sdist has is regenerated from its .pyx by the pinned Cython.
                provenance_check = regenerate_cython(
                    provenance_check,
                    inputs.source,
                    requirements=inputs.requirements,
                    deps=inputs.deps,
                    image=image.tag,
                    python=plan.python,
                    workdir=workdir,
                    progress=progress,
                )
            progress(f"building in {image.tag} (no network)")
            build = run_build(
                plan,
                inputs,
                image,
                workdir=workdir,
                log_path=log_path,
                limits=options.limits,
                on_log=on_log,
                keep_container=options.keep_container,
            )
            # Keep the rebuilt wheel beside the log: the work directory may be removed.
            rebuilt = results / build.wheel.name
            shutil.copyfile(build.wheel, rebuilt)
            build = replace(build, wheel=rebuilt)
        progress("comparing")
        comparison = explain_expected(compare_wheels(published.path, rebuilt), plan.expected)
    except RebuildError as e:
        failed = _failed(
            e,
            target=target,
            release=release,
            plan=plan,
            log_path=log_path if log_path.exists() else None,
            notes=tuple(notes),
        )
        return replace(failed, provenance=provenance_check)
    if provenance_check is not None:
        provenance_check = explain_built(provenance_check, comparison)
    verdict = decide(
        comparison.divergences,
        identical_bytes=comparison.published.sha256 == comparison.rebuilt.sha256,
        source_findings=provenance_check.findings if provenance_check else (),
    )
    if verdict is not comparison.verdict:
        # The rebuild matches, but its source does not: the wheel is not what upstream tagged.
        notes.append(
            f"divergent: the rebuild matches, but the source checks found "
            f"{len(provenance_check.unexplained)} unexplained finding(s)"
        )
    return Report(
        tool_version=__version__,
        created=datetime.now(UTC),
        verdict=verdict,
        target=target,
        release=release,
        comparison=comparison,
        plan=plan,
        build=build,
        notes=tuple(notes),
        provenance=provenance_check,
        source=SourceKind.GIT if options.source is SourceKind.GIT else SourceKind.SDIST,
    )


@dataclass(frozen=True)
class ProvenanceOptions:
    """How to run `rebuild provenance`: no build, only the source checks."""

    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    wheel: Path | None = None
    cache_dir: Path | None = None
    repo: str | None = None
    ref: str | None = None
    git: bool = True  # also compare the sdist with the repository, when it can be located


def provenance(
    target: Target,
    selector: WheelSelector,
    options: ProvenanceOptions = ProvenanceOptions(),
    *,
    progress: Progress = _quiet,
) -> Report:
    """Trace the wheel's Python files to the sdist, and the sdist to the tagged tree; no build.

    The verdict is ``equivalent`` when every finding is explained, ``divergent`` otherwise.
    Never raises a RebuildError (a failure becomes a ``failed`` report). Without ``--repo``, a
    repository that cannot be located or reached is a note, not a failure.
    """
    from rebuild.sources.provenance import GitCheck, verify_provenance

    cache = Cache(options.cache_dir or default_cache_dir())
    release: Release | None = None
    notes: list[str] = []
    try:
        resolved = _resolve_release(target, selector, options, progress)
        release = resolved.release
        notes.extend(resolved.notes)
        progress("downloading")
        published, _upload_time = _published_wheel(release, options.wheel, cache, notes)
        git = GitCheck.OFF
        if options.git:
            git = GitCheck.REQUIRED if options.repo or options.ref else GitCheck.BEST_EFFORT
        checked = verify_provenance(
            release,
            published,
            cache=cache,
            git=git,
            repo=options.repo,
            ref=options.ref,
            progress=progress,
        )
    except RebuildError as e:
        return _failed(e, target=target, release=release, plan=None, notes=tuple(notes))
    return Report(
        tool_version=__version__,
        created=datetime.now(UTC),
        verdict=decide_source_only(checked.findings),
        target=target,
        release=release,
        notes=tuple(notes),
        provenance=checked,
    )


def _recipe_for(target: Target, path: Path | None) -> Recipe | None:
    """The recipe a check uses: the file given, else recipes/<project>.toml if there is one."""
    if path is None:
        return find_recipe(target.project)
    if not path.is_file():
        raise UsageError(f"{path} is not a file", hint="give the path of a recipe TOML file")
    recipe = load_recipe(path)
    if canonicalize_name(recipe.project) != target.project:
        raise UsageError(f"{path} is a recipe for {recipe.project}, not for {target.name}")
    return recipe


def plan_release(
    target: Target,
    selector: WheelSelector,
    options: CheckOptions = CheckOptions(),
    *,
    progress: Progress = _quiet,
) -> Plan:
    """The effective recipe for ``target``'s wheel (recipe file or inferred), without building.

    Raises RebuildError: there is no report to carry a failure here.
    """
    from rebuild.index import wheel_choice_note

    resolved = _resolve_release(target, selector, options, progress)
    plan = plan_of(resolved.release, options, progress=progress)
    chosen = wheel_choice_note(resolved.release)
    notes = (*resolved.notes, *([chosen] if chosen else []))
    return replace(plan, notes=(*plan.notes, *notes)) if notes else plan


def plan_of(release: Release, options: CheckOptions, *, progress: Progress = _quiet) -> Plan:
    """The plan a check of the resolved ``release`` follows (an sdist build), without building:
    the published wheel read, and the sdist's CI configuration applied as a check applies it.

    A batch compares it with a stored verdict's plan before reusing that verdict; files already
    in the cache are not downloaded again.
    """
    cache = Cache(options.cache_dir or default_cache_dir())
    progress("downloading")
    published, upload_time = _published_wheel(release, options.wheel, cache, [])
    plan = plan_for(release.target, published.path, upload_time, options.recipe)
    if plan.recipe is None and release.sdist is not None:
        plan = _with_ci_config(plan, cache.fetch(release.sdist).path, published.path, progress)
    return plan


def _with_ci_config(plan: Plan, sdist: Path, published: Path, progress: Progress) -> Plan:
    """The plan with the sdist's CI configuration applied, as a check applies it (without a
    build: the sdist is extracted into a temporary directory and removed)."""
    from rebuild.archive import extract_sdist
    from rebuild.ci_config import apply_ci_config

    progress("reading the sdist's CI configuration")
    with tempfile.TemporaryDirectory(prefix="rebuild-plan-") as scratch:
        source = extract_sdist(sdist, Path(scratch) / "source")
        return apply_ci_config(plan, source, published)


def plan_for(
    target: Target, wheel: Path, upload_time: datetime | None, recipe: Path | None = None
) -> Plan:
    """The one place a release is planned: `check`, `recipe show` and a batch's reuse of a
    stored verdict all call it, so that a project that gains a recipe is planned anew.

    ``recipe``: a recipe file to use instead of recipes/<project>.toml.
    """
    from rebuild.images import load_spec, spec_names

    images = {s.name: s.python for s in (load_spec(n) for n in spec_names())}
    return plan_build(
        wheel,
        upload_time=upload_time,
        images=images,
        recipe=_recipe_for(target, recipe),
        version=target.version,
    )


def validate_recipes(path: Path | None = None) -> list[Recipe]:
    """Validate every recipe under ``path`` (default: the recipes directory), or one file.

    Beyond each file's schema: every fallback image is defined under containers/ and installs
    the system packages the section needs. Raises PlanError at the first problem.
    """
    from rebuild.images import installed_packages, load_spec, spec_names
    from rebuild.recipes import check_system_packages, recipe_paths

    paths = recipe_paths(path)
    if not paths:
        raise UsageError(f"no recipe files (*.toml) at {path or 'the recipes directory'}")
    specs = {name: load_spec(name) for name in spec_names()}
    provided = {name: installed_packages(spec) for name, spec in specs.items()}
    recipes = []
    for recipe_path in paths:
        recipe = load_recipe(recipe_path)
        for section in recipe.releases:
            if section.image is not None and section.image.fallback not in specs:
                raise PlanError(
                    f"{recipe_path}: field release[{section.index}].image.fallback is "
                    f"{section.image.fallback!r}; allowed: {', '.join(sorted(specs)) or 'none'}",
                    hint="images are defined under containers/",
                )
        check_system_packages(recipe, provided)
        recipes.append(recipe)
    return recipes


def results_dir(cache_root: Path, target: Target) -> Path:
    """Where one check keeps what outlives it: the build log and the rebuilt wheel."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = cache_root / "results" / f"{target.project}-{target.version}-{stamp}-{os.getpid()}"
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def _workdir(cache_root: Path, target: Target, *, keep: bool) -> Iterator[Path]:
    """A fresh work directory for one build, removed afterwards unless asked to keep it."""
    base = cache_root / "work"
    base.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=f"{target.project}-{target.version}-", dir=base))
    try:
        yield path
    finally:
        if not keep:
            remove_tree(path)
