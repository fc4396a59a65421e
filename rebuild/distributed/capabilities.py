"""What a worker can build, said as the queues it consumes; and the queue each release needs.

A queue is named ``rebuild.<arch>.cp<XY>.<image>``: the machine's architecture (``any`` for a
pure wheel, which any architecture rebuilds), the Python of the image and the image itself. A
worker consumes, for each build image its engine has, the queue of its own architecture and the
``any`` one; a release goes to the queue of the image its plan names. A release no worker
consumes the queue of is known at once, from the queues the workers answer with (Celery's
``inspect().active_queues()``), and fails with that reason rather than waiting.
"""

from __future__ import annotations

import platform
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from packaging.tags import parse_tag
from packaging.version import Version

from rebuild.errors import ContainerError, DistributedError, RebuildError
from rebuild.models import Plan

PREFIX = "rebuild"
ANY_ARCH = "any"
_ARCH = re.compile(r"(x86_64|aarch64|arm64|i686|ppc64le|ppc64|s390x|armv7l|riscv64|amd64)$")


def queue_name(arch: str, python: str, image: str) -> str:
    return f"{PREFIX}.{arch}.cp{python.replace('.', '')}.{image}"


def wheel_arch(wheel_tags: Sequence[str]) -> str:
    """The architecture a wheel is for: ``any`` for a pure one, else its platforms' machine."""
    platforms = sorted({t.platform for text in wheel_tags for t in parse_tag(text)})
    if not platforms or platforms == ["any"]:
        return ANY_ARCH
    for name in platforms:
        match = _ARCH.search(name)
        if match:
            return {"amd64": "x86_64", "arm64": "aarch64"}.get(match[1], match[1])
    return platforms[0]


def queue_for(plan: Plan) -> str:
    """The queue of the workers that can build what ``plan`` says."""
    return queue_name(wheel_arch(plan.wheel_tags), plan.python, plan.image)


@dataclass(frozen=True)
class Capabilities:
    """A build machine: its architecture and the build images (name, Python) its engine has."""

    arch: str
    images: tuple[tuple[str, str], ...]

    @property
    def pythons(self) -> tuple[str, ...]:
        return tuple(sorted({python for _, python in self.images}, key=Version))

    @property
    def queues(self) -> tuple[str, ...]:
        return tuple(
            queue_name(arch, python, image)
            for image, python in self.images
            for arch in (self.arch, ANY_ARCH)
        )

    def describe(self) -> str:
        images = ", ".join(f"{name} (Python {python})" for name, python in self.images)
        return f"{self.arch}; Python {', '.join(self.pythons)}; images {images}"


def this_machine(only: Collection[str] = ()) -> Capabilities:
    """What this machine can build: the images present in its engine (``only`` those, when
    named). A machine without an engine, or without any image, cannot be a worker."""
    from rebuild import container, images

    try:
        container.engine()
        present = [s for s in images.list_images() if s.present]
    except ContainerError as e:
        raise DistributedError(
            f"this machine cannot be a worker: {e.message}",
            hint=f"a worker builds in containers: {e.hint}" if e.hint else None,
        ) from e
    finally:
        # The pool's processes are forked from this one: each must open its own connection.
        container.close_clients()
    known = {s.name for s in images.list_images()} if only else set()
    unknown = sorted(set(only) - known)
    if unknown:
        raise DistributedError(
            f"no build image is called {', '.join(unknown)}",
            hint="`rebuild image list` names them",
        )
    chosen = [s for s in present if not only or s.name in only]
    if not chosen:
        missing = ", ".join(sorted(only)) if only else "any"
        raise DistributedError(
            f"this machine cannot be a worker: its engine has no build image ({missing})",
            hint="make them first: `rebuild image ensure --all` (or NAME), then start the worker",
        )
    return Capabilities(platform.machine(), tuple((s.name, s.python) for s in chosen))


def unroutable(queue: str, live: Collection[str], what: str) -> RebuildError | None:
    """Why nobody can build ``what`` (sent to ``queue``), given the queues workers consume."""
    if queue in live:
        return None
    _, arch, python, image = queue.split(".", 3)
    consumed = ", ".join(sorted(live)) or "none"
    return DistributedError(
        f"no worker can build {what}: it needs the image {image} (Python "
        f"{python.removeprefix('cp')[:1]}.{python.removeprefix('cp')[1:]}, arch {arch}); "
        f"the workers answering consume: {consumed}",
        hint=f"start a worker where the engine has {image} (`rebuild image ensure {image}`, "
        "then `rebuild worker --broker …`)",
    )
