"""Derived build images (``[derive]``): the spec, its tag, and the packages a recipe may rely on."""

from __future__ import annotations

from pathlib import Path

import pytest

from rebuild.errors import PlanError
from rebuild.images import image_tag, installed_packages, load_spec

DERIVED = "bookworm-py311-numeric"


def test_the_numeric_image_derives_from_the_base_with_its_packages() -> None:
    spec = load_spec(DERIVED)
    assert spec.base == "bookworm-py311"
    assert spec.packages == ("gfortran", "libopenblas64-dev", "pkg-config", "patchelf")
    provided = installed_packages(spec)
    assert {"gfortran", "libopenblas64-dev", "python3", "gcc"} <= provided


def test_a_derived_image_changes_tag_with_its_base_and_its_packages(containers: Path) -> None:
    before = image_tag(load_spec(DERIVED))
    base_spec = containers / "bookworm-py311" / "image.toml"
    base_spec.write_text(
        base_spec.read_text().replace('"patchelf"]', '"patchelf", "file"]'), encoding="utf-8"
    )
    after_base = image_tag(load_spec(DERIVED))
    assert after_base != before
    spec = containers / DERIVED / "image.toml"
    spec.write_text(spec.read_text().replace('"patchelf"]', '"patchelf", "file"]'))
    assert image_tag(load_spec(DERIVED)) not in (before, after_base)


def test_the_pinned_table_does_not_change_the_tag(containers: Path) -> None:
    before = image_tag(load_spec(DERIVED))
    spec = containers / DERIVED / "image.toml"
    text = spec.read_text()
    spec.write_text(text.replace('image_id = "sha256:', 'image_id = "sha256:0'))
    assert image_tag(load_spec(DERIVED)) == before


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('from = "bookworm-py311"', 'from = "nowhere"', "no image named 'nowhere'"),
        ('python = "3.11"', 'python = "3.12"', "the base bookworm-py311 has 3.11"),
        ('"pkg-config"', '"Not A Package"', "field derive.packages has 'Not A Package'"),
    ],
)
def test_a_bad_derived_spec_names_the_field(
    containers: Path, old: str, new: str, message: str
) -> None:
    spec = containers / DERIVED / "image.toml"
    text = spec.read_text()
    assert old in text
    spec.write_text(text.replace(old, new))
    with pytest.raises(PlanError, match=message):
        load_spec(DERIVED)
