"""The one wrapper around the Docker engine: images, sandboxed runs, limits and cleanup.

Every call into the (untyped) docker SDK lives here, behind typed functions; the rest of the
package sees :class:`SandboxSpec`, :class:`RunResult` and :class:`LocalImage`, and only
:class:`~rebuild.errors.ContainerError` when the engine misbehaves.

A sandboxed run has no network, no capabilities, no privilege escalation, a read-only root
filesystem, bounded memory, pids and wall-clock time, and its container is removed whatever
happens (normal exit, error, timeout, Ctrl-C) unless the caller asks to keep it for debugging.
Every container carries the label ``org.rebuild=1`` so that a killed run's leftovers can be found.
"""

from __future__ import annotations

import codecs
import collections
import contextlib
import os
import queue
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import docker
import docker.errors
import docker.types
import requests

from rebuild.errors import ContainerError

LABEL = "org.rebuild"
LABELS: Mapping[str, str] = MappingProxyType({LABEL: "1"})
RUN_LABEL = "org.rebuild.run"  # one run's container, found even if its id never came back
# Who made the container: "<host> <pid> <start time>". A container whose maker is gone from this
# host (a kill -9) is a leftover the next run removes; the start time tells a reused pid apart.
OWNER_LABEL = "org.rebuild.owner"
# A job's own tag, from $REBUILD_SESSION when set (a CI job id, a test session): the job can then
# find its containers among those of other runs sharing the engine.
SESSION_LABEL = "org.rebuild.session"
SESSION_VARIABLE = "REBUILD_SESSION"
LOG_CAP = 2 * 1024 * 1024
"""Bytes of build log kept in memory; the tail is kept, because that is where a failure shows."""

_ENGINE_HINT = (
    "start one: `sudo dockerd &` or `sudo systemctl start docker`; or run scripts/ensure-docker.sh"
)
_DEFAULT_SOCKET = "unix:///var/run/docker.sock"
# Importing a rootfs or building an image can take minutes; the SDK's 60 s default is too short.
_API_TIMEOUT = 600
_POLL = 0.1
# Paths inside the container, on tmpfs: the root filesystem is read-only and build tools want a
# writable home and temp dir.
_SCRATCH = "/tmp"  # noqa: S108 - a container path, not the host's
_HOME = "/tmp/home"  # noqa: S108 - a container path, not the host's

# Transport failures (engine gone, socket refused) surface from requests, not from the SDK.
_ENGINE_FAILURES = (docker.errors.DockerException, requests.exceptions.RequestException)

_clients: dict[tuple[str | None, ...], Any] = {}
_clients_lock = threading.Lock()


def engine_address() -> str:
    """Where the engine is looked for: ``DOCKER_HOST`` or the default socket."""
    return os.environ.get("DOCKER_HOST") or _DEFAULT_SOCKET


def engine() -> docker.DockerClient:
    """A client for the engine ``DOCKER_HOST`` (or the default socket) names, known to answer.

    Clients are shared per environment so that repeated calls reuse one connection pool.
    """
    key = tuple(os.environ.get(k) for k in ("DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"))
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = _connect()
            _clients[key] = client
    return client


def close_clients() -> None:
    """Close the shared clients: before this process forks workers, which must each open their
    own connection (a socket shared across a fork interleaves two processes' requests)."""
    with _clients_lock:
        for client in _clients.values():
            with contextlib.suppress(*_ENGINE_FAILURES, OSError):
                client.close()
        _clients.clear()


def _connect() -> docker.DockerClient:
    where = engine_address()
    if where.startswith("unix://"):
        # Probe the socket first: the SDK leaks the socket of a failed connect, and "no engine
        # here" is the common failure.
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                probe.settimeout(5)
                probe.connect(where.removeprefix("unix://"))
        except OSError as e:
            raise ContainerError(f"no Docker engine answers at {where}", hint=_ENGINE_HINT) from e
    client = None
    try:
        client = docker.from_env(timeout=_API_TIMEOUT)
        client.ping()
    except _ENGINE_FAILURES as e:
        if client is not None:
            client.close()
        raise ContainerError(f"no Docker engine answers at {where}", hint=_ENGINE_HINT) from e
    return client


