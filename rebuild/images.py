"""Build images: their specs under ``containers/``, and getting one into the local engine.

Each image is a folder ``containers/<name>/`` holding ``image.toml`` (what the image is and how to
make it) and ``packages.lock`` (the Debian package manifest it was pinned with); every image is
built from the one template ``containers/Dockerfile`` (the registry path and derived images)
unless its folder holds a Dockerfile of its own. :func:`ensure_image` finds the image in the
engine by a tag derived from the spec, else pulls the pinned base by digest and builds the
template on it, else bootstraps it offline from Debian's packages with debootstrap. Whichever
way, it reads the image's package manifest and lists where it drifts from the lock, so the
report can record exactly what built the wheel.

``lock_manifest`` rewrites ``packages.lock`` (and the ``[pinned]`` table of ``image.toml``) from
the image in the engine: run it after changing a spec, then commit both files.
"""

from __future__ import annotations

import enum
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import tomllib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any, cast

import platformdirs

from rebuild import container
from rebuild.errors import ContainerError, PlanError
from rebuild.models import ImageInfo
from rebuild.resources import data_dir

Progress = Callable[[str], None]

SPEC_FILE = "image.toml"
LOCK_FILE = "packages.lock"

# Labels on the images rebuild makes. Not "org.rebuild" itself: containers inherit image labels,
# and that one marks the containers rebuild must clean up.
LABEL_NAME = "org.rebuild.image"
LABEL_SPEC = "org.rebuild.spec"
LABEL_PYTHON = "org.rebuild.python"
LABEL_MANIFEST = "org.rebuild.manifest"
LABEL_MANIFEST_SHA256 = "org.rebuild.manifest-sha256"
LABEL_PYTHON_SOURCE = "org.rebuild.python-source"  # "<url>#sha256=<hex>" of a built CPython

# Only installed packages: a removed package can linger in dpkg's database with its config files.
_DPKG_QUERY = ("dpkg-query", "-W", "-f", "${db:Status-Abbrev}|${Package}=${Version}\\n")
_IMAGE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*")
_DEB_PACKAGE = re.compile(r"[a-z0-9][a-z0-9+.-]+")
_PYTHON = re.compile(r"3\.\d+")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_PYTHON_RELEASE = re.compile(r"3\.\d+\.\d+")
# Where a CPython source may come from: the Debian archive's pool, the way every other byte of an
# image here is had. The file name is the orig tarball's.
_PYTHON_SOURCE_URL = re.compile(
    r"https?://[a-z0-9.-]+(:[0-9]+)?/debian/pool/main/p/"
    r"python3\.\d+/python3\.\d+_[0-9.]+\.orig\.tar\.(gz|xz)"
)
# ./configure options an [interpreter] may pass; --prefix is ours (builds find it on PATH).
_CONFIGURE = re.compile(r"--(disable|enable|with|without)-[a-z0-9-]+(=[a-z0-9._-]+)?")


class ImageSource(enum.Enum):
    """How the image in use was had."""

    LOCAL = "local"
    PULLED = "pulled"
    BOOTSTRAPPED = "bootstrapped"
    DERIVED = "derived"  # built here FROM another local image, adding Debian packages


@dataclass(frozen=True)
class PythonSource:
    """A CPython built from source in a derived image (``[interpreter]``), as manylinux does.

    For the interpreters a suite lacks: Debian's archive serves the upstream release tarballs of
    the CPythons its suites carry (``pool/main/p/python3.X/python3.X_<version>.orig.tar.*``), so
    an image with an older compiler can build a newer CPython with that compiler. The tarball is
    fetched on the host and checked against ``sha256`` before the image build sees it.
    """

    version: str  # "3.11.2"
    url: str
    sha256: str
    configure: tuple[str, ...]  # ./configure options beyond --prefix

    @property
    def filename(self) -> str:
        return self.url.rstrip("/").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class ImageSpec:
    """One ``containers/<name>/image.toml``, validated."""

    name: str
    description: str
    python: str
    platforms: tuple[str, ...]
    reference: str
    """A registry reference (a tag), used only together with ``digest``."""
    digest: str
    """``sha256:…`` of ``reference``'s manifest; empty where it could not be resolved."""
    suite: str
    variant: str
    mirror: str
    include: tuple[str, ...]
    pinned_image_id: str
    pinned_manifest_sha256: str
    directory: Path
    # A derived image ([derive]): built FROM the local image `base`, adding `packages` with
    # apt-get during the image build (which may use the network; builds in it never do).
    base: str = ""
    packages: tuple[str, ...] = ()
    # A derived image may build its own CPython ([interpreter]); builds then use it.
    python_source: PythonSource | None = None

    @property
    def interpreter(self) -> str:
        """The command builds run the image's CPython as: on PATH, /usr/local/bin first."""
        return f"python{self.python}"

    @property
    def path(self) -> Path:
        return self.directory / SPEC_FILE

    @property
    def lock_path(self) -> Path:
        return self.directory / LOCK_FILE


