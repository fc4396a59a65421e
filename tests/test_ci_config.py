"""Upstream's cibuildwheel configuration read as evidence: which values are taken, from where,
and what is never replayed; mypyc inferred from the published wheel and the source together."""

from __future__ import annotations

from pathlib import Path

import pytest
from compare.wheels import make_wheel
from conftest import ServeRelease
from helpers_index import LocalServer
from sdists import build_published_wheel, make_sdist

from rebuild.ci_config import identifier_for, read_ci_config
from rebuild.models import Target, WheelSelector
from rebuild.pipeline import CheckOptions, plan_release

ID = "cp311-manylinux_x86_64"


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    tree = tmp_path / "src"
    for name, text in files.items():
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_text(text)
    return tree


def test_environment_packages_and_settings_are_taken_with_their_origins(tmp_path: Path) -> None:
    tree = _tree(
        tmp_path,
        {
            "pyproject.toml": """
[tool.cibuildwheel]
environment = { DEMO_USE_MYPYC = "1", OTHER = "a b" }
before-all = "yum install -y libffi-devel openssl-devel && ./download-things.sh"
config-settings = "raqm=enable raqm=vendor"
before-build = "pip install cython"

[tool.cibuildwheel.linux]
environment = 'CFLAGS="-O2 -g" DEMO_USE_MYPYC=1'
""",
        },
    )
    config = read_ci_config(tree, ID)
    # The linux table wins over the top level, as in cibuildwheel.
    assert config.environment == (("CFLAGS", "-O2 -g"), ("DEMO_USE_MYPYC", "1"))
    assert config.system_packages == ("libffi-dev", "libssl-dev")
    assert config.config_settings == (("raqm", "enable"), ("raqm", "vendor"))
    origins = dict(config.origins)
    assert origins["environment CFLAGS"] == ("pyproject.toml [tool.cibuildwheel.linux] environment")
    assert origins["system packages"].endswith(": libffi-dev, libssl-dev")
    assert any("not replayed" in n and "./download-things.sh" in n for n in config.notes)
    assert any("not replayed" in n and "pip install cython" in n for n in config.notes)


def test_overrides_apply_only_to_the_identifiers_they_select(tmp_path: Path) -> None:
    tree = _tree(
        tmp_path,
        {
            "pyproject.toml": """
[tool.cibuildwheel]
environment = { LEVEL = "base" }

[[tool.cibuildwheel.overrides]]
select = "cp311-*"
environment = { LEVEL = "cp311" }

[[tool.cibuildwheel.overrides]]
select = "*-musllinux*"
before-all = "apk add libffi-dev"
""",
        },
    )
    assert read_ci_config(tree, ID).environment == (("LEVEL", "cp311"),)
    assert read_ci_config(tree, ID).system_packages == ()
    musl = read_ci_config(tree, "cp312-musllinux_x86_64")
    assert musl.environment == (("LEVEL", "base"),)
    assert musl.system_packages == ("libffi-dev",)


def test_a_package_with_no_known_debian_name_is_reported_not_guessed(tmp_path: Path) -> None:
    tree = _tree(
        tmp_path,
        {"cibuildwheel.toml": '[tool.cibuildwheel]\nbefore-all = "dnf install -y weird-devel"\n'},
    )
    config = read_ci_config(tree, ID)
    assert config.system_packages == ()
    assert config.notes == (
        "not replayed from cibuildwheel.toml [tool.cibuildwheel] before-all: "
        "`dnf … weird-devel (no Debian name known for it)`",
    )


@pytest.mark.parametrize(
    "line", ['os.getenv("DEMO_USE_MYPYC", "0")', "os.environ.get('DEMO_USE_MYPYC')"]
)
def test_mypyc_is_inferred_from_the_wheel_and_the_source_together(
    tmp_path: Path, line: str
) -> None:
    tree = _tree(tmp_path, {"setup.py": f"import os\nUSE = {line} == '1'\n"})
    compiled = make_wheel(
        tmp_path / "mypyc" / "demo-1.0-cp311-cp311-linux_x86_64.whl",
        changes={"3f2a__mypyc.cpython-311-x86_64-linux-gnu.so": b"\x7fELF"},
    )
    config = read_ci_config(tree, ID, compiled)
    assert config.environment == (("DEMO_USE_MYPYC", "1"),)
    (origin,) = config.origins
    assert "3f2a__mypyc.cpython-311-x86_64-linux-gnu.so" in origin[1] and "setup.py:2" in origin[1]
    # A pure published wheel, or a source that reads no such variable, infers nothing.
    pure = make_wheel(tmp_path / "pure" / "demo-1.0-py3-none-any.whl")
    assert read_ci_config(tree, ID, pure).environment == ()
    assert read_ci_config(_tree(tmp_path / "other", {}), ID, compiled).environment == ()