# --------------------------------------------------------------------------------------- images


@dataclass(frozen=True)
class LocalImage:
    """An image present in the local engine."""

    id: str
    tags: tuple[str, ...]
    labels: Mapping[str, str]


def _local_image(image: Any) -> LocalImage:
    labels = (image.attrs.get("Config") or {}).get("Labels") or {}
    return LocalImage(
        id=str(image.id), tags=tuple(image.tags), labels=MappingProxyType(dict(labels))
    )


def find_image(ref: str) -> LocalImage | None:
    """The local image ``ref`` (a tag or an id) names, or None if the engine has none."""
    try:
        return _local_image(engine().images.get(ref))
    except docker.errors.ImageNotFound:
        return None
    except _ENGINE_FAILURES as e:
        raise ContainerError(f"cannot inspect image {ref}: {e}", hint=_ENGINE_HINT) from e


def import_rootfs(
    tar_stream: Iterable[bytes], tag: str, *, changes: Iterable[str] = ()
) -> LocalImage:
    """Import a root filesystem tarball (streamed in chunks) as the image ``tag``.

    ``changes`` are Dockerfile instructions applied to the image config (``LABEL``, ``ENV``).
    """
    repository, _, version = tag.rpartition(":")
    api = engine().api
    try:
        result = api.import_image(
            src=iter(tar_stream),
            repository=repository,
            tag=version,
            changes=list(changes),
            stream_src=True,
        )
    except _ENGINE_FAILURES as e:
        raise ContainerError(
            f"the engine refused to import {tag}: {e}",
            hint="check the engine's log and free disk space (docker system df)",
        ) from e
    image = find_image(tag)
    if image is None:
        raise ContainerError(
            f"the engine did not create {tag} on import: {str(result)[-500:]}",
            hint="check the engine's log (/var/log/rebuild-dockerd.log if scripts/ensure-docker.sh "
            "started it)",
        )
    return image


def pull_image(repository: str, digest: str) -> LocalImage:
    """Pull ``repository@digest`` from its registry (never a moving tag)."""
    try:
        image = engine().images.pull(repository, tag=digest)
    except _ENGINE_FAILURES as e:
        raise ContainerError(
            f"cannot pull {repository}@{digest}: {e}",
            hint="no registry answers from this machine? the image can be bootstrapped offline "
            "instead (leave its digest empty or let the bootstrap fallback run)",
        ) from e
    return _local_image(image)


def tag_image(image_id: str, tag: str) -> None:
    """Give a local image one more tag."""
    repository, _, version = tag.rpartition(":")
    try:
        engine().images.get(image_id).tag(repository, tag=version)
    except _ENGINE_FAILURES as e:
        raise ContainerError(f"cannot tag {image_id} as {tag}: {e}", hint=_ENGINE_HINT) from e


def build_image(
    context: Path,
    tag: str,
    *,
    buildargs: Mapping[str, str],
    labels: Mapping[str, str],
    dockerfile: str = "Dockerfile",
    progress: Callable[[str], None] | None = None,
) -> LocalImage:
    """Build ``dockerfile`` (relative to ``context``) as ``tag``. The build may use the network
    (apt-get). Its output reaches ``progress`` line by line as the engine sends it: an image
    that compiles an interpreter takes minutes, and a silent wait looks like a hang."""
    tail: collections.deque[str] = collections.deque(maxlen=80)
    try:
        chunks = engine().api.build(
            path=str(context),
            dockerfile=dockerfile,
            tag=tag,
            buildargs=dict(buildargs),
            labels=dict(labels),
            rm=True,
            forcerm=True,
            pull=False,
            decode=True,
        )
        for chunk in chunks:
            if "error" in chunk:
                raise ContainerError(
                    f"building {tag} failed: {chunk['error']}\n" + "".join(tail)[-4000:],
                    hint="the Debian mirror must be reachable from containers and still serve "
                    "the locked versions (after a point release, old versions live only on "
                    "snapshot.debian.org)",
                )
            text = str(chunk.get("stream", ""))
            if text:
                tail.append(text)
                line = text.rstrip()
                if line and progress is not None:
                    progress(line)
        return _local_image(engine().images.get(tag))
    except _ENGINE_FAILURES as e:
        raise ContainerError(f"building {tag} failed: {e}", hint=_ENGINE_HINT) from e


