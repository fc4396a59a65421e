"""A raw zip writer for wheels no honest tool writes, and real installs of them.

The writer sets every byte that matters to an installer by hand (stored names with NULs or dot
segments, central-directory extra fields, modes without a file type), so nothing here is a
committed blob. ``install`` runs the real pip 26.3 (the venv's, also on CPython 3.12 and 3.13 by
running pip's directory with that interpreter) and the real installer 1.1.0 (its wheel on
PYTHONPATH) into a throwaway directory and returns what landed on disk.
"""

from __future__ import annotations

import base64
import hashlib
import os
import stat
import struct
import subprocess
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import pip

DIST_INFO = "demo-1.0.dist-info"
WHEEL_NAME = "demo-1.0-py3-none-any.whl"
_PIP_DIR = Path(pip.__file__).parent
_PYENV = Path("/root/.pyenv/versions")
REGULAR = stat.S_IFREG | 0o644


@dataclass(frozen=True)
class Raw:
    """One entry as stored: its name as bytes, its bytes, its mode, its central extra field."""

    name: bytes
    data: bytes
    mode: int = REGULAR
    central_extra: bytes = b""


def unicode_path_extra(stored: bytes, new_name: str) -> bytes:
    """An Info-ZIP Unicode Path extra field (0x7075) renaming ``stored`` for CPython >= 3.12."""
    body = struct.pack("<BL", 1, zlib.crc32(stored)) + new_name.encode("utf-8")
    return struct.pack("<HH", 0x7075, len(body)) + body


def _metadata(files: list[Raw]) -> list[Raw]:
    meta = [
        Raw(f"{DIST_INFO}/METADATA".encode(), b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n"),
        Raw(
            f"{DIST_INFO}/WHEEL".encode(),
            b"Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        ),
    ]
    rows = []
    for raw in [*files, *meta]:
        digest = base64.urlsafe_b64encode(hashlib.sha256(raw.data).digest()).rstrip(b"=")
        rows.append(b"%s,sha256=%s,%d" % (raw.name, digest, len(raw.data)))
    rows.append(f"{DIST_INFO}/RECORD,,".encode())
    return [*meta, Raw(f"{DIST_INFO}/RECORD".encode(), b"\n".join(rows) + b"\n")]


def write_wheel(path: Path, files: list[Raw]) -> Path:
    """A stored (uncompressed) zip of ``files`` then the dist-info, byte by byte."""
    entries = [*files, *_metadata(files)]
    out = bytearray()
    central = bytearray()
    for raw in entries:
        offset = len(out)
        crc = zlib.crc32(raw.data)
        flags = 0x0800  # names are UTF-8
        out += struct.pack(
            "<4sHHHHHLLLHH", b"PK\x03\x04", 20, flags, 0, 0, 0x21,
            crc, len(raw.data), len(raw.data), len(raw.name), 0,
        )  # fmt: skip
        out += raw.name + raw.data
        central += struct.pack(
            "<4sHHHHHHLLLHHHHHLL", b"PK\x01\x02", 0x0314, 20, flags, 0, 0, 0x21,
            crc, len(raw.data), len(raw.data), len(raw.name), len(raw.central_extra), 0, 0, 0,
            raw.mode << 16, offset,
        )  # fmt: skip
        central += raw.name + raw.central_extra
    start = len(out)
    out += central
    out += struct.pack(
        "<4sHHHHLLH", b"PK\x05\x06", 0, 0, len(entries), len(entries), len(central), start, 0
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(out))
    return path


def interpreter(version: str) -> Path | None:
    """The CPython ``version`` on this machine (the venv's for 3.11), or None."""
    if version == f"{sys.version_info.major}.{sys.version_info.minor}":
        return Path(sys.executable)
    found = sorted(_PYENV.glob(f"{version}.*/bin/python{version}"))
    return found[-1] if found else None


# Files the installers write themselves, which name the install (paths, the installer).
_GENERATED = frozenset({"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"})

Installed = dict[str, tuple[str, bool]] | str  # path -> (sha256, executable), or the error


def _walk(root: Path) -> dict[str, tuple[str, bool]]:
    found: dict[str, tuple[str, bool]] = {}
    for path in sorted(root.rglob("*")):
        if not path.is_file() or "__pycache__" in path.parts:
            continue
        rel = path.relative_to(root).as_posix()
        if path.parent.name.endswith(".dist-info") and path.name in _GENERATED:
            continue
        data = path.read_bytes()
        executable = bool(path.stat().st_mode & 0o100)
        found[rel] = (hashlib.sha256(data).hexdigest(), executable)
    return found


def install(
    tool: str, python: Path, wheel: Path, dest: Path, installer_wheel: Path | None
) -> Installed:
    """What ``tool`` ("pip" or "installer") puts on disk from ``wheel``, or its last error."""
    if tool == "pip":
        command = [
            str(python), str(_PIP_DIR), "install", "--no-deps", "--no-index", "--no-compile",
            "--disable-pip-version-check", "--target", str(dest), str(wheel),
        ]  # fmt: skip
        env = {**os.environ}
    else:
        assert installer_wheel is not None
        command = [
            str(python), "-m", "installer", "--no-compile-bytecode", "--destdir", str(dest),
            "--prefix", "/p", str(wheel),
        ]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(installer_wheel)}
    done = subprocess.run(
        command, capture_output=True, text=True, env=env, timeout=120, check=False
    )
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        last = lines[-1] if lines else ""
        # The error names the throwaway paths; two wheels refused alike must compare equal.
        last = last.replace(str(dest), "DEST").replace(str(wheel), "WHEEL")
        return f"exit {done.returncode}: {last}"
    return _walk(dest)
