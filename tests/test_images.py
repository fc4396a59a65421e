"""Tests of image specs, tags, manifests and drift, and of getting an image into the engine.

Spec and drift tests need no engine. The docker-marked ones use the real bookworm-py311 image;
the registry path is exercised with only the SDK's pull call replaced, since no registry answers
where these tests run.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker.models.images
import pytest

from rebuild import container, images
from rebuild.errors import ContainerError, PlanError
from rebuild.images import ImageSource, compute_drift, ensure_image, load_spec, spec_hash

REPO_CONTAINERS = Path(__file__).resolve().parent.parent / "containers"

VALID = """\
name = "{name}"
description = "a test image"
python = "3.11"
platforms = ["linux_x86_64"]

[reference]
image = "docker.io/library/debian:bookworm-slim"
digest = "{digest}"

[bootstrap]
suite = "bookworm"
variant = "minbase"
mirror = "http://deb.debian.org/debian"
include = ["python3", "gcc"]
"""


@pytest.fixture
def specs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A containers directory with no image in it (only the template every image is built
    from), read instead of the repository's."""
    root = tmp_path / "containers"
    root.mkdir()
    shutil.copy(REPO_CONTAINERS / images.TEMPLATE, root / images.TEMPLATE)
    monkeypatch.setenv("REBUILD_CONTAINERS_DIR", str(root))
    return root


def write_spec(root: Path, text: str, name: str = "demo") -> Path:
    folder = root / name
    folder.mkdir(exist_ok=True)
    path = folder / "image.toml"
    path.write_text(text)
    return path


# ---------------------------------------------------------------------------------------- specs


def test_the_repository_image_spec_is_valid_and_pinned() -> None:
    spec = load_spec("bookworm-py311")
    assert spec.python == "3.11"
    assert spec.platforms == ("linux_x86_64",)
    assert spec.directory == REPO_CONTAINERS / "bookworm-py311"
    assert {"python3", "python3-dev", "python3-venv", "gcc", "g++", "make", "patchelf"} == set(
        spec.include
    )
    locked = images.read_lock(spec)
    assert locked is not None
    assert images.manifest_sha256(locked) == spec.pinned_manifest_sha256
    assert any(entry.startswith("python3.11=3.11.") for entry in locked)
    # No copied Dockerfile: every image is built from the template beside the folders.
    assert images.dockerfile_of(spec) == images.TEMPLATE
    assert (spec.directory.parent / images.TEMPLATE).is_file()


def test_a_valid_spec_loads(specs: Path) -> None:
    write_spec(specs, VALID.format(name="demo", digest=""))
    spec = load_spec("demo")
    assert spec.include == ("python3", "gcc")
    assert spec.digest == ""
    assert spec.pinned_image_id == ""
    assert images.spec_names() == ["demo"]


def test_an_unknown_image_names_the_known_ones(specs: Path) -> None:
    write_spec(specs, VALID.format(name="demo", digest=""))
    with pytest.raises(PlanError, match="no image named 'nope'") as caught:
        load_spec("nope")
    assert caught.value.hint is not None
    assert "demo" in caught.value.hint


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ('python = "3.11"\n', "", "python"),
        ('python = "3.11"', 'python = "three"', "python"),
        ('python = "3.11"', "python = 3.11", "python"),
        ('name = "demo"', 'name = "other"', "name"),
        ('platforms = ["linux_x86_64"]', 'platforms = "linux_x86_64"', "platforms"),
        ('include = ["python3", "gcc"]', "include = []", "bootstrap.include"),
        ('include = ["python3", "gcc"]', 'include = ["python3", "rm -rf"]', "bootstrap.include"),
        (
            'mirror = "http://deb.debian.org/debian"',
            'mirror = "deb.debian.org"',
            "bootstrap.mirror",
        ),
        ('digest = ""', 'digest = "latest"', "reference.digest"),
        ("[bootstrap]", "[bootstrapping]", "bootstrap"),
    ],
)
def test_an_invalid_spec_names_file_and_field(specs: Path, old: str, new: str, field: str) -> None:
    text = VALID.format(name="demo", digest="")
    assert old in text
    path = write_spec(specs, text.replace(old, new))
    with pytest.raises(PlanError) as caught:
        load_spec("demo")
    assert str(caught.value).startswith(f"{path}: field {field} ")