def remove_image(ref: str) -> None:
    """Remove a local image tag (the image goes when its last tag does); absent is fine."""
    try:
        engine().images.remove(ref, noprune=False)
    except docker.errors.ImageNotFound:
        return
    except _ENGINE_FAILURES as e:
        raise ContainerError(f"cannot remove image {ref}: {e}", hint=_ENGINE_HINT) from e


# ------------------------------------------------------------------------------------------ run


@dataclass(frozen=True)
class SandboxSpec:
    """What to run in a sandbox and within which limits.

    ``read_only_mounts`` maps host paths (files or directories) to container paths;
    ``output_mount`` is the one writable bind mount, (host path, container path). The user
    defaults to ``nobody``; ``memory`` takes the engine's units ("4g", "512m").
    """

    image: str
    command: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    workdir: str = _SCRATCH
    read_only_mounts: Mapping[str, str] = field(default_factory=dict)
    output_mount: tuple[str, str] | None = None
    user: str = "65534:65534"
    memory: str = "4g"
    pids_limit: int = 512
    timeout_s: float = 3600.0
    cpus: float | None = None
    scratch_size: str = "4g"
    """Size of the tmpfs at /tmp (build scratch and $HOME); it counts against memory."""
    writable_dirs: tuple[str, ...] = ()
    """More empty tmpfs directories the user owns, e.g. a source path upstream built in."""


@dataclass(frozen=True)
class RunResult:
    """How a sandboxed run ended. ``log`` is stdout and stderr interleaved, its tail capped."""

    exit_code: int
    timed_out: bool
    duration: float
    log: str
    container_id: str


_END = object()


