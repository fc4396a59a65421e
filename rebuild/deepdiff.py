"""The deep dive on demand: diffoscope on one member of two wheels, bounded in time and output.

The comparison engine says what differs and why; when a reviewer wants every byte, diffoscope
shows it. It is never the first pass (on a 53 KB extension it prints over 21,000 lines), so it
runs here on one member only: both copies are extracted through the comparison's hardened zip
reader into a private temporary directory, diffoscope runs with a wall-clock limit (its process
group is killed at the limit), and only the first lines of its text output are kept. The result
says when either limit cut the output.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from rebuild.compare import CompareLimits
from rebuild.compare.ziplayer import WheelArchive
from rebuild.errors import RebuildError, UsageError

DEFAULT_TIMEOUT_S = 120.0
DEFAULT_MAX_LINES = 2000
MAX_LINE_BYTES = 4096  # a longer line is cut: minified or binary output says nothing more
_STDERR_LINES = 20
_CHUNK = 1024 * 1024
# diffoscope's exit codes: 0 the inputs are the same, 1 they differ; anything else is its error.
_SAME, _DIFFERENT = 0, 1


@dataclass(frozen=True)
class DeepDiff:
    """What diffoscope said about one member, as far as the limits let it."""

    member: str
    tool: str  # "diffoscope 240"
    identical: bool  # the member's bytes are the same in both wheels (diffoscope not run)
    lines: tuple[str, ...]  # the text report, at most ``max_lines``
    total_lines: int  # lines diffoscope printed, counted past the cap too
    truncated: bool  # the output cap dropped lines
    timed_out: bool  # stopped at the time limit: the report is partial
    duration_s: float
    timeout_s: float
    max_lines: int
    html: Path | None = None  # written by diffoscope (complete only if it was not stopped)
    exit_code: int | None = None  # diffoscope's, None when it did not run or was stopped


def find_diffoscope() -> str:
    """The diffoscope executable on PATH, or a UsageError saying how to get one."""
    found = shutil.which("diffoscope")
    if found is None:
        raise UsageError(
            "diffoscope is not installed: `rebuild diff` runs it on the member",
            hint="install it (Debian: apt-get install diffoscope-minimal), or use "
            "`rebuild compare` for the summary, which needs nothing else",
        )
    return found


def _safe_name(member: str) -> str:
    """A file name for the extracted copy: the member's own, so diffoscope can tell its type."""
    name = PurePosixPath(member).name
    cleaned = "".join(ch if ch.isalnum() or ch in "._+-" else "_" for ch in name).lstrip(".")
    return cleaned[:200] or "member"


def extract_member(wheel: Path, member: str, dest: Path, limits: CompareLimits) -> Path:
    """Write ``member`` of ``wheel`` to ``dest`` through the hardened reader; return the file."""
    with WheelArchive(wheel, limits) as archive:
        entry = next((e for e in archive.entries if e.name == member and e.occurrence == 0), None)
        if entry is None:
            names = sorted({e.name for e in archive.entries if not e.name.endswith("/")})
            close = [n for n in names if PurePosixPath(n).name == PurePosixPath(member).name]
            raise UsageError(
                f"{wheel.name} has no member {member!r}",
                hint=f"did you mean {', '.join(repr(n) for n in close[:3])}?"
                if close
                else "members are named by their path inside the wheel, e.g. pkg/_ext.so",
            )
        dest.mkdir(parents=True, exist_ok=True)
        target = dest / _safe_name(member)
        # The archive bounds each member's size and expansion while it streams.
        with archive.open_member(entry) as stream, target.open("xb") as out:
            while chunk := stream.read(_CHUNK):
                out.write(chunk)
    return target


def _sha256(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            sha.update(chunk)
    return sha.hexdigest()


class _Capped:
    """Reads a text stream to its end, keeping the first ``max_lines`` lines and counting all."""

    def __init__(self, stream: IO[bytes], max_lines: int) -> None:
        self.lines: list[str] = []
        self.total = 0
        self._stream, self._max = stream, max_lines
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        continued = False  # the previous chunk was a cut line: its rest is dropped
        while chunk := self._stream.readline(MAX_LINE_BYTES):
            ends = chunk.endswith(b"\n")
            if not continued:
                self.total += 1
                if len(self.lines) < self._max:
                    text = chunk.decode("utf-8", errors="replace").rstrip("\n")
                    self.lines.append(text if ends else text + " [line cut]")
            continued = not ends

    def join(self) -> None:
        self._thread.join()


def run_diffoscope(
    published: Path,
    rebuilt: Path,
    member: str,
    *,
    html: Path | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    max_lines: int = DEFAULT_MAX_LINES,
    workdir: Path | None = None,
    limits: CompareLimits | None = None,
) -> DeepDiff:
    """diffoscope on ``member`` of the two wheels; ``workdir`` holds the temporary copies."""
    if timeout_s <= 0 or max_lines <= 0:
        raise UsageError("--timeout and --max-lines must be positive")
    executable = find_diffoscope()
    tool = _version(executable)
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rebuild-diff-", dir=workdir) as scratch:
        root = Path(scratch)
        bounds = limits or CompareLimits()
        old = extract_member(published, member, root / "published", bounds)
        new = extract_member(rebuilt, member, root / "rebuilt", bounds)
        if _sha256(old) == _sha256(new):
            return DeepDiff(member, tool, True, (), 0, False, False, 0.0, timeout_s, max_lines)
        argv = [executable, "--no-progress", "--text", "-"]
        if html is not None:
            argv += ["--html", str(html)]
        argv += [str(old), str(new)]
        started = time.monotonic()
        # Its own session, so that the time limit stops the tools diffoscope runs as well.
        env = {**os.environ, "TMPDIR": str(root)}
        try:
            process = subprocess.Popen(
                argv,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        except OSError as e:
            raise UsageError(
                f"diffoscope could not be started: {e}", hint="check the installation"
            ) from e
        if process.stdout is None or process.stderr is None:  # pragma: no cover - PIPE given
            raise RebuildError("diffoscope started without its output pipes")
        output = _Capped(process.stdout, max_lines)
        errors: deque[bytes] = deque(maxlen=_STDERR_LINES)
        drain = threading.Thread(target=errors.extend, args=(process.stderr,), daemon=True)
        drain.start()
        timed_out = False
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        finally:
            if process.poll() is None:  # interrupted: leave nothing running
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        output.join()
        drain.join()
        process.stdout.close()
        process.stderr.close()
        duration = time.monotonic() - started
    if not timed_out and process.returncode not in (_SAME, _DIFFERENT):
        tail = b"".join(errors).decode("utf-8", errors="replace").strip()
        raise RebuildError(
            f"diffoscope failed on {member!r} (exit {process.returncode})",
            hint=tail[-2000:] or None,
        )
    return DeepDiff(
        member=member,
        tool=tool,
        identical=False,
        lines=tuple(output.lines),
        total_lines=output.total,
        truncated=output.total > len(output.lines),
        timed_out=timed_out,
        duration_s=round(duration, 3),
        timeout_s=timeout_s,
        max_lines=max_lines,
        html=html if html is not None and html.exists() else None,
        exit_code=None if timed_out else process.returncode,
    )


def _version(executable: str) -> str:
    try:
        done = subprocess.run(
            [executable, "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return "diffoscope"
    return done.stdout.strip() or "diffoscope"


__all__ = ["DeepDiff", "extract_member", "find_diffoscope", "run_diffoscope"]
