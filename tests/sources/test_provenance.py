"""`rebuild provenance` end to end on a local index and local repositories, and the PEP 740 client
against recorded responses (the real index answers 404 for the files tried from here)."""

from __future__ import annotations

import base64
import datetime
import json
import time
from pathlib import Path

import pytest
from conftest import ServeRelease
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from helpers_cli import run_cli as run
from helpers_index import LocalServer, Reply, sha256

from rebuild.models import DistFile, DistKind, SourceEvidence, Target, Verdict, WheelSelector
from rebuild.pipeline import ProvenanceOptions, provenance
from rebuild.sources.integrity import INTEGRITY_JSON, integrity_url, parse_provenance
from rebuild.sources.locate import forge_repository, repository_from_urls

from .repos import SOURCE, commit_more, demo_wheel, git_repo, make_sdist, url_of

DEMO = Target("demo", "1.0")


def der_utf8(text: str) -> bytes:
    data = text.encode()
    assert len(data) < 128
    return bytes([0x0C, len(data)]) + data


def certificate(repository: str, commit: str, ref: str) -> bytes:
    """A certificate with Fulcio's source extensions, as a publish attestation carries."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "sigstore.dev")])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(minutes=10))
    )
    for oid, value in (("12", repository), ("13", commit), ("14", ref)):
        builder = builder.add_extension(
            x509.UnrecognizedExtension(
                x509.ObjectIdentifier(f"1.3.6.1.4.1.57264.1.{oid}"), der_utf8(value)
            ),
            critical=False,
        )
    return builder.sign(key, hashes.SHA256()).public_bytes(Encoding.DER)


def provenance_document(filename: str, digest: str, cert: bytes) -> bytes:
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": filename, "digest": {"sha256": digest}}],
        "predicateType": "https://docs.pypi.org/attestations/publish/v1",
        "predicate": None,
    }
    attestation = {
        "version": 1,
        "verification_material": {
            "certificate": base64.b64encode(cert).decode(),
            "transparency_entries": [],
        },
        "envelope": {
            "statement": base64.b64encode(json.dumps(statement).encode()).decode(),
            "signature": base64.b64encode(b"not checked").decode(),
        },
    }
    bundle = {
        "publisher": {"kind": "GitHub", "repository": "owner/demo", "workflow": "release.yml"},
        "attestations": [attestation],
    }
    return json.dumps({"version": 1, "attestation_bundles": [bundle]}).encode()


def release_files(
    tmp_path: Path,
    *,
    wheel_changes: dict[str, bytes | None] | None = None,
    sdist_files: dict[str, bytes] | None = None,
) -> tuple[Path, Path]:
    wheel = demo_wheel(tmp_path / "dist" / "demo-1.0-py3-none-any.whl", wheel_changes)
    sdist = make_sdist(tmp_path / "dist" / "demo-1.0.tar.gz", sdist_files or SOURCE)
    return wheel, sdist


def test_project_urls_name_a_repository_on_a_known_forge() -> None:
    assert forge_repository("https://github.com/psf/requests/tree/main") == (
        "https://github.com/psf/requests"
    )
    assert forge_repository("https://gitlab.com/group/proj.git/-/tags") == (
        "https://gitlab.com/group/proj"
    )
    assert forge_repository("https://requests.readthedocs.io") is None
    urls = (
        ("Documentation", "https://example.org/docs"),
        ("Homepage", "https://github.com/a/h"),
        ("Source", "https://github.com/a/s"),
    )
    assert repository_from_urls(urls) == ("Source", "https://github.com/a/s")


def test_the_integrity_client_reads_the_certificate_for_this_file_only() -> None:
    dist = DistFile(
        "demo-1.0.tar.gz", "https://files.example/demo-1.0.tar.gz", "ab" * 32, DistKind.SDIST
    )
    cert = certificate("https://github.com/owner/demo", "c0" * 20, "refs/tags/v1.0")
    found, note = parse_provenance(
        json.loads(provenance_document(dist.filename, dist.sha256, cert)), dist, "u"
    )
    assert found is not None and "signature not verified" in note  # what it claims, unverified
    assert (found.repository, found.commit, found.ref) == (
        "https://github.com/owner/demo",
        "c0" * 20,
        "refs/tags/v1.0",
    )
    assert found.publisher == "GitHub owner/demo release.yml"
    other, why = parse_provenance(
        json.loads(provenance_document(dist.filename, "cd" * 32, cert)), dist, "u"
    )
    assert other is None and "subject is not demo-1.0.tar.gz" in why
    assert integrity_url("https://pypi.example/simple/", DEMO, dist) == (
        "https://pypi.example/integrity/demo/1.0/demo-1.0.tar.gz/provenance"
    )


def test_injected_python_is_flagged_within_seconds(
    tmp_path: Path, local_index: tuple[LocalServer, ServeRelease]
) -> None:
    wheel, sdist = release_files(tmp_path, wheel_changes={"demo/_init_hook.py": b"import os\n"})
    url = local_index[1]("demo", wheel, sdist)
    started = time.monotonic()
    report = provenance(
        DEMO, WheelSelector(), ProvenanceOptions(index_url=url, cache_dir=tmp_path / "cache")
    )
    elapsed = time.monotonic() - started
    assert report.verdict is Verdict.DIVERGENT and report.exit_code == 1, report.failure
    assert report.provenance is not None
    (finding,) = report.provenance.unexplained
    assert finding.member == "demo/_init_hook.py"
    assert elapsed < 5
    # No repository could be located: said, not failed.
    assert any("cannot locate the repository" in n for n in report.provenance.notes)


def trust_test_certificates(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sigstore's verification replaced, at its boundary, by one that trusts this file's
    self-signed certificates: what follows a *verified* provenance is tested here; the
    verification itself on real signed provenance in tests/attest/test_pep740.py."""
    from rebuild.attest import pep740
    from rebuild.models import PublisherAttestation

    def trusting(body: bytes, filename: str, digest: str, url: str) -> PublisherAttestation:
        dist = DistFile(filename, url, digest, DistKind.WHEEL)
        found, why = parse_provenance(json.loads(body), dist, url)
        if found is None:
            return PublisherAttestation(filename, url, verified=False, reason=why)
        return PublisherAttestation(
            filename,
            url,
            verified=True,
            reason="trusted by the test",
            publisher="GitHub",
            repository=found.repository,
            workflow="release.yml",
            commit=found.commit,
            ref=found.ref,
        )

    monkeypatch.setattr(pep740, "verify_provenance", trusting)


