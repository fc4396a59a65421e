"""The repository's recipes for PyYAML and charset-normalizer: the upstream facts each encodes
select the right section for the right wheels, and charset-normalizer rebuilds with its recipe."""

from __future__ import annotations

from pathlib import Path

import pytest

from rebuild.images import load_spec
from rebuild.models import DivergenceKind, Target, Verdict, WheelSelector
from rebuild.pipeline import CheckOptions, check
from rebuild.recipes import RecipeRelease, find_recipe, load_recipe

REPO = Path(__file__).resolve().parent.parent
PYYAML = REPO / "recipes" / "pyyaml.toml"
CHARSET = REPO / "recipes" / "charset-normalizer.toml"

CP311_MANYLINUX = ("cp311-cp311-manylinux_2_17_x86_64", "cp311-cp311-manylinux2014_x86_64")
CP311_MUSLLINUX = ("cp311-cp311-musllinux_1_1_x86_64",)
CP311_AARCH64 = ("cp311-cp311-manylinux_2_17_aarch64", "cp311-cp311-manylinux2014_aarch64")
PURE = ("py3-none-any",)


def selected(path: Path, version: str, tags: tuple[str, ...]) -> RecipeRelease:
    release = load_recipe(path).select(version, tags)
    assert release is not None, (path.name, version, tags)
    return release