def test_a_spec_that_is_not_toml_is_a_plan_error(specs: Path) -> None:
    path = write_spec(specs, "name = [unterminated\n")
    with pytest.raises(PlanError, match="cannot read it") as caught:
        load_spec("demo")
    assert str(path) in str(caught.value)


def test_the_spec_hash_follows_what_is_installed(specs: Path) -> None:
    base = VALID.format(name="demo", digest="")
    path = write_spec(specs, base)
    original = spec_hash(load_spec("demo"))

    def hash_of(text: str) -> str:
        path.write_text(text)
        return spec_hash(load_spec("demo"))

    assert hash_of(base) == original
    assert hash_of(base.replace('"gcc"]', '"gcc", "g++"]')) != original
    assert hash_of(base.replace('"3.11"', '"3.12"')) != original
    assert hash_of(base.replace('suite = "bookworm"', 'suite = "trixie"')) != original
    # Pinning, describing or pointing at a registry does not change what gets installed.
    assert hash_of(base + '\n[pinned]\nimage_id = "sha256:00"\n') == original
    assert hash_of(base.replace("a test image", "another description")) == original
    assert hash_of(base.replace('digest = ""', f'digest = "sha256:{"ab" * 32}"')) == original
    assert images.image_tag(load_spec("demo")) == f"rebuild/demo:{original}"


def test_with_pinned_replaces_only_the_last_table() -> None:
    ref = images.ImageRef(
        name="demo",
        tag="rebuild/demo:1",
        image_id="sha256:" + "cd" * 32,
        how=ImageSource.BOOTSTRAPPED,
        python="3.11",
        manifest=("a=1", "b=2"),
        drift=(),
    )
    first = images.with_pinned(VALID, ref)
    second = images.with_pinned(first, ref)
    assert first == second
    assert first.startswith(VALID)
    assert first.count("[pinned]") == 1
    assert f'image_id = "sha256:{"cd" * 32}"' in first
    assert "packages = 2" in first


# ------------------------------------------------------------------------------------ manifests


def test_drift_lists_changed_added_and_removed_packages() -> None:
    locked = ["gcc-12=12.2.0-14", "make=4.3-4.1", "zlib1g=1:1.2.13.dfsg-1"]
    actual = ["gcc-12=12.2.0-14+deb12u1", "make=4.3-4.1", "tzdata=2024a-0+deb12u1"]
    assert compute_drift(locked, actual) == (
        "gcc-12: 12.2.0-14 -> 12.2.0-14+deb12u1",
        "tzdata: (absent) -> 2024a-0+deb12u1",
        "zlib1g: 1:1.2.13.dfsg-1 -> (absent)",
    )
    assert compute_drift(locked, list(reversed(locked))) == ()


def test_drift_refuses_a_malformed_entry() -> None:
    with pytest.raises(ValueError, match="package=version"):
        compute_drift(["gcc"], [])


def test_dpkg_query_output_keeps_installed_packages_only() -> None:
    output = "ii |make=4.3-4.1\nrc |old-lib=1.0\nii |gcc=4:12.2.0-3\n\n"
    assert images._parse_dpkg_query(output) == ("gcc=4:12.2.0-3", "make=4.3-4.1")


def test_the_lock_file_skips_comments(specs: Path) -> None:
    write_spec(specs, VALID.format(name="demo", digest=""))
    spec = load_spec("demo")
    assert images.read_lock(spec) is None
    spec.lock_path.write_text("# header\nmake=4.3-4.1\n\ngcc=4:12.2.0-3\n")
    assert images.read_lock(spec) == ("gcc=4:12.2.0-3", "make=4.3-4.1")


@pytest.mark.parametrize(
    ("reference", "repository"),
    [
        ("docker.io/library/debian:bookworm-slim", "docker.io/library/debian"),
        ("debian", "debian"),
        ("localhost:5000/debian", "localhost:5000/debian"),
        ("localhost:5000/debian:12", "localhost:5000/debian"),
        (f"debian:12@sha256:{'ab' * 32}", "debian"),
    ],
)
def test_split_reference(reference: str, repository: str) -> None:
    assert images.split_reference(reference) == repository


