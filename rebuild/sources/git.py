"""The upstream repository: list its tags, check out one commit shallowly, with submodules.

Everything goes through gitpython, and every git failure becomes a :class:`ResolveError` (the ref
or repository does not exist) or :class:`FetchError` (the transfer failed, or the tag no longer
points where the provenance says). Only the one commit is fetched (``--depth 1``), then the
submodules at the commits it records. Git runs with no prompt and no hooks; a ``file://``
repository may use ``file://`` submodules, a remote one may not.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from rebuild.errors import FetchError, ResolveError, UsageError

if TYPE_CHECKING:
    import git

GIT_TIMEOUT_S = 600
_SHA = re.compile(r"^[0-9a-f]{40}$")
_SCHEMES = ("https", "http", "file", "ssh", "git")
# Prefixes projects put before the version in tag names, in the order they are tried.
_TAG_PREFIXES = ("v", "", "release-", "release/", "version-", "v.", "r")


@dataclass(frozen=True)
class Checkout:
    path: Path
    commit: str
    ref: str | None  # what was fetched ("refs/tags/v1.2.3"), None for a bare commit
    commit_time: int  # the commit's timestamp: the mtime every file of its archive gets


def check_url(url: str) -> str:
    """``url`` if it is a repository URL git may be given, else a UsageError."""
    scheme = urlsplit(url).scheme
    if url.startswith("-") or scheme not in _SCHEMES:
        raise UsageError(
            f"{url!r} is not a repository URL rebuild clones",
            hint=f"give a {', '.join(_SCHEMES)} URL, e.g. https://forge.example/owner/project",
        )
    return url


def check_ref(ref: str) -> str:
    if not ref or ref.startswith("-") or any(c in ref for c in " ~^:?*[\\\0") or ".." in ref:
        raise UsageError(f"{ref!r} is not a git ref", hint="give a tag, a branch or a commit")
    return ref


def is_commit(ref: str) -> bool:
    return _SHA.match(ref) is not None


def _environment(url: str) -> dict[str, str]:
    settings = [("core.hooksPath", os.devnull)]
    if urlsplit(url).scheme == "file":
        # git refuses file:// submodules by default (CVE-2022-39253); a local superproject's
        # submodules are as local as it is.
        settings.append(("protocol.file.allow", "always"))
    env = {"GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_COUNT": str(len(settings))}
    for i, (key, value) in enumerate(settings):
        env[f"GIT_CONFIG_KEY_{i}"] = key
        env[f"GIT_CONFIG_VALUE_{i}"] = value
    return env


def _tail(e: git.GitCommandError) -> str:
    text = " ".join((e.stderr if isinstance(e.stderr, str) else str(e)).split())
    # gitpython wraps git's own message as "stderr: '...'".
    text = text.removeprefix("stderr:").strip().strip("'").strip()
    return text[-500:]


def list_tags(url: str) -> dict[str, str]:
    """Every tag of the repository and the commit (or object) it points at."""
    check_url(url)
    import git  # gitpython costs 0.08 s to import, and most checks build an sdist, not a tag

    runner = git.Git()
    runner.update_environment(**_environment(url))
    try:
        listed = str(runner.ls_remote("--tags", url, kill_after_timeout=GIT_TIMEOUT_S))
    except git.GitCommandError as e:
        raise ResolveError(
            f"cannot list the tags of {url}: {_tail(e)}",
            hint="check the repository URL (--repo) and that it is reachable from here",
        ) from e
    tags: dict[str, str] = {}
    peeled: dict[str, str] = {}
    for line in listed.splitlines():
        sha, _, ref = line.partition("\t")
        if not ref.startswith("refs/tags/"):
            continue
        name = ref.removeprefix("refs/tags/")
        if name.endswith("^{}"):
            peeled[name.removesuffix("^{}")] = sha
        else:
            tags[name] = sha
    # An annotated tag's own object is not the commit: ls-remote lists the commit as "^{}".
    return {name: peeled.get(name, sha) for name, sha in tags.items()}


def version_tag(tags: dict[str, str], project: str, version: str) -> str | None:
    """The tag that names ``version`` of ``project``, by the usual spellings, best first."""
    wanted = Version(version)
    names = {project, canonicalize_name(project), canonicalize_name(project).replace("-", "_")}
    spellings = [f"{prefix}{version}" for prefix in _TAG_PREFIXES]
    for name in sorted(names):
        spellings += [f"{name}-{version}", f"{name}-v{version}", f"{name}_{version}"]
        spellings += [f"{name}/{version}", f"{name}/v{version}", f"{name}@{version}"]
    for spelling in spellings:
        if spelling in tags:
            return spelling
    # Spelled differently but the same version (1.2 tagged as v1.2.0): compare as versions.
    for tag in sorted(tags):
        rest = tag
        for name in sorted(names, key=len, reverse=True):
            for sep in ("-", "_", "/", "@"):
                rest = rest.removeprefix(name + sep)
        for prefix in _TAG_PREFIXES:
            if not prefix or not rest.startswith(prefix):
                continue
            if _same(rest.removeprefix(prefix), wanted):
                return tag
        if _same(rest, wanted):
            return tag
    return None


def _same(text: str, wanted: Version) -> bool:
    try:
        return Version(text) == wanted
    except InvalidVersion:
        return False


def checkout(url: str, dest: Path, *, ref: str | None, commit: str | None) -> Checkout:
    """Fetch one commit of ``url`` into the new directory ``dest``, with its submodules.

    ``ref`` (a tag or branch) is fetched and resolved; when ``commit`` is given too, the ref must
    still point at it, else the tag moved and nothing is checked out. With ``commit`` alone,
    that commit is fetched directly.
    """
    check_url(url)
    if ref is None and commit is None:
        raise UsageError("name a ref or a commit to check out")
    if ref is not None:
        check_ref(ref)
    if commit is not None and not is_commit(commit):
        raise UsageError(f"{commit!r} is not a full commit id (40 hex digits)")
    dest.mkdir(parents=True, exist_ok=False)
    import git

    repo = git.Repo.init(dest)
    runner = repo.git
    runner.update_environment(**_environment(url))
    try:
        runner.remote("add", "origin", url)
        _fetch(runner, url, ref or commit or "")
        got = str(runner.rev_parse("--verify", "FETCH_HEAD^{commit}")).strip()
        if commit is not None and got != commit:
            raise FetchError(
                f"{ref} of {url} points at {got}, but the release's provenance names {commit}: "
                "the tag was moved after the release",
                hint="the repository's history was rewritten or the tag re-pointed; check the "
                f"commit {commit} itself with --ref {commit}, and find out why the tag moved",
            )
        runner.checkout("--quiet", "--detach", got)
        _submodules(runner, dest)
        commit_time = int(str(runner.log("-1", "--format=%ct", got)).strip())
    except git.GitCommandError as e:
        raise FetchError(
            f"git failed on {url}: {_tail(e)}",
            hint="check the repository URL and the network; the checkout was left incomplete",
        ) from e
    finally:
        repo.close()
    full_ref = None if ref is None or is_commit(ref) else ref
    return Checkout(path=dest, commit=got, ref=full_ref, commit_time=commit_time)


def _fetch(runner: git.Git, url: str, wanted: str) -> None:
    import git

    try:
        runner.fetch(
            "--quiet", "--depth=1", "--no-tags", "origin", wanted, kill_after_timeout=GIT_TIMEOUT_S
        )
    except git.GitCommandError as e:
        detail = _tail(e)
        if (
            "couldn't find remote ref" in detail
            or "not our ref" in detail
            or ("unadvertised object" in detail)
        ):
            raise ResolveError(
                f"{url} has no ref or commit {wanted!r}",
                hint="check --ref (a tag, branch or full commit id) against the repository's tags",
            ) from e
        raise


def _submodules(runner: git.Git, dest: Path) -> None:
    if not (dest / ".gitmodules").is_file():
        return
    import git

    try:
        runner.submodule(
            "update", "--init", "--recursive", "--depth=1", kill_after_timeout=GIT_TIMEOUT_S
        )
    except git.GitCommandError:
        # Some hosts refuse to serve a commit by id shallowly; the full history always works.
        runner.submodule("update", "--init", "--recursive", kill_after_timeout=GIT_TIMEOUT_S)
