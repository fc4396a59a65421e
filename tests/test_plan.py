"""Planning a rebuild from the evidence in a published wheel."""

from __future__ import annotations

import calendar
import configparser
import subprocess
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from compare.wheels import BASE, DIST_INFO, make_wheel
from packaging.tags import parse_tag

from rebuild.errors import ArchiveError, PlanError
from rebuild.plan import (
    backend_from_generator,
    plan_build,
    python_for,
    source_date_epoch,
    umask_from_modes,
)

IMAGES = {"bookworm-py311": "3.11"}


@pytest.mark.parametrize(
    ("generator", "backend", "pins"),
    [
        ("bdist_wheel (0.41.1)", "setuptools", ("wheel==0.41.1", "setuptools<70.1")),
        ("setuptools (75.1.0)", "setuptools", ("setuptools==75.1.0",)),
        ("hatchling 1.21.0", "hatchling", ("hatchling==1.21.0",)),
        ("flit 3.9.0", "flit_core", ("flit_core==3.9.0",)),
        ("poetry-core 1.8.1", "poetry-core", ("poetry-core==1.8.1",)),
        ("pdm-backend (2.1.8)", "pdm-backend", ("pdm-backend==2.1.8",)),
        ("maturin (1.4.0)", "maturin", ("maturin==1.4.0",)),
        ("scikit-build-core 0.8.2", "scikit-build-core", ("scikit-build-core==0.8.2",)),
        ("uv 0.7.3", "uv_build", ("uv_build==0.7.3",)),
        ("meson", "meson-python", ()),
        ("something else 1.0", None, ()),
        (None, None, ()),
    ],
)
def test_backend_and_pins_come_from_the_generator_line(
    generator: str | None, backend: str | None, pins: tuple[str, ...]
) -> None:
    assert backend_from_generator(generator) == (backend, pins)


def test_uniform_timestamps_reveal_source_date_epoch() -> None:
    stamp = (2023, 12, 31, 6, 20, 2)
    assert source_date_epoch(Counter({stamp: 35})) == calendar.timegm((*stamp, 0, 0, 0))
    assert source_date_epoch(Counter({stamp: 3, (2023, 12, 31, 6, 20, 4): 1})) is None


@pytest.mark.parametrize(
    ("modes", "umask"),
    [({0o644: 10}, "022"), ({0o664: 10, 0o775: 1}, "002"), ({0o755: 3}, "022"), ({0: 4}, None)],
)
def test_umask_is_read_from_permission_bits(modes: dict[int, int], umask: str | None) -> None:
    assert umask_from_modes(Counter(modes)) == umask


def test_pure_and_matching_cpython_wheels_get_an_image() -> None:
    assert python_for(parse_tag("py3-none-any"), IMAGES) == ("bookworm-py311", "3.11")
    tags = parse_tag("cp311-cp311-manylinux_2_17_x86_64")
    assert python_for(tags, IMAGES) == ("bookworm-py311", "3.11")
    assert python_for(parse_tag("cp38-abi3-manylinux_2_17_x86_64"), IMAGES)[1] == "3.11"


def test_an_interpreter_no_image_has_is_a_plan_error_naming_the_images() -> None:
    with pytest.raises(PlanError, match=r"Python 3\.12") as info:
        python_for(parse_tag("cp312-cp312-manylinux_2_17_x86_64"), IMAGES)
    assert "bookworm-py311 (Python 3.11)" in (info.value.hint or "")


def test_a_platform_no_image_builds_is_a_plan_error() -> None:
    with pytest.raises(PlanError, match="macosx"):
        python_for(parse_tag("cp311-cp311-macosx_11_0_arm64"), IMAGES)


def test_plan_replays_the_publishers_habits(tmp_path: Path) -> None:
    wheel = make_wheel(
        tmp_path / "demo-1.0-py3-none-any.whl", timestamp=(2023, 12, 31, 6, 20, 2), mode=0o664
    )
    uploaded = datetime(2023, 12, 31, 6, 30, 30, tzinfo=UTC)
    plan = plan_build(wheel, upload_time=uploaded, images=IMAGES)
    assert plan.image == "bookworm-py311"
    assert plan.pure
    assert plan.generator == "bdist_wheel (0.43.0)"
    assert plan.backend == "setuptools"
    # wheel's bdist_wheel signed the line: setuptools 70.1 and later would have signed it.
    assert plan.backend_pins == ("wheel==0.43.0", "setuptools<70.1")
    assert "setuptools<70.1: wheel's bdist_wheel signed it" in dict(plan.origins)["backend_pins"]
    assert plan.exclude_newer == uploaded
    assert plan.source_date_epoch == calendar.timegm((2023, 12, 31, 6, 20, 2, 0, 0, 0))
    assert ("SOURCE_DATE_EPOCH", str(plan.source_date_epoch)) in plan.environment
    assert plan.umask == "002"
    assert dict(plan.origins)["backend"] == "WHEEL Generator: bdist_wheel (0.43.0)"


