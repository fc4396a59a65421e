"""Locate the upstream repository and commit of a release, best evidence first.

1. PEP 740 provenance from the index: the signing certificate names the repository, the commit
   and the ref the release was built from.
2. The project URLs of the release's metadata: a Source/Repository/Homepage URL on a known forge
   names the repository (not the commit).
3. A tag spelled like the version (``v1.2.3``, ``1.2.3``, ``name-1.2.3``, ``release-1.2.3``...)
   names the commit; the checkout then verifies it resolves to one.

``--repo`` and ``--ref`` override what they name. The location records which evidence named the
repository and which named the commit, and what was tried on the way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import requests

from rebuild.errors import ResolveError
from rebuild.models import PublisherAttestation, Release, SourceEvidence
from rebuild.sources.git import check_url, is_commit, list_tags, version_tag
from rebuild.sources.integrity import Attestation, fetch_attestation, integrity_url

# Forges whose project URLs name a repository as https://host/owner/name.
KNOWN_FORGES = frozenset(
    {"github.com", "gitlab.com", "codeberg.org", "bitbucket.org", "git.sr.ht", "salsa.debian.org"}
)
# Project-URL labels, most telling first (compared lower-cased, without spaces and punctuation).
_LABELS = ("source", "sourcecode", "repository", "code", "github", "gitlab", "homepage", "home")
_LABEL_CHARS = re.compile(r"[^a-z]")


@dataclass(frozen=True)
class Location:
    repo_url: str
    ref: str | None  # what to fetch: a tag ref, a branch, or None to fetch ``commit`` directly
    commit: str | None  # the commit the evidence names; the checkout must end there
    repo_evidence: SourceEvidence
    commit_evidence: SourceEvidence
    notes: tuple[str, ...] = ()


def forge_repository(url: str) -> str | None:
    """``https://host/owner/name`` for a project URL on a known forge, else None."""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower().removeprefix("www.")
    if parts.scheme not in ("https", "http") or host not in KNOWN_FORGES:
        return None
    # GitLab puts its own pages after "/-/"; every forge keeps owner/name first.
    segments = [s for s in parts.path.split("/-/", 1)[0].split("/") if s]
    if len(segments) < 2:
        return None
    owner, name = segments[0], segments[1].removesuffix(".git")
    if not name or owner.startswith("-"):
        return None
    return urlunsplit(("https", host, f"/{owner}/{name}", "", ""))


def repository_from_urls(project_urls: tuple[tuple[str, str], ...]) -> tuple[str, str] | None:
    """(label, repository URL) from the release's project URLs, by the most telling label."""

    def rank(pair: tuple[str, str]) -> int:
        label = _LABEL_CHARS.sub("", pair[0].lower())
        return _LABELS.index(label) if label in _LABELS else len(_LABELS)

    for label, url in sorted(project_urls, key=rank):
        repository = forge_repository(url)
        if repository is not None:
            return label, repository
    return None


def find_attestation(
    release: Release,
    *,
    session: requests.Session | None = None,
    checked: list[PublisherAttestation] | None = None,
) -> tuple[Attestation | None, list[str]]:
    """The release's verified PEP 740 attestation (the wheel's, else the sdist's), and what was
    tried; each verification made, passed or failed, is appended to ``checked``."""
    notes: list[str] = []
    for dist in (release.wheel, release.sdist):
        if dist is None:
            continue
        url = integrity_url(release.index_url, release.target, dist)
        if url is None:
            notes.append(f"the index at {release.index_url} has no integrity API path")
            continue
        found, note, verification = fetch_attestation(url, dist, session=session)
        notes.append(note)
        if verification is not None and checked is not None:
            checked.append(verification)
        if found is not None:
            return found, notes
    return None, notes


def locate(
    release: Release,
    *,
    repo: str | None = None,
    ref: str | None = None,
    session: requests.Session | None = None,
    allow_local: bool = False,
    checked: list[PublisherAttestation] | None = None,
) -> Location:
    """Where the release's source lives, by the best evidence available (a PEP 740 provenance
    only once verified; each verification made is appended to ``checked``)."""
    checked = [] if checked is None else checked
    attested, notes = find_attestation(release, session=session, checked=checked)
    if attested is not None and not _usable(attested.repository, allow_local):
        notes.append(f"the attestation names {attested.repository!r}, which is not cloned")
        attested = None
    if attested is not None:
        notes.append(
            f"attested by {attested.publisher}: {attested.repository} at {attested.commit}"
            + (f" ({attested.ref})" if attested.ref else "")
        )
    if repo is not None:
        repo_url, repo_evidence = check_url(repo), SourceEvidence.USER
        if attested is not None and not _same_repo(attested.repository, repo):
            notes.append(f"--repo {repo} is not the attested repository {attested.repository}")
            attested = None
    elif attested is not None:
        repo_url, repo_evidence = attested.repository, SourceEvidence.ATTESTATION
    else:
        found = repository_from_urls(release.project_urls)
        if found is None:
            refused = [c.file for c in checked if not c.verified]
            evidence = (
                f"the PEP 740 provenance of {', '.join(refused)} failed verification"
                if refused
                else "no provenance"
            )
            raise ResolveError(
                f"cannot locate the repository of {release.target}: {evidence}, and no "
                "project URL on a known forge",
                hint="name it: --repo URL --ref TAG",
            )
        label, repo_url = found
        repo_evidence = SourceEvidence.PROJECT_URL
        notes.append(f"repository from the project URL labelled {label!r}")
    if ref is not None:
        commit = ref if is_commit(ref) else None
        return Location(
            repo_url,
            None if commit else ref,
            commit,
            repo_evidence,
            SourceEvidence.USER,
            tuple(notes),
        )
    if attested is not None:
        tag_ref = attested.ref if (attested.ref or "").startswith("refs/tags/") else None
        return Location(
            repo_url,
            tag_ref,
            attested.commit,
            repo_evidence,
            SourceEvidence.ATTESTATION,
            tuple(notes),
        )
    tags = list_tags(repo_url)
    tag = version_tag(tags, release.target.name, release.target.version)
    if tag is None:
        shown = ", ".join(sorted(tags)[-8:]) or "none"
        raise ResolveError(
            f"{repo_url} has no tag for version {release.target.version} "
            f"({len(tags)} tags; the last few: {shown})",
            hint="name the tag or commit the release was made from: --ref REF",
        )
    notes.append(f"tag {tag} matches version {release.target.version}")
    return Location(
        repo_url, f"refs/tags/{tag}", None, repo_evidence, SourceEvidence.TAG, tuple(notes)
    )


def _usable(url: str, allow_local: bool) -> bool:
    scheme = urlsplit(url).scheme
    return scheme in ("https", "http") or (allow_local and scheme == "file")


def _same_repo(a: str, b: str) -> bool:
    def norm(url: str) -> str:
        return url.strip().lower().removesuffix("/").removesuffix(".git")

    return norm(a) == norm(b)
