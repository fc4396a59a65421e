"""Start-up: a command imports only what it uses.

`rebuild --help`, a typo'd option or `rebuild history` must not pay for the index client, the
Docker SDK or the disassembler. Checked in a fresh interpreter, since this test process has
long imported everything.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from compare.wheels import make_wheel

# What no command needs before it does real work.
HEAVY = (
    "requests",
    "docker",
    "capstone",
    "elftools",
    "celery",
    "rebuild.pipeline",
    "rebuild.compare",
)

_PROBE = """
import json, sys
from typer.testing import CliRunner
import rebuild.cli as cli
result = CliRunner().invoke(cli.app, sys.argv[1:])
print(json.dumps({"exit": result.exit_code, "modules": sorted(sys.modules)}))
"""


def _modules_after(*args: str) -> tuple[int, set[str]]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, check=True
    )
    found = json.loads(done.stdout.strip().splitlines()[-1])
    return found["exit"], set(found["modules"])


@pytest.mark.parametrize(
    "args",
    [("--help",), ("check", "--help"), ("batch", "--help"), ("compare", "--help"), ("--version",)],
)
def test_help_imports_nothing_heavy(args: tuple[str, ...]) -> None:
    code, modules = _modules_after(*args)
    assert code == 0
    assert not {m for m in HEAVY if m in modules}


def test_a_usage_error_imports_nothing_heavy() -> None:
    code, modules = _modules_after("check", "--no-such-option")
    assert code == 2
    assert not {m for m in HEAVY if m in modules}


def test_the_probe_would_see_a_heavy_import() -> None:
    # The check above is only worth something if the probe sees what a command does import.
    code, modules = _modules_after("schema")
    assert code == 0
    assert "rebuild.report.schema" in modules


# What `rebuild compare` needs only when a member of that kind differs, or never.
NOT_FOR_COMPARE = (
    "requests",
    "docker",
    "capstone",
    "rebuild.index",
    "rebuild.http",
    "rebuild.build",
    "rebuild.pipeline",
    "rebuild.plan",
)


def test_compare_of_two_wheels_talks_to_no_index_and_no_engine(tmp_path: Path) -> None:
    published = make_wheel(tmp_path / "a" / "demo-1.0-py3-none-any.whl")
    rebuilt = make_wheel(
        tmp_path / "b" / "demo-1.0-py3-none-any.whl", changes={"demo/__init__.py": b"x = 2\n"}
    )
    code, modules = _modules_after("compare", str(published), str(rebuilt))
    assert code == 1  # divergent: the comparison really ran
    assert not {m for m in NOT_FOR_COMPARE if m in modules}


def test_what_a_check_of_an_sdist_imports_leaves_git_and_x509_out() -> None:
    # The modules a check of an sdist runs (the pipeline, the build, the source checks) load
    # gitpython only to check out a tag and cryptography only to read a provenance.
    probe = (
        "import json, sys\n"
        "import rebuild.pipeline, rebuild.build, rebuild.sources.provenance\n"
        "import rebuild.sources.locate, rebuild.sources.integrity\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    modules = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert "rebuild.sources.git" in modules  # the probe did load the module that uses git
    assert not {m for m in ("git", "cryptography", "cryptography.x509") if m in modules}
