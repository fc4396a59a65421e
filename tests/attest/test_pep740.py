"""PEP 740 verified offline, on real signed provenance (tests/attest/assets, see its README).

The real provenance of pypi_attestations-0.0.19.tar.gz verifies against the GitHub Trusted
Publisher it names, with no network at all (every socket connect refused), and the report gets
the repository, workflow and commit from the verified certificate. The corrupted copy, another
digest, another publisher claimed, and a real attestation signed by Sigstore's staging instance
fail with the library's reason. The network tests verify against the real files of the index.
"""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rebuild.attest.pep740 import require_verified, verify_provenance
from rebuild.errors import AttestationError

ASSETS = Path(__file__).with_name("assets")
PROVENANCE = ASSETS / "pypi_attestations-0.0.19.tar.gz.provenance"
CORRUPTED = ASSETS / "pypi_attestations-0.0.19.tar.gz.provenance.corrupted"
STAGING = ASSETS / "rfc8785-0.1.2-py3-none-any.whl.publish.attestation"
SDIST = "pypi_attestations-0.0.19.tar.gz"
# What the index publishes for that file (its JSON simple API's sha256).
SDIST_SHA256 = "9bb1add04b1b4e182be6b0b80931593f7a291eb49d69b4fd728a5d4cbcdc4bd3"
RFC8785 = "rfc8785-0.1.2-py3-none-any.whl"
RFC8785_SHA256 = "c4e92e9ecc828bef2aa7dba1de8ac983511f7532a0df11c770d39099a25cf201"
COMMIT = "08802efe1f8e5fec4ad842d6b8ce97656092ee72"


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every attempt to connect anywhere fails, and is counted."""
    attempts: list[object] = []

    def refuse(self: socket.socket, address: object) -> None:
        attempts.append(address)
        raise OSError("the network is off in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    return attempts


def test_the_real_provenance_verifies_offline_and_names_its_source(
    no_network: list[object],
) -> None:
    checked = verify_provenance(PROVENANCE.read_bytes(), SDIST, SDIST_SHA256, "recorded")
    assert checked.verified, checked.reason
    assert checked.publisher == "GitHub"
    assert checked.repository == "https://github.com/trailofbits/pypi-attestations"
    assert checked.workflow == (
        "https://github.com/trailofbits/pypi-attestations/.github/workflows/release.yml"
    )
    assert checked.commit == COMMIT and checked.ref == "refs/tags/v0.0.19"
    assert "Trusted Publisher GitHub trailofbits/pypi-attestations release.yml" in checked.reason
    assert no_network == []


def test_the_corrupted_copy_fails_with_a_clear_message(no_network: list[object]) -> None:
    body = CORRUPTED.read_bytes()
    for digest in (SDIST_SHA256, "e" * 64):  # the real file's digest, and the one it now claims
        checked = verify_provenance(body, SDIST, digest, "recorded")
        assert not checked.verified and checked.repository is None and checked.commit is None
    with pytest.raises(AttestationError) as raised:
        require_verified(body, SDIST, "e" * 64, "recorded")
    assert str(raised.value) == (
        f"the PEP 740 provenance of {SDIST} failed verification: an attestation of {SDIST} by "
        "GitHub trailofbits/pypi-attestations release.yml does not verify: Verification "
        "failed: DSSE: invalid signature"
    )
    assert raised.value.exit_code == 13
    assert no_network == []


def test_the_real_provenance_is_refused_for_another_file(no_network: list[object]) -> None:
    other = verify_provenance(PROVENANCE.read_bytes(), SDIST, "0" * 64, "recorded")
    assert not other.verified
    assert "subject does not match distribution digest" in other.reason
    renamed = verify_provenance(
        PROVENANCE.read_bytes(), "pypi_attestations-0.0.20.tar.gz", SDIST_SHA256, "recorded"
    )
    assert not renamed.verified


def _with_publisher(document: dict[str, Any], **publisher: str) -> bytes:
    bundle = document["attestation_bundles"][0]
    bundle["publisher"] = {**bundle["publisher"], **publisher}
    return json.dumps(document).encode()


def test_a_publisher_the_certificate_does_not_name_is_refused(no_network: list[object]) -> None:
    # The publisher is not signed: claiming another one must fail the identity check.
    document = json.loads(PROVENANCE.read_bytes())
    for claim in ({"repository": "mallory/pypi-attestations"}, {"workflow": "other.yml"}):
        body = _with_publisher(json.loads(json.dumps(document)), **claim)
        checked = verify_provenance(body, SDIST, SDIST_SHA256, "recorded")
        assert not checked.verified, claim
        assert "does not match" in checked.reason or "mismatch" in checked.reason.lower()


def _staging_provenance() -> bytes:
    """The real rfc8785 publish attestation, in a provenance that claims its GitHub publisher."""
    attestation = json.loads(STAGING.read_bytes())
    return json.dumps(
        {
            "version": 1,
            "attestation_bundles": [
                {
                    "publisher": {
                        "kind": "GitHub",
                        "repository": "trailofbits/rfc8785.py",
                        "workflow": "release.yml",
                    },
                    "attestations": [attestation],
                }
            ],
        }
    ).encode()


def test_a_real_attestation_from_sigstore_s_staging_instance_is_refused(
    no_network: list[object],
) -> None:
    attestation = json.loads(STAGING.read_bytes())
    statement = json.loads(base64.b64decode(attestation["envelope"]["statement"]))
    assert statement["subject"] == [{"name": RFC8785, "digest": {"sha256": RFC8785_SHA256}}]
    checked = verify_provenance(_staging_provenance(), RFC8785, RFC8785_SHA256, "recorded")
    assert not checked.verified
    assert "does not verify" in checked.reason
    assert no_network == []


def test_a_document_that_is_no_provenance_is_refused() -> None:
    for body in (b"{}", b"[]", b"not json", b'{"version": 1, "attestation_bundles": []}'):
        checked = verify_provenance(body, SDIST, SDIST_SHA256, "recorded")
        assert not checked.verified and checked.reason


def _index_file(project: str, version: str, filename: str, cache: Path) -> Path:
    from rebuild.fetch import Cache
    from rebuild.index import IndexClient, choose_index_url
    from rebuild.models import Target, WheelSelector

    release = IndexClient(choose_index_url(None)).resolve(
        Target(project, version), WheelSelector(python="3.11")
    )
    (dist,) = [f for f in release.files if f.filename == filename]
    return Cache(cache).fetch(dist).path  # sha256-checked against the index's own hash


@pytest.mark.network
def test_the_real_file_from_the_index_verifies(shared_cache: Path) -> None:
    sdist = _index_file("pypi-attestations", "0.0.19", SDIST, shared_cache)
    from rebuild.fetch import sha256_file

    assert sha256_file(sdist) == SDIST_SHA256
    checked = require_verified(PROVENANCE.read_bytes(), sdist.name, sha256_file(sdist), "recorded")
    assert checked.commit == COMMIT
    done = subprocess.run(
        [sys.executable, "-m", "rebuild", "attest", "provenance", PROVENANCE, "--dist", sdist],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert f"commit     {COMMIT} refs/tags/v0.0.19" in done.stdout
    corrupted = subprocess.run(
        [sys.executable, "-m", "rebuild", "attest", "provenance", CORRUPTED, "--dist", sdist],
        capture_output=True,
        text=True,
        check=False,
    )
    assert corrupted.returncode == 13
    assert "DSSE: invalid signature" in corrupted.stderr


@pytest.mark.network
def test_the_real_rfc8785_wheel_is_the_staging_attestation_s_subject_and_still_refused(
    shared_cache: Path,
) -> None:
    from rebuild.fetch import sha256_file

    wheel = _index_file("rfc8785", "0.1.2", RFC8785, shared_cache)
    assert sha256_file(wheel) == RFC8785_SHA256
    checked = verify_provenance(_staging_provenance(), wheel.name, RFC8785_SHA256, "recorded")
    assert not checked.verified