def run_sandboxed(
    spec: SandboxSpec,
    *,
    on_log: Callable[[str], None] | None = None,
    keep: bool = False,
) -> RunResult:
    """Run ``spec.command`` in a fresh hermetic container and wait for it, or for the timeout.

    ``on_log`` receives each output line as it comes, in the calling thread, so an exception it
    raises (KeyboardInterrupt included) stops the run. The container is removed on the way out
    whatever happens, unless ``keep`` (a debugging switch) is set.
    """
    _check_mounts(spec)
    client = engine()
    _sweep_once()
    run_id = uuid.uuid4().hex
    try:
        container = client.containers.create(**_create_args(spec, run_id, auto_remove=not keep))
    except BaseException as e:
        # Ctrl-C (or a lost response) can come after the engine made the container, before its
        # id came back: find it by this run's label, so that none is left behind.
        _remove_run(client, run_id)
        if isinstance(e, docker.errors.ImageNotFound):
            raise ContainerError(
                f"image {spec.image} is not in the local engine",
                hint="make it first: rebuild.images.ensure_image(<name>) bootstraps or pulls it",
            ) from e
        if isinstance(e, _ENGINE_FAILURES):
            raise ContainerError(
                f"cannot create a container from {spec.image}: {e}", hint=_ENGINE_HINT
            ) from e
        raise
    stream: Any = None
    reader: threading.Thread | None = None
    try:
        lines: queue.Queue[object] = queue.Queue()
        tail = _Tail(LOG_CAP)
        # stdout and stderr each have their own: a line of one never runs into the other's.
        splitters = (_LineSplitter(), _LineSplitter())
        timed_out = False
        started = time.monotonic()
        # With auto_remove the engine deletes the container as soon as it exits, so its exit
        # status is asked for before it starts (as `docker run --rm` does).
        exited = _Exit(container)
        try:
            # Attached before it starts, as `docker run --rm` is: the engine removes the
            # container as soon as it exits, and a log stream opened after start can be cut
            # short by that removal; an attached stream gets every byte the build wrote.
            stream = container.attach(stdout=True, stderr=True, stream=True, logs=True, demux=True)
            container.start()
        except _ENGINE_FAILURES as e:
            raise ContainerError(
                f"cannot start a container from {spec.image}: {e}", hint=_ENGINE_HINT
            ) from e
        reader = threading.Thread(
            target=_read_logs, args=(stream, splitters, lines), name="rebuild-logs", daemon=True
        )
        reader.start()
        deadline = started + spec.timeout_s
        # The stream ends when the container exits; the deadline is checked between lines.
        while True:
            try:
                item = lines.get(timeout=_POLL)
            except queue.Empty:
                if time.monotonic() >= deadline:
                    timed_out = True
                    _kill(container)
                    break
                continue
            if item is _END:
                break
            if isinstance(item, BaseException):
                raise ContainerError(
                    f"lost the log stream of container {container.short_id}: {item}",
                    hint=_ENGINE_HINT,
                ) from item
            line = str(item)
            tail.add(line)
            if on_log is not None:
                on_log(line)
        exit_code = exited.code()
        duration = time.monotonic() - started
        reader.join(timeout=5)
        late: list[str] = []
        # Lines that arrived between the deadline and the kill still belong to the log.
        while not lines.empty():
            item = lines.get_nowait()
            if isinstance(item, str):
                late.append(item)
        for line in late:
            tail.add(line)
            if on_log is not None:
                on_log(line)
        return RunResult(
            exit_code=exit_code,
            timed_out=timed_out,
            duration=duration,
            log=tail.text(),
            container_id=str(container.id),
        )
    finally:
        if not keep:
            _remove(container, quiet=sys.exc_info()[0] is not None)
        if stream is not None:
            with contextlib.suppress(OSError, *_ENGINE_FAILURES):
                stream.close()  # shuts the socket down: a reader blocked on it wakes
        if reader is not None:
            reader.join(timeout=5)
        if stream is not None:
            _close_socket(stream)


def _close_socket(stream: Any) -> None:
    """Close the socket under an attached stream, once nothing reads it any more.

    The SDK's ``close()`` only shuts the socket down; the socket object stays open until it is
    collected, which Python reports as a leak.
    """
    response = getattr(stream, "_response", None)
    raw = getattr(getattr(getattr(response, "raw", None), "_fp", None), "fp", None)
    for closable in (getattr(raw, "raw", None), raw, response):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            if closable is not None:
                closable.close()


def _remove_run(client: Any, run_id: str) -> None:
    """Remove the container of one run, if the engine made it (quietly: an error is on its way)."""
    with contextlib.suppress(*_ENGINE_FAILURES):
        for container in client.containers.list(
            all=True, sparse=True, filters={"label": f"{RUN_LABEL}={run_id}"}
        ):
            container.remove(force=True)


