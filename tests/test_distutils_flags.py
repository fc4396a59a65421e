"""Replayed compiler flags add to the interpreter's, for a setuptools that appends $CFLAGS to
sysconfig's (75.6.0 and earlier) and for one that takes $CFLAGS instead (75.7.0 and later)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from rebuild.distutils_flags import setuptools_replaces_flags, sysconfig_first


@pytest.mark.parametrize(
    ("backend", "requirements", "replaces"),
    [
        ("setuptools.build_meta", ("setuptools==84.2.1", "cython==3.3.1"), True),
        ("setuptools.build_meta", ("setuptools==75.7.0",), True),
        ("setuptools.build_meta:__legacy__", ("wheel==0.41.0", "setuptools==80.9.0"), True),
        ("setuptools.build_meta", ("setuptools==75.6.0",), False),
        ("setuptools.build_meta", ("setuptools==69.5.1", "wheel==0.43.0"), False),
        # Not distutils compiling: meson, or a backend that merely has setuptools installed.
        ("mesonpy", ("setuptools==84.2.1", "meson-python==0.18.0"), False),
        ("setuptools.build_meta", ("cython==3.3.1",), False),
    ],
)
def test_which_setuptools_replaces_the_interpreters_flags(
    backend: str, requirements: tuple[str, ...], replaces: bool
) -> None:
    assert setuptools_replaces_flags(backend, requirements) is replaces


def test_the_interpreters_flags_come_first_in_each_variable_the_build_sets(
    tmp_path: Path,
) -> None:
    # A stand-in for the image's CPython: its sysconfig CFLAGS, as a source-built one has them.
    python = tmp_path / "python3.11"
    python.write_text("#!/bin/sh\necho '-Wsign-compare -DNDEBUG -g -fwrapv -O3 -Wall'\n")
    python.chmod(0o755)
    lines = sysconfig_first(str(python), {"CFLAGS": "-std=c11", "CXXFLAGS": "-std=c++11"})
    script = "\n".join(["set -eu", *lines, 'echo "$CFLAGS|$CXXFLAGS"'])
    shown = subprocess.run(
        ["bash", "-c", script],
        env={**os.environ, "CFLAGS": "-std=c11", "CXXFLAGS": "-std=c++11"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    base = "-Wsign-compare -DNDEBUG -g -fwrapv -O3 -Wall"
    assert shown == f"{base} -std=c11|{base} -std=c++11"


def test_a_build_that_sets_no_flags_gets_no_lines() -> None:
    assert sysconfig_first("python3.11", {"LDFLAGS": "-s"}) == []
    (probe, export) = sysconfig_first("python3.11", {"CXXFLAGS": "-std=c++11"})
    assert probe.startswith("interpreter_cflags=$(python3.11 -c ")
    assert export == 'export CXXFLAGS="$interpreter_cflags $CXXFLAGS"'
