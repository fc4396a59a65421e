"""The command line as a user runs it: `python -m rebuild ...` in a child process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def run_cli(
    *args: str | Path, cwd: Path | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run rebuild with ``args``; wide, colourless output, the rest of the environment kept (the
    machine's trust store settings, REQUESTS_CA_BUNDLE and the like, must carry over)."""
    return subprocess.run(
        [sys.executable, "-m", "rebuild", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"},
        check=False,
        timeout=timeout,
    )