def test_a_provenance_that_does_not_verify_is_a_finding_and_names_no_source(
    tmp_path: Path, local_index: tuple[LocalServer, ServeRelease]
) -> None:
    server, serve = local_index
    wheel, sdist = release_files(tmp_path)
    url = serve("demo", wheel, sdist)
    # A certificate anyone can make: it names a repository, but Sigstore never signed it.
    cert = certificate("https://github.com/mallory/demo", "c0" * 20, "refs/tags/v1.0")
    server.route(
        f"/integrity/demo/1.0/{wheel.name}/provenance",
        Reply(
            body=provenance_document(wheel.name, sha256(wheel.read_bytes()), cert),
            headers={"Content-Type": INTEGRITY_JSON},
        ),
    )
    report = provenance(
        DEMO, WheelSelector(), ProvenanceOptions(index_url=url, cache_dir=tmp_path / "cache")
    )
    assert report.provenance is not None, report.failure
    (finding,) = report.provenance.unexplained
    assert finding.kind.value == "attestation-invalid" and finding.member == wheel.name
    # The document is refused before any signature is looked at: it has no transparency-log
    # entry, which every Sigstore-signed attestation carries.
    assert "transparency_entries" in finding.detail, finding.detail
    (checked,) = report.provenance.attestations
    assert not checked.verified and checked.repository is None
    assert report.verdict is Verdict.DIVERGENT
    # The unverified certificate's repository was not used to locate the source.
    assert any("failed verification" in n for n in report.provenance.notes), report.provenance.notes


