"""The command line: options in, one core call, the result rendered, an exit code out.

This is the only module that imports typer or prints. Every command calls one function of
:mod:`rebuild.pipeline` (or of a stage), renders what it returns, and maps the outcome to the
exit codes documented in ``--help`` (see :data:`rebuild.errors.EXIT_CODES`). Errors are caught
once, in :func:`main`.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from rebuild import __version__
from rebuild.errors import EXIT_CODES, EXIT_USAGE, RebuildError, UsageError
from rebuild.models import BuildLimits, Report, SourceKind, Target, WheelSelector
from rebuild.release_cache import FRESH_FOR
from rebuild.report.safe import safe

if TYPE_CHECKING:
    from rich.status import Status

    from rebuild import store as store_module
    from rebuild.attest.keys import Ed25519Signer
    from rebuild.distributed.coordinator import CeleryExecutor
    from rebuild.images import ImageRef
    from rebuild.inputs import BatchInput, PinnedRelease
    from rebuild.report.sarif import Checked

EXIT_INTERRUPTED = 130

_EXIT_TABLE = "\n\n".join(f"{code}  {meaning}" for code, meaning in sorted(EXIT_CODES.items()))

app = typer.Typer(
    name="rebuild",
    help=(
        "Verify that a published Python wheel was built from its published source: rebuild it "
        "in a hermetic container, compare it member by member with the published wheel, and "
        "explain every divergence.\n\n"
        f"Exit codes:\n\n{_EXIT_TABLE}\n\n{EXIT_INTERRUPTED}  interrupted (Ctrl-C)"
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as a shell reports a reader that went away


def _console(*, stderr: bool = False, color: bool | None = None, quiet: bool = False) -> Console:
    """A console; not a terminal, its lines are never wrapped at 80 columns (a log, a pipe to
    grep): a filename, a hash or a URL stays on one line."""
    console = Console(
        stderr=stderr,
        highlight=False,
        quiet=quiet,
        force_terminal=color or None,
        no_color=color is False or None,
    )
    console.soft_wrap = not console.is_terminal
    return console


out = _console()
err = _console(stderr=True)
# Where progress goes: err, or nowhere with --quiet (warnings and errors still go to err).
chatter = err


SpecArgument = Annotated[
    str,
    typer.Argument(
        metavar="NAME==VERSION",
        help="One release, e.g. numpy==1.26.4 (check also takes a bare NAME: its latest).",
    ),
]
WheelOption = Annotated[
    Path | None,
    typer.Option(
        "--wheel",
        help="Check this wheel file (one you hold) instead of downloading the index's; its "
        "sha256 is compared with the index's file of the same name.",
    ),
]
PythonOption = Annotated[
    str | None,
    typer.Option(
        "--python",
        help="Interpreter the wheel is for, e.g. 3.11 (default: this interpreter).",
        show_default=False,
    ),
]
PlatformOption = Annotated[
    str | None,
    typer.Option(
        "--platform",
        help="Platform tag, e.g. manylinux_2_17_x86_64 (default: this machine's).",
        show_default=False,
    ),
]
IndexOption = Annotated[
    str | None,
    typer.Option(
        "--index-url",
        help="PEP 691 simple index (default: $PIP_INDEX_URL, else PyPI).",
        show_default=False,
    ),
]
SarifOption = Annotated[
    Path | None,
    typer.Option(
        "--sarif",
        help="Also write SARIF 2.1.0 for code-scanning dashboards to this path: one result per "
        "unexplained divergence ('-': standard output).",
        show_default=False,
    ),
]
ExtraIndexOption = Annotated[
    list[str] | None,
    typer.Option(
        "--extra-index-url",
        help="Another index to look in, as pip's (repeatable; default: $PIP_EXTRA_INDEX_URL). "
        "The release comes from the first index that has it; the report warns when another "
        "serves it with other files, which pip might install instead.",
        show_default=False,
    ),
]
CacheOption = Annotated[
    Path | None,
    typer.Option(
        "--cache-dir",
        help="Download cache, logs and rebuilt wheels (default: the user cache dir, "
        "or $REBUILD_CACHE_DIR).",
        show_default=False,
    ),
]
JsonOption = Annotated[
    Path | None,
    typer.Option(
        "--json", help="Also write the report as a JSON document to this path (- for stdout)."
    ),
]


BrokerOption = Annotated[
    str | None,
    typer.Option(
        "--broker",
        envvar="REBUILD_BROKER",
        help="Send the releases to `rebuild worker`s through this Redis URL "
        "(redis://[:PASSWORD@]HOST:6379/0) instead of building here.",
        show_default=False,
    ),
]
SignKeyOption = Annotated[
    Path | None,
    typer.Option(
        "--sign-key",
        help="Sign the attestations with this ed25519 private key (from `rebuild attest keygen`).",
        show_default=False,
    ),
]


def _progress(message: str) -> None:
    chatter.print(f"[dim]· {safe(message)}[/]")


_STEP = re.compile(r"^\s*\[\s*(\d+/\d+|\d+%)\]")


class _Heartbeat:
    """Progress of a check: each stage as it starts, and during a long build its elapsed time
    and latest log line (on the status line of a terminal; every 30 s in a log file)."""

    EVERY_S = 30.0

    def __init__(self, status: Status, *, verbose: bool) -> None:
        self.status = status
        self.verbose = verbose
        self.stage = "starting"
        self.step = ""
        self.started = self.printed = time.monotonic()

    def progress(self, message: str) -> None:
        self.stage = message
        self.step = ""
        self.started = self.printed = time.monotonic()
        self.status.update(safe(message))
        chatter.print(f"[dim]· {safe(message)}[/]")

    def log(self, line: str) -> None:
        line = line.rstrip()
        if self.verbose:
            chatter.print(f"[dim]│ {safe(line)}[/]")
        # A build tool's own progress ("[235/498] Compiling …", "[ 42%] Building …") says more
        # than a compiler warning's last line: shown until the next one.
        if _STEP.match(line):
            self.step = line
        elif self.step:
            line = self.step
        now = time.monotonic()
        elapsed = f"{int(now - self.started) // 60}m{int(now - self.started) % 60:02d}s"
        self.status.update(f"{safe(self.stage)} · {elapsed} · [dim]{safe(line[:80])}[/]")
        if not self.verbose and not err.is_terminal and now - self.printed >= self.EVERY_S:
            self.printed = now
            err.print(f"[dim]· … {elapsed}: {safe(line[:100])}[/]")


def _version_callback(value: bool) -> None:
    if value:
        out.print(f"rebuild {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version_callback, is_eager=True, help="Print the version."
        ),
    ] = False,
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet", "-q", help="No progress lines: only the report, warnings and errors."
        ),
    ] = False,
    color: Annotated[
        bool | None,
        typer.Option(
            "--color/--no-color",
            help="Colour the output even when it is not a terminal, or never (default: on a "
            "terminal, unless NO_COLOR is set).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Rebuild and compare Python wheels. -q, --color and --no-color go before the command."""
    global out, err, chatter
    if color is not None:
        out = _console(color=color)
        err = _console(stderr=True, color=color)
    chatter = _console(stderr=True, quiet=True) if quiet else err


