"""Property-based tests: damaged wheels and sdists never raise anything but ArchiveError.

Valid archives are built once, then hypothesis flips bytes, cuts them short, splices in
runs of bytes, and (for tars) damages the uncompressed headers before compressing again, so that
the parsers meet both broken compression and well-compressed broken structure. Each property is
bounded (``max_examples``, ``deadline``) so the suite stays fast on two cores. Crashes found
this way are kept as explicit regression tests in test_regressions.py.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import io
import os
import tarfile
import tempfile
import zipfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rebuild.archive import ExtractLimits, extract_sdist
from rebuild.compare import compare_wheels
from rebuild.errors import ArchiveError
from rebuild.plan import read_evidence

from .corpus import SDIST_TOP, WHEEL_NAME, clean_wheel
from .guard import snapshot

MiB = 1024 * 1024
SETTINGS = settings(
    max_examples=250,
    deadline=None,  # the first example pays for imports; the bound is max_examples
    suppress_health_check=[HealthCheck.too_slow],
    database=None,  # no example database written into the working tree
)
# Small limits: a mutation that declares a huge size must not make an example slow.
LIMITS = ExtractLimits(max_members=500, max_total_bytes=64 * MiB, max_member_bytes=16 * MiB)


@functools.cache
def valid_wheel() -> bytes:
    with tempfile.TemporaryDirectory() as d:
        return clean_wheel(Path(d)).read_bytes()


def _tar(members: list[tuple[str, bytes, bytes, str]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, kind, data, link in members:
            info = tarfile.TarInfo(f"{SDIST_TOP}/{name}" if name else SDIST_TOP)
            info.type = kind
            info.linkname = link
            info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data) if data else None)
    return buffer.getvalue()


@functools.cache
def valid_tar() -> bytes:
    return _tar(
        [
            ("", tarfile.DIRTYPE, b"", ""),
            ("PKG-INFO", tarfile.REGTYPE, b"Metadata-Version: 2.1\nName: demo\n", ""),
            ("demo/__init__.py", tarfile.REGTYPE, b"ANSWER = 42\n" * 20, ""),
            ("demo/link.py", tarfile.SYMTYPE, b"", "__init__.py"),
            ("COPY", tarfile.LNKTYPE, b"", f"{SDIST_TOP}/PKG-INFO"),
        ]
    )


@functools.cache
def valid_zip_sdist() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{SDIST_TOP}/PKG-INFO", b"Metadata-Version: 2.1\nName: demo\n")
        archive.writestr(f"{SDIST_TOP}/demo/__init__.py", b"ANSWER = 42\n" * 20)
    return buffer.getvalue()


@st.composite
def mutated(draw: st.DrawFn, source: bytes) -> bytes:
    """``source`` with bytes flipped, a run spliced in, and perhaps cut short."""
    data = bytearray(source)
    for _ in range(draw(st.integers(0, 8))):
        at = draw(st.integers(0, len(data) - 1))
        data[at] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        at = draw(st.integers(0, len(data)))
        data[at:at] = draw(st.binary(min_size=1, max_size=64))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


def _wheel_is_refused_or_compared(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        hostile = root / "hostile" / WHEEL_NAME
        hostile.parent.mkdir()
        hostile.write_bytes(data)
        clean = clean_wheel(root)
        before = snapshot(root)
        with contextlib.suppress(ArchiveError):
            compare_wheels(hostile, clean)
        with contextlib.suppress(ArchiveError):
            read_evidence(hostile)
        assert snapshot(root) == before


def _sdist_is_refused_or_inside(data: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        archive = root / "in" / f"{SDIST_TOP}{suffix}"
        archive.parent.mkdir()
        archive.write_bytes(data)
        (root / "outside").mkdir()
        (root / "outside" / "target").write_text("untouched")
        dest = root / "work" / "a" / "dest"
        dest.parent.mkdir(parents=True)
        before = snapshot(root, exclude=(dest,))
        try:
            top = extract_sdist(archive, dest, LIMITS)
        except ArchiveError:
            assert not dest.exists() or not any(dest.iterdir()), "a refused sdist left files"
        else:
            assert top.parent == dest
            root_real = os.path.realpath(dest)
            for path in dest.rglob("*"):
                # realpath, not resolve(): a link to itself is harmless here and must not raise.
                real = os.path.realpath(path)
                assert real == root_real or real.startswith(root_real + os.sep), path
        assert snapshot(root, exclude=(dest,)) == before


@SETTINGS
@given(data=st.data())
def test_mutated_wheels_raise_only_archive_error(data: st.DataObject) -> None:
    _wheel_is_refused_or_compared(data.draw(mutated(valid_wheel())))


@SETTINGS
@given(data=st.data())
def test_mutated_tar_structure_is_refused_or_stays_inside(data: st.DataObject) -> None:
    raw = data.draw(mutated(valid_tar()))
    _sdist_is_refused_or_inside(gzip.compress(raw, mtime=0), ".tar.gz")


@SETTINGS
@given(data=st.data())
def test_mutated_gzip_is_refused_or_stays_inside(data: st.DataObject) -> None:
    compressed = gzip.compress(valid_tar(), mtime=0)
    _sdist_is_refused_or_inside(data.draw(mutated(compressed)), ".tar.gz")


@SETTINGS
@given(data=st.data())
def test_mutated_zip_sdists_are_refused_or_stay_inside(data: st.DataObject) -> None:
    _sdist_is_refused_or_inside(data.draw(mutated(valid_zip_sdist())), ".zip")


NAMES = st.lists(
    st.sampled_from(["a", "/", ".", "..", "\\", "\x00", "\x1b", ":", " ", "é"]), max_size=10
).map("".join)


@SETTINGS
@given(
    members=st.lists(
        st.tuples(
            NAMES,
            st.sampled_from([tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE]),
            st.binary(max_size=8),
            NAMES,
        ),
        max_size=6,
    )
)
def test_hostile_names_and_links_never_escape(
    members: list[tuple[str, bytes, bytes, str]],
) -> None:
    """Any sequence of files, directories and links with any names stays under dest."""
    entries = [(n, k, d if k == tarfile.REGTYPE else b"", link) for n, k, d, link in members]
    try:
        raw = _tar([("", tarfile.DIRTYPE, b"", ""), *entries])
    except (ValueError, UnicodeError):
        return  # tarfile itself cannot write such a name
    _sdist_is_refused_or_inside(gzip.compress(raw, mtime=0), ".tar.gz")
