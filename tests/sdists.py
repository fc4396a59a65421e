"""Sdists the tests build, with an in-tree PEP 517 backend whose behaviour the test chooses.

The backend needs no build requirement (so no index beyond a local one), and does one of:
``ok`` (writes a deterministic wheel), ``network`` (tries to reach the package index, then
fails), ``fail`` (exits with an error), ``hang`` (never returns), ``asks`` (names six in
``get_requires_for_build_wheel`` and cannot build without it). The same backend, run on the
host, makes the "published" wheel that a container rebuild must reproduce.
"""

from __future__ import annotations

import importlib.util
import io
import os
import tarfile
from pathlib import Path
from types import ModuleType

NAME = "demo"
VERSION = "1.0"
WHEEL_NAME = f"{NAME}-{VERSION}-py3-none-any.whl"
SDIST_NAME = f"{NAME}-{VERSION}.tar.gz"
SDE = 1_700_000_000  # 2023-11-14

BACKEND = '''\
"""An in-tree build backend for tests: deterministic, dependency-free."""
import base64, hashlib, os, socket, sys, time, zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "mode.txt")) as _f:
    MODE = _f.read().strip()
NAME, VERSION = "demo", "1.0"
# The wheel's tag: pure unless tag.txt names a platform tag (a wheel CI builds per platform).
TAG = "py3-none-any"
if os.path.exists(os.path.join(HERE, "tag.txt")):
    with open(os.path.join(HERE, "tag.txt")) as _f:
        TAG = _f.read().strip()


def get_requires_for_build_wheel(config_settings=None):
    # "asks": a requirement only this hook names, as in-tree backends (hatchling's) do.
    return ["six==1.16.0"] if MODE == "asks" else []


def _digest(data):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    if MODE == "network":
        try:
            socket.create_connection(("pypi.org", 443), timeout=10).close()
            print("NETWORK: reachable", flush=True)
        except OSError as e:
            print(f"NETWORK: unreachable: {e!r}", flush=True)
            raise SystemExit("this build downloads its data at build time")
    if MODE == "fail":
        raise SystemExit("the build failed on purpose")
    if MODE == "asks":
        import six  # installed only if the frontend asked the hook and installed its answer
    if MODE == "ci":
        # What upstream's CI configuration gives the build: a variable, and libffi's header.
        import glob
        if os.environ.get("DEMO_FLAVOUR") != "from-ci":
            raise SystemExit("DEMO_FLAVOUR is not set as the CI configuration sets it")
        if not glob.glob("/usr/include/ffi.h") + glob.glob("/usr/include/*/ffi.h"):
            raise SystemExit("ffi.h: No such file (before-all installs libffi-devel)")
    if MODE == "hang":
        print("hanging", flush=True)
        while True:
            time.sleep(1)
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "315532800"))
    stamp = time.gmtime(epoch)[:6]
    dist_info = f"{NAME}-{VERSION}.dist-info"
    with open(os.path.join(HERE, "demo", "__init__.py"), "rb") as f:
        code = f.read()
    members = {
        "demo/__init__.py": code,
        f"{dist_info}/METADATA": b"Metadata-Version: 2.1\\nName: demo\\nVersion: 1.0\\n",
        f"{dist_info}/WHEEL": (
            b"Wheel-Version: 1.0\\nGenerator: demo-backend 1.0\\nRoot-Is-Purelib: true\\n"
            + f"Tag: {TAG}\\n".encode()
        ),
    }
    record = "".join(f"{n},{_digest(d)},{len(d)}\\n" for n, d in members.items())
    members[f"{dist_info}/RECORD"] = (record + f"{dist_info}/RECORD,,\\n").encode()
    filename = f"{NAME}-{VERSION}-{TAG}.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, filename), "w") as zf:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, stamp)
            info.external_attr = 0o100644 << 16
            zf.writestr(info, data, compress_type=zipfile.ZIP_STORED)
    return filename
'''

PYPROJECT = """\
[build-system]
requires = []
build-backend = "backend"
backend-path = ["."]
"""

CODE = b'"""The demo package."""\n\nANSWER = 42\n'


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(f"{NAME}-{VERSION}/{name}")
    info.size = len(data)
    info.mtime = SDE
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def make_sdist(
    path: Path, mode: str, code: bytes = CODE, *, pyproject: str = "", tag: str | None = None
) -> Path:
    """An sdist of demo 1.0 whose backend behaves as ``mode`` says; ``pyproject``: more TOML
    for its pyproject.toml; ``tag``: the wheel's tag, when not pure."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        _add(tar, "PKG-INFO", b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n")
        _add(tar, "pyproject.toml", (PYPROJECT + pyproject).encode())
        _add(tar, "backend.py", BACKEND.encode())
        _add(tar, "mode.txt", mode.encode())
        _add(tar, "demo/__init__.py", code)
        if tag is not None:
            _add(tar, "tag.txt", tag.encode())
    return path


def _load_backend(tree: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("demo_test_backend", tree / "backend.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_published_wheel(out: Path, code: bytes = CODE, *, tag: str | None = None) -> Path:
    """The wheel the "publisher" made: the same backend, run on the host with SDE set."""
    tree = out / "tree"
    (tree / "demo").mkdir(parents=True)
    (tree / "backend.py").write_text(BACKEND)
    (tree / "mode.txt").write_text("ok")
    if tag is not None:
        (tree / "tag.txt").write_text(tag)
    (tree / "demo" / "__init__.py").write_bytes(code)
    return build_on_host(tree, out)


def build_on_host(tree: Path, out: Path) -> Path:
    """Run the backend of a source ``tree`` on the host, as a publisher would, with SDE set."""
    before = os.environ.get("SOURCE_DATE_EPOCH")
    os.environ["SOURCE_DATE_EPOCH"] = str(SDE)
    try:
        filename = _load_backend(tree).build_wheel(str(out))
    finally:
        if before is None:
            del os.environ["SOURCE_DATE_EPOCH"]
        else:
            os.environ["SOURCE_DATE_EPOCH"] = before
    return out / str(filename)