# ------------------------------------------------------------------------ choosing how to get it


def test_a_failed_pull_falls_back_to_the_bootstrap(
    specs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_spec(specs, VALID.format(name="demo", digest=f"sha256:{'ab' * 32}"))
    made = container.LocalImage(id="sha256:" + "ef" * 32, tags=("rebuild/demo:x",), labels={})

    def no_registry(repository: str, digest: str) -> container.LocalImage:
        raise ContainerError(f"cannot pull {repository}@{digest}: no route")

    monkeypatch.setattr(container, "find_image", lambda ref: None)
    monkeypatch.setattr(container, "pull_image", no_registry)
    monkeypatch.setattr(images, "_bootstrap", lambda spec, tag, say: made)
    monkeypatch.setattr(images, "image_manifest", lambda image: ("gcc=1",))
    said: list[str] = []
    ref = ensure_image("demo", progress=said.append)
    assert ref.how is ImageSource.BOOTSTRAPPED
    assert ref.image_id == made.id
    assert ref.drift == (f"{specs / 'demo' / 'packages.lock'} is missing: the image is not pinned",)
    assert any("bootstrapping it instead" in line for line in said)


# -------------------------------------------------------------------------------- with docker


@pytest.fixture(scope="module")
def bootstrapped() -> images.ImageRef:
    return ensure_image("bookworm-py311")


@pytest.mark.docker
def test_the_second_ensure_uses_the_local_image(
    bootstrapped: images.ImageRef, monkeypatch: pytest.MonkeyPatch
) -> None:
    def must_not_bootstrap(*args: Any) -> None:
        raise AssertionError("bootstrapped although the image is in the engine")

    monkeypatch.setattr(images, "_bootstrap", must_not_bootstrap)
    again = ensure_image("bookworm-py311")
    assert again.how is ImageSource.LOCAL
    assert again.image_id == bootstrapped.image_id
    assert again.tag == images.image_tag(load_spec("bookworm-py311"))
    assert again.python == "3.11"
    assert again.manifest == bootstrapped.manifest
    assert len(again.manifest) > 100
    info = again.info()
    assert info.obtained == "local"
    assert info.packages == len(again.manifest)
    assert info.drift == again.drift
    status = {s.name: s for s in images.list_images()}["bookworm-py311"]
    assert status.present
    assert status.image_id == again.image_id


@pytest.fixture
def pull_spec(specs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A copy of bookworm-py311 named pulltest, pinned to a digest no registry will be asked."""
    source = REPO_CONTAINERS / "bookworm-py311"
    target = specs / "pulltest"
    shutil.copytree(source, target)
    text = (target / "image.toml").read_text()
    text = text.replace('name = "bookworm-py311"', 'name = "pulltest"')
    text = text.replace('digest = ""', f'digest = "sha256:{"ab" * 32}"')
    (target / "image.toml").write_text(text)
    monkeypatch.setattr(images, "cache_dir", lambda: tmp_path / "cache")
    tag = images.image_tag(load_spec("pulltest"))
    yield tag
    container.remove_image(tag)
    container.remove_image(f"rebuild/pulltest-base:{'ab' * 6}")


@pytest.mark.docker
@pytest.mark.network
def test_the_registry_path_pulls_by_digest_and_installs_the_lock(
    bootstrapped: images.ImageRef, pull_spec: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pulls: list[tuple[str, str | None]] = []

    def fake_pull(self: Any, repository: str, tag: str | None = None, **kwargs: Any) -> Any:
        # Stands in for the registry: hands back the bootstrapped image as "the pulled base".
        pulls.append((repository, tag))
        return self.get(bootstrapped.image_id)

    monkeypatch.setattr(docker.models.images.ImageCollection, "pull", fake_pull)
    ref = ensure_image("pulltest")
    assert pulls == [("docker.io/library/debian", f"sha256:{'ab' * 32}")]
    assert ref.how is ImageSource.PULLED
    assert ref.tag == pull_spec
    assert ref.image_id != bootstrapped.image_id
    # The base already had every locked package at its locked version: nothing drifted.
    assert ref.manifest == bootstrapped.manifest
    assert ref.drift == bootstrapped.drift
    assert ref.python == "3.11"
