"""Benchmark: the long tail, `rebuild batch` without recipes over popular releases.

100 pure-Python releases and 20 compiled ones (cp311, manylinux x86_64: the manylinux_2_17 wheel,
or the manylinux_2_28 one where a release has no older): the latest final release of each as of
2026-12-02, written down here so that a rerun checks the same files. Each set runs on an empty
store. The script prints each set's verdict counts and the releases with unexplained
members. It also prints every failure with its stage and message, grouped by class, so that a
failure the plan could have avoided stands out.

    .venv/bin/python benchmarks/longtail.py [--set pure compiled] [--jobs 2]
"""

from __future__ import annotations

import argparse
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from rebuild.fetch import default_cache_dir

# The most-downloaded projects whose latest release publishes a pure wheel and an sdist.
PURE = (
    "six==1.17.0",
    "idna==3.20",
    "certifi==2026.10.18",
    "urllib3==2.8.0",
    "requests==2.34.2",
    "python-dateutil==4.0.0",
    "packaging==26.4",
    "setuptools==84.2.1",
    "typing-extensions==4.16.0",
    "s3transfer==0.19.3",
    "boto3==1.44.8",
    "botocore==1.44.8",
    "jmespath==1.1.0",
    "pip==26.3",
    "wheel==0.48.0",
    "attrs==26.1.0",
    "pyasn1==0.6.5",
    "rsa==4.9.1",
    "fsspec==2026.9.0",
    "cachetools==8.0.2",
    "google-auth==2.63.0",
    "platformdirs==4.14.9",
    "filelock==4.3.1",
    "click==8.5.1",
    "jinja2==3.1.6",
    "pluggy==1.7.0",
    "iniconfig==2.3.1",
    "pytest==9.2.0",
    "exceptiongroup==1.3.2",
    "tomli==2.5.0",
    "zipp==4.1.2",
    "importlib-metadata==10.2.0",
    "pyparsing==3.3.3",
    "colorama==0.4.6",
    "tqdm==4.70.1",
    "decorator==5.3.1",
    "pytz==2026.6",
    "tzdata==2026.6",
    "pydantic==2.14.4",
    "annotated-types==0.8.0",
    "sniffio==1.3.1",
    "anyio==4.16.0",
    "h11==0.16.0",
    "httpcore==1.0.9",
    "httpx==0.28.1",
    "distlib==0.4.4",
    "virtualenv==21.15.11",
    "soupsieve==4.1.3",
    "beautifulsoup4==4.15.0",
    "pygments==2.21.0",
    "rich==15.0.0",
    "markdown-it-py==4.3.0",
    "mdurl==0.1.2",
    "jsonschema==4.26.0",
    "jsonschema-specifications==2025.9.1",
    "referencing==0.37.0",
    "more-itertools==11.2.1",
    "docutils==0.23",
    "oauthlib==4.0.1",
    "requests-oauthlib==2.0.0",
    "werkzeug==3.1.9",
    "flask==3.1.3",
    "itsdangerous==2.2.0",
    "blinker==1.9.0",
    "pyjwt==2.15.1",
    "websocket-client==1.9.2",
    "isodate==0.7.2",
    "msal==1.39.0",
    "azure-core==1.41.0",
    "googleapis-common-protos==1.76.0",
    "proto-plus==1.29.0",
    "google-api-core==2.44.0",
    "pyasn1-modules==0.4.2",
    "wcwidth==0.9.4",
    "prompt-toolkit==3.0.53",
    "tabulate==0.10.0",
    "toml==0.10.2",
    "tomlkit==0.15.2",
    "shellingham==1.5.4",
    "typer==0.29.2",
    "python-dotenv==1.2.4",
    "alembic==1.20.1",
    "mako==1.4.3",
    "pathspec==1.1.1",
    "hatchling==1.33.0",
    "trove-classifiers==2026.9.21.13",
    "build==1.6.1",
    "pyproject-hooks==1.3.3",
    "distro==1.9.0",
    "openpyxl==3.1.5",
    "chardet==7.7.0",
    "deprecated==3.0.1",
    "asgiref==3.13.0",
    "sqlparse==0.6.1",
    "django==6.1.3",
    "gunicorn==27.0.1",
    "redis==8.1.0",
    "kombu==5.7.0",
    "amqp==5.4.2",
    "awscli==1.46.3",
)
# Popular projects with C, C++, Cython or mypyc extensions (no Rust: the images have no cargo).
COMPILED = (
    "charset-normalizer==3.5.3",
    "wrapt==2.5.2",
    "multidict==7.2.1",
    "frozenlist==1.8.0",
    "propcache==0.5.4",
    "yarl==1.25.1",
    "aiohttp==3.14.5",
    "simplejson==4.3.0",
    "coverage==7.17.5",
    "psutil==7.2.2",
    "ujson==6.1.0",
    "regex==2026.11.19",
    "cffi==2.1.1",
    "markupsafe==3.0.4",
    "pyyaml==6.0.4",
    "msgpack==1.2.4",
    "zope-interface==8.7",
    "kiwisolver==1.5.1",
    "setproctitle==1.3.8",
)
# Compiled releases with no cp311 manylinux_2_17 wheel: their manylinux_2_28 one is verified.
COMPILED_2_28 = ("greenlet==3.5.6",)


