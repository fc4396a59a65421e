"""Which backends are asked what they need at build time, and how their answer is read: a
hostile or broken answer is refused with a clear error, never half used."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from rebuild.backend_requires import MAX_ANSWER_BYTES, read_answer, reason_to_ask
from rebuild.build import BuildInputs
from rebuild.errors import BuildError
from rebuild.models import Plan


def _plan(**changes: object) -> Plan:
    plan = Plan(
        image="bookworm-py311",
        python="3.11",
        wheel_tags=("py3-none-any",),
        pure=True,
        generator=None,
        backend=None,
        backend_pins=(),
        exclude_newer=None,
        source_date_epoch=None,
        umask=None,
    )
    return replace(plan, **changes)  # type: ignore[arg-type]


def _inputs(
    tmp_path: Path, backend: str, files: dict[str, str], path: tuple[str, ...] = ()
) -> BuildInputs:
    source = tmp_path / "src"
    source.mkdir(exist_ok=True)
    for name, text in files.items():
        (source / name).write_text(text)
    return BuildInputs(
        source=source,
        deps=tmp_path / "deps",
        constraints=tmp_path / "constraints.txt",
        requirements=(),
        build_requires=(),
        backend=backend,
        backend_path=path,
    )


@pytest.mark.parametrize(
    ("backend", "files", "path", "asked"),
    [
        ("hatchling.ouroboros", {}, ("src",), "an in-tree backend"),
        (
            "setuptools.build_meta",
            {"setup.py": "setup(setup_requires=['x'])"},
            (),
            "setup_requires",
        ),
        ("setuptools.build_meta", {"setup.py": "setup()"}, (), None),
        ("scikit_build_core.build", {}, (), "adds the build tools"),
        ("mesonpy", {}, (), "adds the build tools"),
        ("flit_core.buildapi", {}, (), None),
        ("hatchling.build", {"pyproject.toml": "[tool.hatch]\n"}, (), None),
        (
            "hatchling.build",
            {"pyproject.toml": "[tool.hatch.build.hooks.vcs]\ndependencies = ['x']\n"},
            (),
            "hooks with dependencies",
        ),
        ("exotic.backend", {}, (), "may add requirements"),
    ],
)
def test_the_backends_that_can_add_requirements_are_asked(
    tmp_path: Path, backend: str, files: dict[str, str], path: tuple[str, ...], asked: str | None
) -> None:
    reason = reason_to_ask(_inputs(tmp_path, backend, files, path), _plan())
    assert (reason is None) if asked is None else (reason is not None and asked in reason)


def test_a_recipe_that_pins_the_whole_environment_is_not_asked(tmp_path: Path) -> None:
    inputs = _inputs(tmp_path, "hatchling.ouroboros", {}, ("src",))
    assert reason_to_ask(inputs, _plan(build_isolation=False)) is None


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b'{"not": "a list"}', "is not a list"),
        (json.dumps(["x"] * 201).encode(), "is not a list"),
        (b"[1, 2]", "is not a list"),
        (b"not json", "is not a list"),
        (b"[" + b'"a",' * (MAX_ANSWER_BYTES // 4) + b'"a"]', "is not a list"),
        (b'["six==1.16.0", "not a requirement!!"]', "not a requirement"),
        (b'["evil @ https://attacker.example/evil-1.0.tar.gz"]', "from a URL"),
    ],
)
def test_a_hostile_answer_is_refused(tmp_path: Path, data: bytes, says: str) -> None:
    answer = tmp_path / "answer.json"
    answer.write_bytes(data)
    with pytest.raises(BuildError, match=says):
        read_answer(answer)


def test_no_answer_is_an_error_and_a_good_one_is_read_once_each(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="no answer"):
        read_answer(tmp_path / "missing.json")
    answer = tmp_path / "answer.json"
    answer.write_text(json.dumps(["cython>=3", "wheel", "cython>=3"]))
    assert read_answer(answer) == ("cython>=3", "wheel")