@dataclass(frozen=True)
class ImageStatus:
    """An image spec and whether the engine has its image."""

    name: str
    python: str
    tag: str
    present: bool
    image_id: str | None


@dataclass(frozen=True)
class ImageRef:
    """The image a build will use, as the report records it."""

    name: str
    tag: str
    image_id: str
    how: ImageSource
    python: str
    manifest: tuple[str, ...]
    """Installed Debian packages, sorted ``package=version``."""
    drift: tuple[str, ...]
    """Differences from ``packages.lock``, ``"gcc-12: 12.2.0-14 -> 12.2.0-14+deb12u1"``."""
    python_source: str = ""
    """The CPython the image built from source, ``<url>#sha256=<hex>``; empty: the suite's."""

    @property
    def manifest_sha256(self) -> str:
        return manifest_sha256(self.manifest)

    def info(self) -> ImageInfo:
        """The record of this image that goes into a build result."""
        return ImageInfo(
            name=self.name,
            tag=self.tag,
            image_id=self.image_id,
            obtained=self.how.value,
            python=self.python,
            manifest_sha256=self.manifest_sha256,
            packages=len(self.manifest),
            drift=self.drift,
            python_source=self.python_source,
        )


# ---------------------------------------------------------------------------------------- specs


def containers_dir() -> Path:
    """Where image specs live: ``$REBUILD_CONTAINERS_DIR``, else the ones shipped with rebuild."""
    return data_dir("containers", "REBUILD_CONTAINERS_DIR")


def cache_dir() -> Path:
    """Scratch space for bootstraps and the manifests of images rebuild did not label."""
    return platformdirs.user_cache_path("rebuild") / "images"


def spec_names() -> list[str]:
    """The names of every image spec, sorted."""
    root = containers_dir()
    if not root.is_dir():
        return []
    return sorted(p.parent.name for p in root.glob(f"*/{SPEC_FILE}"))


def load_spec(name: str) -> ImageSpec:
    """Read and validate ``containers/<name>/image.toml``."""
    directory = containers_dir() / name
    path = directory / SPEC_FILE
    if not path.is_file():
        known = ", ".join(spec_names()) or "none"
        raise PlanError(
            f"no image named {name!r}: {path} does not exist",
            hint=f"images defined in {containers_dir()}: {known}",
        )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise PlanError(f"{path}: cannot read it: {e}", hint="fix the TOML syntax") from e
    return _parse_spec(data, path)


def _parse_spec(data: dict[str, Any], path: Path) -> ImageSpec:
    fields = _Fields(data, path)
    name = fields.text("name", pattern=_NAME)
    if name != path.parent.name:
        raise fields.error("name", f"is {name!r} but the folder is {path.parent.name!r}")
    if "derive" in data:
        return _parse_derived(fields, name, path)
    reference = fields.table("reference")
    bootstrap = fields.table("bootstrap")
    pinned = fields.table("pinned", required=False)
    digest = reference.text("digest", required=False)
    if digest and not _DIGEST.fullmatch(digest):
        raise reference.error("digest", f"is {digest!r}, expected empty or sha256:<64 hex>")
    mirror = bootstrap.text("mirror")
    if not mirror.startswith(("http://", "https://")):
        raise bootstrap.error("mirror", f"is {mirror!r}, expected an http(s) URL")
    return ImageSpec(
        name=name,
        description=fields.text("description", required=False),
        python=fields.text("python", pattern=_PYTHON),
        platforms=fields.strings("platforms", pattern=re.compile(r"[a-z0-9_]+")),
        reference=reference.text("image"),
        digest=digest,
        suite=bootstrap.text("suite", pattern=_NAME),
        variant=bootstrap.text("variant", pattern=_NAME),
        mirror=mirror,
        include=bootstrap.strings("include", pattern=_DEB_PACKAGE),
        pinned_image_id=pinned.text("image_id", required=False),
        pinned_manifest_sha256=pinned.text("manifest_sha256", required=False),
        directory=path.parent,
    )


