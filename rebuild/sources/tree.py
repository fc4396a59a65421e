"""A source tree on disk (an extracted sdist, a git checkout), indexed by path and by bytes.

Files are listed once, in sorted order, and hashed on demand; the ``.git`` directories of a
checkout are not part of the source. Only regular files count: a symlink is followed only when
it stays inside the tree (extraction already refused the others).
"""

from __future__ import annotations

import difflib
import hashlib
import os
from collections import defaultdict
from pathlib import Path

# Directories that hold a repository's own bookkeeping, never the project's source.
VCS_DIRS = frozenset({".git", ".hg", ".svn"})
# Preferred places of a package in a source tree, in order (flat layout first, then src/ ...).
LAYOUT_PREFIXES = ("", "src/", "lib/", "python/")
DIFF_LINES = 200
MAX_DIFF_BYTES = 1024 * 1024


class SourceTree:
    """The regular files under ``root``, by relative POSIX path."""

    def __init__(self, root: Path) -> None:
        self.root = root
        real_root = os.path.realpath(root)
        files: dict[str, Path] = {}
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d not in VCS_DIRS)
            for filename in sorted(filenames):
                path = Path(dirpath) / filename
                real = os.path.realpath(path)
                if not (real == real_root or real.startswith(real_root + os.sep)):
                    continue
                if filename == ".git" or not path.is_file():
                    continue  # a submodule's ".git" file, a dangling link
                files[path.relative_to(root).as_posix()] = path
        self.files = files
        self._digests: dict[str, str] = {}
        self._by_name: dict[str, list[str]] = defaultdict(list)
        for rel in files:
            self._by_name[rel.rsplit("/", 1)[-1]].append(rel)
        self._by_digest: dict[str, list[str]] | None = None

    def __len__(self) -> int:
        return len(self.files)

    def __contains__(self, rel: object) -> bool:
        return rel in self.files

    def read(self, rel: str) -> bytes:
        return self.files[rel].read_bytes()

    def digest(self, rel: str) -> str:
        if rel not in self._digests:
            self._digests[rel] = hashlib.sha256(self.read(rel)).hexdigest()
        return self._digests[rel]

    def with_digest(self, digest: str) -> list[str]:
        """Every file whose bytes hash to ``digest``, in sorted order."""
        if self._by_digest is None:
            index: dict[str, list[str]] = defaultdict(list)
            for rel in self.files:
                index[self.digest(rel)].append(rel)
            self._by_digest = index
        return self._by_digest.get(digest, [])

    def candidates(self, path: str) -> list[str]:
        """Files that may be the source of ``path``: same path or ending with it, best first."""
        name = path.rsplit("/", 1)[-1]
        found = [
            rel for rel in self._by_name.get(name, ()) if rel == path or rel.endswith("/" + path)
        ]

        def rank(rel: str) -> tuple[int, int, str]:
            prefix = rel[: len(rel) - len(path)]
            if prefix in LAYOUT_PREFIXES:
                return LAYOUT_PREFIXES.index(prefix), 0, rel
            return len(LAYOUT_PREFIXES), prefix.count("/"), rel

        return sorted(found, key=rank)


def capped_diff(old: bytes, new: bytes, old_name: str, new_name: str) -> str:
    """A unified diff of two texts, capped; a note instead for binary or oversized content."""
    if len(old) > MAX_DIFF_BYTES or len(new) > MAX_DIFF_BYTES:
        return "(too large to diff here)"
    if b"\0" in old or b"\0" in new:
        return "(binary content)"
    lines = list(
        difflib.unified_diff(
            old.decode("utf-8", "replace").splitlines(),
            new.decode("utf-8", "replace").splitlines(),
            old_name,
            new_name,
            lineterm="",
        )
    )
    if len(lines) > DIFF_LINES:
        lines = [*lines[:DIFF_LINES], f"… {len(lines) - DIFF_LINES} more diff lines"]
    return "\n".join(lines)