def _create_args(spec: SandboxSpec, run_id: str, *, auto_remove: bool) -> dict[str, Any]:
    mounts = [
        docker.types.Mount(
            target=target, source=str(Path(source).resolve()), type="bind", read_only=True
        )
        for source, target in sorted(spec.read_only_mounts.items(), key=lambda m: m[1])
    ]
    if spec.output_mount is not None:
        source, target = spec.output_mount
        mounts.append(
            docker.types.Mount(
                target=target, source=str(Path(source).resolve()), type="bind", read_only=False
            )
        )
    env = {"HOME": _HOME, "TMPDIR": _SCRATCH, **spec.env}
    # exec: builds run the compilers and scripts they put in their scratch space.
    scratch = f"rw,exec,nosuid,nodev,size={spec.scratch_size}"
    uid, _, gid = spec.user.partition(":")
    tmpfs = {
        _SCRATCH: f"{scratch},mode=1777",
        _HOME: f"{scratch},mode=0700,uid={uid},gid={gid or uid}",
        **dict.fromkeys(spec.writable_dirs, f"{scratch},mode=0755,uid={uid},gid={gid or uid}"),
    }
    args: dict[str, Any] = {
        "image": spec.image,
        "command": list(spec.command),
        "environment": env,
        "working_dir": spec.workdir,
        "user": spec.user,
        "network_mode": "none",
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "read_only": True,
        "tmpfs": tmpfs,
        "mounts": mounts,
        "mem_limit": spec.memory,
        "memswap_limit": spec.memory,
        "pids_limit": spec.pids_limit,
        "labels": {**LABELS, RUN_LABEL: run_id, OWNER_LABEL: _owner(), **_session()},
        # The engine removes the container when it stops, even if this process is killed -9;
        # the finally of run_sandboxed still removes it on every other way out.
        "auto_remove": auto_remove,
        # The daemon's default log driver may keep nothing; logs() needs json-file. The size cap
        # keeps a runaway build from filling the host's disk.
        "log_config": docker.types.LogConfig(type="json-file", config={"max-size": "64m"}),
        "detach": True,
    }
    if spec.cpus is not None:
        args["nano_cpus"] = int(spec.cpus * 1e9)
    return args


def _check_mounts(spec: SandboxSpec) -> None:
    """Refuse missing mount sources; make the output directory writable by the sandbox's user."""
    sources = [*spec.read_only_mounts, *([spec.output_mount[0]] if spec.output_mount else [])]
    for source in sources:
        if not Path(source).exists():
            raise ContainerError(
                f"mount source {source} does not exist",
                hint="create it before the run; a bind mount needs an existing host path",
            )
    if spec.output_mount is None:
        return
    host = Path(spec.output_mount[0])
    uid_text, _, gid_text = spec.user.partition(":")
    if not uid_text.isdigit():
        return
    uid = int(uid_text)
    gid = int(gid_text) if gid_text.isdigit() else uid
    stat = host.stat()
    if stat.st_uid == uid or stat.st_mode & 0o002:
        return
    if os.geteuid() == 0:
        # The sandbox runs as an unprivileged uid; hand it the one directory it may write.
        os.chown(host, uid, gid)
        return
    raise ContainerError(
        f"the output directory {host} is not writable by the sandbox's user {spec.user}",
        hint=f"chown it to {uid}:{gid} or make it world-writable inside a private parent dir",
    )


class _LineSplitter:
    """Decodes a byte stream into lines, remembering how many bytes it has seen."""

    # A progress bar that never prints a newline must not grow a line without bound.
    _LONGEST = 64 * 1024

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = ""
        self.received = 0

    def feed(self, chunk: bytes) -> list[str]:
        self.received += len(chunk)
        self._pending += self._decoder.decode(chunk)
        *complete, self._pending = self._pending.split("\n")
        if len(self._pending) > self._LONGEST:
            complete.append(self._pending)
            self._pending = ""
        return complete

    def finish(self) -> list[str]:
        rest = self._pending + self._decoder.decode(b"", final=True)
        self._pending = ""
        return [rest] if rest else []