def _parse_derived(fields: _Fields, name: str, path: Path) -> ImageSpec:
    """A ``[derive]`` spec: another local image plus Debian packages."""
    derive = fields.table("derive")
    pinned = fields.table("pinned", required=False)
    base_name = derive.text("from", pattern=_NAME)
    if base_name == name:
        raise derive.error("from", "names the image itself")
    base = load_spec(base_name)
    python = fields.text("python", pattern=_PYTHON)
    source = _parse_python_source(fields) if "interpreter" in fields.data else None
    if source is None and python != base.python:
        raise fields.error("python", f"is {python}, but the base {base_name} has {base.python}")
    if source is not None and not source.version.startswith(f"{python}."):
        raise fields.error("python", f"is {python}, but [interpreter] builds {source.version}")
    return ImageSpec(
        name=name,
        description=fields.text("description", required=False),
        python=python,
        platforms=fields.strings("platforms", pattern=re.compile(r"[a-z0-9_]+")),
        reference="",
        digest="",
        suite=base.suite,
        variant=base.variant,
        mirror=base.mirror,
        include=base.include,
        pinned_image_id=pinned.text("image_id", required=False),
        pinned_manifest_sha256=pinned.text("manifest_sha256", required=False),
        directory=path.parent,
        base=base_name,
        packages=derive.strings("packages", pattern=_DEB_PACKAGE),
        python_source=source,
    )


def _parse_python_source(fields: _Fields) -> PythonSource:
    table = fields.table("interpreter")
    url = table.text("source")
    if not _PYTHON_SOURCE_URL.fullmatch(url):
        raise table.error(
            "source", f"is {url!r}; expected an orig tarball in a Debian mirror's pool/main/p/"
        )
    configure = table.strings("configure", pattern=_CONFIGURE, required=False)
    return PythonSource(
        version=table.text("version", pattern=_PYTHON_RELEASE),
        url=url,
        sha256=table.text("sha256", pattern=_SHA256),
        configure=configure,
    )


def built_python(spec: ImageSpec) -> PythonSource | None:
    """The CPython built from source that an image runs: its own, or its base's."""
    while spec.python_source is None and spec.base:
        spec = load_spec(spec.base)
    return spec.python_source


def installed_packages(spec: ImageSpec) -> frozenset[str]:
    """The Debian packages a spec asks for (a derived image: its own and its base's)."""
    names = set(spec.include) | set(spec.packages)
    locked = read_lock(spec)
    names |= {entry.partition("=")[0] for entry in locked or ()}
    return frozenset(names)


class _Fields:
    """Typed access to one TOML table, with errors that name the file and the field."""

    def __init__(self, data: dict[str, Any], path: Path, prefix: str = "") -> None:
        self.data = data
        self._path = path
        self._prefix = prefix

    def error(self, key: str, problem: str) -> PlanError:
        return PlanError(
            f"{self._path}: field {self._prefix}{key} {problem}",
            hint="see containers/bookworm-py311/image.toml for a valid image spec",
        )

    def _get(self, key: str, kind: type, required: bool) -> Any:
        if key not in self.data:
            if required:
                raise self.error(key, "is missing")
            return kind()
        value = self.data[key]
        if not isinstance(value, kind):
            raise self.error(key, f"must be a {kind.__name__}, not {type(value).__name__}")
        return value

    def text(
        self, key: str, *, required: bool = True, pattern: re.Pattern[str] | None = None
    ) -> str:
        value: str = self._get(key, str, required)
        if required and not value:
            raise self.error(key, "is empty")
        if value and pattern is not None and not pattern.fullmatch(value):
            raise self.error(key, f"is {value!r}, which is not a valid value")
        return value

    def strings(
        self, key: str, *, pattern: re.Pattern[str], required: bool = True
    ) -> tuple[str, ...]:
        values: list[Any] = self._get(key, list, required)
        if required and not values:
            raise self.error(key, "is empty")
        for value in values:
            if not isinstance(value, str) or not pattern.fullmatch(value):
                raise self.error(key, f"has {value!r}, which is not a valid entry")
        return tuple(values)

    def table(self, key: str, *, required: bool = True) -> _Fields:
        table: dict[str, Any] = self._get(key, dict, required)
        return _Fields(table, self._path, f"{self._prefix}{key}.")


