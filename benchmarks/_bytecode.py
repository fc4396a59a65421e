"""Bytecode for every module a timed command imports, as an installed rebuild has it.

pip and uv compile a wheel's modules at install; a checkout run with PYTHONDONTWRITEBYTECODE
set (this project's CI machines set it) never writes them, and every fresh process then
compiles each module it imports from source again. Start-up figures measured that way are
not what a user sees, so the benchmarks that time fresh processes compile first.
"""

from __future__ import annotations

import compileall
import sysconfig
from pathlib import Path

import rebuild


def compile_installed() -> None:
    """Write the bytecode of rebuild's package and of the environment's site-packages."""
    folders = [Path(rebuild.__file__).parent, Path(sysconfig.get_paths()["purelib"])]
    for folder in dict.fromkeys(folders):
        compileall.compile_dir(folder, quiet=2, workers=0)