@app.command()
def resolve(
    spec: SpecArgument,
    python: PythonOption = None,
    platform: PlatformOption = None,
    index_url: IndexOption = None,
    extra_index_urls: ExtraIndexOption = None,
    json_path: JsonOption = None,
) -> None:
    """Show what a rebuild of NAME==VERSION would use: the wheel, the sdist, the source URLs."""
    from rebuild import pipeline
    from rebuild.report import json as json_report
    from rebuild.report.terminal import print_release

    resolved = pipeline.resolve(
        Target.parse(spec),
        WheelSelector(python=python, platform=platform),
        index_url=index_url,
        extra_index_urls=extra_index_urls or (),
        progress=_progress,
    )
    if json_path is not None:
        json_report.write_release(resolved.release, json_path, notes=resolved.notes)
    print_release(resolved.release, out)
    for note in resolved.notes:
        err.print(f"[yellow]note[/]: {safe(note)}")


@app.command()
def compare(
    published: Annotated[Path, typer.Argument(help="The published wheel.")],
    rebuilt: Annotated[Path, typer.Argument(help="The wheel to compare it with.")],
    json_path: JsonOption = None,
) -> None:
    """Compare two wheel files and explain every difference.

    Exit 0 when they are reproducible (same bytes) or equivalent (same members, zip container
    differs), 1 when divergent.
    """
    from rebuild import local_compare
    from rebuild.report import json as json_report
    from rebuild.report.terminal import print_report

    report = local_compare.compare(published, rebuilt, progress=_progress)
    if json_path is not None:
        json_report.write(report, json_path)
    print_report(report, out)
    raise typer.Exit(report.exit_code)


@app.command()
def check(
    spec: SpecArgument,
    python: PythonOption = None,
    platform: PlatformOption = None,
    index_url: IndexOption = None,
    extra_index_urls: ExtraIndexOption = None,
    wheel: WheelOption = None,
    json_path: JsonOption = None,
    cache_dir: CacheOption = None,
    keep_workdir: Annotated[
        bool,
        typer.Option(
            "--keep-workdir", help="Keep the work directory (source, build inputs, output)."
        ),
    ] = False,
    keep_container: Annotated[
        bool,
        typer.Option("--keep-container", help="Do not remove the build container (debugging)."),
    ] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Wall-clock limit of the build, in seconds.")
    ] = BuildLimits.timeout_s,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Stream the build log while it runs.")
    ] = False,
    source: Annotated[
        SourceKind,
        typer.Option(
            "--source",
            help="Rebuild from the sdist, from the upstream repository at the release's commit "
            "(git), or from the sdist after comparing it with that commit (both).",
        ),
    ] = SourceKind.SDIST,
    repo: Annotated[
        str | None, typer.Option("--repo", help="The upstream repository URL.", show_default=False)
    ] = None,
    ref: Annotated[
        str | None,
        typer.Option("--ref", help="The tag, branch or commit of the release.", show_default=False),
    ] = None,
    recipe: Annotated[
        Path | None,
        typer.Option(
            "--recipe",
            help="Use this recipe file instead of recipes/<project>.toml.",
            show_default=False,
        ),
    ] = None,
    sarif: SarifOption = None,
    cyclonedx: Annotated[
        Path | None,
        typer.Option(
            "--cyclonedx",
            help="Also write a CycloneDX 1.6 SBOM of the published wheel's compiled members "
            "(hashes, claimed compilers, the rebuild's outcome) to this path.",
            show_default=False,
        ),
    ] = None,
    attest: Annotated[
        Path | None,
        typer.Option(
            "--attest",
            help="Also write in-toto attestations of the check (SLSA provenance of the rebuild "
            "and its verdict, DSSE envelopes, one a line) to this path.",
            show_default=False,
        ),
    ] = None,
    sign_key: SignKeyOption = None,
    sign_keyless: Annotated[
        bool,
        typer.Option(
            "--sign-keyless",
            help="Sign the attestations through Sigstore with this machine's ambient identity "
            "(CI with an OIDC token); needs the network.",
        ),
    ] = False,
) -> None:
    """Rebuild NAME==VERSION from its sdist in a hermetic container and compare.

    The build runs with no network, no capabilities and a time limit, against build
    requirements resolved as the index stood when the wheel was uploaded. Exit 0 when the
    rebuilt wheel is reproducible or equivalent, 1 when divergent, another code when the
    check failed (see `rebuild --help`).
    """
    from rebuild import pipeline
    from rebuild.report import json as json_report
    from rebuild.report.terminal import print_report

    options = pipeline.CheckOptions(
        index_url=index_url,
        extra_index_urls=tuple(extra_index_urls or ()),
        wheel=wheel,
        cache_dir=cache_dir,
        keep_workdir=keep_workdir,
        keep_container=keep_container,
        limits=BuildLimits(timeout_s=timeout),
        source=SourceKind.GIT if source is SourceKind.SDIST and (repo or ref) else source,
        repo=repo,
        ref=ref,
        recipe=recipe,
    )
    signer = _signer(sign_key, written=attest is not None)
    if sign_keyless and (attest is None or sign_key is not None):
        raise UsageError("--sign-keyless signs what --attest writes, instead of --sign-key")
    if sign_keyless:
        from rebuild.attest.keyless import require_identity

        require_identity()
    target = _target_or_latest(spec, index_url)
    with chatter.status("starting") as status:
        heartbeat = _Heartbeat(status, verbose=verbose)
        report = pipeline.check(
            target,
            WheelSelector(python=python, platform=platform),
            options,
            progress=heartbeat.progress,
            on_log=heartbeat.log,
        )
    if json_path is not None:
        json_report.write(report, json_path)
    if sarif is not None:
        _write_sarif(sarif, lambda module: [module.checked_from_report(report)])
    if cyclonedx is not None:
        _write_sbom(report, wheel, cache_dir, cyclonedx)
    if attest is not None:
        _write_attestation(report, attest, signer, keyless=sign_keyless)
    print_report(report, out)
    raise typer.Exit(report.exit_code)


