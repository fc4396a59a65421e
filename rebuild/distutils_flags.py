"""Compiler flags that add to the interpreter's, whichever setuptools reads them.

The toolchain replays only the flags beyond what the image's CPython gives every extension (its
sysconfig ``CFLAGS``: ``-DNDEBUG -g -fwrapv -O3`` in a source-built one), and a recipe's
``CFLAGS`` add to those too. setuptools' distutils used to append ``$CFLAGS`` and ``$CXXFLAGS``
to sysconfig's; from 75.7.0 on it takes them *instead* (read in its ``_distutils``: 75.6.0
appends, 75.7.0, 80.9.0 and 84.2.1 replace), so a replayed ``-std=c11`` alone compiled wcwidth
0.9.4 with no optimisation and no debug information at all. For such a setuptools, the build
script puts the interpreter's own flags first, so that both versions compile with the same
command line.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

# The first setuptools whose distutils replaces sysconfig's CFLAGS with $CFLAGS.
REPLACING_SETUPTOOLS = Version("75.7.0")
FLAG_VARIABLES = ("CFLAGS", "CXXFLAGS")


def setuptools_replaces_flags(backend: str, requirements: Sequence[str]) -> bool:
    """Whether the build runs setuptools' distutils at a version that replaces sysconfig's
    flags: a setuptools backend (declared, or pip's fallback for none) and setuptools pinned
    at 75.7.0 or later."""
    if backend.partition(":")[0] != "setuptools.build_meta":
        return False
    for text in requirements:
        try:
            requirement = Requirement(text)
        except InvalidRequirement:
            continue
        if canonicalize_name(requirement.name) != "setuptools":
            continue
        pinned = [s.version for s in requirement.specifier if s.operator == "=="]
        return bool(pinned) and Version(pinned[0]) >= REPLACING_SETUPTOOLS
    return False


def sysconfig_first(python: str, environment: Mapping[str, str]) -> list[str]:
    """Shell lines that put ``python``'s sysconfig CFLAGS before each flag variable the build
    sets (none when it sets none)."""
    names = [name for name in FLAG_VARIABLES if name in environment]
    if not names:
        return []
    probe = shlex.quote("import sysconfig; print(sysconfig.get_config_var('CFLAGS') or '')")
    lines = [f"interpreter_cflags=$({python} -c {probe})"]
    lines += [f'export {name}="$interpreter_cflags ${name}"' for name in names]
    return lines