@pytest.mark.parametrize(
    ("project", "path"),
    [("PyYAML", PYYAML), ("pyyaml", PYYAML), ("charset_normalizer", CHARSET)],
)
def test_each_recipe_is_found_by_its_normalised_project_name(
    project: str, path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REBUILD_RECIPES_DIR", raising=False)
    recipe = find_recipe(project)
    assert recipe is not None and recipe.path == path


# --- PyYAML 6.0.1 -----------------------------------------------------------------------------


def test_pyyaml_selects_its_section_for_the_cp311_manylinux_x86_64_wheel() -> None:
    release = selected(PYYAML, "6.0.1", CP311_MANYLINUX)
    environment = dict(release.environment)
    # The linux_pyyaml job's CIBW_ENVIRONMENT: Cython and libyaml forced, against libyaml/.
    assert environment == {
        "C_INCLUDE_PATH": "libyaml/include",
        "LIBRARY_PATH": "libyaml/src/.libs",
        "LD_LIBRARY_PATH": "libyaml/src/.libs",
        "PYYAML_FORCE_CYTHON": "1",
        "PYYAML_FORCE_LIBYAML": "1",
    }
    assert release.image is not None
    assert release.image.reference == "quay.io/pypa/manylinux2014_x86_64"
    assert release.image.digest == ""  # upstream's cibuildwheel was unpinned: no known tag
    assert release.image.fallback == "bullseye-py311-yaml"
    # No pins: the sdist's requirements are time-warped, as upstream's isolated build was.
    assert release.build_requirements == ()
    assert release.repair is None


def test_pyyaml_builds_libyaml_0_2_5_statically_from_the_tag_as_libyaml_sh_did() -> None:
    release = selected(PYYAML, "6.0.1", CP311_MANYLINUX)
    (libyaml,) = release.inputs
    assert libyaml.filename == "libyaml_0.2.5.orig.tar.gz"
    assert libyaml.sha256 == "fa240dbf262be053f3898006d502d514936c818e422afdcf33921c63bed9bf2e"
    steps = " && ".join(release.pre_build)
    assert "./bootstrap" in steps
    assert "./configure --disable-dependency-tracking --with-pic --enable-shared=no" in steps
    # The build must start in the source tree: every `cd` happens in a subshell.
    assert not any(step.startswith("cd ") for step in release.pre_build)
    # ./bootstrap needs the autotools, which the fallback image adds to bookworm-py311.
    spec = load_spec("bookworm-py311-yaml")
    assert spec.base == "bookworm-py311"
    assert {"autoconf", "automake", "libtool"} <= set(spec.packages)


@pytest.mark.parametrize(
    ("version", "source_dir", "reference"),
    [
        ("6.0.1", "/project", "quay.io/pypa/manylinux2014_x86_64"),
        # The published objects moved the tree one level down; the build is the same.
        ("6.0.2", "/project/pyyaml", "quay.io/pypa/manylinux2014_x86_64"),
    ],
)
def test_pyyaml_s_later_releases_have_the_build_their_objects_show(
    version: str, source_dir: str, reference: str
) -> None:
    release = selected(PYYAML, version, CP311_MANYLINUX)
    assert release.source_dir == source_dir
    assert release.image is not None and release.image.reference == reference
    assert release.image.fallback == "bullseye-py311-yaml"
    assert dict(release.environment)["PYYAML_FORCE_LIBYAML"] == "1"


@pytest.mark.parametrize(
    ("version", "tags"),
    [
        ("6.0.1", CP311_MUSLLINUX),  # built in musllinux_1_1 with its own libyaml cache
        ("6.0.1", CP311_AARCH64),  # built under QEMU in manylinux2014_aarch64
        ("6.0.1", PURE),
        ("6.0.2", CP311_MUSLLINUX),
        ("6.0", CP311_MANYLINUX),
        ("6.0.3", CP311_MANYLINUX),  # a newer libyaml than 0.2.5, from a ref not known here
        ("6.0.4", CP311_MANYLINUX),
        ("6.1.0", CP311_MANYLINUX),  # a build nobody has looked at
    ],
)
def test_pyyaml_has_no_section_for_other_wheels(version: str, tags: tuple[str, ...]) -> None:
    assert load_recipe(PYYAML).select(version, tags) is None


# --- charset-normalizer 3.4.0 -------------------------------------------------------------------


def test_charset_normalizer_selects_its_mypyc_section_for_the_cp311_manylinux_wheel() -> None:
    release = selected(CHARSET, "3.4.0", CP311_MANYLINUX)
    assert dict(release.environment) == {"CHARSET_NORMALIZER_USE_MYPYC": "1"}
    assert release.build_requirements == ("mypy==1.11.2",)
    assert release.image is not None and release.image.fallback == "bullseye-py311"
    # Upstream built with --no-build-isolation in an environment it had installed into.
    assert release.build_isolation is False
    assert release.pre_build == ()


@pytest.mark.parametrize(
    ("version", "tags"),
    [
        # The universal wheel was built apart, with CHARSET_NORMALIZER_USE_MYPYC=0.
        ("3.4.0", PURE),
        ("3.4.0", CP311_MUSLLINUX),
        ("3.4.0", CP311_AARCH64),
        ("3.4.1", CP311_MANYLINUX),  # declares mypy in pyproject.toml: not this section's case
        ("3.3.2", CP311_MANYLINUX),
    ],
)
def test_charset_normalizer_has_no_section_for_other_wheels(
    version: str, tags: tuple[str, ...]
) -> None:
    assert load_recipe(CHARSET).select(version, tags) is None


# --- end to end ---------------------------------------------------------------------------------

EXTENSIONS = {
    "charset_normalizer/md.cpython-311-x86_64-linux-gnu.so",
    "charset_normalizer/md__mypyc.cpython-311-x86_64-linux-gnu.so",
}


@pytest.mark.docker
@pytest.mark.network
def test_charset_normalizer_rebuilds_with_its_recipe(
    shared_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REBUILD_RECIPES_DIR", raising=False)
    report = check(
        Target.parse("charset-normalizer==3.4.0"),
        WheelSelector(python="3.11", platform="manylinux_2_17_x86_64"),
        CheckOptions(cache_dir=shared_cache),
    )
    assert report.failure is None, report.failure
    assert report.plan is not None and report.build is not None
    assert report.plan.recipe == str(CHARSET)
    assert report.build.image.name == "bullseye-py311"
    assert ("CHARSET_NORMALIZER_USE_MYPYC", "1") in report.build.environment
    assert {"mypy==1.11.2", "setuptools==75.1.0"} <= set(report.build.requirements)
    assert report.build.repair is not None and report.build.repair.replayed
    comparison = report.comparison
    assert comparison is not None
    # mypyc compiled md.py: both extensions exist in the rebuild, and every other member of the
    # 24 (Python sources, METADATA, WHEEL, entry points, license) is byte-identical.
    assert report.verdict is Verdict.DIVERGENT
    assert comparison.identical_members == 21
    members = {d.member for d in comparison.divergences if d.kind is DivergenceKind.CONTENT}
    assert members == EXTENSIONS
    assert not any(
        d.kind in (DivergenceKind.ONLY_PUBLISHED, DivergenceKind.ONLY_REBUILT)
        for d in comparison.divergences
    )
    # Built by GCC 12 against glibc 2.36 instead of devtoolset-10 against glibc 2.17, the
    # extensions' code differs and the ELF rules say why, down to the mypyc module's import of
    # __stack_chk_fail (Debian's Python passes -fstack-protector-strong) and the shim's
    # DT_NEEDED (upstream's: libpthread.so.0, libc.so.6; the rebuild's: none).
    assert comparison.unexplained == (), comparison.unexplained