def _signer(sign_key: Path | None, *, written: bool) -> Ed25519Signer | None:
    """The signer of --sign-key, loaded before any build: a bad key fails in a second.
    ``written``: the command writes or keeps attestations for it to sign."""
    if sign_key is None:
        return None
    if not written:
        raise UsageError("--sign-key signs attestations: say where to write them with --attest")
    from rebuild.attest.keys import Ed25519Signer, load_private

    return Ed25519Signer(load_private(sign_key))


attest_app = typer.Typer(
    help="Attestations: make a signing key, verify a signed attestation.",
    no_args_is_help=True,
)
app.add_typer(attest_app, name="attest")


@attest_app.command("keygen")
def attest_keygen(
    out_dir: Annotated[
        Path,
        typer.Option("--out", help="Directory to write the key pair into.", show_default=False),
    ] = Path(),
) -> None:
    """Write a new ed25519 key pair (rebuild-attest.key, mode 0600, and rebuild-attest.pub)."""
    from rebuild.attest.keys import generate

    pair = generate(out_dir)
    out.print(f"private key {safe(str(pair.private))} (keep it secret)")
    out.print(f"public key  {safe(str(pair.public))}")
    out.print(f"key id      {pair.keyid}")


@attest_app.command("verify")
def attest_verify(
    file: Annotated[Path, typer.Argument(help="The attestation file `check --attest` wrote.")],
    key: Annotated[Path, typer.Option("--key", help="The signer's public key (PEM).")],
    wheel: Annotated[
        Path | None,
        typer.Option("--wheel", help="Also check that the attestation is about this wheel file."),
    ] = None,
) -> None:
    """Check the signature of every statement, and that their subject is the wheel given.

    Exit 0 when it verifies, 13 when it does not.
    """
    from rebuild.attest import bundle
    from rebuild.attest.keys import load_public

    verified = bundle.verify(bundle.read(file), load_public(key), wheel)
    out.print(
        f"[green]verified[/]: {len(verified.predicate_types)} statement(s) about "
        f"{safe(verified.subject)} (sha256 {verified.sha256}), signed by {verified.keyid}"
    )
    for kind in verified.predicate_types:
        out.print(f"  {safe(kind)}")
    if verified.verdict is not None:
        out.print(f"verdict: {safe(verified.verdict)}")
    if wheel is None:
        out.print("[yellow]no --wheel given[/]: the subject was not compared with a file")


@attest_app.command("provenance")
def attest_provenance(
    file: Annotated[Path, typer.Argument(help="A PEP 740 provenance document (the index's JSON).")],
    dist: Annotated[Path, typer.Option("--dist", help="The file it is the provenance of.")],
) -> None:
    """Verify a PEP 740 provenance offline against the Trusted Publisher it names.

    Exit 0 when it verifies (and print the repository, workflow and commit), 13 when not.
    """
    from rebuild.attest.bundle import read
    from rebuild.attest.pep740 import require_verified
    from rebuild.fetch import sha256_file

    try:
        digest = sha256_file(dist)
    except OSError as e:
        raise UsageError(f"cannot read {dist}: {e.strerror}") from e
    checked = require_verified(read(file).encode(), dist.name, digest, str(file))
    out.print(f"[green]verified[/]: {safe(checked.reason)}")
    out.print(f"repository {safe(checked.repository or '?')}")
    out.print(f"workflow   {safe(checked.workflow or '?')}")
    out.print(f"commit     {safe(checked.commit or '?')} {safe(checked.ref or '')}")


image_app = typer.Typer(
    help="Build images: the pinned containers rebuilds run in (defined under containers/).",
    no_args_is_help=True,
)
app.add_typer(image_app, name="image")


@image_app.command("list")
def image_list() -> None:
    """List the image definitions and whether the engine has each image."""
    from rebuild import images  # the docker SDK loads only for the commands that use it

    for status in images.list_images():
        state = f"present {status.image_id}" if status.present else "[yellow]missing[/]"
        out.print(f"{safe(status.name)}  Python {safe(status.python)}  {safe(status.tag)}  {state}")


def _say(message: str) -> None:
    err.print(f"[dim]· {safe(message)}[/]")


def _print_image(ref: ImageRef) -> None:
    out.print(
        f"{safe(ref.name)}: {safe(ref.tag)} {ref.image_id} ({ref.how.value}), "
        f"{len(ref.manifest)} packages"
    )
    for line in ref.drift:
        out.print(f"  [yellow]drift[/] {safe(line)}")


@image_app.command("ensure")
def image_ensure(
    names: Annotated[
        list[str] | None, typer.Argument(help="Image names (see `image list`).")
    ] = None,
    all_images: Annotated[bool, typer.Option("--all", help="Every image defined.")] = False,
) -> None:
    """Make sure an image exists: use the local one, else pull by digest, else bootstrap."""
    from rebuild import images

    wanted = images.spec_names() if all_images else list(names or [])
    if not wanted:
        raise UsageError("name an image, or pass --all", hint="`rebuild image list` names them")
    for name in wanted:
        _print_image(images.ensure_image(name, progress=_say))


