"""Work directories are removed whatever depth a build wrote into them."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

from rebuild.cleanup import remove_tree


def deep_tree(root: Path, depth: int) -> None:
    """``depth`` nested directories, made level by level relative to the last (past PATH_MAX)."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir("deeper-directory", dir_fd=fd)
            child = os.open("deeper-directory", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
        leaf = os.open("f", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(leaf, b"x")
        os.close(leaf)
    finally:
        os.close(fd)


def test_a_tree_deeper_than_rmtree_and_path_max_is_removed(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    deep_tree(work, 2_000)  # about 34,000 bytes of path: neither rmtree nor a path reaches it
    with contextlib.suppress(RecursionError):
        shutil.rmtree(work)  # on Python 3.11 it gives up part way, leaving the rest
    remove_tree(work)
    assert not work.exists()


def test_an_ordinary_or_missing_tree(tmp_path: Path) -> None:
    work = tmp_path / "work"
    (work / "a" / "b").mkdir(parents=True)
    (work / "a" / "b" / "f").write_text("x")
    outside = tmp_path / "outside"
    outside.mkdir()
    (work / "link").symlink_to(outside)
    remove_tree(work)
    assert not work.exists()
    assert outside.exists()  # a link is removed, never followed
    remove_tree(work)  # already gone: nothing to do