def _read_logs(
    stream: Iterator[tuple[bytes | None, bytes | None]],
    splitters: tuple[_LineSplitter, _LineSplitter],
    lines: queue.Queue[object],
) -> None:
    """Feed complete output lines of the attached (stdout, stderr) stream into ``lines``, then
    each pipe's unterminated last line; ends with _END, or with the exception."""
    try:
        for pair in stream:
            for chunk, splitter in zip(pair, splitters, strict=True):
                for line in splitter.feed(chunk) if chunk else ():
                    lines.put(line)
        for splitter in splitters:
            for line in splitter.finish():
                lines.put(line)
        lines.put(_END)
    except Exception as e:  # noqa: BLE001 - the main thread decides; a thread must not die loud
        lines.put(e)


class _Tail:
    """The last ``cap`` characters of a log, kept in bounded memory."""

    def __init__(self, cap: int) -> None:
        self._cap = cap
        self._parts: collections.deque[str] = collections.deque()
        self._size = 0
        self._dropped = False

    def add(self, line: str) -> None:
        self._parts.append(line + "\n")
        self._size += len(line) + 1
        while self._size > self._cap and len(self._parts) > 1:
            self._size -= len(self._parts.popleft())
            self._dropped = True

    def text(self) -> str:
        text = "".join(self._parts)
        if len(text) > self._cap:
            text, self._dropped = text[-self._cap :], True
        return ("[… earlier output dropped …]\n" if self._dropped else "") + text


def _kill(container: Any) -> None:
    try:
        container.kill()
    except docker.errors.APIError as e:
        # Exiting on its own between the deadline and the kill is not an error.
        if e.status_code != 409:
            raise ContainerError(
                f"cannot kill container {container.short_id}: {e}", hint=_ENGINE_HINT
            ) from e


class _Exit:
    """A container's exit status, asked for before it starts (``condition="next-exit"``).

    An auto-removed container is gone once it exits: a wait that started afterwards would find
    nothing. The wait runs in a thread from before the start until the exit.
    """

    def __init__(self, container: Any) -> None:
        self._container = container
        self._status: dict[str, Any] | BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="rebuild-wait", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._status = self._container.wait(condition="next-exit")
        except Exception as e:  # noqa: BLE001 - reported by code(), in the calling thread
            self._status = e

    def code(self, timeout: float = 60) -> int:
        self._thread.join(timeout)
        status = self._status
        if self._thread.is_alive() or isinstance(status, BaseException) or status is None:
            why = status if isinstance(status, BaseException) else "no answer"
            raise ContainerError(
                f"container {self._container.short_id} did not report its exit: {why}",
                hint=_ENGINE_HINT,
            )
        return int(status.get("StatusCode", -1))


REMOVAL_WAIT_S = 30.0  # how long a removal the engine has begun (auto_remove) may take


def _wait_gone(container: Any) -> None:
    """Return once the engine no longer lists ``container``: its removal has finished.

    With auto_remove the engine deletes an exited container on its own, a moment later; until
    it has, the container still exists (and holds its image), so a caller that goes on at once
    would leave it behind for a while or fail to remove the image.
    """
    deadline = time.monotonic() + REMOVAL_WAIT_S
    while time.monotonic() < deadline:
        try:
            container.reload()
        except docker.errors.NotFound:
            return
        except _ENGINE_FAILURES:
            return
        time.sleep(0.05)


def _remove(container: Any, *, quiet: bool) -> None:
    try:
        container.remove(force=True)
    except docker.errors.NotFound:
        return
    except _ENGINE_FAILURES as e:
        if isinstance(e, docker.errors.APIError) and e.status_code == 409:
            _wait_gone(container)  # the engine is already removing it (auto_remove)
            return
        if quiet:
            # Another exception is on its way out; it matters more, and remove_leftovers()
            # finds this container later by its label.
            return
        raise ContainerError(
            f"cannot remove container {container.short_id}: {e}",
            hint="remove it with `docker rm -f` or rebuild.container.remove_leftovers()",
        ) from e


# -------------------------------------------------------------------------------------- cleanup