def spec_hash(spec: ImageSpec) -> str:
    """A short hash of what decides an image's contents; it names the image's tag.

    Only the fields that change what gets installed count: the ``[pinned]`` table is written
    after a bootstrap, and counting it would make every pin ask for a new image.
    """
    material = {
        "name": spec.name,
        "python": spec.python,
        "platforms": sorted(spec.platforms),
        "suite": spec.suite,
        "variant": spec.variant,
        "include": sorted(spec.include),
    }
    if spec.base:
        # A derived image changes with its base: the base's tag is part of its own, and with the
        # Dockerfile it is built from.
        material["base"] = image_tag(load_spec(spec.base))
        material["packages"] = sorted(spec.packages)
        material["dockerfile"] = hashlib.sha256(
            (containers_dir() / dockerfile_of(spec)).read_bytes()
        ).hexdigest()
    if spec.python_source is not None:
        source = spec.python_source
        material["interpreter"] = [source.version, source.sha256, *source.configure]
    encoded = json.dumps(material, sort_keys=True).encode()
    return hashlib.sha256(encoded).hexdigest()[:12]


def image_tag(spec: ImageSpec) -> str:
    return f"rebuild/{spec.name}:{spec_hash(spec)}"


# ------------------------------------------------------------------------------------ manifests


def manifest_sha256(manifest: Sequence[str]) -> str:
    return hashlib.sha256(_lock_body(manifest).encode()).hexdigest()


def _lock_body(manifest: Sequence[str]) -> str:
    return "".join(f"{entry}\n" for entry in sorted(manifest))


def read_lock(spec: ImageSpec) -> tuple[str, ...] | None:
    """The pinned manifest from ``packages.lock``; None if the image has never been pinned."""
    try:
        text = spec.lock_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as e:
        raise PlanError(f"{spec.lock_path}: cannot read it: {e}") from e
    entries = [line.strip() for line in text.splitlines()]
    return tuple(sorted(e for e in entries if e and not e.startswith("#")))


def compute_drift(locked: Sequence[str], actual: Sequence[str]) -> tuple[str, ...]:
    """Where ``actual`` differs from ``locked``, one ``"pkg: old -> new"`` per package."""
    old = _versions(locked)
    new = _versions(actual)
    drift = []
    for package in sorted(old.keys() | new.keys()):
        before, after = old.get(package), new.get(package)
        if before != after:
            drift.append(f"{package}: {before or '(absent)'} -> {after or '(absent)'}")
    return tuple(drift)


def _versions(manifest: Sequence[str]) -> dict[str, str]:
    versions = {}
    for entry in manifest:
        package, sep, version = entry.partition("=")
        if not sep or not package or not version:
            raise ValueError(f"not a package=version manifest entry: {entry!r}")
        versions[package] = version
    return versions


def _parse_dpkg_query(output: str) -> tuple[str, ...]:
    manifest = []
    for line in output.splitlines():
        status, sep, entry = line.partition("|")
        if sep and status.strip() == "ii":
            manifest.append(entry.strip())
    return tuple(sorted(manifest))


