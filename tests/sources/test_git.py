"""The repository side: tags, shallow checkouts with submodules, moved tags, sdist vs the tree."""

from __future__ import annotations

from pathlib import Path

import pytest

from rebuild.archive import extract_sdist
from rebuild.errors import FetchError, ResolveError, UsageError
from rebuild.models import DivergenceKind
from rebuild.sources.git import checkout, list_tags, version_tag
from rebuild.sources.sdist_git import compare_sdist_with_tree
from rebuild.sources.tree import SourceTree

from .repos import SCM_VERSION_FILE, SOURCE, commit_more, git_repo, make_sdist, url_of


def test_version_tags_are_found_by_their_usual_spellings() -> None:
    tags = {"v0.9": "a", "demo-1.0.0": "b", "release-2.0": "c", "v3.0": "d", "3.0": "e"}
    assert version_tag(tags, "demo", "1.0") == "demo-1.0.0"
    assert version_tag(tags, "demo", "2.0") == "release-2.0"
    assert version_tag(tags, "demo", "3.0") == "v3.0"
    assert version_tag(tags, "demo", "4.0") is None


def test_an_annotated_tag_lists_its_commit_and_checks_out_with_submodules(tmp_path: Path) -> None:
    sub, sub_commit = git_repo(tmp_path / "vendored", {"vendored.py": b"V = 1\n"}, tag=None)
    repo, _ = git_repo(tmp_path / "up", SOURCE, tag=None)
    repo.git.update_environment(GIT_CONFIG_COUNT="1", GIT_CONFIG_KEY_0="protocol.file.allow")
    repo.git.update_environment(GIT_CONFIG_VALUE_0="always")
    repo.git.submodule("add", url_of(tmp_path / "vendored"), "src/demo/vendored")
    commit = commit_more(repo, {}, "add submodule")
    repo.create_tag("v1.0", message="release 1.0")
    assert list_tags(url_of(tmp_path / "up")) == {"v1.0": commit}

    got = checkout(url_of(tmp_path / "up"), tmp_path / "co", ref="refs/tags/v1.0", commit=commit)
    assert got.commit == commit and got.ref == "refs/tags/v1.0"
    assert (got.path / "src/demo/vendored/vendored.py").read_bytes() == b"V = 1\n"
    assert (got.path / "src/demo/core.py").read_bytes() == SOURCE["src/demo/core.py"]
    assert sub.head.commit.hexsha == sub_commit


def test_a_moved_tag_is_refused(tmp_path: Path) -> None:
    repo, released = git_repo(tmp_path / "up", SOURCE)
    commit_more(repo, {"src/demo/core.py": b"def answer():\n    return 0\n"})
    repo.create_tag("v1.0", force=True)  # re-pointed after the release
    with pytest.raises(FetchError, match="the tag was moved") as caught:
        checkout(url_of(tmp_path / "up"), tmp_path / "co", ref="refs/tags/v1.0", commit=released)
    assert caught.value.hint and released in caught.value.hint
    # The commit itself can still be fetched and checked.
    got = checkout(url_of(tmp_path / "up"), tmp_path / "co2", ref=None, commit=released)
    assert got.commit == released


def test_a_missing_ref_and_a_bad_url_are_clear_errors(tmp_path: Path) -> None:
    git_repo(tmp_path / "up", SOURCE)
    with pytest.raises(ResolveError, match=r"has no ref or commit 'v9\.9'"):
        checkout(url_of(tmp_path / "up"), tmp_path / "co", ref="v9.9", commit=None)
    with pytest.raises(UsageError):
        checkout("ext::sh -c touch% /tmp/pwned", tmp_path / "co2", ref="v1.0", commit=None)
    with pytest.raises(ResolveError, match="cannot list the tags"):
        list_tags(url_of(tmp_path / "missing"))


def test_sdist_vs_tree_explains_generated_files_and_flags_the_rest(tmp_path: Path) -> None:
    git_repo(tmp_path / "up", {**SOURCE, "setup.cfg": b"[metadata]\nname = demo\n"})
    tree = checkout(url_of(tmp_path / "up"), tmp_path / "co", ref="v1.0", commit=None)
    sdist_files = {
        **{k: v for k, v in SOURCE.items() if not k.startswith("tests/")},
        "setup.cfg": b"[metadata]\nname = demo\n\n[egg_info]\ntag_build = \ntag_date = 0\n\n",
        "src/demo.egg-info/SOURCES.txt": b"src/demo/core.py\n",
        "src/demo/_version.py": SCM_VERSION_FILE,
        "src/demo/backdoor.py": b"import os\n",  # in the sdist, never in git
        "src/demo/core.py": b"def answer():\n    return 43\n",  # altered in the sdist
    }
    sdist = extract_sdist(make_sdist(tmp_path / "demo-1.0.tar.gz", sdist_files), tmp_path / "x")
    match = compare_sdist_with_tree(SourceTree(sdist), SourceTree(tree.path), "1.0")
    by_member = {d.member: d for d in match.findings}
    unexplained = {m for m, d in by_member.items() if not d.explained}
    assert unexplained == {"src/demo/backdoor.py", "src/demo/core.py"}
    assert by_member["src/demo/core.py"].kind is DivergenceKind.DIFFERS_FROM_GIT
    assert by_member["src/demo/backdoor.py"].kind is DivergenceKind.NOT_IN_GIT
    assert {m for m, d in by_member.items() if d.explained} == {
        "PKG-INFO",
        "setup.cfg",
        "src/demo.egg-info/SOURCES.txt",
        "src/demo/_version.py",
    }
    assert (match.files, match.matched, match.prefix) == (8, 2, "")


def test_an_sdist_made_from_a_subdirectory_is_matched_there(tmp_path: Path) -> None:
    git_repo(tmp_path / "up", {f"python/{k}": v for k, v in SOURCE.items()} | {"README": b"x"})
    tree = checkout(url_of(tmp_path / "up"), tmp_path / "co", ref="v1.0", commit=None)
    sdist = extract_sdist(make_sdist(tmp_path / "s.tar.gz", SOURCE), tmp_path / "x")
    match = compare_sdist_with_tree(SourceTree(sdist), SourceTree(tree.path), "1.0")
    assert match.prefix == "python/" and match.matched == len(SOURCE)
    assert [d.member for d in match.findings] == ["PKG-INFO"]