@pytest.mark.parametrize(
    ("wheel", "generator", "left"),
    [
        ("hatchling-1.25.0-py3-none-any.whl", "hatchling 1.25.0", ()),
        ("flit_core-3.9.0-py3-none-any.whl", "flit 3.9.0", ()),
        ("setuptools-75.1.0-py3-none-any.whl", "setuptools (75.1.0)", ()),
        # Not wheel==0.43.0, but still the setuptools that line implies.
        ("wheel-0.43.0-py3-none-any.whl", "bdist_wheel (0.43.0)", ("setuptools<70.1",)),
        # Not the range on setuptools either: it is the release, built by its own tree.
        ("setuptools-69.5.1-py3-none-any.whl", "bdist_wheel (0.43.0)", ("wheel==0.43.0",)),
    ],
)
def test_a_backend_that_built_itself_is_not_pinned_to_itself(
    tmp_path: Path, wheel: str, generator: str, left: tuple[str, ...]
) -> None:
    # The pin would be the release itself: not on the index before its own upload, and not
    # needed, since its sdist holds the backend (backend-path).
    made = make_wheel(tmp_path / wheel, changes={f"{DIST_INFO}/WHEEL": _wheel_file(generator)})
    plan = plan_build(made, upload_time=None, images=IMAGES)
    assert plan.backend_pins == left
    assert any(
        "the release itself: it is built by the backend in its own sdist" in n for n in plan.notes
    )
    assert dict(plan.origins)["backend"].endswith("the release itself, its in-tree backend")


