"""rebuild's own wheel: reproducible from one commit, and whole when installed without a checkout.

Built twice by `scripts/build-dist` (SOURCE_DATE_EPOCH from the last commit), the two wheels must
be byte-identical by `rebuild compare`'s own verdict. Installed into a fresh virtual environment
(as pip, pipx or uv tool would), run from a directory with no checkout in sight, the tool must
find every image spec and recipe it ships, and check a real release.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rebuild.images import spec_names
from rebuild.recipes import recipe_paths

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.network  # the build's isolated environment and the venv's dependencies


def _build(out: Path) -> Path:
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "build-dist"), str(out)],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (wheel,) = out.glob("rebuild-*.whl")
    return wheel


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("dist")
    return _build(root / "first"), _build(root / "second")


@pytest.fixture(scope="module")
def installed(wheels: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the built wheel installed (not editable)."""
    venv = tmp_path_factory.mktemp("venv") / "env"
    uv = Path(sys.executable).parent / "uv"
    subprocess.run([str(uv), "venv", "--quiet", "--python", sys.executable, str(venv)], check=True)
    subprocess.run(
        [str(uv), "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), wheels[0]],
        check=True,
        timeout=600,
    )
    return venv


def _run(venv: Path, *argv: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("REBUILD_", "VIRTUAL_ENV"))
    }
    environment.update(env)
    return subprocess.run(
        [str(venv / "bin" / "rebuild"), *argv],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )


def test_every_package_of_the_tree_is_listed_for_the_wheel() -> None:
    import tomllib

    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    on_disk = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for init in (ROOT / "rebuild").rglob("__init__.py")
    }
    assert on_disk <= listed, sorted(on_disk - listed)


def test_the_wheel_holds_every_module_of_the_tree(wheels: tuple[Path, Path]) -> None:
    import zipfile

    names = set(zipfile.ZipFile(wheels[0]).namelist())
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "rebuild").rglob("*.py")}
    assert modules <= names, sorted(modules - names)


def test_two_builds_of_one_commit_are_the_same_wheel(wheels: tuple[Path, Path]) -> None:
    first, second = wheels
    assert first.name == second.name
    report = first.parent.parent / "compare.json"
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "rebuild"),
            "compare",
            str(first),
            str(second),
            "--json",
            str(report),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:]
    assert json.loads(report.read_text())["comparison"]["verdict"] == "reproducible"
    assert first.read_bytes() == second.read_bytes()


def test_the_wheel_ships_the_image_specs_the_recipes_and_the_license(
    wheels: tuple[Path, Path],
) -> None:
    import zipfile

    names = set(zipfile.ZipFile(wheels[0]).namelist())
    for image in spec_names():
        assert f"rebuild/containers/{image}/image.toml" in names, image
        assert f"rebuild/containers/{image}/packages.lock" in names, image
    assert "rebuild/containers/Dockerfile" in names
    assert "rebuild/containers/Dockerfile.cpython" in names
    for recipe in recipe_paths():
        assert f"rebuild/recipes/{recipe.name}" in names, recipe
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), sorted(names)
    # Read at run time: the report's schema and the verdict predicate's published schema.
    assert "rebuild/report/report.schema.json" in names
    assert "rebuild/attest/verdict.schema.json" in names


def test_the_installed_tool_finds_its_images_and_recipes(installed: Path, tmp_path: Path) -> None:
    listed = _run(installed, "image", "list", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    for image in spec_names():
        assert image in listed.stdout, image
    validated = _run(installed, "recipe", "validate", cwd=tmp_path)
    assert validated.returncode == 0, validated.stdout + validated.stderr
    for recipe in recipe_paths():
        assert recipe.name in validated.stdout


@pytest.mark.docker
def test_the_installed_tool_checks_a_release(
    installed: Path, tmp_path: Path, shared_cache: Path
) -> None:
    done = _run(
        installed,
        "check",
        "six==1.16.0",
        "--cache-dir",
        str(shared_cache),
        "--json",
        str(tmp_path / "six.json"),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    report = json.loads((tmp_path / "six.json").read_text())
    assert report["comparison"]["verdict"] in ("reproducible", "equivalent")
    assert report["build"]["image"]["name"] == "bookworm-py311"