@image_app.command("build")
def image_build(
    name: Annotated[str, typer.Argument(help="Image name (see `image list`).")],
) -> None:
    """Bootstrap the image from Debian's packages, even if it exists (no registry needed)."""
    from rebuild import images

    _print_image(images.bootstrap_image(name, progress=_say))


# --- batch, history, review: many releases and their results store (issue 7) ---------------

FailOnAttributedOption = Annotated[
    bool,
    typer.Option(
        "--fail-on-attributed",
        help="Fail the gate (exit 11) also when a compiled member could only be attributed to "
        "another compiler, its code not verified.",
    ),
]
StrictOption = Annotated[
    bool,
    typer.Option(
        "--strict",
        help="Fail the gate (exit 11) also when a release failed to verify, or when there was "
        "nothing to verify.",
    ),
]
# How long the index's answer for a release stands in for asking it again (rebuild.release_cache).
_FRESH_HOURS = FRESH_FOR.total_seconds() / 3600

StoreOption = Annotated[
    Path | None,
    typer.Option(
        "--store",
        help="The results store, an SQLite file (default: results.sqlite in the user data dir, "
        "or $REBUILD_STORE).",
        show_default=False,
    ),
]


def _open_store(path: Path | None, *, existing: bool = False) -> store_module.Store:
    from rebuild import store as store_module

    chosen = path or store_module.default_store_path()
    if existing and not chosen.is_file():
        raise UsageError(
            f"no results store at {chosen}", hint="run `rebuild batch` first, or pass --store"
        )
    return store_module.Store(chosen)


def _print_review(review: store_module.Review, *, limit_rest: int = 20) -> None:
    from rebuild.store import Attention

    counts = " · ".join(f"{review.count(a)} {a.value}" for a in Attention if review.count(a))
    # The count that matters first, impossible to misread: "0 of 2 verified".
    out.print(
        f"[bold]{review.good} of {len(review.entries)} releases verified[/] (reproducible or "
        f"equivalent): {counts or 'none'}"
    )
    shown, hidden = 0, 0
    for entry in review.entries:
        r = entry.result
        urgent = entry.attention in (Attention.REGRESSION, Attention.UNEXPLAINED, Attention.FAILED)
        if not urgent:
            # Everything that needs a person is listed; of the rest, only the first few.
            if shown >= limit_rest:
                hidden += 1
                continue
            shown += 1
        style = "bold red" if entry.attention.needs_review else "magenta" if urgent else "green"
        why = ""
        if entry.regression is not None:
            why = entry.regression.reason
        elif r.unexplained:
            why = f"{r.unexplained} unexplained of {r.divergences} divergences"
        elif r.failure_stage:
            why = f"{r.failure_stage} failed: {r.failure_message}"
        out.print(
            f"[{style}]{entry.attention.value:<12}[/] {safe(r.project)}=={safe(r.version)}  "
            f"{r.verdict.value}  [dim]{safe(why)}[/]"
        )
    if hidden:
        out.print(f"[dim]… and {hidden} more reproducible/equivalent/explained[/]")
    if review.needs_review:
        out.print(
            f"[bold red]needs review[/]: regressions or unexplained divergences "
            f"(exit {review.exit_code})"
        )
    else:
        out.print("[green]nothing unexplained, nothing regressed[/]")


@app.command()
def batch(
    file: Annotated[
        Path,
        typer.Argument(
            help="Pinned requirements (--hash honoured), pylock.toml, uv.lock, or NAME==VERSION "
            "lines."
        ),
    ],
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="Releases verified at once.")] = 1,
    store_path: StoreOption = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="Verify again releases the store already has a verdict for."),
    ] = False,
    refresh: Annotated[
        bool,
        typer.Option(
            "--refresh",
            help="Ask the index again before reusing a stored verdict, even where its answer of "
            f"the last {_FRESH_HOURS:g} hours is cached.",
        ),
    ] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Wall-clock limit of each release's build, seconds.")
    ] = BuildLimits.timeout_s,
    python: PythonOption = None,
    platform: PlatformOption = None,
    index_url: IndexOption = None,
    extra_index_urls: ExtraIndexOption = None,
    cache_dir: CacheOption = None,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Also write the summary as JSON to this path.")
    ] = None,
    fail_on_attributed: FailOnAttributedOption = False,
    strict: StrictOption = False,
    sign_key: SignKeyOption = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Print the plan of every release (its wheel, image, Python, recipe, compiler "
            "match) and build nothing; exit 2 if a release cannot be planned.",
        ),
    ] = False,
    broker: BrokerOption = None,
    worker_timeout: Annotated[
        float,
        typer.Option(
            "--worker-timeout",
            help="With --broker: a release whose workers have all stopped answering for this "
            "long, seconds, fails (and is sent again by the next run).",
        ),
    ] = 60.0,
) -> None:
    """Verify every release a lock or requirements file pins; keep the results in the store.

    Releases the store already verified with this rebuild version and the same plan are not
    built again (unless --force); a killed batch, run again, finishes the rest. Shortly
    after the index last answered for a release, such a verdict is reused without asking it
    again (see --refresh). Exit 0 when
    nothing is unexplained or regressed, 11 when something needs review (with
    --fail-on-attributed, also compiled code that could not be verified; with --strict, also a
    release that failed to verify), 2 on a bad input.

    With --broker, the releases are built by `rebuild worker` processes on other machines
    (Celery, Redis): same store, same progress; a batch stopped and run again follows what it
    had sent rather than sending it again. Exit 14 when the broker or no worker answers.
    """
    import json as json_module

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from rebuild import batch as batch_module
    from rebuild.inputs import marker_environment, read_input
    from rebuild.models import Verdict

    # Markers are evaluated for the wheels the batch verifies: --python and --platform.
    pinned = read_input(file, marker_environment(python, platform))
    for line in pinned.skipped:
        err.print(f"[yellow]skipped[/] {safe(line)}")
    for release in pinned.releases:
        if release.extras:
            err.print(f"[yellow]note[/] {safe(_extras_note(release))}")
    extras = tuple(extra_index_urls or ())
    if dry_run:
        raise typer.Exit(_print_plans(pinned, python, platform, (index_url, extras), cache_dir))
    options = batch_module.BatchOptions(
        jobs=jobs,
        force=force,
        refresh=refresh,
        timeout_s=timeout,
        index_url=index_url,
        extra_index_urls=extras,
        cache_dir=cache_dir,
        selector=WheelSelector(python=python, platform=platform),
        fail_on_attributed=fail_on_attributed,
        strict=strict,
        signer=_signer(sign_key, written=True),  # the store keeps every result's attestations
    )
    executor = _distributed(broker, timeout, worker_timeout) if broker else None
    tally = {"done": 0, "running": 0, "failed": 0, "reused": 0}
    with (
        _open_store(store_path) as results,
        Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=err,
        ) as progress,
    ):
        task = progress.add_task("starting", total=len(pinned.releases))

        def on_event(event: batch_module.BatchEvent) -> None:
            if event.kind is batch_module.EventKind.STARTED:
                tally["running"] += 1
            else:
                tally["running"] -= 1
                tally["done"] += 1
                tally["failed"] += event.verdict is Verdict.FAILED
                tally["reused"] += event.reused
                verdict = event.verdict.value if event.verdict else "?"
                how = " (stored verdict reused)" if event.reused else ""
                progress.console.print(
                    f"[dim]·[/] {safe(str(event.release.target))}: {verdict}{how}"
                )
                progress.advance(task)
            progress.update(
                task,
                description=" · ".join(f"{v} {k}" for k, v in tally.items()),
            )

        try:
            result = batch_module.run_batch(
                pinned, results, options, executor=executor, on_event=on_event
            )
        finally:
            if executor is not None:
                executor.close()
    if executor is not None and executor.resumed:
        err.print(
            f"{executor.resumed} release(s) were followed where an earlier run had sent them, "
            "not sent again"
        )
    for run_id in result.killed_runs:
        err.print(
            f"[yellow]run {run_id} was killed before it finished[/]: its results were kept, "
            "the rest verified now"
        )
    if result.leftover_containers:
        err.print(
            f"[yellow]{result.leftover_containers} rebuild container(s) are in the engine[/]: "
            "a killed run leaves its build's container; once no other check runs, remove them "
            "with `docker rm -f $(docker ps -aq --filter label=org.rebuild=1)`"
        )
    if json_path is not None:
        document = batch_module.summary_document(result.review, run=result)
        _write_summary(json_path, json_module.dumps(document, indent=2, ensure_ascii=True))
    checked = sum(1 for o in result.outcomes if not o.reused)
    out.print(
        f"run {result.run_id}: {checked} verified, {len(result.outcomes) - checked} reused "
        f"in {result.seconds:.0f} s; store {safe(str(results.path))}"
    )
    _print_review(result.review)
    raise typer.Exit(result.exit_code)