def leftover_containers() -> list[str]:
    """Ids of containers rebuild made and did not remove (a killed run, a ``keep`` run)."""
    try:
        # Sparse: the list alone, no inspect of each one (an auto-removed container would be
        # gone between the two).
        found = engine().containers.list(all=True, sparse=True, filters={"label": f"{LABEL}=1"})
    except _ENGINE_FAILURES as e:
        raise ContainerError(f"cannot list containers: {e}", hint=_ENGINE_HINT) from e
    return sorted(str(c.id) for c in found)


def remove_leftovers() -> int:
    """Remove every container rebuild left behind; returns how many went."""
    removed = 0
    for container_id in leftover_containers():
        try:
            engine().containers.get(container_id).remove(force=True)
        except docker.errors.NotFound:
            continue
        except _ENGINE_FAILURES as e:
            raise ContainerError(
                f"cannot remove container {container_id[:12]}: {e}", hint=_ENGINE_HINT
            ) from e
        removed += 1
    return removed


def _start_time(pid: int) -> str | None:
    """The start time of process ``pid`` (clock ticks since boot), or None if there is none."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces: count from its end.
    fields = stat[stat.rfind(")") + 2 :].split()
    return fields[19] if len(fields) > 19 else None


def owner_of(pid: int) -> str:
    """The owner label a container made by process ``pid`` carries."""
    return f"{socket.gethostname()} {pid} {_start_time(pid) or '?'}"


def _owner() -> str:
    return owner_of(os.getpid())


def _orphaned(owner: str) -> bool:
    """Whether the process that made a container with this owner label is gone from this host."""
    host, _, rest = owner.partition(" ")
    pid_text, _, started = rest.partition(" ")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False  # another host's run, or an unlabelled one: not ours to judge
    alive = _start_time(int(pid_text))
    return alive is None or (started != "?" and alive != started)


def _session() -> dict[str, str]:
    session = os.environ.get(SESSION_VARIABLE, "")
    return {SESSION_LABEL: session} if session else {}


def orphaned_containers(owner: str | None = None) -> list[str]:
    """Ids of rebuild's containers whose maker is no longer running on this host (of one
    ``owner`` label value only, when given)."""
    wanted = f"{OWNER_LABEL}={owner}" if owner is not None else OWNER_LABEL
    try:
        found = engine().containers.list(
            all=True, sparse=True, filters={"label": [f"{LABEL}=1", wanted]}
        )
    except _ENGINE_FAILURES as e:
        raise ContainerError(f"cannot list containers: {e}", hint=_ENGINE_HINT) from e
    return sorted(
        str(c.id)
        for c in found
        if _orphaned(str((c.attrs.get("Labels") or {}).get(OWNER_LABEL, "")))
    )


def sweep_orphans(owner: str | None = None) -> int:
    """Remove the containers of runs whose process is gone (killed -9); returns how many went.

    A live run's containers, a ``keep`` run's while its process lives, and other hosts' are left.
    ``owner`` narrows the sweep to one process's containers (a test's own).
    """
    removed = 0
    for container_id in orphaned_containers(owner):
        try:
            engine().containers.get(container_id).remove(force=True)
        except docker.errors.NotFound:
            continue
        except docker.errors.APIError as e:
            if e.status_code == 409:
                continue  # already being removed
            raise ContainerError(
                f"cannot remove container {container_id[:12]}: {e}", hint=_ENGINE_HINT
            ) from e
        except _ENGINE_FAILURES as e:
            raise ContainerError(
                f"cannot remove container {container_id[:12]}: {e}", hint=_ENGINE_HINT
            ) from e
        removed += 1
    return removed


_swept = threading.Event()
_sweep_lock = threading.Lock()


def _sweep_once() -> None:
    """The first run of a process removes what killed runs left; quietly: it is housekeeping."""
    if _swept.is_set():
        return
    with _sweep_lock:
        if _swept.is_set():
            return
        with contextlib.suppress(ContainerError):
            sweep_orphans()
        _swept.set()
