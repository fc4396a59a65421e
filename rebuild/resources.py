"""Where the data rebuild reads at run time lives: the image specs and the recipes.

The repository keeps them at its top level (``containers/``, ``recipes/``); the wheel ships them
inside the package (``rebuild/containers``, ``rebuild/recipes``; see pyproject.toml), so that an
installed tool (pip, pipx, uv tool) finds them without a checkout. An environment variable names
another directory for either.
"""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def data_dir(name: str, variable: str) -> Path:
    """``$variable`` if set; else the installed package's ``rebuild/<name>``; else the
    checkout's top-level ``<name>/`` (an editable install, or running from the tree)."""
    configured = os.environ.get(variable)
    if configured:
        return Path(configured)
    shipped = _PACKAGE / name
    return shipped if shipped.is_dir() else _PACKAGE.parent / name
