"""Removing a work directory, whatever a build or an archive left in it.

A hostile build can write a tree far deeper than any real one into its output directory (with
directory-relative calls, deeper than PATH_MAX). The standard library's rmtree recurses once per
level and raises RecursionError near 1,000 levels; coreutils' `rm` walks any depth with
directory file descriptors, so it finishes what rmtree cannot.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


def remove_tree(path: Path) -> None:
    """Remove ``path`` and everything below it; a missing path is not an error.

    Never follows symlinks out of the tree, and stays on the tree's filesystem.
    """
    try:
        shutil.rmtree(path)
    except FileNotFoundError:
        return
    except (RecursionError, OSError):
        # Too deep for rmtree, or a name too long for a path: rm works relative to each level.
        subprocess.run(
            ["rm", "-rf", "--one-file-system", "--", str(path)],
            check=False,
            capture_output=True,
        )