def image_manifest(image: container.LocalImage) -> tuple[str, ...]:
    """The installed packages of a local image.

    Read from the label a bootstrap sets; else from a cache keyed by the (content-addressed)
    image id; else by running ``dpkg-query`` in a throwaway container, once.
    """
    label = image.labels.get(LABEL_MANIFEST)
    if label:
        manifest = tuple(sorted(label.split()))
        if manifest_sha256(manifest) == image.labels.get(LABEL_MANIFEST_SHA256):
            return manifest
    cached = _manifest_cache(image.id)
    if cached.is_file():
        return tuple(sorted(cached.read_text(encoding="utf-8").split()))
    manifest = _probe(image.id, _interpreter_of(image)).manifest
    _write_atomically(cached, _lock_body(manifest))
    return manifest


def _manifest_cache(image_id: str) -> Path:
    return cache_dir() / "manifests" / f"{image_id.removeprefix('sha256:')}.lock"


def _interpreter_of(image: container.LocalImage) -> str:
    python = image.labels.get(LABEL_PYTHON, "")
    return f"python{python}" if _PYTHON.fullmatch(python) else "python3"


@dataclass(frozen=True)
class _Probe:
    python: str
    manifest: tuple[str, ...]


def _probe(image_id: str, interpreter: str = "python3") -> _Probe:
    """Run the image once, as a build would run it: its Python version and its packages."""
    script = (
        f"{interpreter} -c 'import sys; print(\"%d.%d\" % sys.version_info[:2])' && "
        + " ".join(f"'{arg}'" for arg in _DPKG_QUERY)
    )
    spec = container.SandboxSpec(
        image=image_id, command=("/bin/sh", "-c", script), memory="512m", timeout_s=120
    )
    result = container.run_sandboxed(spec)
    if result.exit_code != 0 or result.timed_out:
        raise ContainerError(
            f"the image {image_id[:19]} does not run {interpreter} and dpkg-query as a build would "
            f"(exit {result.exit_code}):\n{result.log[-2000:]}",
            hint="the image is not usable for builds; remove it (docker rmi) and let rebuild "
            "make it again",
        )
    first, _, rest = result.log.partition("\n")
    return _Probe(python=first.strip(), manifest=_parse_dpkg_query(rest))


# --------------------------------------------------------------------------------------- images


def list_images() -> list[ImageStatus]:
    """Every image spec, and whether the engine has the image it describes."""
    statuses = []
    for name in spec_names():
        spec = load_spec(name)
        tag = image_tag(spec)
        found = container.find_image(tag)
        statuses.append(
            ImageStatus(
                name=name,
                python=spec.python,
                tag=tag,
                present=found is not None,
                image_id=found.id if found else None,
            )
        )
    return statuses


def ensure_image(
    name: str, *, packages: Sequence[str] = (), progress: Progress | None = None
) -> ImageRef:
    """The image ``name`` in the local engine: found, else pulled by digest, else bootstrapped.

    With ``packages`` (Debian's names), an image derived from it that adds them, made once.
    """
    say = progress or _quiet
    spec = load_spec(name)
    if packages:
        spec = with_packages(spec, packages)
    tag = image_tag(spec)
    image = container.find_image(tag)
    how = ImageSource.LOCAL
    if image is None and spec.base:
        image = _derive(spec, tag, ensure_image(spec.base, progress=say), say)
        how = ImageSource.DERIVED
    if image is None and spec.digest:
        try:
            image = _pull_and_build(spec, tag, say)
            how = ImageSource.PULLED
        except ContainerError as e:
            say(f"{name}: the pinned image cannot be had ({e}); bootstrapping it instead")
    if image is None:
        image = _bootstrap(spec, tag, say)
        how = ImageSource.BOOTSTRAPPED
    return _image_ref(spec, tag, image, how)


def with_packages(spec: ImageSpec, packages: Sequence[str]) -> ImageSpec:
    """``spec`` plus Debian ``packages``: a derived image no folder of containers/ defines (a
    CI configuration's system packages), named after its base and a digest of the packages.
    It has no packages.lock: its report says it is not pinned."""
    wanted = tuple(sorted(set(packages)))
    digest = hashlib.sha256("\n".join(wanted).encode()).hexdigest()[:8]
    name = f"{spec.name}-with-{digest}"
    return replace(
        spec,
        name=name,
        description=f"{spec.name} + {', '.join(wanted)}",
        reference="",
        digest="",
        pinned_image_id="",
        pinned_manifest_sha256="",
        directory=containers_dir() / name,
        base=spec.name,
        packages=wanted,
        python_source=None,
    )