def test_an_attested_release_is_checked_against_its_commit_and_a_moved_tag_refused(
    tmp_path: Path, local_index: tuple[LocalServer, ServeRelease], monkeypatch: pytest.MonkeyPatch
) -> None:
    trust_test_certificates(monkeypatch)
    server, serve = local_index
    extra = {**SOURCE, "src/demo/backdoor.py": b"import os\n"}  # in the sdist, not in git
    wheel, sdist = release_files(tmp_path, sdist_files=extra)
    repo, released = git_repo(tmp_path / "up", SOURCE)
    url = serve("demo", wheel, sdist)
    cert = certificate(url_of(tmp_path / "up"), released, "refs/tags/v1.0")
    server.route(
        f"/integrity/demo/1.0/{wheel.name}/provenance",
        Reply(
            body=provenance_document(wheel.name, sha256(wheel.read_bytes()), cert),
            headers={"Content-Type": INTEGRITY_JSON},
        ),
    )
    from rebuild.fetch import Cache
    from rebuild.index import IndexClient
    from rebuild.sources.provenance import GitCheck, verify_provenance

    release = IndexClient(url).resolve(DEMO, WheelSelector(python="3.11"))
    wheel_artifact = Cache(tmp_path / "cache").fetch(release.wheel)  # type: ignore[arg-type]
    check = verify_provenance(
        release,
        wheel_artifact,
        cache=Cache(tmp_path / "cache"),
        git=GitCheck.REQUIRED,
        allow_local=True,
    )
    assert check.revision is not None
    assert check.revision.commit == released
    assert check.revision.repo_evidence is SourceEvidence.ATTESTATION
    assert check.revision.commit_evidence is SourceEvidence.ATTESTATION
    assert [d.member for d in check.unexplained] == ["src/demo/backdoor.py"]
    assert check.sdist_files == 6 and check.sdist_matched == 4

    commit_more(repo, {"src/demo/backdoor.py": b"import os\n"})
    repo.create_tag("v1.0", force=True)
    from rebuild.errors import FetchError

    with pytest.raises(FetchError, match="the tag was moved"):
        verify_provenance(
            release,
            wheel_artifact,
            cache=Cache(tmp_path / "cache"),
            git=GitCheck.REQUIRED,
            allow_local=True,
        )


def test_the_provenance_command_with_repo_and_ref(
    tmp_path: Path, local_index: tuple[LocalServer, ServeRelease]
) -> None:
    extra = {**SOURCE, "src/demo/backdoor.py": b"import os\n"}
    wheel, sdist = release_files(tmp_path, sdist_files=extra)
    git_repo(tmp_path / "up", SOURCE, tag="demo-1.0")
    url = local_index[1]("demo", wheel, sdist)
    common = ("--index-url", url, "--cache-dir", tmp_path / "cache")
    done = run(
        "provenance",
        "demo==1.0",
        *common,
        "--repo",
        url_of(tmp_path / "up"),
        "--json",
        tmp_path / "r.json",
    )
    assert done.returncode == 1, done.stderr
    assert "2 of 2 Python files" in done.stdout
    assert "tag demo-1.0 matches version 1.0" in done.stdout
    assert "src/demo/backdoor.py" in done.stdout and "not-in-git" in done.stdout
    document = json.loads((tmp_path / "r.json").read_text())
    assert document["provenance"]["revision"]["commit_evidence"] == "tag"
    missing = run(
        "provenance", "demo==1.0", *common, "--repo", url_of(tmp_path / "up"), "--ref", "v7"
    )
    assert missing.returncode == 3 and "has no ref or commit 'v7'" in missing.stdout
    wheel_only = run("provenance", "demo==1.0", *common, "--no-git", "--wheel", wheel)
    assert wheel_only.returncode == 0, wheel_only.stdout
    assert "no build: every file checked is its source's" in wheel_only.stdout


@pytest.mark.network
def test_requests_on_the_real_index_traces_every_python_file(shared_cache: Path) -> None:
    report = provenance(
        Target.parse("requests==2.32.3"),
        WheelSelector(),
        ProvenanceOptions(cache_dir=shared_cache, git=False),
    )
    assert report.provenance is not None, report.failure
    assert report.provenance.python_files == report.provenance.traced == 18
    assert report.verdict is Verdict.EQUIVALENT