def test_a_broken_or_hostile_config_gives_nothing(tmp_path: Path) -> None:
    tree = _tree(tmp_path, {"pyproject.toml": "[tool.cibuildwheel\n"})
    assert read_ci_config(tree, ID) == read_ci_config(tmp_path / "nothing", ID)
    huge = _tree(tmp_path / "huge", {"pyproject.toml": "# " + "x" * (2 * 1024 * 1024)})
    assert read_ci_config(huge, ID).environment == ()


def test_identifiers_are_cibuildwheel_s() -> None:
    assert identifier_for("3.11", "manylinux_2_17_x86_64") == "cp311-manylinux_x86_64"
    assert identifier_for("3.9", "musllinux_1_1_aarch64") == "cp39-musllinux_aarch64"


def test_recipe_show_applies_the_sdist_s_ci_configuration_without_a_build(
    tmp_path: Path, local_index: tuple[LocalServer, ServeRelease]
) -> None:
    tag = "cp311-cp311-linux_x86_64"
    config = '\n[tool.cibuildwheel.linux]\nbefore-all = "yum install -y zlib-devel"\n'
    published = build_published_wheel(tmp_path / "published", tag=tag)
    sdist = make_sdist(tmp_path / "demo-1.0.tar.gz", "ok", pyproject=config, tag=tag)
    url = local_index[1]("demo", published, sdist)
    plan = plan_release(
        Target("demo", "1.0"),
        WheelSelector(python="3.11"),
        CheckOptions(index_url=url, cache_dir=tmp_path / "cache"),
    )
    assert plan.system_packages == ("zlib1g-dev",)
    assert dict(plan.origins)["system packages"] == (
        "pyproject.toml [tool.cibuildwheel.linux] before-all: zlib1g-dev"
    )


def test_the_sandbox_s_own_variables_are_not_the_source_s_to_set(tmp_path: Path) -> None:
    tree = _tree(
        tmp_path,
        {
            "pyproject.toml": "[tool.cibuildwheel]\n"
            'environment = { UV_OFFLINE = "0", PATH = "/evil", SOURCE_DATE_EPOCH = "1", '
            'OK = "1" }\n'
        },
    )
    config = read_ci_config(tree, ID)
    assert config.environment == (("OK", "1"),)
    assert sorted(n.split(": ")[-1] for n in config.notes) == [
        "PATH (the sandbox sets it)",
        "SOURCE_DATE_EPOCH (the sandbox sets it)",
        "UV_OFFLINE (the sandbox sets it)",
    ]


def test_hatch_hooks_off_by_default_are_enabled_when_the_wheel_is_compiled(tmp_path: Path) -> None:
    tree = _tree(
        tmp_path,
        {
            "pyproject.toml": """
[tool.hatch.build.targets.wheel.hooks.mypyc]
enable-by-default = false
dependencies = ["hatch-mypyc"]

[tool.hatch.build.hooks.vcs]
version-file = "_version.py"
""",
        },
    )
    compiled = make_wheel(
        tmp_path / "c" / "demo-1.0-cp311-cp311-linux_x86_64.whl",
        changes={"demo/_speed.cpython-311-x86_64-linux-gnu.so": b"\x7fELF"},
    )
    config = read_ci_config(tree, ID, compiled)
    assert config.environment == (("HATCH_BUILD_HOOK_ENABLE_MYPYC", "true"),)
    assert "hook 'mypyc' ([tool.hatch.build.targets.wheel.hooks])" in config.origins[0][1]
    pure = make_wheel(tmp_path / "p" / "demo-1.0-py3-none-any.whl")
    assert read_ci_config(tree, ID, pure).environment == ()


def test_a_cython_switch_is_set_and_a_variant_of_the_build_is_not(tmp_path: Path) -> None:
    tree = _tree(
        tmp_path,
        {
            "setup.py": 'import os\nUSE = os.getenv("DEMO_USE_CYTHON") == "1"\n'
            'ABI3 = os.getenv("DEMO_CYTHON_ABI3") == "1"\n'
        },
    )
    compiled = make_wheel(
        tmp_path / "c" / "demo-1.0-cp311-cp311-linux_x86_64.whl",
        changes={"demo/md.cpython-311-x86_64-linux-gnu.so": b"\x7fELF"},
    )
    assert read_ci_config(tree, ID, compiled).environment == (("DEMO_USE_CYTHON", "1"),)