def bootstrap_image(name: str, progress: Progress | None = None) -> ImageRef:
    """Make the image ``name`` from Debian's packages (no registry needed), even if present.

    Needs root and debootstrap; takes a minute or two, mostly downloading from the mirror.
    """
    spec = load_spec(name)
    tag = image_tag(spec)
    image = _bootstrap(spec, tag, progress or _quiet)
    return _image_ref(spec, tag, image, ImageSource.BOOTSTRAPPED)


def lock_manifest(name: str, *, progress: Progress | None = None) -> ImageRef:
    """Pin the image ``name``: write its manifest to ``packages.lock`` and its ids to image.toml.

    Run after changing a spec (or to accept a drift, e.g. a Debian point release), then commit
    ``containers/<name>/``.
    """
    ref = ensure_image(name, progress=progress)
    spec = load_spec(name)
    header = (
        f"# Debian packages of the image {name}, as dpkg-query lists them\n"
        "# (package=version, sorted). Written by rebuild.images.lock_manifest; do not edit.\n"
    )
    _write_atomically(spec.lock_path, header + _lock_body(ref.manifest))
    _write_atomically(spec.path, with_pinned(spec.path.read_text(encoding="utf-8"), ref))
    load_spec(name)
    return ImageRef(
        name=ref.name,
        tag=ref.tag,
        image_id=ref.image_id,
        how=ref.how,
        python=ref.python,
        manifest=ref.manifest,
        drift=(),
        python_source=ref.python_source,
    )


def with_pinned(text: str, ref: ImageRef) -> str:
    """``image.toml``'s text with its ``[pinned]`` table (kept last) describing ``ref``."""
    head, found, _ = text.partition("\n[pinned]\n")
    head = head if found else text.rstrip("\n") + "\n"
    return (
        f"{head}\n[pinned]\n"
        f'image_id = "{ref.image_id}"\n'
        f'manifest_sha256 = "{ref.manifest_sha256}"\n'
        f"packages = {len(ref.manifest)}\n"
    )


def _image_ref(
    spec: ImageSpec, tag: str, image: container.LocalImage, how: ImageSource
) -> ImageRef:
    manifest = image_manifest(image)
    locked = read_lock(spec)
    drift = (
        compute_drift(locked, manifest)
        if locked is not None
        else (f"{spec.lock_path} is missing: the image is not pinned",)
    )
    return ImageRef(
        name=spec.name,
        tag=tag,
        image_id=image.id,
        how=how,
        python=image.labels.get(LABEL_PYTHON, spec.python),
        manifest=manifest,
        drift=drift,
        python_source=image.labels.get(LABEL_PYTHON_SOURCE, ""),
    )


def _labels(spec: ImageSpec) -> dict[str, str]:
    return {LABEL_NAME: spec.name, LABEL_SPEC: spec_hash(spec), LABEL_PYTHON: spec.python}


def _quiet(message: str) -> None:
    del message


# ------------------------------------------------------------------------- pull (registry path)


def split_reference(reference: str) -> str:
    """The repository of a ``repository[:tag]`` reference (a registry port is not a tag)."""
    name, _, _ = reference.partition("@")
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name = name[: name.rindex(":")]
    return name


TEMPLATE = "Dockerfile"  # containers/Dockerfile: the template every image is built from
CPYTHON_TEMPLATE = "Dockerfile.cpython"  # ... and the one for images that build a CPython


def dockerfile_of(spec: ImageSpec) -> str:
    """The Dockerfile an image is built with, relative to containers/: its own, else the
    template (images are data: a folder holds only what differs)."""
    own = spec.directory / "Dockerfile"
    if own.is_file():
        return f"{spec.directory.name}/Dockerfile"
    return CPYTHON_TEMPLATE if spec.python_source is not None else TEMPLATE