def _distributed(broker: str, timeout: float, worker_timeout: float) -> CeleryExecutor:
    """The executor of `batch --broker`, connected, with the workers that answer shown."""
    try:
        from rebuild.distributed.coordinator import CeleryExecutor
    except ImportError as e:
        raise UsageError(
            f"--broker needs Celery and Redis's client ({e.name} is missing)",
            hint="pip install 'rebuild[distributed]'",
        ) from e
    executor = CeleryExecutor(broker, timeout_s=timeout, worker_timeout_s=worker_timeout)
    workers = executor.connect()
    chatter.print(f"[dim]· {len(workers)} worker(s) answer on {safe(executor.shown)}[/]")
    for worker in workers:
        chatter.print(f"[dim]  {safe(worker.name)}: {safe(', '.join(worker.queues))}[/]")
    return executor


@app.command()
def worker(
    broker: Annotated[
        str,
        typer.Option(
            "--broker",
            envvar="REBUILD_BROKER",
            help="The Redis URL the batches send to: redis://[:PASSWORD@]HOST:6379/0 "
            "(rediss:// with TLS; default: $REBUILD_BROKER).",
            show_default=False,
        ),
    ],
    concurrency: Annotated[
        int, typer.Option("--concurrency", "-c", help="Releases built at once.")
    ] = 1,
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout",
            help="The longest build this worker runs, seconds (a batch asking for more is "
            "refused); the visibility timeout follows it.",
        ),
    ] = BuildLimits.timeout_s,
    setup_timeout: Annotated[
        float,
        typer.Option(
            "--setup-timeout",
            help="Seconds allowed for a release's downloads and build environment, besides "
            "its build.",
        ),
    ] = 600.0,
    artifacts: Annotated[
        Path | None,
        typer.Option(
            "--artifacts",
            help="Shared directory (the same path on the coordinator) for rebuilt wheels, logs "
            "and reports too large for the broker; reports point there.",
            show_default=False,
        ),
    ] = None,
    images: Annotated[
        list[str] | None,
        typer.Option(
            "--image",
            help="Build only with this image (repeatable; default: every image the engine has).",
            show_default=False,
        ),
    ] = None,
    max_result_mb: Annotated[
        float,
        typer.Option("--max-result-mb", help="The largest report sent back through the broker."),
    ] = 16.0,
    name: Annotated[
        str | None,
        typer.Option(
            "--name", help="The worker's name (default: rebuild-PID@HOST).", show_default=False
        ),
    ] = None,
    cache_dir: CacheOption = None,
) -> None:
    """Build releases a `batch --broker` sends (Celery worker; needs Docker and the images).

    Checks the engine, the images and the broker first, says what it can build, then consumes
    the queues of its images until stopped (Ctrl-C, SIGTERM). Exit 14 when it cannot be a
    worker (no engine, no image, no broker).
    """
    try:
        from rebuild.distributed import tasks
        from rebuild.distributed.worker import serve
    except ImportError as e:
        raise UsageError(
            f"`rebuild worker` needs Celery and Redis's client ({e.name} is missing)",
            hint="pip install 'rebuild[distributed]'",
        ) from e
    if max_result_mb <= 0:
        raise UsageError(f"--max-result-mb must be positive, not {max_result_mb}")
    settings = tasks.WorkerSettings(
        timeout_s=timeout,
        cache_dir=cache_dir,
        artifacts=artifacts.resolve() if artifacts else None,
        max_result_bytes=int(max_result_mb * 1024 * 1024),
    )
    serve(
        broker,
        concurrency=concurrency,
        settings=settings,
        setup_s=setup_timeout,
        images=tuple(images or ()),
        name=name,
        say=lambda line: chatter.print(f"[dim]· {safe(line)}[/]"),
    )


