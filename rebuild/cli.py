"""The command line: options in, one core call, the result rendered, an exit code out.

This is the only module that imports typer or prints. Every command calls one function of
:mod:`rebuild.pipeline` (or of a stage), renders what it returns, and maps the outcome to the
exit codes documented in ``--help`` (see :data:`rebuild.errors.EXIT_CODES`). Errors are caught
once, in :func:`main`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from rebuild import __version__, pipeline
from rebuild.errors import EXIT_CODES, RebuildError, UsageError
from rebuild.models import BuildLimits, Target, WheelSelector
from rebuild.report import json as json_report
from rebuild.report.terminal import print_release, print_report, safe

if TYPE_CHECKING:
    from rebuild.images import ImageRef

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
)

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

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
    typer.Option("--json", help="Also write the report as a JSON document to this path."),
]


def _progress(message: str) -> None:
    err.print(f"[dim]· {safe(message)}[/]")


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
) -> None:
    """Rebuild and compare Python wheels."""


@app.command()
def resolve(
    spec: Annotated[
        str, typer.Argument(metavar="NAME==VERSION", help="The release, e.g. numpy==1.26.4.")
    ],
    python: PythonOption = None,
    platform: PlatformOption = None,
    index_url: IndexOption = None,
) -> None:
    """Show what a rebuild of NAME==VERSION would use: the wheel, the sdist, the source URLs."""
    release = pipeline.resolve(
        Target.parse(spec),
        WheelSelector(python=python, platform=platform),
        index_url=index_url,
        progress=_progress,
    )
    print_release(release, out)


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
    report = pipeline.compare(published, rebuilt, progress=_progress)
    if json_path is not None:
        json_report.write(report, json_path)
    print_report(report, out)
    raise typer.Exit(report.exit_code)


@app.command()
def check(
    spec: Annotated[
        str, typer.Argument(metavar="NAME==VERSION", help="The release, e.g. attrs==23.2.0.")
    ],
    python: PythonOption = None,
    platform: PlatformOption = None,
    index_url: IndexOption = None,
    wheel: Annotated[
        Path | None,
        typer.Option(
            "--wheel",
            help="Check this wheel file (one you hold) instead of downloading the index's; its "
            "sha256 is compared with the index's file of the same name.",
        ),
    ] = None,
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
) -> None:
    """Rebuild NAME==VERSION from its sdist in a hermetic container and compare.

    The build runs with no network, no capabilities and a time limit, against build
    requirements resolved as the index stood when the wheel was uploaded. Exit 0 when the
    rebuilt wheel is reproducible or equivalent, 1 when divergent, another code when the
    check failed (see `rebuild --help`).
    """
    options = pipeline.CheckOptions(
        index_url=index_url,
        wheel=wheel,
        cache_dir=cache_dir,
        keep_workdir=keep_workdir,
        keep_container=keep_container,
        limits=BuildLimits(timeout_s=timeout),
    )
    with err.status("starting") as status:

        def progress(message: str) -> None:
            status.update(safe(message))
            err.print(f"[dim]· {safe(message)}[/]")

        def on_log(line: str) -> None:
            err.print(f"[dim]│ {safe(line.rstrip())}[/]")

        report = pipeline.check(
            Target.parse(spec),
            WheelSelector(python=python, platform=platform),
            options,
            progress=progress,
            on_log=on_log if verbose else None,
        )
    if json_path is not None:
        json_report.write(report, json_path)
    print_report(report, out)
    raise typer.Exit(report.exit_code)


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


def main() -> None:
    """Entry point: run the app; a RebuildError becomes its message, hint and exit code.

    typer itself maps usage errors to 2 and Ctrl-C to 130.
    """
    try:
        app()
    except RebuildError as e:
        err.print(f"[bold red]error[/] ({e.stage}): {safe(e.message)}")
        if e.hint:
            err.print(f"[dim]hint: {safe(e.hint)}[/]")
        sys.exit(e.exit_code)
