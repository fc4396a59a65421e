"""Run a piece of rebuild in a fresh interpreter and read back what it measured of itself.

A bound on time or memory belongs to the code under test, not to the suite: the child reports
its own wall time and peak resident size (``VmHWM``; ``ru_maxrss`` would carry the forked
parent's across exec), and the timeout is the hard bound.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

# Put in front of a child's script: `hwm()` is its own peak resident size, in bytes.
PEAK_MEMORY = """
import json, sys, time
def hwm():
    # VmHWM is this image's peak: ru_maxrss would carry the forked parent's across exec.
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
"""


def run_measured(script: str, *args: Path | str, timeout: float) -> dict[str, object]:
    """Run ``PEAK_MEMORY + script`` with ``args``; the JSON object it printed last."""
    done = subprocess.run(
        [sys.executable, "-c", PEAK_MEMORY + script, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, object] = json.loads(done.stdout)
    return result