def _extras_note(release: PinnedRelease) -> str:
    extras = ", ".join(release.extras)
    return (
        f"{release.target}[{extras}] ({release.origin}): extras change what is installed beside "
        "the release, not its wheel; their dependencies are verified where the file pins them"
    )


def _print_plans(
    pinned: BatchInput,
    python: str | None,
    platform: str | None,
    indexes: tuple[str | None, tuple[str, ...]],
    cache_dir: Path | None,
) -> int:
    """`batch --dry-run`: each release's plan, one line, nothing built; 2 if one has none."""
    from rebuild import pipeline

    unplanned = 0
    index_url, extras = indexes
    for release in pinned.releases:
        options = pipeline.CheckOptions(
            index_url=index_url or release.index_url,
            extra_index_urls=tuple(dict.fromkeys((*release.extra_index_urls, *extras))),
            cache_dir=cache_dir,
        )
        try:
            plan = pipeline.plan_release(
                release.target, WheelSelector(python=python, platform=platform), options
            )
        except RebuildError as e:
            unplanned += 1
            out.print(f"[red]cannot plan[/] {safe(str(release.target))}: {safe(e.message)}")
            continue
        match = (
            f"compiler {plan.toolchain.match.value} ({plan.toolchain.published} vs "
            f"{plan.toolchain.rebuilt})"
            if plan.toolchain is not None
            else "pure"
        )
        out.print(
            f"{safe(str(release.target))}: {safe(' '.join(plan.wheel_tags))} in "
            f"{safe(plan.image)} (Python {safe(plan.python)}), "
            f"recipe {safe(Path(plan.recipe).name if plan.recipe else 'none')}, {safe(match)}"
        )
    out.print(
        f"{len(pinned.releases) - unplanned} of {len(pinned.releases)} releases planned; "
        "nothing built (--dry-run)"
    )
    return EXIT_USAGE if unplanned else 0


def _write_sarif(path: Path, checked: Callable[[ModuleType], Sequence[Checked]]) -> None:
    """`--sarif`: the SARIF log of what ``checked`` makes with rebuild.report.sarif (extra
    `sarif`); a callable, so that the module loads only when asked for."""
    from rebuild.report import write_atomically

    try:
        from rebuild.report import sarif as sarif_module
    except ImportError as e:
        raise UsageError(
            f"--sarif needs sarif-pydantic ({e.name} is missing)",
            hint="pip install 'rebuild[sarif]'",
        ) from e
    write_atomically(path, sarif_module.render_sarif(checked(sarif_module)))


def _write_attestation(
    report: Report, path: Path, signer: Ed25519Signer | None, *, keyless: bool
) -> None:
    """`check --attest`: the report's statements, signed as asked. A check that failed before it
    knew its wheel has nothing to attest: said, and its own exit code stands."""
    from rebuild.attest import bundle
    from rebuild.attest.statement import subject
    from rebuild.errors import AttestationError

    try:
        subject(report)
    except AttestationError as e:
        err.print(f"[yellow]no attestation[/]: {safe(e.message)}")
        return
    if keyless:
        from rebuild.attest.keyless import write_keyless

        write_keyless(report, path)
    else:
        bundle.write(report, path, signer)
    how = "signed through Sigstore" if keyless else "unsigned" if signer is None else "signed"
    chatter.print(f"[dim]· attestations ({how}) written to {safe(str(path))}[/]")


def _write_sbom(report: Report, wheel: Path | None, cache_dir: Path | None, path: Path) -> None:
    """`check --cyclonedx`: the SBOM of the wheel the check verified (optional extra `sbom`)."""
    from rebuild.fetch import Cache, default_cache_dir

    try:
        from rebuild.report.sbom import write_sbom
    except ImportError as e:
        raise UsageError(
            f"--cyclonedx needs cyclonedx-python-lib ({e.name} is missing)",
            hint="pip install 'rebuild[sbom]'",
        ) from e
    published = wheel
    if published is None and report.release is not None and report.release.wheel is not None:
        published = Cache(cache_dir or default_cache_dir()).path_for(report.release.wheel)
    if published is None or not published.is_file():
        err.print("[yellow]no SBOM[/]: the check has no published wheel on disk to describe")
        return
    write_sbom(report, published, path)


_PROJECT_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")


def _target_or_latest(spec: str, index_url: str | None) -> Target:
    """NAME==VERSION as given; a bare NAME is its latest release, said on stderr."""
    from rebuild import pipeline

    if "==" in spec or not _PROJECT_NAME.fullmatch(spec.strip()):
        if any(sep in spec for sep in (" ", ",")) and "==" in spec:
            raise UsageError(
                f"{spec!r} names several releases; check verifies one",
                hint="to verify several, list them in a file and run `rebuild batch FILE`",
            )
        return Target.parse(spec)
    target = pipeline.latest(spec.strip(), index_url=index_url)
    err.print(f"{safe(spec)} names no version: checking its latest release, {safe(str(target))}")
    return target


def _write_summary(path: Path, text: str) -> None:
    from rebuild.report import write_atomically

    write_atomically(path, text + "\n")


@app.command()
def history(
    name: Annotated[str, typer.Argument(help="The project, e.g. numpy.")],
    store_path: StoreOption = None,
) -> None:
    """Every verification of every version of NAME in the store, newest first."""
    from packaging.utils import canonicalize_name

    with _open_store(store_path, existing=True) as results:
        rows = results.history(canonicalize_name(name))
    if not rows:
        out.print(f"no verification of {safe(name)} in the store")
        return
    for r in rows:
        mark = "current" if r.current else "[dim]superseded[/]"
        why = f"{r.failure_stage} failed" if r.failure_stage else f"{r.unexplained} unexplained"
        if not r.failure_stage and (r.verified or r.attributed):
            why += f", {r.verified} verified, {r.attributed} attributed"
        out.print(
            f"{r.created:%Y-%m-%d %H:%M}  {safe(r.project)}=={safe(r.version)}  "
            f"{r.verdict.value:<12} {safe(why):<18} rebuild {safe(r.tool_version)}  "
            f"run {r.run_id}  {mark}"
        )