def _pull_and_build(spec: ImageSpec, tag: str, say: Progress) -> container.LocalImage:
    """Pull the base pinned by digest, then install the locked packages on it (Dockerfile)."""
    repository = split_reference(spec.reference)
    say(f"{spec.name}: pulling {repository}@{spec.digest}…")
    base = container.pull_image(repository, spec.digest)
    # The build starts FROM a local tag of exactly the pulled image, so it never asks the
    # registry again and cannot pick up whatever the reference points to by then.
    base_tag = f"rebuild/{spec.name}-base:{spec.digest.removeprefix('sha256:')[:12]}"
    container.tag_image(base.id, base_tag)
    locked = read_lock(spec)
    packages = list(locked) if locked is not None else list(spec.include)
    say(f"{spec.name}: installing {len(packages)} Debian packages on it…")
    image = container.build_image(
        spec.directory.parent,
        tag,
        dockerfile=dockerfile_of(spec),
        buildargs={"BASE": base_tag, "PACKAGES": " ".join(packages)},
        # Blank the manifest labels a base made by rebuild would pass on: they describe the base.
        labels={**_labels(spec), LABEL_MANIFEST: "", LABEL_MANIFEST_SHA256: ""},
        progress=say,
    )
    probe = _probe(image.id, spec.interpreter)
    _check_python(spec, probe)
    _write_atomically(_manifest_cache(image.id), _lock_body(probe.manifest))
    return image


def _derive(spec: ImageSpec, tag: str, base: ImageRef, say: Progress) -> container.LocalImage:
    """Build a derived image FROM its local base: its packages with apt-get, then its CPython
    from source when it has an ``[interpreter]``."""
    locked = read_lock(spec)
    wanted = set(spec.packages)
    # The lock pins this image's own packages at their locked versions; the base's stay as is.
    pinned = {e.partition("=")[0]: e for e in locked or () if e.partition("=")[0] in wanted}
    packages = sorted(pinned.get(name, name) for name in wanted)
    say(f"{spec.name}: installing {', '.join(packages)} on {base.tag}…")
    started = time.monotonic()
    labels = {**_labels(spec), LABEL_MANIFEST: "", LABEL_MANIFEST_SHA256: ""}
    buildargs = {"BASE": base.tag, "PACKAGES": " ".join(packages)}
    with tempfile.TemporaryDirectory(prefix=f"{spec.name}-", dir=_scratch()) as staging:
        context, dockerfile = spec.directory.parent, dockerfile_of(spec)
        source = spec.python_source
        if source is not None:
            # Only the Dockerfile and the checked tarball go to the engine.
            context = Path(staging)
            tarball = fetch_python_source(source, say)
            os.link(tarball, context / source.filename)
            shutil.copyfile(spec.directory.parent / dockerfile, context / "Dockerfile")
            dockerfile = "Dockerfile"
            buildargs |= {
                "PYTHON_TARBALL": source.filename,
                "CONFIGURE": " ".join(source.configure),
            }
            labels[LABEL_PYTHON_SOURCE] = f"{source.url}#sha256={source.sha256}"
            say(f"{spec.name}: building CPython {source.version} from source (minutes)")
        image = container.build_image(
            context,
            tag,
            dockerfile=dockerfile,
            buildargs=buildargs,
            labels=labels,
            progress=say,
        )
    probe = _probe(image.id, spec.interpreter)
    _check_python(spec, probe)
    _write_atomically(_manifest_cache(image.id), _lock_body(probe.manifest))
    say(f"{spec.name}: ready in {time.monotonic() - started:.0f} s, {image.id[:19]}")
    return image


def fetch_python_source(source: PythonSource, say: Progress) -> Path:
    """The CPython tarball an ``[interpreter]`` names, downloaded once and sha256-checked."""
    from rebuild.fetch import Cache
    from rebuild.models import DistFile, DistKind

    wanted = DistFile(
        filename=source.filename, url=source.url, sha256=source.sha256, kind=DistKind.SDIST
    )
    cache = Cache(cache_dir())
    if not cache.has(wanted):
        say(f"downloading {source.url}…")
    return cache.fetch(wanted).path


def _scratch() -> Path:
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    return root


# ------------------------------------------------------------------------ bootstrap (offline path)