def run(
    releases: tuple[str, ...], work: Path, jobs: int, python: str | None, platform: str | None
) -> float:
    """One batch into the work directory's store (several batches may share it)."""
    deps = work / f"deps-{platform or 'any'}.txt"
    deps.write_text("\n".join(releases) + "\n")
    argv = [
        sys.executable, "-m", "rebuild", "-q", "batch", str(deps), "--jobs", str(jobs),
        "--store", str(work / "store.sqlite"),
    ]  # fmt: skip
    if python:
        argv += ["--python", python]
    if platform:
        argv += ["--platform", platform]
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode not in (0, 11):  # a finished batch either way
        raise SystemExit(f"batch failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return seconds


# A failure's class, read off its message: the first needle found names it.
CLASSES = (
    ("the index serves no project named", "a build requirement this index does not serve"),
    ("cannot be resolved", "build requirements unresolvable as of the upload"),
    ("not found in the cache", "a requirement missing at build time"),
    ("No such file", "a system header, library or tool missing"),
    ("did not finish within", "timed out"),
    ("no build image", "no image for the interpreter"),
    ("publishes no wheel", "no wheel"),
    ("no sdist", "no sdist"),
)


def classify(stage: str, message: str) -> str:
    return next((name for needle, name in CLASSES if needle in message), f"{stage}: other")


def report(name: str, count: int, store: Path, seconds: float) -> None:
    with sqlite3.connect(store) as db:
        rows = db.execute(
            "SELECT r.project, r.version, s.verdict, s.unexplained, s.failure_stage, "
            "s.failure_message FROM results s JOIN releases r ON r.id = s.release_id "
            "WHERE s.current = 1 ORDER BY r.project"
        ).fetchall()
    verdicts = Counter(row[2] for row in rows)
    good = verdicts["reproducible"] + verdicts["equivalent"]
    unexplained = [f"{p}=={v} ({n})" for p, v, _, n, _, _ in rows if n]
    print(f"\n{name}: {count} releases in {seconds:.0f} s")
    print("  " + ", ".join(f"{n} {v}" for v, n in sorted(verdicts.items())))
    print(f"  reproducible or equivalent: {good} of {count}")
    print(f"  with unexplained members ({len(unexplained)}): {', '.join(unexplained) or 'none'}")
    failures = [(p, v, stage or "?", message or "") for p, v, verdict, _, stage, message in rows
                if verdict == "failed"]  # fmt: skip
    for cls, n in Counter(classify(stage, message) for _, _, stage, message in failures).items():
        print(f"  failed, {cls}: {n}")
    for project, version, stage, message in failures:
        print(f"    {project}=={version} [{stage}] {' '.join(message.split())[:240]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--set", nargs="+", choices=["pure", "compiled"], default=["pure", "compiled"]
    )
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    base = default_cache_dir() / "benchmarks"
    base.mkdir(parents=True, exist_ok=True)
    for name in args.set:
        work = Path(tempfile.mkdtemp(prefix=f"longtail-{name}-", dir=base))
        if name == "pure":
            count, seconds = len(PURE), run(PURE, work, args.jobs, None, None)
        else:
            count = len(COMPILED) + len(COMPILED_2_28)
            seconds = run(COMPILED, work, args.jobs, "3.11", "manylinux_2_17_x86_64")
            seconds += run(COMPILED_2_28, work, args.jobs, "3.11", "manylinux_2_28_x86_64")
        report(name, count, work / "store.sqlite", seconds)
        print(f"  store: {work / 'store.sqlite'} (rebuild review --store … --html DIR)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