@app.command()
def review(
    html_dir: Annotated[
        Path | None,
        typer.Option("--html", help="Write the review site (static, offline) into this directory."),
    ] = None,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Write the summary as JSON to this path.")
    ] = None,
    store_path: StoreOption = None,
    sarif: SarifOption = None,
    fail_on_attributed: FailOnAttributedOption = False,
    strict: StrictOption = False,
) -> None:
    """Review the store's current results: regressions and unexplained divergences first.

    Exit 0 when nothing is unexplained or regressed, 11 when something needs review (with
    --fail-on-attributed, also compiled code that could not be verified; with --strict, also a
    release that failed, or an empty store).
    """
    import json as json_module

    from rebuild import batch as batch_module
    from rebuild import store as store_module

    with _open_store(store_path, existing=True) as results:
        summary = store_module.build_review(
            results.current_results(), fail_on_attributed=fail_on_attributed, strict=strict
        )
        if html_dir is not None:
            from rebuild.report import html as html_report

            index = html_report.write_site(results, summary, html_dir)
            err.print(f"review site: {safe(index.resolve().as_uri())}")
        if sarif is not None:
            current = results.current_results()
            _write_sarif(
                sarif,
                lambda module: [
                    module.checked_from_store(r, results.divergences(r.id)) for r in current
                ],
            )
    if json_path is not None:
        document = batch_module.summary_document(summary)
        _write_summary(json_path, json_module.dumps(document, indent=2, ensure_ascii=True))
    _print_review(summary)
    raise typer.Exit(summary.exit_code)


# --- source provenance: wheel vs sdist vs the tagged commit, no build (issue 6) -------------

RepoOption = Annotated[
    str | None,
    typer.Option(
        "--repo",
        help="The upstream repository URL, when it cannot be located from the release.",
        show_default=False,
    ),
]
RefOption = Annotated[
    str | None,
    typer.Option(
        "--ref",
        help="The tag, branch or full commit id the release was made from.",
        show_default=False,
    ),
]


@app.command()
def provenance(
    spec: SpecArgument,
    python: PythonOption = None,
    platform: PlatformOption = None,
    index_url: IndexOption = None,
    wheel: WheelOption = None,
    repo: RepoOption = None,
    ref: RefOption = None,
    git: Annotated[
        bool,
        typer.Option(
            "--git/--no-git",
            help="Also compare the sdist with the repository at the release's commit.",
        ),
    ] = True,
    json_path: JsonOption = None,
    cache_dir: CacheOption = None,
) -> None:
    """Check, without a build, that the wheel's Python files are the sdist's, and the sdist git's.

    Every Python file of the wheel must be byte-identical to its counterpart in the sdist (or be
    explained, e.g. a version file written at build time). Then, when the repository is located
    (PEP 740 provenance, project URLs, a tag matching the version; or --repo/--ref), every file
    of the sdist is compared with the tree at the commit. Exit 0 when every finding is
    explained, 1 when one is not.
    """
    from rebuild import pipeline
    from rebuild.report import json as json_report
    from rebuild.report.terminal import print_report

    report = pipeline.provenance(
        Target.parse(spec),
        WheelSelector(python=python, platform=platform),
        pipeline.ProvenanceOptions(
            index_url=index_url,
            wheel=wheel,
            cache_dir=cache_dir,
            repo=repo,
            ref=ref,
            git=git,
        ),
        progress=_progress,
    )
    if json_path is not None:
        json_report.write(report, json_path)
    print_report(report, out)
    raise typer.Exit(report.exit_code)


@app.command()
def diff(
    published: Annotated[Path, typer.Argument(help="The published wheel.")],
    rebuilt: Annotated[Path, typer.Argument(help="The wheel to compare it with.")],
    member: Annotated[
        str, typer.Option("--member", help="The member to diff, by its path in the wheel.")
    ],
    html: Annotated[
        Path | None,
        typer.Option(
            "--html", help="Also write diffoscope's HTML report here.", show_default=False
        ),
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Stop diffoscope after this many seconds.")
    ] = 120.0,
    max_lines: Annotated[
        int, typer.Option("--max-lines", help="Print at most this many lines of its report.")
    ] = 2000,
) -> None:
    """Deep dive: diffoscope on one member of both wheels, with a time limit and an output cap.

    Exit 0 when the member's bytes are the same, 1 when they differ (even if a limit cut the
    report short; the output says so).
    """
    from rebuild.deepdiff import run_diffoscope
    from rebuild.fetch import default_cache_dir

    _progress(f"diffoscope on {member}")
    result = run_diffoscope(
        published,
        rebuilt,
        member,
        html=html,
        timeout_s=timeout,
        max_lines=max_lines,
        workdir=default_cache_dir() / "work",
    )
    if result.identical:
        out.print(f"{safe(member)}: the same bytes in both wheels; nothing to diff")
        raise typer.Exit(0)
    for line in result.lines:
        out.print(safe(line), soft_wrap=True)
    shown = f"{len(result.lines):,} of {result.total_lines:,} lines"
    if result.truncated:
        err.print(f"[bold yellow]cut:[/] {shown} shown (--max-lines {result.max_lines})")
    if result.timed_out:
        err.print(
            f"[bold yellow]stopped:[/] diffoscope did not finish within {result.timeout_s:g} s "
            "(--timeout); the report is partial"
        )
    summary = f"{safe(result.tool)} · {shown} · {result.duration_s:.1f} s"
    if result.html is not None:
        summary += f" · HTML {safe(str(result.html))}"
    err.print(f"[dim]{summary}[/]")
    raise typer.Exit(1)