def _bootstrap(spec: ImageSpec, tag: str, say: Progress) -> container.LocalImage:
    debootstrap = shutil.which("debootstrap") or shutil.which("debootstrap", path="/usr/sbin")
    if debootstrap is None:
        raise ContainerError(
            "debootstrap is not installed; it makes build images without a registry",
            hint="run scripts/ensure-docker.sh (it installs it) or `apt-get install debootstrap`",
        )
    if os.geteuid() != 0:
        raise ContainerError(
            f"bootstrapping the image {spec.name} needs root (debootstrap makes device nodes "
            "and chroots)",
            hint="run it once as root; the image then stays in the engine for everyone",
        )
    work_root = cache_dir()
    work_root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"{spec.name}-", dir=work_root))
    try:
        rootfs = work / "rootfs"
        started = time.monotonic()
        say(
            f"{spec.name}: bootstrapping Debian {spec.suite} ({spec.variant}) with "
            f"{', '.join(spec.include)} from {spec.mirror}…"
        )
        _run(
            [
                debootstrap,
                f"--variant={spec.variant}",
                f"--include={','.join(spec.include)}",
                spec.suite,
                str(rootfs),
                spec.mirror,
            ],
            what="debootstrap",
            hint=f"is {spec.mirror} reachable? the log above names the package that failed",
        )
        _trim(rootfs)
        manifest = _parse_dpkg_query(
            _run(["chroot", str(rootfs), *_DPKG_QUERY], what="dpkg-query in the new root")
        )
        say(f"{spec.name}: {len(manifest)} packages in {time.monotonic() - started:.0f} s")
        say(f"{spec.name}: importing into the engine as {tag}…")
        image = _import(rootfs, tag, spec, manifest)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    probe = _probe(image.id, spec.interpreter)
    _check_python(spec, probe)
    if probe.manifest != manifest:
        raise ContainerError(
            f"the imported image {tag} lists other packages than its root filesystem did",
            hint="remove it (docker rmi) and bootstrap again; check the engine's free space",
        )
    say(f"{spec.name}: ready, {image.id[:19]}")
    return image


def _trim(rootfs: Path) -> None:
    """Drop what debootstrap downloaded to install; the image needs only what it installed."""
    for pattern in ("var/cache/apt/archives/*.deb", "var/lib/apt/lists/*"):
        for path in rootfs.glob(pattern):
            if path.is_file():
                path.unlink()


def _import(
    rootfs: Path, tag: str, spec: ImageSpec, manifest: tuple[str, ...]
) -> container.LocalImage:
    labels = {
        **_labels(spec),
        LABEL_MANIFEST: " ".join(manifest),
        LABEL_MANIFEST_SHA256: manifest_sha256(manifest),
    }
    changes = [f"ENV PATH={_IMAGE_PATH}", "ENV LANG=C.UTF-8"]
    changes += [f'LABEL {key}="{value}"' for key, value in labels.items()]
    tar = subprocess.Popen(
        ["tar", "-C", str(rootfs), "--numeric-owner", "--xattrs", "--sort=name", "-c", "."],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        image = container.import_rootfs(_chunks(cast(IO[bytes], tar.stdout)), tag, changes=changes)
    except BaseException:
        tar.kill()
        tar.wait()
        raise
    _, err = tar.communicate()
    if tar.returncode != 0:
        container.remove_image(tag)
        raise ContainerError(
            f"tar of the bootstrapped root failed: {err.decode(errors='replace')[-2000:]}",
            hint="check free space under the cache directory",
        )
    return image


def _chunks(stream: IO[bytes], size: int = 1 << 20) -> Iterator[bytes]:
    while chunk := stream.read(size):
        yield chunk


def _check_python(spec: ImageSpec, probe: _Probe) -> None:
    if probe.python != spec.python:
        raise ContainerError(
            f"the image {spec.name} runs Python {probe.python}, its spec says {spec.python}",
            hint=f"fix python or the package list in {spec.path}",
        )


def _run(argv: list[str], *, what: str, hint: str | None = None) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
    except OSError as e:
        raise ContainerError(f"{what} could not start: {e}", hint=hint) from e
    if done.returncode != 0:
        output = (done.stdout + done.stderr)[-3000:]
        raise ContainerError(f"{what} failed (exit {done.returncode}):\n{output}", hint=hint)
    return done.stdout


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        # mkstemp makes the file private; a lock file in the repository is for everyone.
        Path(temp).chmod(0o644)
        Path(temp).replace(path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