def _wheel_file(generator: str) -> bytes:
    return (
        f"Wheel-Version: 1.0\nGenerator: {generator}\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    ).encode()


def test_varied_timestamps_mean_no_source_date_epoch_and_a_note(tmp_path: Path) -> None:
    stamps = {name: (2024, 1, 1, 0, 0, 2 * i) for i, name in enumerate(BASE)}
    wheel = make_wheel(tmp_path / "demo-1.0-py3-none-any.whl", timestamp=stamps)
    plan = plan_build(wheel, upload_time=None, images=IMAGES)
    assert plan.source_date_epoch is None
    assert plan.environment == ()
    assert any("mtimes" in note for note in plan.notes)
    assert any("as of today" in note for note in plan.notes)


def test_a_wheel_without_a_wheel_file_is_an_archive_error(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "demo-1.0-py3-none-any.whl", changes={f"{DIST_INFO}/WHEEL": None})
    with pytest.raises(ArchiveError, match="WHEEL"):
        plan_build(wheel, upload_time=None, images=IMAGES)


def test_a_file_that_is_not_a_zip_is_an_archive_error(tmp_path: Path) -> None:
    wheel = tmp_path / "demo-1.0-py3-none-any.whl"
    wheel.write_bytes(b"not a zip at all")
    with pytest.raises(ArchiveError):
        plan_build(wheel, upload_time=None, images=IMAGES)


def _metadata(*requires: str, description: str = "", crlf: bool = False) -> bytes:
    lines = ["Metadata-Version: 2.1", "Name: demo", "Version: 1.0"]
    text = "\n".join([*lines, *(f"Requires-Dist: {r}" for r in requires)]) + "\n\n" + description
    return (text.replace("\n", "\r\n") if crlf else text).encode()


@pytest.mark.parametrize(
    ("generator", "metadata", "pins"),
    [
        # wheel 0.41.0 and older spell it so, and setuptools' bdist_wheel uses an installed
        # wheel's writer: the rebuild gets such a wheel, and its bytes say whether that was it.
        (
            "setuptools (75.1.0)",
            _metadata("botocore (<1.45.0,>=1.44.8)", "jmespath<2"),
            ("setuptools==75.1.0", "wheel<0.41.1"),
        ),
        (
            "setuptools (75.1.0)",
            _metadata("botocore[crt] (<2.0a0,>=1.21.0) ; extra == 'crt'", crlf=True),
            ("setuptools==75.1.0", "wheel<0.41.1"),
        ),
        # Today's spellings imply nothing.
        (
            "setuptools (75.1.0)",
            _metadata("botocore <1.45.0", "jmespath<2"),
            ("setuptools==75.1.0",),
        ),
        # In the description, not a field: not evidence.
        (
            "setuptools (75.1.0)",
            _metadata("jmespath<2", description="Requires-Dist: botocore (<1.45.0)\n"),
            ("setuptools==75.1.0",),
        ),
        # The Generator already names wheel's exact version: the better word, left alone.
        (
            "bdist_wheel (0.38.4)",
            _metadata("botocore (<1.45.0)"),
            ("wheel==0.38.4", "setuptools<70.1"),
        ),
        # Another backend: no measurement says what its spelling means.
        ("hatchling 1.25.0", _metadata("botocore (<1.45.0)"), ("hatchling==1.25.0",)),
    ],
)
def test_a_spelling_only_old_wheel_writes_implies_such_a_wheel(
    tmp_path: Path, generator: str, metadata: bytes, pins: tuple[str, ...]
) -> None:
    made = make_wheel(
        tmp_path / "demo-1.0-py3-none-any.whl",
        changes={f"{DIST_INFO}/WHEEL": _wheel_file(generator), f"{DIST_INFO}/METADATA": metadata},
    )
    plan = plan_build(made, upload_time=None, images=IMAGES)
    assert plan.backend_pins == pins
    origin = dict(plan.origins)["backend_pins"]
    assert ("which only wheel 0.41.0 and older write" in origin) == ("wheel<0.41.1" in pins)
    assert origin.startswith(f"version in WHEEL Generator: {generator}")
    # setuptools 75.1.0 asks for no wheel: only a build without isolation would have it.
    assert plan.build_isolation is ("wheel<0.41.1" not in pins)
    assert ("build_isolation" in dict(plan.origins)) is ("wheel<0.41.1" in pins)


def test_a_wheel_without_metadata_still_plans(tmp_path: Path) -> None:
    made = make_wheel(
        tmp_path / "demo-1.0-py3-none-any.whl", changes={f"{DIST_INFO}/METADATA": None}
    )
    assert plan_build(made, upload_time=None, images=IMAGES).backend == "setuptools"


UNIVERSAL = "/tmp/rebuild-bdist-wheel-universal.cfg"


@pytest.mark.parametrize(
    ("filename", "generator", "universal"),
    [
        # pytz 2026.6: bdist_wheel (0.42.0), tagged py2.py3, with no `universal` in its setup.cfg.
        ("demo-1.0-py2.py3-none-any.whl", "bdist_wheel (0.42.0)", True),
        ("demo-1.0-py2.py3-none-any.whl", "setuptools (75.1.0)", True),
        ("demo-1.0-py3-none-any.whl", "setuptools (75.1.0)", False),
        ("demo-1.0-py2-none-any.whl", "setuptools (75.1.0)", False),
        # Another backend tags py2.py3 its own way: nothing of setuptools' to set.
        ("demo-1.0-py2.py3-none-any.whl", "flit 3.9.0", False),
    ],
)
def test_a_wheel_for_python_2_and_3_is_built_universal(
    tmp_path: Path, filename: str, generator: str, universal: bool
) -> None:
    made = make_wheel(tmp_path / filename, changes={f"{DIST_INFO}/WHEEL": _wheel_file(generator)})
    plan = plan_build(made, upload_time=None, images=IMAGES)
    # Not `--build-option=--universal`: setuptools before 69 passes it on to egg_info, which
    # refuses it (shellingham 1.5.4, setuptools 68.2.2, failed so).
    assert plan.config_settings == ()
    assert (("DIST_EXTRA_CONFIG", UNIVERSAL) in plan.environment) is universal
    assert plan.pre_build == (
        (f"printf '[bdist_wheel]\\nuniversal = 1\\n' > {UNIVERSAL}",) if universal else ()
    )
    assert ("pre_build" in dict(plan.origins)) is universal


def test_the_universal_step_writes_the_config_distutils_reads(tmp_path: Path) -> None:
    made = make_wheel(
        tmp_path / "demo-1.0-py2.py3-none-any.whl",
        changes={f"{DIST_INFO}/WHEEL": _wheel_file("bdist_wheel (0.42.0)")},
    )
    (step,) = plan_build(made, upload_time=None, images=IMAGES).pre_build
    written = tmp_path / "universal.cfg"
    subprocess.run(["sh", "-c", step.replace(UNIVERSAL, str(written))], check=True)
    parser = configparser.ConfigParser()
    parser.read(written)
    assert parser.getboolean("bdist_wheel", "universal")