recipe_app = typer.Typer(
    help="Recipes (recipes/<project>.toml): how upstream built a project's wheels.",
    no_args_is_help=True,
)
app.add_typer(recipe_app, name="recipe")


@recipe_app.command("show")
def recipe_show(
    spec: SpecArgument,
    python: PythonOption = None,
    platform: PlatformOption = None,
    index_url: IndexOption = None,
    extra_index_urls: ExtraIndexOption = None,
    cache_dir: CacheOption = None,
    recipe: Annotated[
        Path | None,
        typer.Option("--recipe", help="This recipe file instead of recipes/<project>.toml."),
    ] = None,
    json_path: JsonOption = None,
) -> None:
    """Print the effective recipe for NAME==VERSION (recipe file or inferred), with origins."""
    from rebuild import pipeline
    from rebuild.report import json as json_report

    options = pipeline.CheckOptions(
        index_url=index_url,
        extra_index_urls=tuple(extra_index_urls or ()),
        cache_dir=cache_dir,
        recipe=recipe,
    )
    plan = pipeline.plan_release(
        Target.parse(spec),
        WheelSelector(python=python, platform=platform),
        options,
        progress=_progress,
    )
    if json_path is not None:
        json_report.write_plan(plan, json_path)
    wants = f" (recipe wants {plan.image_reference})" if plan.image_reference else ""
    inputs = ", ".join(f"{i.filename} ({i.sha256[:12]})" for i in plan.extra_inputs)
    rows: list[tuple[str, str]] = [
        ("recipe", plan.recipe or "none: inferred from the published wheel"),
        ("image", plan.image + wants),
        ("python", plan.python),
        ("wheel tags", ", ".join(plan.wheel_tags)),
        ("backend", f"{plan.backend or 'unknown'} (Generator: {plan.generator or 'none'})"),
        ("backend pins", ", ".join(plan.backend_pins) or "none"),
        ("requirements", ", ".join(plan.requirements) or "none (time-warped only)"),
        ("resolved as of", plan.exclude_newer.isoformat() if plan.exclude_newer else "today"),
        ("config-settings", " ".join(f"-C {k}={v}" for k, v in plan.config_settings) or "none"),
        ("environment", " ".join(f"{k}={v}" for k, v in plan.environment) or "none"),
        ("pre-build", " && ".join(plan.pre_build) or "none"),
        ("source dir", plan.source_dir or "a scratch path (/tmp/src/<sdist name>)"),
        (
            "isolation",
            "isolated build"
            if plan.build_isolation
            else "none: the pinned set is installed, then built with --no-build-isolation",
        ),
        ("extra inputs", inputs or "none"),
        ("repair", f"auditwheel repair --plat {plan.repair}" if plan.repair else "none"),
        ("system packages", ", ".join(plan.system_packages) or "none"),
        ("umask", plan.umask or "unknown"),
    ]
    for label, value in rows:
        out.print(f"{label:<16}{safe(value)}")
    for expected in plan.expected:
        aspects = f" [{', '.join(expected.aspects)}]" if expected.aspects else ""
        aspects += f" [lines /{expected.lines}/]" if expected.lines else ""
        aspects += f" [symbols {', '.join(expected.symbols)}]" if expected.symbols else ""
        out.print(
            f"{'expected':<16}{safe(expected.member)} {expected.kind.value}{safe(aspects)}: "
            f"{safe(expected.reason)} ({safe(expected.link)})"
        )
    out.print("\n[bold]where each value came from[/]")
    for field_name, origin in plan.origins:
        out.print(f"  {safe(field_name):<18}{safe(origin)}")
    for note in plan.notes:
        out.print(f"[dim]note: {safe(note)}[/]")


@recipe_app.command("validate")
def recipe_validate(
    path: Annotated[
        Path | None,
        typer.Argument(help="A recipe file or a folder of them (default: the recipes folder)."),
    ] = None,
) -> None:
    """Check recipe files against the schema (recipes/README.md) and the images they name."""
    from rebuild import pipeline

    recipes = pipeline.validate_recipes(path)
    for checked in recipes:
        out.print(
            f"ok  {safe(str(checked.path))}: {safe(checked.project)}, "
            f"{len(checked.releases)} release section(s)"
        )


@app.command()
def schema() -> None:
    """Print the JSON Schema of the JSON report (--json), for the schema version this writes."""
    from rebuild.report.schema import SCHEMA_FILE

    sys.stdout.write(SCHEMA_FILE.read_text(encoding="utf-8"))


# --- commands added by later stages go above this line, each as one block ---


def _identity(stream: object) -> tuple[int, int] | None:
    """(device, inode) of the file behind a stream's descriptor; None if it has none."""
    try:
        status = os.fstat(stream.fileno())  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):
        return None
    return status.st_dev, status.st_ino


def main() -> None:
    """Entry point: run the app; a RebuildError becomes its message, hint and exit code.

    typer itself maps usage errors to 2 and Ctrl-C to 130.
    """
    stdout_was = _identity(sys.stdout)
    try:
        app()
    except SystemExit as e:
        # A reader that went away (`rebuild check … | head`) makes click (vendored by typer) and
        # rich exit 1, our "divergent": click leaves its PacifyFlushWrapper on stdout, rich
        # points fd 1 at /dev/null. Either trace means a closed pipe, not a verdict.
        if e.code == 1 and (
            type(sys.stdout).__name__ == "PacifyFlushWrapper" or _identity(sys.stdout) != stdout_was
        ):
            sys.exit(EXIT_BROKEN_PIPE)
        raise
    except BrokenPipeError:
        # Raised past both: exit as a shell does for SIGPIPE, what is still buffered to nowhere.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(EXIT_BROKEN_PIPE)
    except RebuildError as e:
        err.print(f"[bold red]error[/] ({e.stage}): {safe(e.message)}")
        if e.hint:
            err.print(f"[dim]hint: {safe(e.hint)}[/]")
        sys.exit(e.exit_code)
    except Exception:  # noqa: BLE001 - a bug must not exit 1, which means "divergent"
        err.print_exception()
        err.print("[bold red]internal error[/]: this is a bug in rebuild; the traceback is above")
        sys.exit(RebuildError.exit_code)
