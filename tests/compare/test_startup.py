"""Start-up: the compare stage imports neither the network, the container engine nor the ELF
stack until a member of that kind differs (each checked in a fresh interpreter)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from .wheels import make_wheel

HEAVY = ("requests", "urllib3", "docker", "capstone", "elftools", "rebuild.index", "typer")


def _imported_after(code: str) -> list[str]:
    probe = (
        f"{code}\nimport json, sys\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    return list(json.loads(done.stdout.splitlines()[-1]))


def test_importing_the_compare_stage_imports_nothing_heavy() -> None:
    assert _imported_after("import rebuild.compare") == []


def test_comparing_wheels_whose_python_differs_loads_no_elf_stack(tmp_path: Path) -> None:
    pub = make_wheel(tmp_path / "p.whl")
    reb = make_wheel(
        tmp_path / "r.whl", changes={"demo/core.py": b"def answer():\n    return 43\n"}
    )
    code = (
        "from pathlib import Path\nfrom rebuild.compare import compare_wheels\n"
        f"result = compare_wheels(Path({str(pub)!r}), Path({str(reb)!r}))\n"
        "assert result.verdict.value == 'divergent'"
    )
    assert _imported_after(code) == []
